use skprocess::timethis;

#[timethis(threshold = "fast")]
fn work() {}

fn main() {}
