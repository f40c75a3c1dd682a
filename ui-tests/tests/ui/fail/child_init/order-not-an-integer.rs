use skprocess::child_init;

#[child_init(order = "first")]
fn setup() {}

fn main() {}
