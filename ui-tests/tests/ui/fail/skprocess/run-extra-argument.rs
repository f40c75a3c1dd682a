use skprocess::prelude::*;

#[skprocess]
struct Worker;

#[skprocess]
impl Worker {
    fn __run__(&mut self, times: u32) {
        let _ = times;
    }
}

fn main() {}
