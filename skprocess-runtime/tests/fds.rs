//! No descriptor leaks: after 1,000 short processes, and after 20 pools built, used and dropped,
//! this process has exactly the open file descriptors it had before.
//!
//! The count is of `/proc/self/fd`; the baseline is taken after a first process (or pool) ran,
//! so that what lives as long as the program (the hub's socket, the spawner thread's
//! descriptors) is in it. One `#[test]` does both checks, one after the other: a concurrent
//! test of the same binary would open descriptors of its own and disturb the count.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use skprocess::prelude::*;

/// Processes started in all, and how many threads start them.
const PROCESSES: usize = 1_000;
const THREADS: usize = 4;
/// Pools built and dropped.
const POOLS: usize = 20;

/// The deadline of each process's `run` and each pool call.
const CALL_LIMIT: Duration = Duration::from_secs(30);
/// How long all the processes (or all the pools) may take: a hang fails the test.
const PHASE_LIMIT: Duration = Duration::from_secs(240);
/// How long descriptors may take to be closed after the last handle was dropped (a reaper or
/// reader thread may still be finishing).
const SETTLE_LIMIT: Duration = Duration::from_secs(5);

#[skprocess(runs = 1)]
struct Tiny {
    value: u32,
}

#[skprocess]
impl Tiny {
    fn __run__(&mut self) {
        self.value += 1;
    }

    fn __result__(&mut self) -> u32 {
        self.value
    }
}

fn double(x: u32) -> u32 {
    x * 2
}

/// This process's open descriptors: number and what each one is (`readlink`).
fn open_fds() -> BTreeMap<u32, String> {
    let fds: Vec<u32> = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    // The listing's own descriptor is closed by now: its link no longer resolves, so it is
    // left out.
    fds.into_iter()
        .filter_map(|fd| {
            let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
            Some((fd, target.display().to_string()))
        })
        .collect()
}

/// Waits (at most [`SETTLE_LIMIT`]) for the descriptors to be back to `baseline`, and fails with
/// the leaked ones if they are not.
fn assert_back_to(baseline: &BTreeMap<u32, String>, after: &str) {
    let deadline = Instant::now() + SETTLE_LIMIT;
    let mut now = open_fds();
    while now.len() != baseline.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        now = open_fds();
    }
    let new: Vec<String> = now
        .iter()
        .filter(|&(fd, target)| baseline.get(fd) != Some(target))
        .map(|(fd, target)| format!("{fd} -> {target}"))
        .collect();
    let closed: Vec<String> = baseline
        .iter()
        .filter(|&(fd, target)| now.get(fd) != Some(target))
        .map(|(fd, target)| format!("{fd} -> {target}"))
        .collect();
    println!(
        "{after}: {} descriptors open, baseline {}",
        now.len(),
        baseline.len()
    );
    assert_eq!(
        now.len(),
        baseline.len(),
        "{after}: {} descriptors open {SETTLE_LIMIT:?} later, {} before.\nnew: {new:#?}\n\
         closed: {closed:#?}",
        now.len(),
        baseline.len()
    );
}

/// Runs `work(i)` for `0..count` on `threads` threads and waits (at most [`PHASE_LIMIT`]) for
/// all of them; fails on a hang or on the first error.
fn on_threads(count: usize, threads: usize, work: fn(usize) -> Result<(), String>) {
    let (tx, rx) = mpsc::channel();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let _ = tx.send((t..count).step_by(threads).try_for_each(work));
            })
        })
        .collect();
    drop(tx);
    let deadline = Instant::now() + PHASE_LIMIT;
    for _ in 0..threads {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Ok(())) => {}
            Ok(Err(message)) => panic!("{message}"),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("not done within {PHASE_LIMIT:?}: a hang")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("a worker thread panicked"),
        }
    }
    // Every thread reported: each is returning, the joins are immediate.
    for handle in handles {
        handle.join().expect("a worker thread panicked");
    }
}

fn one_process(i: usize) -> Result<(), String> {
    let value = i as u32;
    let process = Skprocess::new(Tiny { value });
    match process.timeout(CALL_LIMIT).run() {
        Ok(result) if result == value + 1 => Ok(()),
        Ok(result) => Err(format!("process {i}: result {result}, not {}", value + 1)),
        Err(error) => Err(format!("process {i}: {error}")),
    }
    // `process` is dropped here: its child was reaped, its descriptors must be closed.
}

fn one_pool(i: usize) -> Result<(), String> {
    let pool = Pool::new(2).map_err(|e| format!("pool {i}: {e}"))?;
    let results = pool
        .timeout(CALL_LIMIT)
        .map(double, 0..10u32)
        .map_err(|e| format!("pool {i}: {e}"))?;
    if results != (0..10u32).map(double).collect::<Vec<_>>() {
        return Err(format!("pool {i}: wrong results {results:?}"));
    }
    Ok(())
}

#[test]
fn descriptors_return_to_baseline_after_many_processes_and_pools() {
    let started = Instant::now();
    // Whatever lives as long as the program exists after a first process.
    on_threads(1, 1, one_process);
    let baseline = open_fds();
    on_threads(PROCESSES, THREADS, one_process);
    println!(
        "{PROCESSES} processes on {THREADS} threads in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert_back_to(&baseline, &format!("after {PROCESSES} processes"));

    let pools_started = Instant::now();
    on_threads(1, 1, one_pool);
    let baseline = open_fds();
    on_threads(POOLS, 1, one_pool);
    println!(
        "{POOLS} pools in {:.1}s",
        pools_started.elapsed().as_secs_f64()
    );
    assert_back_to(&baseline, &format!("after {POOLS} pools"));
}
