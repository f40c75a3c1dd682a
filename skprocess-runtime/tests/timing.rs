//! `skprocess::timing`: Sktimer statistics and control, TimeThis, the clock helpers and
//! `#[timethis]`.
//!
//! Expected statistics are literals computed independently with Python's `statistics` module
//! (`statistics.quantiles(data, n=100, method="inclusive")` for percentiles, which is numpy's
//! "linear" method). Timing assertions check order and generous bounds only.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use skprocess::timethis;
use skprocess::timing::{self, Sktimer, TimeThis, TimerError, TimerStats};

/// How long any wait in these tests may take: generous, for slow shared machines. A hang fails
/// the test instead of stalling CI.
const LIMIT: Duration = Duration::from_secs(60);

/// Wakes the thread that waits for a future.
struct Unpark(thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// `futures::executor::block_on` with a deadline: polls `future` on this thread until it is
/// ready; panics if it is not within `limit`.
fn block_on_within<F: Future>(limit: Duration, future: F) -> F::Output {
    let deadline = Instant::now() + limit;
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the future was not ready within {limit:?}");
        thread::park_timeout(left);
    }
}

/// A thread whose end is awaited with a deadline: see [`Bounded::join_within`].
struct Bounded<T> {
    value: mpsc::Receiver<T>,
    thread: thread::JoinHandle<()>,
}

/// Runs `f` on a new thread, to be joined with [`Bounded::join_within`].
fn spawn_bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Bounded<T> {
    let (tx, value) = mpsc::channel();
    let thread = thread::spawn(move || {
        let _ = tx.send(f());
    });
    Bounded { value, thread }
}

impl<T> Bounded<T> {
    /// The thread's value; panics if it has not ended within `limit` (a panic in the thread is
    /// passed on).
    fn join_within(self, limit: Duration) -> T {
        match self.value.recv_timeout(limit) {
            Ok(value) => value,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("a thread still ran after {limit:?}: a hang")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => match self.thread.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(()) => unreachable!("the thread ended without a value"),
            },
        }
    }
}

/// Runs `f` on a helper thread and returns its value; panics if it has not returned within
/// `limit`.
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    spawn_bounded(f).join_within(limit)
}

/// Equal within a relative 1e-12 (the statistics are computed in a different order than
/// Python's, so the last bits may differ).
#[track_caller]
fn assert_close(actual: f64, expected: f64) {
    let tolerance = 1e-12 * expected.abs().max(1.0);
    assert!(
        (actual - expected).abs() <= tolerance,
        "expected {expected}, got {actual}"
    );
}

#[track_caller]
fn assert_some_close(actual: Option<f64>, expected: f64) {
    assert_close(actual.expect("a value"), expected);
}

fn ms(n: u64) {
    thread::sleep(Duration::from_millis(n));
}

/// `[0.12, 0.5, 0.33, 0.07, 0.91, 0.45, 0.2, 0.64]`
const DATA: [f64; 8] = [0.12, 0.5, 0.33, 0.07, 0.91, 0.45, 0.2, 0.64];

/// (percent, expected percentile of `DATA`)
const PERCENTILES: [(f64, f64); 10] = [
    (0.0, 0.07),
    (10.0, 0.105),
    (12.5, 0.11374999999999999),
    (25.0, 0.18),
    (50.0, 0.39),
    (75.0, 0.535),
    (90.0, 0.7210000000000001),
    (95.0, 0.8155),
    (99.0, 0.8911000000000001),
    (100.0, 0.91),
];

fn filled(timer: &Sktimer) {
    for t in DATA {
        timer.add_time(t);
    }
}

// ----- statistics ----------------------------------------------------------------------------

#[test]
fn statistics_match_reference_values() {
    let timer = Sktimer::new();
    filled(&timer);
    assert_eq!(timer.num_times(), 8);
    assert_close(timer.total_time(), 3.22);
    assert_eq!(timer.total_time_paused(), 0.0);
    assert_some_close(timer.mean(), 0.4025);
    assert_some_close(timer.median(), 0.39);
    assert_eq!(timer.min(), Some(0.07));
    assert_eq!(timer.fastest_index(), Some(3));
    assert_eq!(timer.max(), Some(0.91));
    assert_eq!(timer.slowest_index(), Some(4));
    assert_some_close(timer.variance(), 0.08033571428571429);
    assert_some_close(timer.stdev(), 0.28343555578952034);
    assert_eq!(timer.most_recent(), Some(0.64));
    assert_eq!(timer.most_recent_index(), Some(7));
    assert_eq!(timer.times(), DATA);
    assert_eq!(timer.get_time(0), Some(0.12));
    assert_eq!(timer.get_time(7), Some(0.64));
    assert_eq!(timer.get_time(8), None);
    for (percent, expected) in PERCENTILES {
        assert_some_close(timer.percentile(percent).unwrap(), expected);
    }
}

