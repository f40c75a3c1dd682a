use skprocess::child_init;

#[child_init(order = 1, order = 2)]
fn setup() {}

fn main() {}
