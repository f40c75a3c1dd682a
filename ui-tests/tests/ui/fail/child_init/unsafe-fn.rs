use skprocess::child_init;

#[child_init]
unsafe fn setup() {}

fn main() {}
