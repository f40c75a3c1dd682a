//! Example 26, "Multiple Shared Objects": a statistics object and a timer in one Share, updated
//! by processes that receive the Share and their item through `star()`.
//!
//! Run: `cargo run -p examples --example share_multiple`

use sha2::{Digest, Sha256};
use skprocess::pool::Pool;
use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};
use skprocess::timing::Sktimer;

// ANCHOR: stats
/// Statistics tracked across processes.
#[derive(Serialize, Deserialize, Default)]
#[serde(crate = "skprocess::serde")]
struct Stats {
    processed: u32,
    errors: u32,
    successes: u32,
}

#[shared]
impl Stats {
    fn record_success(&mut self) {
        self.processed += 1;
        self.successes += 1;
    }

    fn record_error(&mut self) {
        self.processed += 1;
        self.errors += 1;
    }

    /// A copy of the current counts.
    fn snapshot(&self) -> Stats {
        Stats { ..*self }
    }
}
// ANCHOR_END: stats

/// One work item.
#[derive(Clone, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Item {
    id: u32,
    data: String,
}

// ANCHOR: process
/// Processes one item and records the outcome in both shared objects.
#[skprocess(runs = 1)]
struct DataProcessor {
    shared: Share,
    item: Item,
}

#[skprocess]
impl DataProcessor {
    fn new(shared: Share, item: Item) -> Self {
        DataProcessor { shared, item }
    }

    fn __run__(&mut self) -> Result<(), ShareError> {
        let run_timer = TimeThis::new();
        let stats = self.shared.get::<Stats>("stats")?;
        match self.process() {
            Ok(()) => stats.record_success()?,
            Err(_) => stats.record_error()?,
        }
        let seconds = run_timer.finish().unwrap_or_default();
        self.shared.get::<Sktimer>("timer")?.add_time(seconds)
    }

    fn __result__(&mut self) -> u32 {
        self.item.id
    }
}

impl DataProcessor {
    fn process(&self) -> Result<(), String> {
        let mut data = self.item.data.as_bytes().to_vec();
        // deterministically fail based on the content hash
        let checksum = Sha256::digest(&data);
        if checksum[0] % 5 == 0 {
            return Err(format!("Failed processing {}", self.item.id));
        }
        // compute a hash chain
        for _ in 0..1000 {
            data = Sha256::digest(&data).to_vec();
        }
        Ok(())
    }
}
// ANCHOR_END: process

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    Share::scope(|share| -> Result<(), Box<dyn std::error::Error>> {
        // multiple shared objects
        let stats = share.insert("stats", Stats::default())?;
        let timer = share.insert("timer", Sktimer::new())?;

        let items = (0..20).map(|i| Item {
            id: i,
            data: format!("item_{i}"),
        });

        let pool = Pool::new(4)?;
        // star() passes both the Share and the item
        let args: Vec<(Share, Item)> = items.map(|item| (share.clone(), item)).collect();
        pool.star().processes().map(DataProcessor::new, args)?;

        let counts = stats.snapshot()?;
        println!("Processed: {}", counts.processed);
        println!("Successes: {}", counts.successes);
        println!("Errors: {}", counts.errors);
        println!("Avg time: {:.4}s", timer.mean()?.unwrap_or_default());
        Ok(())
    })?
}
// ANCHOR_END: main
