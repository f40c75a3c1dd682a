use skprocess::prelude::*;

#[skprocess]
struct Worker;

#[skprocess]
impl Worker {
    fn __run__(&mut self) {}
    fn __postrnu__(&mut self) {}
}

fn main() {}
