fn setup() -> Option<()> {
    None
}

skprocess::register_child_init!(setup);

fn main() {}
