use skprocess::prelude::*;

#[skprocess]
enum Worker {
    A,
}

fn main() {}
