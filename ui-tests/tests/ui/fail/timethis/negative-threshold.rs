use skprocess::timethis;

#[timethis(threshold = -0.5)]
fn work() {}

fn main() {}
