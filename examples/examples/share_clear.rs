//! Example 29, "Clearing `Share` State": `clear()` removes everything; the next batch starts
//! from a fresh value.
//!
//! Run: `cargo run -p examples --example share_clear`

use skprocess::pool::Pool;
use skprocess::prelude::*;

/// Adds one to the shared count after each of its 10 runs.
#[skprocess(runs = 10)]
struct Incrementer {
    shared: Share,
}

#[skprocess]
impl Incrementer {
    fn new(shared: Share) -> Self {
        Incrementer { shared }
    }

    fn __run__(&mut self) {}

    fn __postrun__(&mut self) -> Result<(), ShareError> {
        // an atomic add in shared memory (Python's `share.count += 1` can lose updates)
        self.shared.get::<i64>("count")?.fetch_add(1)?;
        Ok(())
    }

    fn __result__(&mut self) -> String {
        "done".to_owned()
    }
}

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    Share::scope(|share| -> Result<(), Box<dyn std::error::Error>> {
        share.insert("count", 0_i64)?;

        // first batch
        let pool = Pool::new(2)?;
        pool.processes()
            .map(Incrementer::new, vec![share.clone(); 2])?;
        println!("After batch 1: {}", share.get::<i64>("count")?.load()?);

        // clear all shared state
        share.clear()?;
        println!("After clear: {:?}", share.names()?);

        // re-initialize
        share.insert("count", 0_i64)?;

        // second batch
        pool.processes()
            .map(Incrementer::new, vec![share.clone(); 3])?;
        println!("After batch 2: {}", share.get::<i64>("count")?.load()?);
        Ok(())
    })?
}
// ANCHOR_END: main
