//! The fault matrix's pool rows, for `AsyncPool::with_workers`: a worker of an async pool is hit
//! by SIGKILL, SIGTERM, SIGINT or SIGSTOP+SIGCONT at a random moment of an `unordered_imap`, and
//! the outcome must be the stated one: no hang; every item reported exactly once; failures only
//! `Crashed`, only for a worker that ended (SIGKILL; SIGTERM, a graceful stop), at most
//! `max_concurrent` of them; none for SIGINT (workers leave Ctrl+C to the parent, as a `Pool`'s
//! do) or a pause; the pool serving the next call; no worker left running after the pool is
//! dropped. (The parent's death is the
//! main fault matrix's `Parent` rows: async workers are children like any other.)
//!
//! Knobs: `SKPROCESS_FAULT_ROUNDS` (rounds per fault, default 3), `SKPROCESS_FAULT_SEED`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use skprocess::pool::{AsyncPool, AsyncPoolError};

mod common;
use common::{LIMIT, within};

const WORKERS: usize = 3;
const MAX_CONCURRENT: usize = 24;
const ITEMS: u64 = 300;

async fn nap(index: u64) -> (u64, u32) {
    tokio::time::sleep(Duration::from_millis(20)).await;
    (index, std::process::id())
}

#[derive(Copy, Clone, Debug)]
enum Fault {
    Kill,
    Term,
    Int,
    StopCont,
}

/// What a round saw.
#[derive(Debug, Default)]
struct Seen {
    reported: BTreeMap<u64, usize>,
    crashed: Vec<(u64, String)>,
    other_errors: Vec<String>,
}

fn signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) on a pid we were given; no memory is involved.
    unsafe { libc::kill(pid as i32, signal) };
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| Some(stat.rsplit_once(')')?.1.trim_start().chars().next()? != 'Z'))
        .unwrap_or(false)
}

fn seed() -> u64 {
    std::env::var("SKPROCESS_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

fn next(state: &mut u64) -> u64 {
    // xorshift64*
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

fn round(fault: Fault, rng: &mut u64) {
    let pool = AsyncPool::with_workers(WORKERS, MAX_CONCURRENT).unwrap();
    // Every worker up and serving before the fault (as the main matrix's faults land after
    // `ready`): a signal to a process still starting meets the default action, whatever the
    // process would do with it later.
    let warm = within(LIMIT, {
        let pool = pool.clone();
        move || pool.block_on(pool.map(nap, 0..MAX_CONCURRENT as u64))
    })
    .expect("a first call");
    let mut served: Vec<u32> = warm.iter().map(|(_, pid)| *pid).collect();
    served.sort_unstable();
    served.dedup();
    assert_eq!(served.len(), WORKERS, "every worker served the first call");
    let pids = pool.pids();
    assert_eq!(pids.len(), WORKERS);
    let target = pids[(next(rng) % WORKERS as u64) as usize];
    let delay = Duration::from_millis(next(rng) % 150);
    let pause = Duration::from_millis(200 + next(rng) % 300);

    let caller = pool.clone();
    let seen = std::thread::spawn(move || {
        let mut seen = Seen::default();
        let results = caller.block_on(
            caller
                .timeout(LIMIT)
                .unordered_imap(nap, 0..ITEMS)
                .collect::<Vec<_>>(),
        );
        for result in results {
            match result {
                Ok((index, _)) => *seen.reported.entry(index).or_default() += 1,
                Err(AsyncPoolError::Crashed { index, message }) => {
                    *seen.reported.entry(index as u64).or_default() += 1;
                    seen.crashed.push((index as u64, message));
                }
                Err(other) => seen.other_errors.push(other.to_string()),
            }
        }
        seen
    });
    std::thread::sleep(delay);
    match fault {
        Fault::Kill => signal(target, libc::SIGKILL),
        Fault::Term => signal(target, libc::SIGTERM),
        Fault::Int => signal(target, libc::SIGINT),
        Fault::StopCont => {
            signal(target, libc::SIGSTOP);
            std::thread::sleep(pause);
            signal(target, libc::SIGCONT);
        }
    }
    let seen = within(LIMIT * 2, move || seen.join().expect("the caller"));
    println!(
        "{fault:?} to worker {target} after {delay:?}: {} items, {} crashed",
        seen.reported.len(),
        seen.crashed.len()
    );
    let context = format!("{fault:?} to worker {target} after {delay:?}: {seen:?}");
    assert!(seen.other_errors.is_empty(), "{context}");
    assert_eq!(seen.reported.len() as u64, ITEMS, "{context}");
    assert!(seen.reported.values().all(|&n| n == 1), "{context}");
    match fault {
        Fault::StopCont | Fault::Int => assert!(seen.crashed.is_empty(), "{context}"),
        Fault::Kill | Fault::Term => {
            // Only the tasks in flight on the one worker hit (none if the call was over).
            assert!(seen.crashed.len() <= MAX_CONCURRENT, "{context}");
            assert!(!alive(target) || seen.crashed.is_empty(), "{context}");
        }
    }
    // The pool still serves, on every worker slot.
    let after = within(LIMIT, {
        let pool = pool.clone();
        move || pool.block_on(pool.map(nap, 0..(2 * MAX_CONCURRENT as u64)))
    })
    .unwrap_or_else(|e| panic!("{context}: the next call failed: {e}"));
    assert_eq!(after.len(), 2 * MAX_CONCURRENT);
    let mut all = pool.pids();
    all.push(target);
    drop(pool);
    let deadline = Instant::now() + LIMIT;
    for pid in all {
        while alive(pid) {
            assert!(
                Instant::now() < deadline,
                "{context}: worker {pid} outlived the pool"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn async_pool_workers_under_faults() {
    let seed = seed();
    println!("seed {seed} (SKPROCESS_FAULT_SEED replays it)");
    let rounds: usize = std::env::var("SKPROCESS_FAULT_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let mut rng = seed | 1;
    for fault in [Fault::Kill, Fault::Term, Fault::Int, Fault::StopCont] {
        for _ in 0..rounds {
            round(fault, &mut rng);
        }
    }
}
