use skprocess::prelude::*;

#[derive(skprocess::serde::Serialize, skprocess::serde::Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Worker;

#[skprocess]
impl Worker {
    fn __run__(&mut self) {}
}

fn main() {}
