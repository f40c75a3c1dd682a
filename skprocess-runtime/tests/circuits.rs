//! Circuits: sleeps happen in the caller and never under the lock, async waits do not block
//! the thread, and many threads count every failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use skprocess::circuits::{AsyncBreakingCircuit, AsyncCircuit, BreakingCircuit, Circuit};

#[test]
fn a_trip_sleeps_in_the_caller_and_other_threads_are_not_held_up() {
    let circuit = Arc::new(Circuit::new(1, 3.0));
    let sleeper = {
        let circuit = Arc::clone(&circuit);
        std::thread::spawn(move || assert!(circuit.short(None)))
    };
    // Once the other thread has tripped (it is sleeping its 3 s now), this one reads and trips
    // too; were the lock held during the sleep, these calls would wait for it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while circuit.total_trips() == 0 {
        assert!(Instant::now() < deadline, "the other thread never tripped");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(circuit.trip(Some(0.0)));
    assert_eq!(circuit.total_trips(), 2);
    assert!(
        !sleeper.is_finished(),
        "this thread got through while the other still slept"
    );
    sleeper.join().expect("the sleeper");
}

#[test]
fn async_waits_leave_the_thread_to_other_tasks() {
    let circuit = AsyncCircuit::new(1, 0.3);
    let other_ran = AtomicBool::new(false);
    let order = std::sync::Mutex::new(Vec::new());
    // One thread, two tasks: the other task runs while the first waits out its trip.
    futures::executor::block_on(async {
        futures::join!(
            async {
                assert!(circuit.short(None).await);
                order.lock().unwrap().push("tripped task woke");
            },
            async {
                other_ran.store(true, Ordering::SeqCst);
                order.lock().unwrap().push("other task ran");
            }
        )
    });
    assert!(other_ran.load(Ordering::SeqCst));
    assert_eq!(
        *order.lock().unwrap(),
        ["other task ran", "tripped task woke"]
    );
    assert_eq!(circuit.total_trips(), 1);
}

#[test]
fn an_async_breaking_circuit_stops_a_retry_loop() {
    let breaker = AsyncBreakingCircuit::new(3, 0.01).backoff_factor(2.0);
    let attempts = futures::executor::block_on(async {
        let mut attempts = 0;
        while !breaker.broken() {
            attempts += 1;
            breaker.short(None).await;
        }
        attempts
    });
    assert_eq!(attempts, 3);
    breaker.reset();
    assert!((breaker.current_sleep_time() - 0.02).abs() < 1e-12);
    futures::executor::block_on(breaker.trip(Some(0.0)));
    assert!(breaker.broken());
}

#[test]
fn many_threads_count_every_failure_and_break_once() {
    let breaker = Arc::new(BreakingCircuit::new(5_000, 0.0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let breaker = Arc::clone(&breaker);
            std::thread::spawn(move || (0..1250).filter(|_| breaker.short(None)).count())
        })
        .collect();
    let breaks: usize = threads.into_iter().map(|t| t.join().expect("thread")).sum();
    assert_eq!(breaks, 1, "exactly one short reaches the threshold");
    assert!(breaker.broken());
    assert_eq!(breaker.total_failures(), 5_000);
}

// ---- circuits shared between processes -------------------------------------------------------

use skprocess::prelude::*;

mod common;
use common::LIMIT;

// ANCHOR: shared
/// Breaks the shared circuit with a long sleep; returns when its `trip` returned (wall clock).
#[skprocess(runs = 1)]
struct Tripper {
    circuit: Shared<BreakingCircuit>,
    polling: Shared<bool>,
    sleep: f64,
}

#[skprocess]
impl Tripper {
    fn __run__(&mut self) {}

    fn __result__(&mut self) -> Result<f64, ShareError> {
        assert!(
            self.polling.wait(Duration::from_secs(60))?,
            "the watcher never started polling"
        );
        self.circuit.trip(Some(self.sleep))?;
        Ok(skprocess::timing::time())
    }
}

/// Polls the shared circuit until it is broken; returns when it saw that (wall clock).
#[skprocess(runs = 1)]
struct Watcher {
    circuit: Shared<BreakingCircuit>,
    /// Set once it polls, so that the tripper trips only then.
    polling: Shared<bool>,
}

#[skprocess]
impl Watcher {
    fn __run__(&mut self) {}

    fn __result__(&mut self) -> Result<f64, ShareError> {
        self.polling.set()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.circuit.broken()? {
            assert!(Instant::now() < deadline, "the circuit never broke");
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(skprocess::timing::time())
    }
}

#[test]
fn a_shared_circuit_sleeps_in_the_process_that_broke_it_never_on_the_coordinator() {
    Share::scope(|share| {
        let circuit = share
            .insert("breaker", BreakingCircuit::new(3, 0.0))
            .expect("insert");
        let polling = share.insert("polling", false).expect("insert");
        let watcher = Skprocess::new(Watcher {
            circuit: circuit.clone(),
            polling: polling.clone(),
        });
        watcher.start().expect("watcher starts");
        let tripper = Skprocess::new(Tripper {
            circuit: circuit.clone(),
            polling,
            sleep: 2.0,
        });
        tripper.start().expect("tripper starts");
        let seen_at = watcher
            .result_timeout(LIMIT)
            .expect("in time")
            .expect("the watcher runs");
        let tripped_at = tripper
            .result_timeout(LIMIT)
            .expect("in time")
            .expect("the tripper runs");
        // The watcher saw the break while the tripper was still sleeping its 2 s: the
        // coordinator answered it, so it was not the one sleeping.
        assert!(
            seen_at < tripped_at,
            "seen at {seen_at}, trip returned at {tripped_at}"
        );
        assert!(circuit.broken().expect("broken"));
        assert_eq!(circuit.total_trips().expect("trips"), 1);
        circuit.reset().expect("reset");
        assert!(!circuit.broken().expect("not broken"));
    })
    .expect("a share");
}
// ANCHOR_END: shared

/// Shorts per worker: `SKPROCESS_STRESS_ROUNDS` (default 500).
fn rounds() -> u64 {
    std::env::var("SKPROCESS_STRESS_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500)
}

fn short_many((circuit, rounds): (Shared<Circuit>, u64)) -> u64 {
    let mut tripped = 0;
    for _ in 0..rounds {
        if circuit.short(None).expect("the share answers") {
            tripped += 1;
        }
    }
    tripped
}

#[test]
fn processes_count_into_one_circuit_and_each_trip_happens_once() {
    Share::scope(|share| {
        let circuit = share
            .insert("limiter", Circuit::new(10, 0.0))
            .expect("insert");
        // More workers than CPUs, thousands of shorts in all.
        let pool = Pool::new(4).expect("a pool");
        let rounds = rounds();
        let trips: Vec<u64> = pool
            .timeout(LIMIT)
            .chunk_size(1)
            .map(short_many, vec![(circuit.clone(), rounds); 4])
            .expect("the workers run");
        let failures = 4 * rounds;
        assert_eq!(trips.iter().sum::<u64>(), failures / 10, "{trips:?}");
        assert_eq!(circuit.total_failures().expect("failures"), failures);
        assert_eq!(circuit.total_trips().expect("trips"), failures / 10);
        assert_eq!(
            u64::from(circuit.times_shorted().expect("count")),
            failures % 10
        );
    })
    .expect("a share");
}
