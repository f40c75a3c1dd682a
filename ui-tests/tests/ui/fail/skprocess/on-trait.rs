use skprocess::prelude::*;

#[skprocess]
trait Worker {
    fn __run__(&mut self);
}

fn main() {}
