#![deny(warnings, unused_qualifications, missing_docs, missing_debug_implementations)]
//! Generated code passes strict lints.

use skprocess::prelude::*;

/// A documented process type.
#[skprocess(runs = 3)]
#[derive(Debug)]
pub struct Worker {
    count: u32,
}

#[skprocess]
impl Worker {
    fn __run__(&mut self, cx: &mut Context) {
        self.count += cx.current_run() as u32;
    }

    fn __result__(&mut self) -> u32 {
        self.count
    }
}

fn main() {
    let _ = Skprocess::new(Worker { count: 0 });
}
