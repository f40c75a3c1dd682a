//! Example 27, "Sharing with single `Skprocess`": one long-running process updates a counter
//! in shared memory and a shared timer while the parent watches the progress.
//!
//! Run: `cargo run -p examples --example share_single_process`

use sha2::{Digest, Sha256};
use skprocess::prelude::*;
use skprocess::timing::Sktimer;

// ANCHOR: process
/// A long-running process that updates shared state after every iteration.
#[skprocess(runs = 100)]
struct IterativeWorker {
    shared: Share,
}

#[skprocess]
impl IterativeWorker {
    fn __run__(&mut self, cx: &mut Context) -> Result<(), ShareError> {
        // variable work: a hash chain of deterministic length
        let run_timer = TimeThis::new();
        let mut data = format!("iteration_{}", cx.current_run()).into_bytes();
        let iterations = 200 + usize::from(Sha256::digest(&data)[0]) % 600;
        for _ in 0..iterations {
            data = Sha256::digest(&data).to_vec();
        }
        let seconds = run_timer.finish().unwrap_or_default();

        // update shared state: the counter lives in shared memory (an atomic add, no message)
        self.shared.get::<i64>("progress")?.fetch_add(1)?;
        self.shared.get::<Sktimer>("timer")?.add_time(seconds)
    }

    fn __result__(&mut self) -> String {
        "complete".to_owned()
    }
}
// ANCHOR_END: process

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    Share::scope(|share| -> Result<(), Box<dyn std::error::Error>> {
        let progress = share.insert("progress", 0_i64)?;
        let timer = share.insert("timer", Sktimer::new())?;

        let process = Skprocess::new(IterativeWorker {
            shared: share.clone(),
        });
        process.start()?;

        // monitor progress from the parent
        while process.is_alive() {
            println!("Progress: {}/100", progress.load()?);
            // do real work while waiting
            let mut payload = b"progress".to_vec();
            for _ in 0..500 {
                payload = Sha256::digest(&payload).to_vec();
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        process.wait()?;

        println!("\nFinal progress: {}", progress.load()?);
        println!("Total time: {:.2}s", timer.total_time()?);
        println!("Avg iteration: {:.4}s", timer.mean()?.unwrap_or_default());
        Ok(())
    })?
}
// ANCHOR_END: main
