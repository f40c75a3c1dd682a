use skprocess::prelude::*;

#[skprocess(name = "workers::repeat")]
struct Repeat<T> {
    value: T,
}

fn main() {}
