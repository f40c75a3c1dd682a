use skprocess::timethis;

#[timethis(crate = skprocess)]
fn work() {}

fn main() {}
