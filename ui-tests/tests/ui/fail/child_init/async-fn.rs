use skprocess::child_init;

#[child_init]
async fn setup() {}

fn main() {}
