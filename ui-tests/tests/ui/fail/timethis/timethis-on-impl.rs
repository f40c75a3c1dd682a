use skprocess::timethis;

struct Worker;

#[timethis]
impl Worker {
    fn work(&self) {}
}

fn main() {}
