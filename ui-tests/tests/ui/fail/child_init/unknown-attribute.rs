use skprocess::child_init;

#[child_init(retries = 3)]
fn setup() {}

fn main() {}
