use skprocess::prelude::*;

#[skprocess]
struct Worker {
    count: u32,
}

#[skprocess]
impl Worker {
    fn __run__(&mut self) {
        self.count = "one";
    }
}

fn main() {}
