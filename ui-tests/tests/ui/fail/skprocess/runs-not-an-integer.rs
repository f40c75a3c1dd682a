use skprocess::prelude::*;

#[skprocess(runs = "ten")]
struct Worker;

fn main() {}
