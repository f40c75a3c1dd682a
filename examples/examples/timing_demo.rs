//! Timing code with `skprocess::timing`: an `Sktimer` and its statistics, `TimeThis` as a scope
//! guard (with pause/resume) and around a closure, percentiles, and `#[timethis]` on functions:
//! with their own timer, with a shared one, and with a threshold.
//!
//! Run it with:
//!
//! ```text
//! cargo run -p examples --example timing_demo
//! ```
//!
//! It finishes in well under a second.

// ANCHOR: all
use std::error::Error;
use std::thread;
use std::time::Duration;

use skprocess::timethis;
use skprocess::timing::{self, Sktimer, TimeThis};

// ANCHOR: shared_timer
/// Every database call, whichever function makes it.
static DB: Sktimer = Sktimer::new();

#[timethis(timer = DB)]
fn read_row(id: u64) -> u64 {
    thread::sleep(Duration::from_millis(2));
    id * 10
}

#[timethis(timer = DB)]
fn write_row(id: u64) {
    thread::sleep(Duration::from_millis(3));
    let _ = id;
}
// ANCHOR_END: shared_timer

// ANCHOR: own_timer
/// Timed into a timer of its own, reachable as `checksum_timer()`.
#[timethis(max_times = 100)]
fn checksum(data: &[u8]) -> u32 {
    data.iter()
        .fold(0u32, |sum, &b| sum.rotate_left(5) ^ u32::from(b))
}
// ANCHOR_END: own_timer

// ANCHOR: threshold
/// Lookups slow enough to matter.
static SLOW_LOOKUPS: Sktimer = Sktimer::new();

/// Only calls of 5 ms or more are recorded.
#[timethis(timer = SLOW_LOOKUPS, threshold = 0.005)]
fn lookup(cached: bool) -> &'static str {
    if !cached {
        thread::sleep(Duration::from_millis(20)); // a cache miss
    }
    "value"
}
// ANCHOR_END: threshold

fn main() -> Result<(), Box<dyn Error>> {
    // ANCHOR: sktimer
    let timer = Sktimer::new();
    for i in 0..20 {
        timer.start();
        thread::sleep(Duration::from_millis(1 + i % 5)); // the work being measured
        timer.stop()?;
    }
    println!("timed {} calls", timer.num_times());

    let stats = timer.get_stats().ok_or("the timer is empty")?;
    println!("count: {}", stats.num_times);
    println!("total: {:.4} s", stats.total_time);
    println!("mean:  {:.4} s", stats.mean);
    println!("min:   {:.4} s (call {})", stats.min, stats.fastest_index);
    println!("max:   {:.4} s (call {})", stats.max, stats.slowest_index);
    println!("stdev: {:.4} s", stats.stdev.unwrap_or(0.0));
    // ANCHOR_END: sktimer

    // ANCHOR: percentiles
    let latencies = Sktimer::new();
    for seconds in [
        0.120, 0.085, 0.410, 0.095, 0.130, 0.101, 0.088, 0.250, 0.099, 0.115,
    ] {
        latencies.add_time(seconds); // measured elsewhere
    }
    let p = |percent| latencies.percentile(percent).map(Option::unwrap_or_default);
    println!("p50: {:.3} s", p(50.0)?);
    println!("p95: {:.3} s", p(95.0)?);
    println!("p99: {:.3} s", p(99.0)?);
    println!(
        "slowest: {:.3} s (request {})",
        latencies.max().unwrap_or_default(),
        latencies.slowest_index().unwrap_or_default()
    );
    // ANCHOR_END: percentiles

    // ANCHOR: guard
    let io = Sktimer::new();
    {
        let mut timing = TimeThis::with(&io);
        thread::sleep(Duration::from_millis(10)); // work: counted
        timing.pause()?;
        thread::sleep(Duration::from_millis(50)); // waiting for a user: not counted
        timing.resume()?;
    } // recorded here
    let recorded = io.most_recent().unwrap_or_default();
    println!(
        "guard recorded {recorded:.3} s, paused {:.3} s",
        io.total_time_paused()
    );
    println!(
        "pause excluded: {}",
        recorded < 0.05 && io.total_time_paused() >= 0.05
    );
    // ANCHOR_END: guard

    // ANCHOR: closure
    let sum = TimeThis::with(&io).run(|| (1..=1_000_000u64).sum::<u64>());
    println!(
        "sum = {sum}, computed in {:.6} s",
        io.most_recent().unwrap_or_default()
    );
    // ANCHOR_END: closure

    // ANCHOR: timethis
    for id in 0..5 {
        read_row(id);
        write_row(id);
    }
    for _ in 0..20 {
        checksum(b"the quick brown fox");
    }
    for i in 0..10 {
        lookup(i != 3); // one miss
    }
    println!("database calls: {}", DB.num_times());
    println!("checksum calls: {}", checksum_timer().num_times());
    println!("slow lookups: {} of 10", SLOW_LOOKUPS.num_times());

    for (name, timer) in timing::global_timers() {
        println!(
            "{name}: {} calls, mean {:.2} us",
            timer.num_times(),
            timer.mean().unwrap_or_default() * 1e6
        );
    }
    // ANCHOR_END: timethis
    Ok(())
}
// ANCHOR_END: all
