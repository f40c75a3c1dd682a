//! The pool: every method and modifier, errors, crashes, deadlines, concurrency, shutdown.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use skprocess::pool::{Pool, PoolError, TaskError, TaskFn, mode};
use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};

mod common;
use common::{LIMIT, within};

fn square(x: u64) -> u64 {
    x * x
}

fn identity(x: u64) -> u64 {
    x
}

/// The most items an adaptive `imap` on a pool of 2 workers takes ahead of the results it
/// yielded: 2 workers × 4 chunks × 4096 items.
const WINDOW: usize = 2 * 4 * 4096;

fn pool() -> Pool {
    Pool::new(2).expect("a pool starts")
}

#[test]
fn map_keeps_input_order_for_any_size() {
    let pool = pool();
    for n in [0u64, 1, 2, 7, 100, 2_000] {
        let expected: Vec<u64> = (0..n).map(square).collect();
        assert_eq!(
            pool.timeout(LIMIT).map(square, 0..n).unwrap(),
            expected,
            "n = {n}"
        );
    }
}

#[test]
fn every_method_gives_every_result() {
    let pool = pool();
    let all: BTreeSet<u64> = (0..50).map(square).collect();
    let unordered: BTreeSet<u64> = pool
        .timeout(LIMIT)
        .unordered_map(square, 0..50)
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(unordered, all);
    let imap: Vec<u64> = pool
        .timeout(LIMIT)
        .imap(square, 0..50)
        .map(Result::unwrap)
        .collect();
    assert_eq!(imap, (0..50).map(square).collect::<Vec<_>>());
    let unordered_imap: BTreeSet<u64> = pool
        .timeout(LIMIT)
        .unordered_imap(square, 0..50)
        .map(Result::unwrap)
        .collect();
    assert_eq!(unordered_imap, all);
}

#[test]
fn closures_and_borrowed_inputs_work() {
    let pool = pool();
    let words = ["a".to_string(), "bb".to_string(), "ccc".to_string()];
    let lengths = pool
        .timeout(LIMIT)
        .map(|w: String| w.len(), words.iter().cloned())
        .unwrap();
    assert_eq!(lengths, vec![1, 2, 3]);
    let from_borrow: Vec<usize> = pool
        .timeout(LIMIT)
        .imap(|w: String| w.len() * 10, words.iter().cloned())
        .map(Result::unwrap)
        .collect();
    assert_eq!(from_borrow, vec![10, 20, 30]);
}

#[allow(clippy::too_many_arguments)] // star() supports twelve arguments; this checks it
fn twelve(
    a: u8,
    b: u8,
    c: u8,
    d: u8,
    e: u8,
    f: u8,
    g: u8,
    h: u8,
    i: u8,
    j: u8,
    k: u8,
    l: u8,
) -> u32 {
    [a, b, c, d, e, f, g, h, i, j, k, l]
        .iter()
        .map(|&x| u32::from(x))
        .sum()
}

#[test]
fn star_unpacks_tuples_of_one_to_twelve() {
    let pool = pool();
    let ones = pool
        .star()
        .timeout(LIMIT)
        .map(|a: u8| a + 1, [(1u8,), (2,)])
        .unwrap();
    assert_eq!(ones, vec![2, 3]);
    let item = (1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12);
    assert_eq!(
        pool.star()
            .timeout(LIMIT)
            .map(twelve, [item, item])
            .unwrap(),
        vec![78, 78]
    );
}

fn panics_on_three(x: u64) -> u64 {
    assert!(x != 3, "cannot process {x}");
    x
}

#[test]
fn a_panicking_item_fails_the_map_with_its_index_and_the_pool_stays_usable() {
    let pool = pool();
    match pool.timeout(LIMIT).map(panics_on_three, 0..10) {
        Err(PoolError::Task {
            index: 3,
            error: TaskError::Failed(failure),
        }) => {
            assert_eq!(failure.message(), "cannot process 3");
            assert!(failure.panic_location().unwrap().contains("tests/pool.rs"));
        }
        other => panic!("unexpected: {other:?}"),
    }
    assert_eq!(
        pool.timeout(LIMIT).map(identity, 0..5).unwrap(),
        vec![0, 1, 2, 3, 4]
    );
}

