use skprocess::child_init;

#[child_init]
fn setup(level: u8) {
    let _ = level;
}

fn main() {}
