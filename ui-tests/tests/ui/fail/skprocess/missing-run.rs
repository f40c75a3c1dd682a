use skprocess::prelude::*;

#[skprocess]
struct Idle;

#[skprocess]
impl Idle {
    fn __result__(&mut self) -> u32 {
        1
    }
}

fn main() {}