#[test]
fn snapshot_holds_the_same_values_and_stays_frozen() {
    let timer = Sktimer::new();
    filled(&timer);
    let stats: TimerStats = timer.get_stats().expect("eight samples");
    timer.add_time(100.0);
    assert_eq!(stats.num_times, 8);
    assert_close(stats.total_time, 3.22);
    assert_close(stats.mean, 0.4025);
    assert_close(stats.median, 0.39);
    assert_eq!((stats.min, stats.fastest_index), (0.07, 3));
    assert_eq!((stats.max, stats.slowest_index), (0.91, 4));
    assert_eq!((stats.most_recent, stats.most_recent_index), (0.64, 7));
    assert_close(stats.variance.unwrap(), 0.08033571428571429);
    assert_close(stats.stdev.unwrap(), 0.28343555578952034);
    assert_eq!(stats.max_times, None);
    assert_eq!(stats.times, DATA);
    assert_eq!(stats.get_time(4), Some(0.91));
    assert_eq!(stats.get_time(8), None);
    for (percent, expected) in PERCENTILES {
        assert_some_close(stats.percentile(percent).unwrap(), expected);
    }
    assert_eq!(
        stats.percentile(100.5),
        Err(TimerError::PercentileOutOfRange(100.5))
    );
    assert_eq!(timer.num_times(), 9);
}

#[test]
fn empty_timer_reports_nothing() {
    let timer = Sktimer::new();
    assert_eq!(timer.num_times(), 0);
    assert_eq!(timer.most_recent(), None);
    assert_eq!(timer.most_recent_index(), None);
    assert_eq!(timer.total_time(), 0.0);
    assert_eq!(timer.total_time_paused(), 0.0);
    assert_eq!(timer.mean(), None);
    assert_eq!(timer.median(), None);
    assert_eq!(timer.min(), None);
    assert_eq!(timer.max(), None);
    assert_eq!(timer.fastest_index(), None);
    assert_eq!(timer.slowest_index(), None);
    assert_eq!(timer.stdev(), None);
    assert_eq!(timer.variance(), None);
    assert_eq!(timer.percentile(50.0), Ok(None));
    assert_eq!(timer.get_time(0), None);
    assert!(timer.times().is_empty());
    assert!(timer.get_stats().is_none());
    // An invalid percentile is an error even with nothing recorded.
    assert_eq!(
        timer.percentile(-1.0),
        Err(TimerError::PercentileOutOfRange(-1.0))
    );
    assert!(matches!(
        timer.percentile(f64::NAN),
        Err(TimerError::PercentileOutOfRange(_))
    ));
}

#[test]
fn one_sample_has_no_spread() {
    let timer = Sktimer::new();
    timer.add_time(0.3);
    assert_eq!(timer.num_times(), 1);
    assert_eq!(timer.mean(), Some(0.3));
    assert_eq!(timer.median(), Some(0.3));
    assert_eq!(timer.min(), Some(0.3));
    assert_eq!(timer.max(), Some(0.3));
    assert_eq!(timer.fastest_index(), Some(0));
    assert_eq!(timer.slowest_index(), Some(0));
    assert_eq!(timer.stdev(), None);
    assert_eq!(timer.variance(), None);
    assert_eq!(timer.percentile(0.0), Ok(Some(0.3)));
    assert_eq!(timer.percentile(37.0), Ok(Some(0.3)));
    let stats = timer.get_stats().unwrap();
    assert_eq!((stats.stdev, stats.variance), (None, None));
}

#[test]
fn ties_report_the_first_index() {
    let timer = Sktimer::new();
    for t in [0.25, 0.25, 1.0, 0.125, 1.0, 0.125] {
        timer.add_time(t);
    }
    assert_eq!(timer.fastest_index(), Some(3));
    assert_eq!(timer.slowest_index(), Some(2));
}

#[test]
fn error_messages() {
    assert_eq!(
        TimerError::NotRunning.to_string(),
        "timer is not running on this thread"
    );
    assert_eq!(
        TimerError::PercentileOutOfRange(120.0).to_string(),
        "percentile 120 is outside 0..=100"
    );
    assert_eq!(
        TimerError::ZeroMaxTimes.to_string(),
        "max_times must be at least 1"
    );
}

// ----- threads -------------------------------------------------------------------------------

