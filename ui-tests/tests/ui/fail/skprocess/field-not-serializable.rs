use skprocess::prelude::*;

#[skprocess]
struct Worker {
    log: std::fs::File,
}

#[skprocess]
impl Worker {
    fn __run__(&mut self) {}
}

fn main() {}
