use skprocess::prelude::*;

#[skprocess]
union Worker {
    a: u32,
}

fn main() {}
