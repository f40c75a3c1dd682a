//! A type of one's own cannot pose as an async task of several arguments for the worker
//! processes: only functions and closures travel as code.

use std::future::Ready;

use skprocess::pool::{AsyncPool, StarCall};

#[derive(Clone, Copy)]
struct Pretender(&'static u32);

impl StarCall<(u32,)> for Pretender {
    type Future = Ready<u32>;

    fn call(&mut self, (x,): (u32,)) -> Ready<u32> {
        std::future::ready(x + *self.0)
    }
}

fn main() {
    static BASE: u32 = 5;
    let pool = AsyncPool::with_workers(1, 1).unwrap();
    let _ = pool.starmap(Pretender(&BASE), [(1u32,)]);
}
