//! Example 23, "Basic Shared Counter using `Share`": five processes in a pool increment one
//! counter that lives in the parent's Share.
//!
//! Run: `cargo run -p examples --example share_counter`

use skprocess::pool::Pool;
use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};

// ANCHOR: counter
/// A counter kept by the Share: its methods run in the parent, whoever calls them.
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
// ANCHOR_END: counter

// ANCHOR: process
/// A process that increments the shared counter after each of its 10 runs.
#[skprocess(runs = 10)]
struct CounterProcess {
    // the Share travels inside the process and reconnects to the parent on first use
    shared: Share,
    amount: i64,
}

#[skprocess]
impl CounterProcess {
    fn new(shared: Share) -> Self {
        CounterProcess { shared, amount: 1 }
    }

    fn __run__(&mut self) {}

    fn __postrun__(&mut self) -> Result<(), ShareError> {
        // one call, applied atomically by the Share: no read/modify/write race
        self.shared
            .get::<Counter>("counter")?
            .increment(self.amount)
    }

    fn __result__(&mut self) -> String {
        "done".to_owned()
    }
}
// ANCHOR_END: process

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let share = Share::new()?;
    share.insert("counter", Counter { value: 0 })?;

    // run 5 processes, each incrementing 10 times
    let pool = Pool::new(4)?;
    pool.processes()
        .map(CounterProcess::new, vec![share.clone(); 5])?;

    // 5 processes × 10 runs each
    println!(
        "Final counter: {}",
        share.get::<Counter>("counter")?.value()?
    );

    share.stop()?;
    Ok(())
}
// ANCHOR_END: main
