//! The pool's features for real workloads: chunk sizes (fixed, and adaptive for `imap`),
//! progress reports, and function pointers chosen at run time.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use skprocess::pool::{Pool, PoolError, Progress, TaskError};

mod common;
use common::LIMIT;

fn square(x: u64) -> u64 {
    x * x
}

fn cube(x: u64) -> u64 {
    x * x * x
}

fn add(a: u64, b: u64) -> u64 {
    a + b
}

fn fails_on_seven(x: u64) -> u64 {
    assert!(x != 7, "seven is not allowed");
    x
}

fn pool() -> Pool {
    Pool::new(2).expect("a pool starts")
}

#[test]
fn chunk_size_composes_with_every_method_and_modifier() {
    let pool = pool();
    let expected: Vec<u64> = (0..100).map(square).collect();
    for size in [1, 3, 64, 1_000] {
        let call = pool.timeout(LIMIT).chunk_size(size);
        assert_eq!(call.map(square, 0..100).unwrap(), expected);
        let mut unordered = call.unordered_map(square, 0..100).unwrap();
        unordered.sort_unstable();
        assert_eq!(unordered, expected);
        let ordered: Vec<u64> = call.imap(square, 0..100).map(Result::unwrap).collect();
        assert_eq!(ordered, expected);
        let mut unordered: Vec<u64> = call
            .unordered_imap(square, 0..100)
            .map(Result::unwrap)
            .collect();
        unordered.sort_unstable();
        assert_eq!(unordered, expected);
    }
    let pairs: Vec<(u64, u64)> = (0..50).map(|i| (i, 2 * i)).collect();
    let sums = pool
        .star()
        .chunk_size(4)
        .timeout(LIMIT)
        .background()
        .map(add, pairs)
        .result()
        .unwrap();
    assert_eq!(sums, (0..50).map(|i| 3 * i).collect::<Vec<_>>());
    // A failing item is reported with its own index whatever the chunking.
    for size in [1, 5, 100] {
        match pool
            .chunk_size(size)
            .timeout(LIMIT)
            .map(fails_on_seven, 0..20)
        {
            Err(PoolError::Task { index: 7, error }) => {
                assert_eq!(error.failure().unwrap().message(), "seven is not allowed");
            }
            other => panic!("unexpected: {other:?}"),
        }
        let results: Vec<_> = pool
            .chunk_size(size)
            .timeout(LIMIT)
            .imap(fails_on_seven, 0..20)
            .collect();
        assert_eq!(results.len(), 20);
        for (index, result) in results.iter().enumerate() {
            match result {
                Ok(value) => assert_eq!(*value, index as u64),
                Err(PoolError::Task { index: 7, .. }) => assert_eq!(index, 7),
                Err(other) => panic!("unexpected: {other:?}"),
            }
        }
    }
}

#[test]
fn adaptive_imap_grows_chunks_for_quick_items() {
    let pool = pool();
    let mut results = pool.timeout(LIMIT).imap(square, 0..200_000u64);
    for (index, result) in results.by_ref().take(100_000).enumerate() {
        assert_eq!(result.unwrap(), square(index as u64));
    }
    let state = format!("{results:?}");
    let size: usize = state
        .split("chunk_size: ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no chunk size in {state}"));
    assert!(size > 16, "quick items still go {size} per chunk: {state}");
    assert_eq!(results.count(), 100_000);
}

fn slow(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(150));
    x
}

#[test]
fn adaptive_imap_yields_slow_items_one_by_one() {
    let pool = pool();
    let started = Instant::now();
    let mut arrivals = Vec::new();
    for (index, result) in pool.timeout(LIMIT).imap(slow, 0..12u64).enumerate() {
        assert_eq!(result.unwrap(), index as u64);
        arrivals.push(started.elapsed());
    }
    // Twelve items of 150 ms on two workers: about 0.9 s in all. Batched, the first result
    // would come near the end; one per chunk, it comes after a sixth of it.
    let (first, last) = (arrivals[0], arrivals[11]);
    assert!(
        first.as_secs_f64() < last.as_secs_f64() * 0.6,
        "the first result came after {first:?}, the last after {last:?}"
    );
}

fn record() -> (
    Arc<Mutex<Vec<Progress>>>,
    impl Fn(Progress) + Send + Sync + 'static,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    (seen, move |progress| sink.lock().unwrap().push(progress))
}

fn check_reports(reports: &[Progress], total: usize, failed: usize) {
    assert!(!reports.is_empty());
    assert_eq!(reports[0].done, 0, "{reports:?}");
    let last = reports.last().unwrap();
    assert_eq!(
        (last.done, last.failed, last.total),
        (total, failed, Some(total)),
        "{reports:?}"
    );
    for pair in reports.windows(2) {
        assert!(pair[0].done <= pair[1].done, "{reports:?}");
        assert!(pair[0].failed <= pair[1].failed, "{reports:?}");
        assert!(pair[0].elapsed <= pair[1].elapsed, "{reports:?}");
    }
}

