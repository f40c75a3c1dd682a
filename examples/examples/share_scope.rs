//! Example 25, "`Share` as Context Manager": `Share::scope` stops the Share when its closure
//! returns, like Python's `with Share() as share:`.
//!
//! Run: `cargo run -p examples --example share_scope`

use skprocess::pool::Pool;
use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};

/// A simple counter.
#[derive(Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Counter {
    value: i64,
}

#[shared]
impl Counter {
    fn increment(&mut self, amount: i64) {
        self.value += amount;
    }

    fn value(&self) -> i64 {
        self.value
    }
}

/// Increments the shared counter after each of its 10 runs.
#[skprocess(runs = 10)]
struct WorkerProcess {
    shared: Share,
}

#[skprocess]
impl WorkerProcess {
    fn new(shared: Share) -> Self {
        WorkerProcess { shared }
    }

    fn __run__(&mut self) {}

    fn __postrun__(&mut self) -> Result<(), ShareError> {
        self.shared.get::<Counter>("counter")?.increment(1)
    }

    fn __result__(&mut self) -> String {
        "done".to_owned()
    }
}

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    // the Share stops when the closure returns (even if clones of it are still around)
    let kept = Share::scope(|share| -> Result<Share, Box<dyn std::error::Error>> {
        share.insert("counter", Counter { value: 0 })?;

        let pool = Pool::new(2)?;
        pool.processes()
            .map(WorkerProcess::new, vec![share.clone(); 3])?;

        println!("Final value: {}", share.get::<Counter>("counter")?.value()?);
        Ok(share.clone())
    })??;

    // Share automatically stopped after the scope
    println!("Running after the scope: {}", kept.is_running());
    Ok(())
}
// ANCHOR_END: main
