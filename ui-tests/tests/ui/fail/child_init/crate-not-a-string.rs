use skprocess::child_init;

#[child_init(crate = skprocess)]
fn setup() {}

fn main() {}
