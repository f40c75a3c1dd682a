use skprocess::timethis;

#[timethis(timer = 5)]
fn work() {}

fn main() {}