#[test]
fn many_threads_adding_at_once_lose_nothing() {
    let timer = Arc::new(Sktimer::new());
    let small = Arc::new(Sktimer::new());
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let timer = Arc::clone(&timer);
            let small = Arc::clone(&small);
            spawn_bounded(move || {
                for _ in 0..10_000 {
                    timer.add_time(0.125);
                    small.add_time(0.001);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join_within(LIMIT);
    }
    assert_eq!(timer.num_times(), 80_000);
    assert_eq!(timer.total_time(), 10_000.0); // 0.125 is exact in binary
    assert_eq!(timer.mean(), Some(0.125));
    assert_eq!(timer.variance(), Some(0.0));
    assert_eq!(small.num_times(), 80_000);
    // 80 000 × 0.001 with compensated summation: within a few ulps of 80.
    assert!((small.total_time() - 80.0).abs() < 1e-12);
}

#[test]
fn many_threads_start_and_stop_independently() {
    let timer = Arc::new(Sktimer::new());
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let timer = Arc::clone(&timer);
            spawn_bounded(move || {
                for _ in 0..200 {
                    timer.start();
                    timer.start(); // nested
                    timer.stop().unwrap();
                    timer.stop().unwrap();
                }
                // This thread's stack is empty again, whatever the others are doing.
                assert_eq!(timer.stop(), Err(TimerError::NotRunning));
            })
        })
        .collect();
    for worker in workers {
        worker.join_within(LIMIT);
    }
    assert_eq!(timer.num_times(), 8 * 200 * 2);
}

#[test]
fn measurements_belong_to_their_thread() {
    let timer = Arc::new(Sktimer::new());
    timer.start();
    let other = Arc::clone(&timer);
    let from_other = within(LIMIT, move || (other.stop(), other.pause(), other.lap()));
    assert_eq!(
        from_other,
        (
            Err(TimerError::NotRunning),
            Err(TimerError::NotRunning),
            Err(TimerError::NotRunning)
        )
    );
    assert!(timer.stop().is_ok());
    assert_eq!(timer.num_times(), 1);
}

// ----- the window ----------------------------------------------------------------------------

#[test]
fn window_keeps_recent_samples_and_exact_aggregates() {
    let timer = Sktimer::with_max_times(3);
    filled(&timer);
    assert_eq!(timer.max_times(), Some(3));
    // Running aggregates: every sample.
    assert_eq!(timer.num_times(), 8);
    assert_close(timer.total_time(), 3.22);
    assert_some_close(timer.mean(), 0.4025);
    assert_some_close(timer.variance(), 0.08033571428571429);
    assert_eq!((timer.min(), timer.fastest_index()), (Some(0.07), Some(3)));
    assert_eq!((timer.max(), timer.slowest_index()), (Some(0.91), Some(4)));
    assert_eq!(timer.most_recent_index(), Some(7));
    // Kept samples: the last three, [0.45, 0.2, 0.64].
    assert_eq!(timer.times(), [0.45, 0.2, 0.64]);
    assert_eq!(timer.get_time(0), Some(0.45));
    assert_eq!(timer.get_time(2), Some(0.64));
    assert_eq!(timer.get_time(3), None);
    assert_some_close(timer.median(), 0.45);
    assert_some_close(timer.percentile(25.0).unwrap(), 0.325);
    assert_some_close(timer.percentile(75.0).unwrap(), 0.545);
    let stats = timer.get_stats().unwrap();
    assert_eq!(stats.times, [0.45, 0.2, 0.64]);
    assert_eq!(stats.max_times, Some(3));
    assert_close(stats.median, 0.45);
    assert_eq!(stats.num_times, 8);
}

#[test]
fn set_max_times_shrinks_grows_and_rejects_zero() {
    let timer = Sktimer::new();
    filled(&timer);
    timer.set_max_times(Some(2)).unwrap();
    assert_eq!(timer.times(), [0.2, 0.64]);
    assert_eq!(timer.num_times(), 8);
    assert_eq!(timer.set_max_times(Some(0)), Err(TimerError::ZeroMaxTimes));
    assert_eq!(timer.max_times(), Some(2));
    timer.add_time(1.0);
    assert_eq!(timer.times(), [0.64, 1.0]);
    timer.set_max_times(None).unwrap();
    timer.add_time(2.0);
    timer.add_time(3.0);
    assert_eq!(timer.times(), [0.64, 1.0, 2.0, 3.0]);
    assert_eq!(timer.num_times(), 11);
}

#[test]
#[should_panic(expected = "max_times must be at least 1")]
fn with_max_times_zero_panics() {
    let _ = Sktimer::with_max_times(0);
}

