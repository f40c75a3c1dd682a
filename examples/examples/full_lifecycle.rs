//! Example 3, "Full Lifecycle Process": every lifecycle method, in order.
//!
//! Run: `cargo run -p examples --example full_lifecycle`

// ANCHOR: all
use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};

// ANCHOR: struct
/// A process demonstrating all lifecycle methods.
///
/// - `__prerun__`: setup before each run
/// - `__run__`: main work
/// - `__postrun__`: cleanup after each run
/// - `__onfinish__`: final cleanup
/// - `__result__`: return data
#[skprocess(runs = 3)] // process 3 batches
struct DataProcessor {
    batch_size: usize,
    // state tracking
    current_batch: Option<Vec<String>>,
    processed: Option<Vec<String>>,
    processed_batches: Vec<Vec<String>>,
    total_items: usize,
}
// ANCHOR_END: struct

/// What the process returns.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Summary {
    batches: Vec<Vec<String>>,
    total_items: usize,
    num_batches: usize,
}

#[skprocess]
impl DataProcessor {
    fn new(batch_size: usize) -> Self {
        DataProcessor {
            batch_size,
            current_batch: None,
            processed: None,
            processed_batches: Vec::new(),
            total_items: 0,
        }
    }

    // ANCHOR: prerun
    // called before each __run__: fetch the next batch of data
    fn __prerun__(&mut self, cx: &mut Context) {
        let batch_number = cx.current_run();
        let batch: Vec<String> = (0..self.batch_size)
            .map(|i| format!("item_{batch_number}_{i}"))
            .collect();
        println!(
            "[prerun] Fetched batch {batch_number}: {} items",
            batch.len()
        );
        self.current_batch = Some(batch);
    }
    // ANCHOR_END: prerun

    // ANCHOR: run
    // called each iteration: process each item in the current batch
    fn __run__(&mut self) {
        let mut processed = Vec::new();
        for item in self.current_batch.iter().flatten() {
            processed.push(item.to_uppercase());
            self.total_items += 1;
        }
        println!("[run] Processed {} items", processed.len());
        // store for postrun
        self.processed = Some(processed);
    }
    // ANCHOR_END: run

    // ANCHOR: postrun
    // called after each __run__: save results and clean up
    fn __postrun__(&mut self) {
        self.processed_batches
            .push(self.processed.take().unwrap_or_default());
        self.current_batch = None; // clear for next iteration
        println!(
            "[postrun] Saved batch, total batches: {}",
            self.processed_batches.len()
        );
    }
    // ANCHOR_END: postrun

    // ANCHOR: onfinish
    // called once when the process ends (stop signal or run limit)
    fn __onfinish__(&mut self) {
        println!(
            "[onfinish] Finished processing {} total items",
            self.total_items
        );
    }
    // ANCHOR_END: onfinish

    // ANCHOR: result
    // return the final data
    fn __result__(&mut self) -> Summary {
        Summary {
            batches: self.processed_batches.clone(),
            total_items: self.total_items,
            num_batches: self.processed_batches.len(),
        }
    }
    // ANCHOR_END: result

    // NOTE: no __error__, so the error itself is what `run()` returns on failure
}

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let process = Skprocess::new(DataProcessor::new(3));
    let result = process.run()?;

    println!(
        "\nResult: {} batches, {} items",
        result.num_batches, result.total_items
    );
    Ok(())
}
// ANCHOR_END: main
// ANCHOR_END: all
