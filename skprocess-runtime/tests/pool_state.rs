//! Worker state built by an initializer, initializer failures, and worker recycling (by task
//! count and by memory).

use std::collections::BTreeMap;
use std::path::PathBuf;

use skprocess::pool::{Pool, PoolError};

mod common;
use common::LIMIT;

/// A worker's state: which process it lives in, and how many tasks used it.
struct Counter {
    pid: u32,
    used: u64,
}

fn counter() -> Counter {
    Counter {
        pid: std::process::id(),
        used: 0,
    }
}

fn count(state: &mut Counter, item: u64) -> (u32, u64, u64) {
    state.used += 1;
    (state.pid, state.used, item * 2)
}

fn add_with(state: &mut Counter, a: u64, b: u64) -> u64 {
    state.used += 1;
    a + b
}

fn checked(state: &mut Counter, item: u64) -> Result<u64, String> {
    state.used += 1;
    if item == 3 {
        Err(format!("no threes (task {} of this worker)", state.used))
    } else {
        Ok(item)
    }
}

#[test]
fn tasks_reach_their_worker_s_state() {
    let pool = Pool::builder()
        .workers(2)
        .initializer(counter)
        .build()
        .unwrap();
    let results = pool.with_state().timeout(LIMIT).map(count, 0..500).unwrap();
    // Each worker's count rose by one with every task it ran, whatever order its chunks came
    // in: the state lives as long as the worker, and no two workers share one.
    let mut counts: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for (index, &(pid, used, doubled)) in results.iter().enumerate() {
        assert_eq!(doubled, index as u64 * 2);
        counts.entry(pid).or_default().push(used);
    }
    assert!(counts.len() <= 2);
    for (pid, mut used) in counts {
        used.sort_unstable();
        let expected: Vec<u64> = (1..=used.len() as u64).collect();
        assert_eq!(used, expected, "worker {pid}");
    }

    let sums = pool
        .with_state()
        .star()
        .timeout(LIMIT)
        .map(add_with, [(1, 2), (3, 4)])
        .unwrap();
    assert_eq!(sums, vec![3, 7]);
    match pool
        .with_state()
        .fallible()
        .timeout(LIMIT)
        .map(checked, 0..5)
    {
        Err(PoolError::Task { index: 3, error }) => {
            assert!(error.failure().unwrap().message().starts_with("no threes"));
        }
        other => panic!("unexpected: {other:?}"),
    }
    let lazy: Vec<u64> = pool
        .with_state()
        .timeout(LIMIT)
        .imap(count, 0..100)
        .map(|r| r.unwrap().2)
        .collect();
    assert_eq!(lazy, (0..100).map(|x| x * 2).collect::<Vec<_>>());
}

fn plain(x: u64) -> u64 {
    x
}

fn wrong_state(state: &mut Vec<u8>, x: u64) -> u64 {
    state.push(1);
    x
}

#[test]
fn a_task_that_takes_state_the_pool_does_not_build_is_refused() {
    let bare = Pool::new(1).unwrap();
    match bare.with_state().map(count, [1]) {
        Err(PoolError::WorkerState {
            wanted,
            built: None,
        }) => {
            assert!(wanted.ends_with("Counter"), "{wanted}")
        }
        other => panic!("unexpected: {other:?}"),
    }
    let pool = Pool::builder()
        .workers(1)
        .initializer(counter)
        .build()
        .unwrap();
    let error = pool.with_state().map(wrong_state, [1]).unwrap_err();
    assert!(
        matches!(error, PoolError::WorkerState { built: Some(_), .. }),
        "{error}"
    );
    // Tasks without state run on a pool with an initializer as usual.
    assert_eq!(pool.timeout(LIMIT).map(plain, [5]).unwrap(), vec![5]);
}

fn refuses() -> Result<Counter, std::io::Error> {
    Err(std::io::Error::other("the database is down"))
}

fn panics() -> Counter {
    panic!("no model file")
}

#[test]
fn an_initializer_that_fails_fails_the_build_naming_it() {
    let error = Pool::builder()
        .workers(2)
        .try_initializer(refuses)
        .build()
        .unwrap_err();
    match &error {
        PoolError::Initializer { initializer, error } => {
            assert!(initializer.ends_with("refuses"), "{initializer}");
            assert_eq!(error.message(), "the database is down");
        }
        other => panic!("unexpected: {other:?}"),
    }
    match Pool::builder().workers(1).initializer(panics).build() {
        Err(PoolError::Initializer { initializer, error }) => {
            assert!(initializer.ends_with("panics"), "{initializer}");
            assert!(error.is_panic());
            assert_eq!(error.message(), "no model file");
        }
        other => panic!("unexpected: {other:?}"),
    }
}

