//! Example 2, "Using `run()`": start, wait and result in one call.
//!
//! Run: `cargo run -p examples --example using_run`

// ANCHOR: all
use skprocess::prelude::*;

/// A process that does quick work, one item per run.
#[skprocess]
struct QuickProcess {
    data: Vec<i64>,
    results: Vec<i64>,
}

#[skprocess]
impl QuickProcess {
    fn new(data: Vec<i64>) -> Self {
        QuickProcess {
            data,
            results: Vec::new(),
        }
    }

    fn __config__(&self, config: &mut ProcessConfig) {
        config.runs = Some(self.data.len());
    }

    // ANCHOR: run
    // process one item per run
    fn __run__(&mut self, cx: &mut Context) {
        let item = self.data[cx.current_run()];
        self.results.push(item * 2);
    }
    // ANCHOR_END: run

    fn __result__(&mut self) -> Vec<i64> {
        self.results.clone()
    }
}

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    // run() combines start(), wait() and result()
    let process = Skprocess::new(QuickProcess::new(vec![1, 2, 3, 4, 5]));
    let results = process.run()?;
    println!("{results:?}"); // [2, 4, 6, 8, 10]
    Ok(())
}
// ANCHOR_END: main
// ANCHOR_END: all
