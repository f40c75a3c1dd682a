use skprocess::child_init;

#[child_init]
fn setup() -> Result<(), u32> {
    Err(7)
}

fn main() {}
