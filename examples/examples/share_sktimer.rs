//! Example 24, "Sharing Complex Objects (like `Sktimer`)": workers in a pool record their run
//! times into one `Sktimer` kept by the parent's Share.
//!
//! Run: `cargo run -p examples --example share_sktimer`

use sha2::{Digest, Sha256};
use skprocess::pool::Pool;
use skprocess::prelude::*;
use skprocess::timing::Sktimer;

// ANCHOR: process
/// A process that times its own work and adds each time to the shared timer.
#[skprocess]
struct TimedWorker {
    shared: Share,
    work_count: usize,
}

#[skprocess]
impl TimedWorker {
    fn new(shared: Share) -> Self {
        TimedWorker {
            shared,
            work_count: 5,
        }
    }

    fn __config__(&self, config: &mut ProcessConfig) {
        config.runs = Some(self.work_count);
    }

    fn __run__(&mut self, cx: &mut Context) -> Result<(), ShareError> {
        // variable hash iterations (deterministic)
        let run_timer = TimeThis::new();
        let mut data = b"benchmark_data".to_vec();
        let iterations = 500 + (cx.current_run() * 97 % 1500);
        for _ in 0..iterations {
            data = Sha256::digest(&data).to_vec();
        }
        let seconds = run_timer.finish().unwrap_or_default();

        // add the time to the shared timer (Sktimer is #[shared] in skprocess itself)
        self.shared.get::<Sktimer>("timer")?.add_time(seconds)
    }

    fn __result__(&mut self) -> String {
        "done".to_owned()
    }
}
// ANCHOR_END: process

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let share = Share::new()?;
    share.insert("timer", Sktimer::new())?;

    let workers = 4;
    let pool = Pool::new(workers)?;
    pool.processes()
        .map(TimedWorker::new, vec![share.clone(); workers])?;

    let stats = share
        .get::<Sktimer>("timer")?
        .get_stats()?
        .ok_or("the timer has no samples")?;

    // 4 workers × 5 runs each
    println!("num_times: {}", stats.num_times);
    println!("mean:      {:.6}s", stats.mean);
    println!("min:       {:.6}s", stats.min);
    println!("max:       {:.6}s", stats.max);
    println!("stdev:     {:.6}s", stats.stdev.unwrap_or_default());
    println!("variance:  {:.9}", stats.variance.unwrap_or_default());

    share.stop()?;
    Ok(())
}
// ANCHOR_END: main
