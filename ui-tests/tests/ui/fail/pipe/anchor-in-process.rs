use skprocess::pipe::Anchor;
use skprocess::prelude::*;

// The anchor stays in the process that made the pipe: it cannot be a field of a process.
#[skprocess]
struct Worker {
    pipe: Anchor,
}

#[skprocess]
impl Worker {
    fn __run__(&mut self) {}
}

fn main() {}
