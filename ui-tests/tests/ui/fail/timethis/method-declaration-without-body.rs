use skprocess::timethis;

trait Job {
    #[timethis]
    fn run(&self);
}

fn main() {}