// ----- control -------------------------------------------------------------------------------

#[test]
fn paused_time_is_excluded_and_accounted() {
    let timer = Sktimer::new();
    assert_eq!(timer.pause(), Err(TimerError::NotRunning));
    timer.start();
    ms(20);
    timer.pause().unwrap();
    assert_eq!(timer.pause(), Err(TimerError::AlreadyPaused));
    ms(200);
    timer.resume().unwrap();
    assert_eq!(timer.resume(), Err(TimerError::NotPaused));
    let recorded = timer.stop().unwrap();
    assert!(
        recorded >= 0.019,
        "the 20 ms before the pause count: {recorded}"
    );
    assert!(
        recorded < 0.15,
        "the 200 ms pause does not count: {recorded}"
    );
    assert!(timer.total_time_paused() >= 0.2);

    // Stopping while paused: the pause so far is excluded too.
    timer.start();
    timer.pause().unwrap();
    ms(50);
    let recorded = timer.stop().unwrap();
    assert!(recorded < 0.04, "{recorded}");
    assert!(timer.total_time_paused() >= 0.25);
    assert_eq!(timer.num_times(), 2);
}

#[test]
fn discard_records_nothing_and_lap_restarts() {
    let timer = Sktimer::new();
    assert_eq!(timer.discard(), Err(TimerError::NotRunning));
    assert_eq!(timer.lap(), Err(TimerError::NotRunning));
    timer.start();
    ms(5);
    let discarded = timer.discard().unwrap();
    assert!(discarded >= 0.004);
    assert_eq!(timer.num_times(), 0);

    timer.start();
    for _ in 0..3 {
        ms(5);
        let lap = timer.lap().unwrap();
        assert!((0.004..5.0).contains(&lap), "{lap}");
    }
    timer.discard().unwrap();
    assert_eq!(timer.num_times(), 3);
    assert_eq!(timer.stop(), Err(TimerError::NotRunning));
}

#[test]
fn nested_measurements_end_innermost_first() {
    let timer = Sktimer::new();
    timer.start();
    ms(30);
    timer.start();
    let inner = timer.stop().unwrap();
    ms(5);
    let outer = timer.stop().unwrap();
    assert!(outer >= 0.034, "{outer}");
    assert!(inner < outer);
    assert_eq!(timer.times(), [inner, outer]);
}

#[test]
fn reset_forgets_samples_and_measurements_but_keeps_the_window() {
    let timer = Sktimer::with_max_times(4);
    filled(&timer);
    timer.start();
    timer.reset();
    assert_eq!(timer.num_times(), 0);
    assert_eq!(timer.mean(), None);
    assert!(timer.times().is_empty());
    assert_eq!(timer.stop(), Err(TimerError::NotRunning));
    assert_eq!(timer.max_times(), Some(4));
    timer.add_time(0.5);
    assert_eq!(timer.fastest_index(), Some(0));
}

#[test]
fn static_timer() {
    static TIMER: Sktimer = Sktimer::new();
    static WINDOWED: Sktimer = Sktimer::with_max_times(2);
    TIMER.add_time(1.0);
    WINDOWED.add_time(1.0);
    assert_eq!(TIMER.num_times(), 1);
    assert_eq!(WINDOWED.max_times(), Some(2));
}

// ----- copies, merging, serde ----------------------------------------------------------------

#[test]
fn clone_is_an_independent_copy_without_measurements() {
    let timer = Sktimer::with_max_times(5);
    filled(&timer);
    timer.start();
    let copy = timer.clone();
    assert_eq!(copy.get_stats(), timer.get_stats());
    assert_eq!(copy.stop(), Err(TimerError::NotRunning));
    copy.add_time(9.0);
    assert_eq!(copy.num_times(), 9);
    assert_eq!(timer.num_times(), 8);
    assert!(timer.stop().is_ok());
    assert_eq!(copy.num_times(), 9);
}