fn fails_on_odd(x: u64) -> Result<u64, String> {
    if x % 2 == 1 {
        Err(format!("{x} is odd"))
    } else {
        Ok(x)
    }
}

#[test]
fn fallible_tasks_report_the_lowest_failing_index() {
    let pool = pool();
    let err = pool
        .fallible()
        .timeout(LIMIT)
        .map(fails_on_odd, [0, 2, 4, 5, 7])
        .unwrap_err();
    assert_eq!(err.index(), Some(3));
    assert_eq!(err.to_string(), "item 3 failed");
    let chain = skprocess::ErrorChain(&err).to_string();
    assert_eq!(chain, "item 3 failed: 5 is odd");
    assert_eq!(
        pool.fallible()
            .timeout(LIMIT)
            .map(fails_on_odd, [0, 2])
            .unwrap(),
        vec![0, 2]
    );
    // imap reports each failed item in place and goes on
    let results: Vec<_> = pool
        .fallible()
        .timeout(LIMIT)
        .imap(fails_on_odd, [1, 2, 3])
        .collect();
    assert!(results[0].is_err() && results[1].is_ok() && results[2].is_err());
    assert_eq!(results[2].as_ref().unwrap_err().index(), Some(2));
}

/// The item that [`slowly`] holds until its worker is killed.
const VICTIM_ITEM: u64 = 20;

/// Where the worker running [`VICTIM_ITEM`] leaves its pid: named after the test process (the
/// workers' parent) and the signal the test sends, so that the test can find it.
fn victim_marker(test_pid: u32, signal: &str) -> PathBuf {
    std::env::temp_dir().join(format!("skprocess-pool-victim-{test_pid}-{signal}"))
}

/// Returns its input and its worker's pid, after a short pause. Item [`VICTIM_ITEM`] first
/// leaves its worker's pid in [`victim_marker`], then waits to be killed: a worker that is
/// surely in the middle of an item once the marker exists.
fn slowly(x: u64, signal: &str) -> (u64, u32) {
    if x == VICTIM_ITEM {
        let marker = victim_marker(std::os::unix::process::parent_id(), signal);
        let partial = marker.with_extension("partial");
        std::fs::write(&partial, std::process::id().to_string()).unwrap();
        std::fs::rename(&partial, &marker).unwrap();
        std::thread::sleep(Duration::from_secs(120));
    }
    std::thread::sleep(Duration::from_millis(10));
    (x, std::process::id())
}

fn slowly_until_sigkill(x: u64) -> (u64, u32) {
    slowly(x, "SIGKILL")
}

fn slowly_until_sigterm(x: u64) -> (u64, u32) {
    slowly(x, "SIGTERM")
}

#[test]
fn a_worker_sigkilled_mid_map_loses_no_item_and_delivers_none_twice() {
    worker_killed_mid_map(libc::SIGKILL, "SIGKILL", slowly_until_sigkill);
}

#[test]
fn a_worker_sigtermed_mid_map_is_reported_killed_by_sigterm() {
    worker_killed_mid_map(libc::SIGTERM, "SIGTERM", slowly_until_sigterm);
}

/// Sends `signal` to the worker in the middle of [`VICTIM_ITEM`] of a 200-item map: exactly
/// that item fails, as a crash by `signal`; every other item arrives once; the worker is
/// replaced and the pool goes on.
fn worker_killed_mid_map<T>(signal: libc::c_int, name: &str, task: T)
where
    T: TaskFn<mode::Plain, mode::Value, u64, Output = (u64, u32)>,
{
    let pool = pool();
    let before = pool.pids();
    assert_eq!(before.len(), 2);
    let marker = victim_marker(std::process::id(), name);
    let _ = std::fs::remove_file(&marker);
    let mut victim = None;
    let mut seen = BTreeSet::new();
    let mut crashed = Vec::new();
    for result in pool.timeout(LIMIT).unordered_imap(task, 0..200) {
        match result {
            Ok((x, _pid)) => assert!(seen.insert(x), "item {x} delivered twice"),
            Err(PoolError::Task {
                index,
                error: TaskError::Crashed { exit, .. },
            }) => {
                assert_eq!(exit.signal(), Some(signal), "{exit}");
                assert!(exit.to_string().contains(name), "{exit}");
                crashed.push(index as u64);
            }
            Err(other) => panic!("unexpected: {other:?}"),
        }
        // Mid-map, once a worker is inside the victim item (the other one goes on delivering).
        if victim.is_none()
            && let Some(pid) = std::fs::read_to_string(&marker)
                .ok()
                .and_then(|pid| pid.parse::<u32>().ok())
        {
            // SAFETY: a signal to a worker of this test's pool.
            unsafe { libc::kill(pid as i32, signal) };
            victim = Some(pid);
        }
    }
    let _ = std::fs::remove_file(&marker);
    let victim = victim.expect("no worker ever ran the victim item");
    assert!(before.contains(&victim), "{victim} is not a worker");
    assert_eq!(crashed.len(), 1, "exactly the running item is reported");
    assert!(!seen.contains(&crashed[0]));
    assert_eq!(seen.len() + crashed.len(), 200, "no item lost");
    // The dead worker was replaced.
    let deadline = Instant::now() + LIMIT;
    while pool.pids().len() < 2 {
        assert!(Instant::now() < deadline, "the worker was not replaced");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!pool.pids().contains(&victim));
    assert_eq!(
        pool.timeout(LIMIT).map(identity, 0..4).unwrap(),
        vec![0, 1, 2, 3]
    );
}

