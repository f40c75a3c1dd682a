//! Stress for the pool's scheduler: many rounds of a failing call followed by a good one, on
//! more workers than CPUs, with results of varied size, under extra CPU load; and the same with
//! the racing step of work stealing slowed down, so that take-overs meet chunks at the moment a
//! worker claims them.
//!
//! `SKPROCESS_STRESS_ROUNDS` sets the round count (default 500; the closing note's run uses
//! 10,000). Every call has a deadline: a hang fails the test instead of stalling it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use skprocess::pool::{Pool, PoolError};

/// Generous: a call of a few dozen items normally takes milliseconds.
const CALL_DEADLINE: Duration = Duration::from_secs(60);

fn rounds(default: usize) -> usize {
    std::env::var("SKPROCESS_STRESS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Fails on multiples of 7; otherwise returns a result whose size depends on the item (up to
/// 48 KiB), and sometimes pauses, so that chunks finish out of order.
fn risky(x: u64) -> Result<Vec<u8>, String> {
    if x % 7 == 3 {
        return Err(format!("cannot process {x}"));
    }
    if x.is_multiple_of(5) {
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(vec![(x % 251) as u8; ((x * 7919) % 48_000) as usize])
}

fn checked(x: u64) -> Result<Vec<u8>, String> {
    risky(x * 7 + 1)
}

/// Busy threads that keep both CPUs loaded while they live.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..threads)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut x = 1u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005) + 1);
                    }
                })
            })
            .collect();
        Load { stop, threads }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// One round: a call whose items partly fail, then a call whose items all succeed, on the same
/// pool. Every result must be exactly right.
fn round(pool: &Pool, round: usize) {
    let n = 3 + (round % 17) as u64;
    let start = round as u64 * 3;
    let items: Vec<u64> = (start..start + n).collect();
    match pool
        .timeout(CALL_DEADLINE)
        .fallible()
        .map(risky, items.clone())
    {
        Err(PoolError::Task { index, .. }) => {
            let first_bad = items
                .iter()
                .position(|x| x % 7 == 3)
                .expect("a failing item");
            assert_eq!(index, first_bad, "round {round}");
        }
        Ok(results) => {
            assert!(
                items.iter().all(|x| x % 7 != 3),
                "round {round}: an error was lost"
            );
            for (x, r) in items.iter().zip(results) {
                assert_eq!(r, risky(*x).unwrap(), "round {round}");
            }
        }
        Err(other) => panic!("round {round}: {other}"),
    }
    let good: Vec<u64> = (0..n).map(|i| start + i).collect();
    let results = pool
        .timeout(CALL_DEADLINE)
        .fallible()
        .map(checked, good.clone())
        .unwrap_or_else(|e| panic!("round {round}: the good call failed: {e}"));
    assert_eq!(results.len(), good.len());
    for (x, r) in good.iter().zip(results) {
        assert_eq!(r, checked(*x).unwrap(), "round {round}");
    }
}

#[test]
fn a_failing_call_then_a_good_call_many_times_under_load() {
    let pool = Pool::new(4).expect("a pool starts");
    let _load = Load::start(2);
    for r in 0..rounds(500) {
        round(&pool, r);
    }
}

#[test]
fn take_overs_at_the_claiming_step_lose_nothing_and_never_hang() {
    // Workers pause between claiming a chunk and checking whether it was taken back: idle
    // workers then try to take over chunks right at that step.
    skprocess::__testing::set_child_env(skprocess::__testing::CLAIM_DELAY_ENV, "2000");
    let pool = Pool::new(3).expect("a pool starts");
    skprocess::__testing::clear_child_env(skprocess::__testing::CLAIM_DELAY_ENV);
    for r in 0..rounds(500) / 10 {
        round(&pool, r);
    }
}
