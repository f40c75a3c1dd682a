//! Example 5, "Time-Limited Process with `join_in`": a process that runs for a fixed wall-clock
//! time, then finishes normally.
//!
//! Run: `cargo run -p examples --example join_in`

// ANCHOR: all
use sha2::{Digest, Sha256};
use skprocess::prelude::*;

/// Runs until `join_in` passes (`runs` stays `None`, the default).
#[skprocess]
struct TimeBoundProcess {
    max_seconds: f64,
    iterations: u64,
}

#[skprocess]
impl TimeBoundProcess {
    fn new(max_seconds: f64) -> Self {
        TimeBoundProcess {
            max_seconds,
            iterations: 0,
        }
    }

    // ANCHOR: config
    fn __config__(&self, config: &mut ProcessConfig) {
        config.join_in = Some(std::time::Duration::from_secs_f64(self.max_seconds));
    }
    // ANCHOR_END: config

    fn __run__(&mut self, cx: &mut Context) {
        let digest = Sha256::digest(format!("iter_{}", cx.current_run()).as_bytes());
        std::hint::black_box(digest);
        // The seed sums digest bytes here and calls it an iteration count; count iterations.
        self.iterations += 1;
    }

    fn __result__(&mut self) -> u64 {
        self.iterations
    }
}

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let process = Skprocess::new(TimeBoundProcess::new(1.0));
    let result = process.run()?;
    println!("Completed {result} iterations in ~1 second");
    Ok(())
}
// ANCHOR_END: main
// ANCHOR_END: all