#[test]
fn every_method_reports_progress() {
    let pool = pool();
    let (seen, callback) = record();
    pool.progress(callback)
        .timeout(LIMIT)
        .map(square, 0..1_000)
        .unwrap();
    let reports = seen.lock().unwrap().clone();
    assert_eq!(reports[0].total, Some(1_000));
    check_reports(&reports, 1_000, 0);

    let (seen, callback) = record();
    let _ = pool
        .progress(callback)
        .timeout(LIMIT)
        .unordered_map(fails_on_seven, 0..20);
    check_reports(&seen.lock().unwrap(), 20, 1);

    // An input whose length is not known: the total appears once it runs out.
    let (seen, callback) = record();
    let evens = (0..2_000u64).filter(|x| x % 2 == 0);
    let count = pool
        .progress(callback)
        .timeout(LIMIT)
        .imap(square, evens)
        .filter(Result::is_ok)
        .count();
    assert_eq!(count, 1_000);
    let reports = seen.lock().unwrap().clone();
    assert_eq!(reports[0].total, None, "{reports:?}");
    check_reports(&reports, 1_000, 0);

    let (seen, callback) = record();
    let results: Vec<_> = pool
        .progress(callback)
        .timeout(LIMIT)
        .unordered_imap(fails_on_seven, 0..20)
        .collect();
    assert_eq!(results.len(), 20);
    check_reports(&seen.lock().unwrap(), 20, 1);

    let (seen, callback) = record();
    let squares = futures::executor::block_on(
        pool.asynced()
            .progress(callback)
            .timeout(LIMIT)
            .map(square, 0..100),
    )
    .unwrap();
    assert_eq!(squares.len(), 100);
    check_reports(&seen.lock().unwrap(), 100, 0);
}

#[test]
fn function_pointers_chosen_at_run_time_are_tasks() {
    let pool = pool();
    for cubes in [false, true] {
        let f: fn(u64) -> u64 = if cubes { cube } else { square };
        let expected: Vec<u64> = (0..50).map(f).collect();
        assert_eq!(pool.timeout(LIMIT).map(f, 0..50).unwrap(), expected);
        let lazy: Vec<u64> = pool
            .timeout(LIMIT)
            .imap(f, 0..50)
            .map(Result::unwrap)
            .collect();
        assert_eq!(lazy, expected);
    }
    let g: fn(u64, u64) -> u64 = add;
    assert_eq!(
        pool.star().timeout(LIMIT).map(g, [(1, 2), (3, 4)]).unwrap(),
        vec![3, 7]
    );
    // A closure coerced to a function pointer is one too.
    let h: fn(u64) -> u64 = |x| x + 1;
    assert_eq!(pool.timeout(LIMIT).map(h, [1, 2]).unwrap(), vec![2, 3]);
}

#[test]
fn a_closure_that_captures_a_function_pointer_is_refused_before_anything_runs() {
    let pool = pool();
    let f: fn(u64) -> u64 = square;
    let task = move |x: u64| f(x) + 1;
    match pool.timeout(LIMIT).map(task, 0..3) {
        Err(PoolError::TaskCapturesData { task }) => assert!(task.contains("closure"), "{task}"),
        other => panic!("unexpected: {other:?}"),
    }
    let mut lazy = pool.timeout(LIMIT).imap(task, 0..3);
    assert!(matches!(
        lazy.next(),
        Some(Err(PoolError::TaskCapturesData { .. }))
    ));
    assert!(lazy.next().is_none());
    // The pool is unharmed.
    assert_eq!(pool.timeout(LIMIT).map(square, [3]).unwrap(), vec![9]);
}

#[test]
fn an_item_that_cannot_be_encoded_is_its_own_failure_in_a_chunk() {
    #[derive(Debug)]
    struct Refuses(u64);
    impl skprocess::serde::Serialize for Refuses {
        fn serialize<S: skprocess::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            if self.0 == 3 {
                return Err(skprocess::serde::ser::Error::custom("three cannot travel"));
            }
            s.serialize_u64(self.0)
        }
    }
    impl<'de> skprocess::serde::Deserialize<'de> for Refuses {
        fn deserialize<D: skprocess::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            u64::deserialize(d).map(Refuses)
        }
    }
    fn unwrap(r: Refuses) -> u64 {
        r.0
    }
    let pool = pool();
    for size in [1, 2, 10] {
        let results: Vec<_> = pool
            .chunk_size(size)
            .timeout(LIMIT)
            .imap(unwrap, (0..8).map(Refuses))
            .collect();
        for (index, result) in results.iter().enumerate() {
            match result {
                Ok(value) => assert_eq!(*value, index as u64),
                Err(PoolError::Task {
                    index: 3,
                    error: TaskError::Encode(message),
                }) => assert!(message.contains("three cannot travel"), "{message}"),
                Err(other) => panic!("unexpected: {other:?}"),
            }
        }
        assert_eq!(results.len(), 8);
    }
}
