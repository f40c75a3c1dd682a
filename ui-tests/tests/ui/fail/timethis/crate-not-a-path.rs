use skprocess::timethis;

#[timethis(crate = "not a path")]
fn work() {}

fn main() {}