fn flag_path(parent: u32) -> PathBuf {
    std::env::temp_dir().join(format!("skprocess-init-flag-{parent}"))
}

/// Fails once the test has created its flag file (named after the parent's pid).
fn fails_once_flagged() -> Result<Counter, String> {
    let parent = std::os::unix::process::parent_id();
    if flag_path(parent).exists() {
        Err("flagged".into())
    } else {
        Ok(counter())
    }
}

fn aborts(_: &mut Counter, x: u64) -> u64 {
    if x == 0 {
        std::process::abort();
    }
    x
}

#[test]
fn an_initializer_failing_in_a_replacement_worker_closes_the_pool_without_respawning() {
    let flag = flag_path(std::process::id());
    let _ = std::fs::remove_file(&flag);
    let pool = Pool::builder()
        .workers(2)
        .try_initializer(fails_once_flagged)
        .build()
        .unwrap();
    std::fs::write(&flag, b"").unwrap();
    // The crash makes the pool start a replacement worker, whose initializer fails.
    let _ = pool.with_state().timeout(LIMIT).map(aborts, [0]);
    let started = std::time::Instant::now();
    let error = loop {
        match pool.with_state().timeout(LIMIT).map(aborts, [1, 2]) {
            Err(error @ PoolError::Initializer { .. }) => break error,
            Ok(_) if started.elapsed() < LIMIT => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => panic!("unexpected: {other:?}"),
        }
    };
    assert!(error.to_string().contains("fails_once_flagged"), "{error}");
    // From now on every call fails at once, with the same error, and no worker is left.
    assert!(matches!(
        pool.map(plain, [1]),
        Err(PoolError::Initializer { .. })
    ));
    let deadline = std::time::Instant::now() + LIMIT;
    while !pool.pids().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(pool.pids().is_empty(), "{:?}", pool.pids());
    let _ = std::fs::remove_file(&flag);
}

fn pid(x: u64) -> (u64, u32) {
    (x, std::process::id())
}

#[test]
fn workers_retire_after_their_share_of_tasks_and_no_item_is_lost() {
    let pool = Pool::builder()
        .workers(2)
        .max_tasks_per_worker(5)
        .build()
        .unwrap();
    for lazy in [false, true] {
        let results: Vec<(u64, u32)> = if lazy {
            pool.timeout(LIMIT)
                .imap(pid, 0..100)
                .map(Result::unwrap)
                .collect()
        } else {
            pool.timeout(LIMIT).map(pid, 0..100).unwrap()
        };
        let mut per_pid: BTreeMap<u32, usize> = BTreeMap::new();
        for (index, (item, pid)) in results.into_iter().enumerate() {
            assert_eq!(item, index as u64);
            *per_pid.entry(pid).or_default() += 1;
        }
        assert!(per_pid.values().all(|&n| n <= 5), "{per_pid:?}");
        assert!(per_pid.len() >= 20, "{per_pid:?}");
    }
}

/// Leaks 16 MiB of touched memory.
fn leaks(x: u64) -> (u64, u32) {
    let block = vec![1u8; 16 << 20];
    std::hint::black_box(&block);
    std::mem::forget(block);
    (x, std::process::id())
}

#[test]
fn workers_over_their_memory_limit_retire_and_no_item_is_lost() {
    let pool = Pool::builder()
        .workers(2)
        .max_worker_memory(96 << 20)
        .build()
        .unwrap();
    let results = pool.timeout(LIMIT).chunk_size(1).map(leaks, 0..40).unwrap();
    let mut per_pid: BTreeMap<u32, usize> = BTreeMap::new();
    for (index, (item, pid)) in results.into_iter().enumerate() {
        assert_eq!(item, index as u64);
        *per_pid.entry(pid).or_default() += 1;
    }
    // 40 × 16 MiB is 640 MiB: more than two workers may hold under a 96 MiB limit.
    assert!(per_pid.len() >= 4, "{per_pid:?}");
    assert!(per_pid.values().all(|&n| n <= 6), "{per_pid:?}");
}
