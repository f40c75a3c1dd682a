use skprocess::prelude::*;

#[skprocess]
struct Worker;

#[skprocess]
impl Worker {
    fn __run__(&mut self) -> u32 {
        1
    }
}

fn main() {}
