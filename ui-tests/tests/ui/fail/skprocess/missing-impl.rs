use skprocess::prelude::*;

#[skprocess]
struct Worker;

fn main() {
    let _ = Skprocess::new(Worker);
}
