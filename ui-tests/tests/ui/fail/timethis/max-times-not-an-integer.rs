use skprocess::timethis;

#[timethis(max_times = 2.5)]
fn work() {}

fn main() {}
