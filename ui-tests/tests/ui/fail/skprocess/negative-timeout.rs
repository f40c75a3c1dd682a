use skprocess::prelude::*;

#[skprocess(timeouts(run = -1.0))]
struct Worker;

fn main() {}