#[test]
fn merge_from_appends_samples() {
    let total = Sktimer::new();
    let a = Sktimer::new();
    let b = Sktimer::new();
    for t in &DATA[..5] {
        a.add_time(*t);
    }
    for t in &DATA[5..] {
        b.add_time(*t);
    }
    total.merge_from(&a);
    total.merge_from(&b);
    total.merge_from(&Sktimer::new()); // no-op
    let reference = Sktimer::new();
    filled(&reference);
    let (merged, expected) = (total.get_stats().unwrap(), reference.get_stats().unwrap());
    assert_eq!(merged.num_times, 8);
    assert_eq!(merged.times, expected.times);
    assert_close(merged.total_time, expected.total_time);
    assert_close(merged.mean, expected.mean);
    assert_close(merged.variance.unwrap(), expected.variance.unwrap());
    assert_eq!(
        (
            merged.fastest_index,
            merged.slowest_index,
            merged.most_recent
        ),
        (3, 4, 0.64)
    );

    // Into a windowed timer: aggregates over all, window over the last samples.
    let windowed = Sktimer::with_max_times(2);
    windowed.merge_from(&reference);
    assert_eq!(windowed.num_times(), 8);
    assert_eq!(windowed.times(), [0.2, 0.64]);

    // Into itself: every sample twice.
    a.merge_from(&a);
    assert_eq!(a.num_times(), 10);
    assert_eq!(a.slowest_index(), Some(4));
}

#[test]
fn merge_from_both_ways_at_once_does_not_deadlock() {
    // A deadlock would hang both threads: the whole exchange runs on a helper, bounded.
    within(LIMIT, || {
        let a = Arc::new(Sktimer::new());
        let b = Arc::new(Sktimer::new());
        a.add_time(1.0);
        b.add_time(1.0);
        let (a2, b2) = (Arc::clone(&a), Arc::clone(&b));
        let one = thread::spawn(move || {
            for _ in 0..200 {
                a2.merge_from(&b2);
                a2.reset();
                a2.add_time(1.0);
            }
        });
        for _ in 0..200 {
            b.merge_from(&a);
            b.reset();
            b.add_time(1.0);
        }
        one.join().unwrap();
    });
}

#[test]
fn serde_round_trip_through_the_wire_codec_keeps_every_statistic() {
    let timer = Sktimer::with_max_times(5);
    filled(&timer);
    timer.start();
    timer.pause().unwrap();
    ms(5);
    timer.resume().unwrap();
    timer.stop().unwrap();
    timer.start(); // in flight: not sent

    let bytes = skprocess::__testing::encode(&timer).unwrap();
    let back: Sktimer = skprocess::__testing::decode(&bytes).unwrap();
    assert_eq!(back.get_stats(), timer.get_stats());
    assert!(back.total_time_paused() >= 0.005);
    assert_eq!(back.stop(), Err(TimerError::NotRunning));
    // Both keep recording the same way.
    timer.add_time(0.01);
    back.add_time(0.01);
    assert_eq!(back.get_stats(), timer.get_stats());

    let stats = timer.get_stats().unwrap();
    let bytes = skprocess::__testing::encode(&stats).unwrap();
    let stats_back: TimerStats = skprocess::__testing::decode(&bytes).unwrap();
    assert_eq!(stats_back, stats);

    let empty = Sktimer::new();
    let bytes = skprocess::__testing::encode(&empty).unwrap();
    let back: Sktimer = skprocess::__testing::decode(&bytes).unwrap();
    assert_eq!(back.num_times(), 0);
    assert_eq!(back.max_times(), None);
}

#[test]
fn deserializing_inconsistent_data_fails() {
    // A timer with one sample, then the same bytes with its kept samples cut off: the
    // encoding ends with the length of the kept samples (a u64) and the samples.
    let timer = Sktimer::new();
    timer.add_time(0.5);
    let mut bytes = skprocess::__testing::encode(&timer).unwrap();
    let sample = skprocess::__testing::encode(&0.5_f64).unwrap();
    bytes.truncate(bytes.len() - sample.len() - 8);
    bytes.extend_from_slice(&0u64.to_le_bytes()); // zero kept samples
    let result: Result<Sktimer, _> = skprocess::__testing::decode(&bytes);
    let err = result
        .expect_err("one sample counted, none kept")
        .to_string();
    assert!(err.contains("invalid Sktimer"), "{err}");
}

// ----- TimeThis ------------------------------------------------------------------------------

#[test]
fn guard_records_on_drop() {
    let timer = Sktimer::new();
    {
        let _timing = TimeThis::with(&timer);
        ms(10);
    }
    assert_eq!(timer.num_times(), 1);
    assert!(timer.most_recent().unwrap() >= 0.009);
}

#[test]
fn closure_form_returns_the_value() {
    let timer = Sktimer::new();
    let value = TimeThis::with(&timer).run(|| {
        ms(5);
        "done"
    });
    assert_eq!(value, "done");
    assert_eq!(timer.num_times(), 1);
    assert!(timer.most_recent().unwrap() >= 0.004);
}

