use skprocess::prelude::*;

#[skprocess]
struct Worker;

#[skprocess]
impl Worker {
    fn __run__(&mut self) {}
    fn __error__(&mut self, error: String) {
        let _ = error;
    }
}

fn main() {}
