use skprocess::prelude::*;

#[skprocess(name = "")]
struct Worker;

#[skprocess]
impl Worker {
    fn __run__(&mut self) {}
}

fn main() {
    let _ = Skprocess::new(Worker).run();
}
