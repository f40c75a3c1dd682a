use skprocess::prelude::*;

#[skprocess]
struct Worker;

#[skprocess]
impl Worker {
    fn __run__() {}
}

fn main() {}
