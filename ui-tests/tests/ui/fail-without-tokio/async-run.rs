use skprocess::prelude::*;

#[skprocess]
struct Worker;

#[skprocess]
impl Worker {
    async fn __run__(&mut self) {}
}

fn main() {}