#[test]
fn threshold_drops_short_measurements() {
    let timer = Sktimer::new();
    assert_eq!(TimeThis::with(&timer).threshold(10.0).finish(), None);
    TimeThis::with(&timer).threshold(10.0).run(|| ms(1));
    {
        let _timing = TimeThis::with(&timer).threshold(10.0);
    }
    assert_eq!(timer.num_times(), 0);
    TimeThis::with(&timer).threshold(0.005).run(|| ms(20));
    assert_eq!(timer.num_times(), 1);
    assert!(timer.most_recent().unwrap() >= 0.005);
}

#[test]
#[should_panic(expected = "non-negative number of seconds")]
fn negative_threshold_panics() {
    let _ = TimeThis::new().threshold(-0.1);
}

#[test]
fn panics_are_not_recorded() {
    let timer = Sktimer::new();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let _timing = TimeThis::with(&timer);
        panic!("work failed");
    }));
    assert!(result.is_err());
    let result = catch_unwind(AssertUnwindSafe(|| {
        TimeThis::with(&timer).run(|| panic!("work failed"));
    }));
    assert!(result.is_err());
    assert_eq!(timer.num_times(), 0);
}

#[test]
fn guard_started_during_unwinding_still_records() {
    struct Cleanup<'a>(&'a Sktimer);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            // Runs while a panic unwinds; the cleanup itself completes normally.
            let _timing = TimeThis::with(self.0);
        }
    }
    let timer = Sktimer::new();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let _cleanup = Cleanup(&timer);
        panic!("boom");
    }));
    assert!(result.is_err());
    assert_eq!(timer.num_times(), 1);
}

#[test]
fn time_this_pause_is_excluded_and_accounted() {
    let timer = Sktimer::new();
    let mut timing = TimeThis::with(&timer);
    ms(20);
    timing.pause().unwrap();
    assert_eq!(timing.pause(), Err(TimerError::AlreadyPaused));
    ms(200);
    timing.resume().unwrap();
    assert_eq!(timing.resume(), Err(TimerError::NotPaused));
    let recorded = timing.finish().unwrap();
    assert!((0.019..0.15).contains(&recorded), "{recorded}");
    assert!(timer.total_time_paused() >= 0.2);
    assert_eq!(timer.most_recent(), Some(recorded));
}

#[test]
fn time_this_laps_and_owned_timer() {
    let mut timing = TimeThis::new();
    for _ in 0..3 {
        assert!(timing.lap().is_some());
    }
    assert_eq!(timing.timer().num_times(), 3);
    let timer = timing.into_timer(); // the fourth lap
    assert_eq!(timer.num_times(), 4);

    // into_timer on a borrowed timer: a copy, and the original got the sample too.
    let shared = Sktimer::new();
    let copy = TimeThis::with(&shared).into_timer();
    assert_eq!((shared.num_times(), copy.num_times()), (1, 1));
    copy.add_time(1.0);
    assert_eq!(shared.num_times(), 1);
}

/// Polls `future` once with a waker that does nothing.
fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    let waker = futures::task::noop_waker();
    Pin::new(future).poll(&mut Context::from_waker(&waker))
}

#[test]
fn run_async_times_from_first_poll_to_completion() {
    let timer = Sktimer::new();
    let value = block_on_within(
        LIMIT,
        TimeThis::with(&timer).run_async(async {
            timing::sleep_async(0.02).await;
            42
        }),
    );
    assert_eq!(value, 42);
    assert_eq!(timer.num_times(), 1);
    assert!(timer.most_recent().unwrap() >= 0.019);

    // Created long before its first poll: the wait before is not counted.
    let future = TimeThis::with(&timer).run_async(async { 1 });
    ms(100);
    assert_eq!(block_on_within(LIMIT, future), 1);
    assert!(timer.most_recent().unwrap() < 0.09);
    assert_eq!(timer.num_times(), 2);
}

#[test]
fn run_async_dropped_early_records_nothing() {
    let timer = Sktimer::new();
    let mut future = TimeThis::with(&timer).run_async(timing::sleep_async(30.0));
    assert!(poll_once(&mut future).is_pending());
    drop(future);
    assert_eq!(timer.num_times(), 0);

    let result = catch_unwind(AssertUnwindSafe(|| {
        block_on_within(
            LIMIT,
            TimeThis::with(&timer).run_async(async { panic!("failed") }),
        )
    }));
    assert!(result.is_err());
    assert_eq!(timer.num_times(), 0);
}

// ----- clock helpers -------------------------------------------------------------------------

