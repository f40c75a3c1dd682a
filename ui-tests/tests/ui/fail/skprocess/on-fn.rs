use skprocess::prelude::*;

#[skprocess]
fn __run__() {}

fn main() {}
