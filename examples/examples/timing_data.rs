//! Example 8, "Accessing Timing Data": every lifecycle section is timed in the child, and the
//! timers come back with the result.
//!
//! Run: `cargo run -p examples --example timing_data`

// ANCHOR: all
use sha2::{Digest, Sha256};
use skprocess::prelude::*;

/// A process demonstrating timing access: per-section timers, the full-iteration timer and
/// statistics (mean, min, max, percentile).
#[skprocess]
struct TimedProcess {
    runs: usize,
    data: Vec<String>,
}

#[skprocess]
impl TimedProcess {
    fn new(runs: usize) -> Self {
        TimedProcess {
            runs,
            data: (0..1000).map(|i| format!("data_block_{i}")).collect(),
        }
    }

    fn __config__(&self, config: &mut ProcessConfig) {
        config.runs = Some(self.runs);
    }

    // variable prerun work: rotate the data
    fn __prerun__(&mut self) {
        self.data.rotate_right(1);
    }

    // variable run work: hash computations
    fn __run__(&mut self, cx: &mut Context) {
        let iterations = 50 + (cx.current_run() * 7 % 100);
        for _ in 0..iterations {
            for item in &self.data[..100] {
                std::hint::black_box(Sha256::digest(item.as_bytes()));
            }
        }
    }

    // quick postrun: sort a slice
    fn __postrun__(&mut self) {
        let mut head = self.data[..50].to_vec();
        head.sort();
        std::hint::black_box(head);
    }

    fn __result__(&mut self) -> String {
        "done".into()
    }
}

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let process = Skprocess::new(TimedProcess::new(20));
    process.run()?;
    let timers = process.timers();
    let secs = |value: Option<f64>| value.unwrap_or(0.0);

    // ANCHOR: sections
    // individual timers
    println!("__prerun__ timing:");
    println!("  mean:   {:.4}s", secs(timers.prerun.mean()));
    println!("  min:    {:.4}s", secs(timers.prerun.min()));
    println!("  max:    {:.4}s", secs(timers.prerun.max()));

    println!("\n__run__ timing:");
    println!("  mean:   {:.4}s", secs(timers.run.mean()));
    println!("  p50:    {:.4}s", secs(timers.run.percentile(50.0)?));
    println!("  p95:    {:.4}s", secs(timers.run.percentile(95.0)?));

    println!("\n__postrun__ timing:");
    println!("  total:  {:.4}s", timers.postrun.total_time());
    // ANCHOR_END: sections

    // ANCHOR: full
    // aggregate timer for full iterations
    let full = process.process_timer();
    println!("\nFull iteration timing (prerun + run + postrun):");
    println!("  mean:   {:.4}s", secs(full.mean()));
    println!("  total:  {:.4}s", full.total_time());
    println!("  count:  {}", full.num_times());
    // ANCHOR_END: full
    Ok(())
}
// ANCHOR_END: main
// ANCHOR_END: all
