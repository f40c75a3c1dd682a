use skprocess::prelude::*;

#[shared]
struct Counter {
    value: i64,
}

fn main() {}