#[test]
fn time_sleep_and_elapsed() {
    let start = timing::time();
    assert!(start > 1.7e9);
    let woke = timing::sleep(0.02);
    assert!(woke - start >= 0.019);
    assert!(timing::elapsed(start) >= 0.019);
    assert_eq!(timing::elapsed_between(3.0, 1.5), 1.5);
    assert_eq!(timing::elapsed_between(1.5, 3.0), 1.5);
    // Negative and NaN durations do not sleep.
    let before = Instant::now();
    timing::sleep(-1.0);
    timing::sleep(f64::NAN);
    block_on_within(LIMIT, timing::sleep_async(-1.0));
    assert!(before.elapsed() < Duration::from_secs(5));
}

#[test]
fn sleep_async_waits_and_returns_the_time() {
    let before = Instant::now();
    let start = timing::time();
    let woke = block_on_within(LIMIT, timing::sleep_async(0.05));
    assert!(before.elapsed() >= Duration::from_millis(50));
    assert!(woke - start >= 0.049);
}

#[test]
fn concurrent_sleeps_wake_in_deadline_order() {
    use futures::FutureExt;
    let order = std::sync::Mutex::new(Vec::new());
    let sleeper = |secs: f64| {
        let order = &order;
        timing::sleep_async(secs).map(move |_| order.lock().unwrap().push(secs))
    };
    let before = Instant::now();
    block_on_within(
        LIMIT,
        futures::future::join3(sleeper(0.6), sleeper(0.2), sleeper(0.4)),
    );
    assert!(before.elapsed() >= Duration::from_millis(600));
    assert_eq!(*order.lock().unwrap(), [0.2, 0.4, 0.6]);
}

#[test]
fn sleeps_from_many_threads_all_wake() {
    let before = Instant::now();
    let sleepers: Vec<_> = (0..16)
        .map(|i| {
            spawn_bounded(move || {
                block_on_within(LIMIT, timing::sleep_async(0.01 * f64::from(i % 4 + 1)))
            })
        })
        .collect();
    for sleeper in sleepers {
        sleeper.join_within(LIMIT);
    }
    assert!(before.elapsed() >= Duration::from_millis(40));
}

// ----- #[timethis] ---------------------------------------------------------------------------

static SHARED: Sktimer = Sktimer::new();
static OUTER: Sktimer = Sktimer::new();
static WINDOWED: Sktimer = Sktimer::new();
static SLOW_ONLY: Sktimer = Sktimer::new();
static ASYNC_SHARED: Sktimer = Sktimer::new();

#[timethis]
fn add_one(x: u32) -> u32 {
    x + 1
}

#[timethis(max_times = 2)]
fn windowed_own() {}

#[timethis(timer = SHARED)]
fn shared_a() {}

#[timethis(timer = &SHARED)]
fn shared_b() -> &'static str {
    "b"
}

#[timethis(timer = WINDOWED, max_times = 3)]
fn shared_windowed() {}

#[timethis(timer = SLOW_ONLY, threshold = 0.05)]
fn maybe_slow(slow: bool) {
    if slow {
        ms(60);
    }
}

#[timethis(timer = OUTER)]
#[timethis]
fn stacked() -> u8 {
    7
}

#[timethis]
fn early_return(x: i32) -> Result<i32, String> {
    if x < 0 {
        return Err("negative".into());
    }
    let parsed: i32 = "5"
        .parse()
        .map_err(|e: std::num::ParseIntError| e.to_string())?;
    Ok(parsed + x)
}

#[timethis]
fn fails() {
    panic!("not recorded");
}

#[timethis]
fn generic<T: Clone>(value: &T) -> T {
    value.clone()
}

#[timethis]
async fn fetch(ms_: u64) -> u64 {
    timing::sleep_async(ms_ as f64 / 1000.0).await;
    ms_
}

#[timethis(timer = ASYNC_SHARED, threshold = 0.0)]
async fn fetch_shared(fail: bool) -> Result<u8, String> {
    if fail {
        return Err("failed".into());
    }
    Ok(1)
}

#[derive(Default)]
struct Worker {
    timer: Sktimer,
    count: u32,
    shared: Arc<Sktimer>,
}

impl Worker {
    #[timethis]
    fn work(&self) -> u32 {
        self.count
    }

    #[timethis(timer = self.timer)]
    fn bump(&mut self) {
        self.count += 1;
    }

    #[timethis(timer = self.shared.clone())]
    fn bump_and_work(&mut self) -> u32 {
        self.bump();
        self.work()
    }

    #[timethis]
    fn consume(self) -> u32 {
        self.count
    }

    #[timethis]
    fn create() -> Self {
        Worker::default()
    }

    #[timethis]
    async fn work_async(&self, add: u32) -> u32 {
        timing::sleep_async(0.001).await;
        self.count + add
    }
}

