use skprocess::prelude::*;

#[skprocess(timeouts(runn = 1.0, run = 2.0, run = 3.0))]
struct Worker;

fn main() {}
