use skprocess::child_init;

#[child_init]
fn setup() -> u32 {
    7
}

fn main() {}