fn aborts_on_two(x: u64) -> u64 {
    if x == 2 {
        std::process::abort();
    }
    x
}

fn segfaults_on_one(x: u64) -> u64 {
    if x == 1 {
        let null = std::hint::black_box(std::ptr::null_mut::<u64>());
        // SAFETY: not safe at all; crashing the worker is the point.
        unsafe { null.write_volatile(x) };
    }
    x
}

extern "C" fn panics_across_ffi() {
    panic!("a panic inside an extern \"C\" fn aborts the process");
}

fn panics_in_extern_c(x: u64) -> u64 {
    if x == 0 {
        panics_across_ffi();
    }
    x
}

#[test]
fn aborts_segfaults_and_ffi_panics_are_crashes_of_the_item_only() {
    let pool = pool();
    for (result, index, signal) in [
        (
            pool.timeout(LIMIT).map(aborts_on_two, 0..6),
            2,
            libc::SIGABRT,
        ),
        (
            pool.timeout(LIMIT).map(segfaults_on_one, 0..6),
            1,
            libc::SIGSEGV,
        ),
        (
            pool.timeout(LIMIT).map(panics_in_extern_c, 0..6),
            0,
            libc::SIGABRT,
        ),
    ] {
        match result {
            Err(PoolError::Task {
                index: got,
                error: TaskError::Crashed { exit, .. },
            }) => {
                assert_eq!(got, index);
                assert_eq!(exit.signal(), Some(signal), "{exit}");
            }
            other => panic!("unexpected: {other:?}"),
        }
    }
    // Every other item still ran: unordered results skip only the crashing one.
    let results: Vec<_> = pool
        .timeout(LIMIT)
        .unordered_imap(aborts_on_two, 0..6)
        .collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 5);
}

#[test]
fn an_endless_iterator_is_consumed_lazily() {
    let pool = pool();
    let pulled = AtomicUsize::new(0);
    let source = (0u64..).inspect(|_| {
        pulled.fetch_add(1, Ordering::Relaxed);
    });
    let first: Vec<u64> = pool
        .timeout(LIMIT)
        .imap(square, source)
        .take(1_000)
        .map(Result::unwrap)
        .collect();
    assert_eq!(first, (0..1_000).map(square).collect::<Vec<_>>());
    // The window: two chunks in flight per worker and as many results held, chunks of at
    // most 4096 items (adaptive imap).
    let pulled = pulled.load(Ordering::Relaxed);
    assert!(
        pulled <= 1_000 + WINDOW,
        "pulled {pulled} items for 1000 results"
    );
    // With a fixed chunk size of one item, the window is a few items.
    let pulled = AtomicUsize::new(0);
    let source = (0u64..).inspect(|_| {
        pulled.fetch_add(1, Ordering::Relaxed);
    });
    let first: Vec<u64> = pool
        .timeout(LIMIT)
        .chunk_size(1)
        .imap(square, source)
        .take(100)
        .map(Result::unwrap)
        .collect();
    assert_eq!(first, (0..100).map(square).collect::<Vec<_>>());
    let pulled = pulled.load(Ordering::Relaxed);
    assert!(pulled <= 100 + 8, "pulled {pulled} items for 100 results");
}

