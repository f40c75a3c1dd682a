use skprocess::timethis;

#[timethis(max_times = 0)]
fn work() {}

fn main() {}
