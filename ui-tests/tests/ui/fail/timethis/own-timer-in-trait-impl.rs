use skprocess::timethis;

trait Job {
    fn run(&self);
}

struct Backup;

impl Job for Backup {
    #[timethis]
    fn run(&self) {}
}

fn main() {}
