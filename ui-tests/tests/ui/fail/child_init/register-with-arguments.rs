fn setup(level: u8) {
    let _ = level;
}

skprocess::register_child_init!(setup, order = 2);

fn main() {}