#[test]
fn timethis_on_a_free_fn() {
    let before = add_one_timer().num_times();
    assert_eq!(add_one(1), 2);
    assert_eq!(add_one(2), 3);
    assert_eq!(add_one_timer().num_times(), before + 2);
    assert!(
        timing::global_timers()
            .any(|(name, timer)| name == "timing::add_one" && std::ptr::eq(timer, add_one_timer()))
    );
}

#[test]
fn timethis_with_max_times_on_its_own_timer() {
    assert_eq!(windowed_own_timer().max_times(), Some(2));
    for _ in 0..5 {
        windowed_own();
    }
    assert_eq!(windowed_own_timer().num_times(), 5);
    assert_eq!(windowed_own_timer().times().len(), 2);
}

#[test]
fn timethis_with_a_given_timer() {
    let before = SHARED.num_times();
    shared_a();
    assert_eq!(shared_b(), "b");
    assert_eq!(SHARED.num_times(), before + 2);
    shared_windowed();
    assert_eq!(WINDOWED.max_times(), Some(3));
    // Set once: a later change by the user sticks.
    WINDOWED.set_max_times(Some(10)).unwrap();
    shared_windowed();
    assert_eq!(WINDOWED.max_times(), Some(10));
}

#[test]
fn timethis_threshold() {
    maybe_slow(false);
    assert_eq!(SLOW_ONLY.num_times(), 0);
    maybe_slow(true);
    assert_eq!(SLOW_ONLY.num_times(), 1);
    assert!(SLOW_ONLY.most_recent().unwrap() >= 0.05);
}

#[test]
fn timethis_stacked_records_in_both_timers() {
    let (own, outer) = (stacked_timer().num_times(), OUTER.num_times());
    assert_eq!(stacked(), 7);
    assert_eq!(stacked_timer().num_times(), own + 1);
    assert_eq!(OUTER.num_times(), outer + 1);
}

#[test]
fn timethis_records_early_returns_but_not_panics() {
    let before = early_return_timer().num_times();
    assert_eq!(early_return(-1), Err("negative".into()));
    assert_eq!(early_return(1), Ok(6));
    assert_eq!(early_return_timer().num_times(), before + 2);

    assert!(catch_unwind(fails).is_err());
    assert_eq!(fails_timer().num_times(), 0);
}

#[test]
fn timethis_on_a_generic_fn() {
    assert_eq!(generic(&String::from("x")), "x");
    assert_eq!(generic(&5_u8), 5);
    assert_eq!(generic_timer().num_times(), 2);
}

#[test]
fn timethis_on_methods() {
    let mut worker = Worker::create();
    assert_eq!(Worker::create_timer().num_times(), 1);
    worker.bump();
    worker.bump();
    assert_eq!(worker.timer.num_times(), 2);
    assert_eq!(worker.work(), 2);
    assert!(Worker::work_timer().num_times() >= 1);
    assert_eq!(worker.bump_and_work(), 3);
    assert_eq!(worker.shared.num_times(), 1);
    assert_eq!(worker.timer.num_times(), 3);
    let before = Worker::consume_timer().num_times();
    assert_eq!(worker.consume(), 3);
    assert_eq!(Worker::consume_timer().num_times(), before + 1);
}

#[test]
fn timethis_on_async_fns() {
    let before = fetch_timer().num_times();
    assert_eq!(block_on_within(LIMIT, fetch(20)), 20);
    assert_eq!(fetch_timer().num_times(), before + 1);
    assert!(fetch_timer().max().unwrap() >= 0.019);

    let worker = Worker::default();
    assert_eq!(block_on_within(LIMIT, worker.work_async(2)), 2);
    assert_eq!(Worker::work_async_timer().num_times(), 1);

    // `?`/`return` inside: recorded like any completion.
    let before = ASYNC_SHARED.num_times();
    assert_eq!(
        block_on_within(LIMIT, fetch_shared(true)),
        Err("failed".into())
    );
    assert_eq!(block_on_within(LIMIT, fetch_shared(false)), Ok(1));
    assert_eq!(ASYNC_SHARED.num_times(), before + 2);
}

#[timethis]
async fn abandoned() {
    timing::sleep_async(30.0).await;
}

#[test]
fn timethis_async_dropped_early_records_nothing() {
    let mut future = Box::pin(abandoned());
    assert!(poll_once(&mut future).is_pending());
    drop(future);
    assert_eq!(abandoned_timer().num_times(), 0);
}

#[test]
fn timethis_futures_stay_send() {
    fn assert_send<T: Send>(_: &T) {}
    let worker = Worker::default();
    let future = worker.work_async(1);
    assert_send(&future);
    let future = fetch(1);
    assert_send(&future);
}
