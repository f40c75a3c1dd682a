use skprocess::prelude::*;

#[skprocess]
struct Worker;

#[skprocess(runs = 3)]
impl Worker {
    fn __run__(&mut self) {}
}

fn main() {}
