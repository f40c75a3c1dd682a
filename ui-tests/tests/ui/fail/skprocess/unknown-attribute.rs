use skprocess::prelude::*;

#[skprocess(retry = 3)]
struct Worker;

fn main() {}
