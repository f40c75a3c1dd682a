use skprocess::prelude::*;

#[skprocess(lives = 0)]
struct Worker;

fn main() {}
