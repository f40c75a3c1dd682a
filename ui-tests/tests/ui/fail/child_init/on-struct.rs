use skprocess::child_init;

#[child_init]
struct Settings;

fn main() {}
