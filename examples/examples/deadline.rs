//! A deadline on `run()`: when it passes, `run()` returns `ResultTimeout`, the process is asked
//! to stop, and it is killed if it has not ended `KILL_GRACE` later.
//!
//! Run: `cargo run -p examples --example deadline`

// ANCHOR: all
use std::time::{Duration, Instant};

use skprocess::prelude::*;
use skprocess::{KILL_GRACE, timing};

// ANCHOR: processes
/// Ticks until stopped: it sees a stop at the end of its current `__run__`.
#[skprocess]
struct Ticker {
    ticks: u32,
}

#[skprocess]
impl Ticker {
    fn __run__(&mut self) {
        self.ticks += 1;
        timing::sleep(0.02);
    }

    fn __onfinish__(&mut self) {
        println!("[child] __onfinish__ after {} ticks", self.ticks);
    }

    fn __result__(&mut self) -> u32 {
        self.ticks
    }
}

/// Stuck in one long `__run__`: a stop request cannot reach it in time.
#[skprocess(runs = 1)]
struct Stuck;

#[skprocess]
impl Stuck {
    fn __run__(&mut self) {
        timing::sleep(60.0);
    }
}
// ANCHOR_END: processes

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // ANCHOR: graceful
    let ticker = Skprocess::new(Ticker { ticks: 0 });
    match ticker.timeout(Duration::from_millis(300)).run() {
        Err(error @ ProcessError::ResultTimeout { .. }) => println!("ticker: {error}"),
        other => println!("unexpected: {other:?}"),
    }
    // it was asked to stop: it finished its run, then ran __onfinish__ and __result__
    let ticks = ticker.result()?;
    println!("ticker stopped by itself; result() still gives {ticks} ticks");
    // ANCHOR_END: graceful

    // ANCHOR: killed
    let stuck = Skprocess::new(Stuck);
    let started = Instant::now();
    match stuck.timeout(Duration::from_millis(300)).run() {
        Err(error) => println!("stuck: {error}"),
        Ok(()) => println!("unexpected: stuck finished"),
    }
    match stuck.result() {
        Err(ProcessError::Killed { .. }) => println!(
            "stuck: killed, {:.0} s after the deadline (KILL_GRACE: {KILL_GRACE:?})",
            (started.elapsed() - Duration::from_millis(300)).as_secs_f64()
        ),
        other => println!("unexpected: {other:?}"),
    }
    // ANCHOR_END: killed
    Ok(())
}
// ANCHOR_END: all
