use skprocess::prelude::*;
use std::rc::Rc;

#[skprocess]
struct Worker;

#[skprocess]
impl Worker {
    fn __run__(&mut self) {}
    fn __result__(&mut self) -> Rc<u32> {
        Rc::new(1)
    }
}

fn main() {}
