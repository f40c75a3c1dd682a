use skprocess::prelude::*;

#[skprocess(lives = 4294967296, join_in = 1e13)]
struct Worker;

fn main() {}
