use skprocess::prelude::*;

#[skprocess]
struct Worker;

#[skprocess]
impl Clone for Worker {
    fn clone(&self) -> Self {
        Worker
    }
}

fn main() {}