fn forever(x: u64) -> u64 {
    if x == 1 {
        loop {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    x
}

#[test]
fn three_calls_at_once_one_timing_out() {
    let pool = Pool::new(3).unwrap();
    std::thread::scope(|s| {
        // Every call has a deadline, so each thread ends and every join is bounded.
        let fast = s.spawn(|| pool.timeout(LIMIT).map(square, 0..500));
        let slow = s.spawn(|| {
            let started = Instant::now();
            let result = pool.timeout(Duration::from_millis(500)).map(forever, 0..4);
            (result, started.elapsed())
        });
        let streamed = s.spawn(|| {
            pool.timeout(LIMIT)
                .unordered_imap(identity, 0..300)
                .map(Result::unwrap)
                .collect::<BTreeSet<_>>()
        });
        assert_eq!(
            fast.join().unwrap().unwrap(),
            (0..500).map(square).collect::<Vec<_>>()
        );
        let (result, took) = slow.join().unwrap();
        assert!(
            matches!(result, Err(PoolError::Timeout { .. })),
            "{result:?}"
        );
        assert!(took < Duration::from_secs(20), "{took:?}");
        assert_eq!(streamed.join().unwrap(), (0..300).collect());
    });
    // The stuck worker was killed and replaced; the pool goes on.
    assert_eq!(
        pool.timeout(LIMIT).map(square, 0..10).unwrap(),
        (0..10).map(square).collect::<Vec<_>>()
    );
}

fn big_and_slow(x: u64) -> Vec<u64> {
    if x == 3 {
        std::thread::sleep(Duration::from_secs(60));
    }
    vec![x; 1 << 19] // 4 MiB each
}

#[test]
fn a_deadline_never_hangs_whatever_the_size_of_the_results() {
    let pool = pool();
    let started = Instant::now();
    let result = pool.timeout(Duration::from_secs(2)).map(big_and_slow, 0..6);
    assert!(
        matches!(result, Err(PoolError::Timeout { .. })),
        "{:?}",
        result.map(|v| v.len())
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn imap_with_a_deadline_yields_what_arrived_then_the_timeout() {
    let pool = pool();
    let results: Vec<_> = pool
        .timeout(Duration::from_millis(500))
        .imap(forever, [0, 2, 1, 3])
        .collect();
    assert_eq!(results.len(), 3, "{results:?}");
    assert_eq!(*results[0].as_ref().unwrap(), 0);
    assert_eq!(*results[1].as_ref().unwrap(), 2);
    assert!(results[2].as_ref().unwrap_err().is_timeout());
}

/// Cannot be encoded.
#[derive(Debug, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Refuses(u8);

impl Serialize for Refuses {
    fn serialize<S: skprocess::serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(skprocess::serde::ser::Error::custom(
            "refuses to be encoded",
        ))
    }
}

fn takes_refuses(r: Refuses) -> u8 {
    r.0
}

fn returns_refuses(x: u8) -> Refuses {
    Refuses(x)
}

#[test]
fn values_that_cannot_be_encoded_are_errors_of_their_item() {
    let pool = pool();
    match pool.timeout(LIMIT).map(takes_refuses, [Refuses(1)]) {
        Err(PoolError::Task {
            index: 0,
            error: TaskError::Encode(message),
        }) => assert!(message.contains("refuses"), "{message}"),
        other => panic!("unexpected: {other:?}"),
    }
    match pool.timeout(LIMIT).map(returns_refuses, [5u8, 6]) {
        Err(PoolError::Task {
            index: 0,
            error: TaskError::Encode(message),
        }) => assert!(message.contains("refuses"), "{message}"),
        other => panic!("unexpected: {other:?}"),
    }
}

/// A process type run by the pool: lives and `__error__` behave as in a standalone process.
#[skprocess(runs = 3, lives = 2)]
struct Job {
    fail_times: u32,
    attempts: u32,
}

#[skprocess]
impl Job {
    fn new(fail_times: u32) -> Self {
        Job {
            fail_times,
            attempts: 0,
        }
    }

    fn __prerun__(&mut self) {
        self.attempts += 1;
    }

    fn __run__(&mut self) -> Result<(), String> {
        if self.fail_times > 0 {
            self.fail_times -= 1;
            return Err("not yet".into());
        }
        Ok(())
    }

    fn __error__(&mut self, error: ProcessError) -> Result<u32, ProcessError> {
        if self.attempts > 10 {
            Ok(0)
        } else {
            Err(error)
        }
    }

    fn __result__(&mut self) -> u32 {
        self.attempts
    }
}

#[test]
fn process_tasks_run_their_whole_lifecycle_in_the_workers() {
    let pool = pool();
    // 0 failures: 3 attempts; 1 failure: a life spent, 4 attempts.
    assert_eq!(
        pool.processes()
            .timeout(LIMIT)
            .map(Job::new, [0, 1])
            .unwrap(),
        vec![3, 4]
    );
    // 2 failures on the first run: out of lives; __error__ hands the error on.
    match pool.processes().timeout(LIMIT).map(Job::new, [0, 2]) {
        Err(PoolError::Task {
            index: 1,
            error: TaskError::Process(error),
        }) => assert_eq!(error.failure().unwrap().message(), "not yet"),
        other => panic!("unexpected: {other:?}"),
    }
}

/// Times out in `__run__`; the worker that abandoned the thread retires.
#[skprocess(runs = 1, timeouts(run = 0.2))]
struct Stuck;

#[skprocess]
impl Stuck {
    fn new(_: u8) -> Self {
        Stuck
    }

    fn __run__(&mut self) {
        std::thread::sleep(Duration::from_secs(60));
    }

    fn __error__(&mut self, error: &ProcessError) -> String {
        error.to_string()
    }

    fn __result__(&mut self) -> String {
        "finished".into()
    }
}

#[test]
fn a_process_task_that_times_out_gives_error_s_value_and_its_worker_retires() {
    let pool = pool();
    let before = pool.pids();
    let results = pool
        .processes()
        .timeout(LIMIT)
        .map(Stuck::new, [0])
        .unwrap();
    assert_eq!(
        results,
        vec!["__run__ timed out after 0.2s on run 0".to_string()]
    );
    let deadline = Instant::now() + LIMIT;
    loop {
        let now = pool.pids();
        if now.len() == 2 && now != before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no worker retired: {before:?} {now:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn close_waits_and_then_refuses_calls_and_drop_reaps_the_workers() {
    let pool = pool();
    let pids = pool.pids();
    assert_eq!(pool.timeout(LIMIT).map(square, 0..10).unwrap().len(), 10);
    // `close` waits for the calls in progress, with no deadline of its own: bounded here.
    let closing = pool.clone();
    within(LIMIT, move || closing.close());
    assert!(matches!(
        pool.timeout(LIMIT).map(square, 0..10),
        Err(PoolError::Closed)
    ));
    for pid in pids {
        // SAFETY: existence check only.
        assert_ne!(
            unsafe { libc::kill(pid as i32, 0) },
            0,
            "worker {pid} outlived close()"
        );
    }

    let pool = self::pool();
    let pids = pool.pids();
    drop(pool);
    for pid in pids {
        // SAFETY: existence check only.
        assert_ne!(
            unsafe { libc::kill(pid as i32, 0) },
            0,
            "worker {pid} outlived the pool"
        );
    }
}

/// Creates the file `marker` names, then never returns: an item that is surely running once its
/// file exists.
fn marks_then_hangs(marker: String) -> u64 {
    std::fs::write(&marker, b"running").unwrap();
    loop {
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn terminate_kills_now_and_fails_the_calls_in_progress() {
    let pool = pool();
    let markers: Vec<String> = (0..2)
        .map(|i| {
            let marker = std::env::temp_dir().join(format!(
                "skprocess-pool-terminate-{}-{i}",
                std::process::id()
            ));
            let _ = std::fs::remove_file(&marker);
            marker.to_str().unwrap().to_owned()
        })
        .collect();
    std::thread::scope(|s| {
        // The deadline only bounds the test: `terminate` must end the call long before it.
        let call = s.spawn(|| pool.timeout(LIMIT).map(marks_then_hangs, markers.clone()));
        let deadline = Instant::now() + LIMIT;
        while !markers.iter().any(|marker| Path::new(marker).exists()) {
            assert!(Instant::now() < deadline, "no item of the call ever ran");
            std::thread::sleep(Duration::from_millis(5));
        }
        pool.terminate();
        assert!(matches!(call.join().unwrap(), Err(PoolError::Closed)));
    });
    for marker in &markers {
        let _ = std::fs::remove_file(marker);
    }
}

#[test]
fn background_and_async_calls_compose_with_star_and_deadlines() {
    let pool = pool();
    let handle = pool
        .star()
        .timeout(LIMIT)
        .background()
        .map(|a: u64, b: u64| a * b, [(2, 3), (4, 5)]);
    assert_eq!(handle.result().unwrap(), vec![6, 20]);
    let future = pool
        .asynced()
        .timeout(Duration::from_secs(30))
        .unordered_map(square, 0..10);
    let mut values = futures::executor::block_on(future).unwrap();
    values.sort_unstable();
    assert_eq!(values, (0..10).map(square).collect::<Vec<_>>());
    let timed_out = pool
        .timeout(Duration::from_millis(300))
        .background()
        .map(forever, [1]);
    assert!(timed_out.result().unwrap_err().is_timeout());
}

/// Sleeps a time that depends on the item, so that idle workers take chunks back from busy
/// ones.
fn uneven(x: u64) -> u64 {
    std::thread::sleep(Duration::from_micros((x % 7) * 300));
    x
}

#[test]
fn taking_chunks_back_from_busy_workers_never_loses_or_repeats_an_item() {
    let pool = Pool::new(3).unwrap();
    for round in 0..20 {
        let items: Vec<u64> = (0..60).map(|i| i * (round + 1)).collect();
        assert_eq!(
            pool.timeout(LIMIT)
                .map(uneven, items.iter().copied())
                .unwrap(),
            items
        );
        let mut seen: Vec<u64> = pool
            .timeout(LIMIT)
            .unordered_imap(uneven, items.iter().copied())
            .map(Result::unwrap)
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, items);
    }
}

fn first_sleeps(x: u64) -> u64 {
    if x == 0 {
        std::thread::sleep(Duration::from_secs(120));
    }
    x
}

#[test]
fn a_deadline_frees_a_worker_holding_several_chunks_of_the_expired_call() {
    // One worker: it holds two chunks of the call, the first one never finishing in time.
    let pool = Pool::new(1).unwrap();
    let result = pool.timeout(Duration::ZERO).map(first_sleeps, 0..8);
    assert!(
        matches!(result, Err(PoolError::Timeout { .. })),
        "{result:?}"
    );
    let started = Instant::now();
    let result = pool.timeout(LIMIT).map(identity, 0..4);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the next call waited for the expired call's item"
    );
    assert_eq!(result.unwrap(), vec![0, 1, 2, 3]);
}

#[test]
fn ordered_imap_stays_bounded_behind_a_slow_item() {
    let pool = pool();
    let pulled = AtomicUsize::new(0);
    let source = (0u64..).inspect(|_| {
        pulled.fetch_add(1, Ordering::Relaxed);
    });
    fn slow_zero(x: u64) -> u64 {
        if x == 0 {
            std::thread::sleep(Duration::from_millis(500));
        }
        x
    }
    let mut results = pool.timeout(LIMIT).imap(slow_zero, source);
    assert_eq!(results.next().unwrap().unwrap(), 0);
    let pulled_before_first = pulled.load(Ordering::Relaxed);
    assert!(
        pulled_before_first <= WINDOW,
        "pulled {pulled_before_first} items before the first result"
    );
    drop(results);
}

#[test]
fn modifiers_compose_in_any_order() {
    let pool = pool();
    let add = |a: u64, b: u64| a + b;
    let pairs = [(1u64, 2u64), (3, 4)];
    assert_eq!(
        pool.background()
            .star()
            .timeout(LIMIT)
            .map(add, pairs)
            .result()
            .unwrap(),
        vec![3, 7]
    );
    assert_eq!(
        pool.timeout(Duration::from_secs(30))
            .background()
            .star()
            .map(add, pairs)
            .result()
            .unwrap(),
        vec![3, 7]
    );
    let future = pool.asynced().star().fallible().timeout(LIMIT).map(
        |a: u64, b: u64| if a > b { Err("a > b") } else { Ok(b - a) },
        pairs,
    );
    assert_eq!(futures::executor::block_on(future).unwrap(), vec![1, 1]);
}
