use skprocess::timethis;

#[timethis(retries = 3)]
fn work() {}

fn main() {}
