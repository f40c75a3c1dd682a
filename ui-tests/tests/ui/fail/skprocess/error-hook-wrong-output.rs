use skprocess::prelude::*;

#[skprocess]
struct Worker;

#[skprocess]
impl Worker {
    fn __run__(&mut self) {}
    fn __result__(&mut self) -> u32 {
        1
    }
    fn __error__(&mut self) -> String {
        "failed".into()
    }
}

fn main() {}
