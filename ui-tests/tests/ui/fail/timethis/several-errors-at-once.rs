use skprocess::timethis;

#[timethis(threshold = -1, max_times = 1.5, verbose)]
const fn work() {}

fn main() {}
