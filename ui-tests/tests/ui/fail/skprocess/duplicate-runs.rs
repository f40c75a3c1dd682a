use skprocess::prelude::*;

#[skprocess(runs = 1, runs = 2)]
struct Worker;

fn main() {}
