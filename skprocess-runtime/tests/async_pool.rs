//! `AsyncPool` (in-process mode): bounded concurrency, order, deadlines that drop the futures,
//! panics as typed errors, on any executor (and on tokio from sync code with `block_on`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::executor::block_on;
use skprocess::pool::{AsyncPool, AsyncPoolError};
use skprocess::timing::sleep_async;

mod common;
use common::{LIMIT, within};

/// Counts tasks in flight and the most seen at once; counts drops of unfinished tasks.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    most: AtomicUsize,
    started: AtomicUsize,
    finished: AtomicUsize,
    dropped_early: AtomicUsize,
}

struct InFlight<'a>(&'a Gauge, bool);

impl<'a> InFlight<'a> {
    fn enter(gauge: &'a Gauge) -> InFlight<'a> {
        gauge.started.fetch_add(1, Ordering::SeqCst);
        let now = gauge.now.fetch_add(1, Ordering::SeqCst) + 1;
        gauge.most.fetch_max(now, Ordering::SeqCst);
        InFlight(gauge, false)
    }

    fn done(mut self) {
        self.1 = true;
        self.0.finished.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
        if !self.1 {
            self.0.dropped_early.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[test]
fn a_thousand_waiting_tasks_run_at_most_max_concurrent_at_once_in_order() {
    let gauge = Gauge::default();
    let pool = AsyncPool::new(100);
    let started = Instant::now();
    let results = block_on(pool.map(
        |i: u64| {
            let gauge = &gauge;
            async move {
                let guard = InFlight::enter(gauge);
                sleep_async(0.02).await;
                guard.done();
                i * i
            }
        },
        0..1000,
    ))
    .expect("every task finishes");
    assert_eq!(results, (0..1000).map(|i| i * i).collect::<Vec<_>>());
    assert_eq!(
        gauge.most.load(Ordering::SeqCst),
        100,
        "the bound is reached and held"
    );
    // 10 waves of 20 ms: far less than 1000 × 20 ms one after the other.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn imap_yields_in_order_and_unordered_imap_as_tasks_finish() {
    let pool = AsyncPool::new(4);
    // Item 0 takes longest.
    let delays = [0.3, 0.01, 0.02, 0.03];
    let ordered: Vec<usize> = block_on(
        pool.imap(
            |i: usize| async move {
                sleep_async(delays[i]).await;
                i
            },
            0..4,
        )
        .map(Result::unwrap)
        .collect(),
    );
    assert_eq!(ordered, [0, 1, 2, 3]);
    let unordered: Vec<usize> = block_on(
        pool.unordered_imap(
            |i: usize| async move {
                sleep_async(delays[i]).await;
                i
            },
            0..4,
        )
        .map(Result::unwrap)
        .collect(),
    );
    assert_eq!(unordered.len(), 4);
    assert_eq!(unordered[3], 0, "the slow item comes last: {unordered:?}");
}

#[test]
fn a_deadline_drops_the_calls_futures_and_starts_no_more() {
    let gauge = Gauge::default();
    let pool = AsyncPool::new(5).timeout(Duration::from_secs(1));
    // Five items finish at once, the next five never do: the deadline ends the call.
    let result = block_on(pool.map(
        |i: u64| {
            let gauge = &gauge;
            async move {
                let guard = InFlight::enter(gauge);
                if i >= 5 {
                    futures::future::pending::<()>().await;
                }
                guard.done();
                i
            }
        },
        0..100,
    ));
    assert_eq!(
        result,
        Err(AsyncPoolError::Timeout {
            limit: Duration::from_secs(1)
        })
    );
    assert_eq!(gauge.finished.load(Ordering::SeqCst), 5);
    assert_eq!(
        gauge.started.load(Ordering::SeqCst),
        10,
        "five quick, then five that hang"
    );
    assert_eq!(
        gauge.dropped_early.load(Ordering::SeqCst),
        5,
        "the hanging ones were dropped"
    );
    assert_eq!(gauge.now.load(Ordering::SeqCst), 0);

    // The same for a stream: the quick items, then the timeout, then nothing.
    let items: Vec<_> = block_on(
        pool.imap(
            |i: u64| async move {
                if i >= 3 {
                    futures::future::pending::<()>().await;
                }
                i
            },
            0..10,
        )
        .collect(),
    );
    assert_eq!(items.len(), 4, "{items:?}");
    assert_eq!(items[..3], [Ok(0), Ok(1), Ok(2)]);
    assert!(matches!(items[3], Err(AsyncPoolError::Timeout { .. })));
}

#[test]
fn map_reports_a_panic_at_once_even_behind_an_item_that_never_finishes() {
    let pool = AsyncPool::new(4);
    let result = within(LIMIT, move || {
        block_on(pool.map(
            |i: u32| async move {
                if i == 0 {
                    futures::future::pending::<()>().await;
                }
                assert!(i != 2, "item two is bad");
                i
            },
            0..4,
        ))
    });
    assert!(
        matches!(result, Err(AsyncPoolError::Panicked { index: 2, .. })),
        "{result:?}"
    );
}

#[test]
fn calls_are_send_and_run_spawned_on_a_multi_threaded_runtime() {
    fn assert_send<T: Send>(_: &T) {}
    let pool = AsyncPool::new(16);
    let call = pool.map(
        |i: u64| async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            i
        },
        0..100,
    );
    assert_send(&call);
    let stream = pool.unordered_imap(|i: u64| async move { i }, 0..10);
    assert_send(&stream);
    drop(stream);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("runtime");
    let results = runtime
        .block_on(async { tokio::spawn(call).await })
        .expect("the task")
        .expect("the call");
    assert_eq!(results, (0..100).collect::<Vec<_>>());
}

#[test]
fn a_panicking_task_is_a_typed_error_naming_its_item() {
    let pool = AsyncPool::new(3);
    let result = block_on(pool.map(
        |i: u32| async move {
            sleep_async(0.001).await;
            assert!(i != 7, "item seven is bad");
            i
        },
        0..20,
    ));
    match result {
        Err(AsyncPoolError::Panicked { index, message }) => {
            assert_eq!(index, 7);
            assert!(message.contains("item seven is bad"), "{message}");
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
    // A stream carries on after it.
    let items: Vec<_> = block_on(
        pool.imap(
            |i: u32| async move {
                assert!(i != 2, "bad");
                i
            },
            0..5,
        )
        .collect(),
    );
    assert_eq!(items.len(), 5);
    assert!(matches!(
        items[2],
        Err(AsyncPoolError::Panicked { index: 2, .. })
    ));
    assert_eq!(items[4], Ok(4));
}

#[test]
fn starmap_unpacks_tuples() {
    async fn add(a: u32, b: u32) -> u32 {
        a + b
    }
    let pool = AsyncPool::new(2);
    let sums = block_on(pool.starmap(add, vec![(1, 2), (3, 4), (5, 6)])).expect("runs");
    assert_eq!(sums, [3, 7, 11]);
}

#[test]
fn tasks_that_need_tokio_run_inside_a_tokio_runtime() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let finished = Arc::new(AtomicUsize::new(0));
    let pool = AsyncPool::new(10).timeout(LIMIT);
    let results = runtime
        .block_on(pool.map(
            |i: u64| {
                let finished = Arc::clone(&finished);
                async move {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    finished.fetch_add(1, Ordering::SeqCst);
                    i
                }
            },
            0..50,
        ))
        .expect("runs");
    assert_eq!(results.len(), 50);
    assert_eq!(finished.load(Ordering::SeqCst), 50);
}

#[cfg(feature = "tokio")]
#[test]
fn block_on_runs_a_call_from_sync_code_on_tokio() {
    let pool = AsyncPool::new(8);
    let results = pool
        .block_on(pool.map(
            |i: u64| async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                i + 1
            },
            0..20,
        ))
        .expect("runs");
    assert_eq!(results, (1..=20).collect::<Vec<_>>());
}
