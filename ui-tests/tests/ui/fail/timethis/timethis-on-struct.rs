use skprocess::timethis;

#[timethis]
struct Worker {
    jobs: u32,
}

fn main() {}
