//! [`TimeThis`]: time a scope, a closure or a future; and the guards `#[timethis]` expands to.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::thread;
use std::time::Instant;

use super::stopwatch::Stopwatch;
use super::{Sktimer, TimerError};

/// The timer a [`TimeThis`] records into: its own, or a borrowed one.
#[derive(Debug)]
enum Slot<'a> {
    Owned(Sktimer),
    Borrowed(&'a Sktimer),
}

impl Slot<'_> {
    fn get(&self) -> &Sktimer {
        match self {
            Slot::Owned(timer) => timer,
            Slot::Borrowed(timer) => timer,
        }
    }

    fn into_owned(self) -> Sktimer {
        match self {
            Slot::Owned(timer) => timer,
            Slot::Borrowed(timer) => timer.clone(),
        }
    }
}

#[derive(Debug)]
struct Active<'a> {
    slot: Slot<'a>,
    threshold: f64,
    watch: Stopwatch,
    /// Whether the thread was already unwinding when timing began (a guard created in a `Drop`
    /// during a panic still records normally).
    panicking_at_start: bool,
}

impl Active<'_> {
    /// Records the measurement up to `now` unless it is under the threshold.
    fn record(&self, now: Instant) -> Option<f64> {
        let (elapsed, paused) = self.watch.read(now);
        (elapsed >= self.threshold).then(|| {
            self.slot.get().record_measurement(elapsed, paused);
            elapsed
        })
    }
}

/// Times a scope, a closure or a future into an [`Sktimer`].
///
/// As a **guard**, it starts timing when created and records when dropped (or
/// [`finish`](TimeThis::finish)ed), the way a Python `with TimeThis():` block does:
///
/// ```
/// use skprocess::timing::{Sktimer, TimeThis};
///
/// let timer = Sktimer::new();
/// {
///     let _timing = TimeThis::with(&timer);
///     std::hint::black_box((0..10_000).sum::<u64>());
/// } // recorded here
/// assert_eq!(timer.num_times(), 1);
/// ```
///
/// Around a **closure**, it returns the closure's value:
///
/// ```
/// use skprocess::timing::{Sktimer, TimeThis};
///
/// let timer = Sktimer::new();
/// let sum = TimeThis::with(&timer).run(|| (0..100u64).sum::<u64>());
/// assert_eq!(sum, 4950);
/// assert_eq!(timer.num_times(), 1);
/// ```
///
/// Around a **future** ([`run_async`](TimeThis::run_async)), it measures from the first poll to
/// completion, on any executor.
///
/// Without a timer of your own, [`TimeThis::new`] owns a fresh one; get it back with
/// [`into_timer`](TimeThis::into_timer).
///
/// # What is recorded
///
/// - The elapsed time minus the time spent [`pause`](TimeThis::pause)d; the paused time is added
///   to the timer's [`total_time_paused`](Sktimer::total_time_paused).
/// - Nothing when the elapsed time is under the [`threshold`](TimeThis::threshold).
/// - Nothing when the guard is dropped by a panic unwinding through its scope: a failed run is
///   not a timing.
///
/// The guard measures on its own clock: it does not use the timer's per-thread
/// [`start`](Sktimer::start)/[`stop`](Sktimer::stop) stack, so it can be moved between threads
/// and mixed freely with other measurements on the same timer.
#[must_use = "a TimeThis guard times until it is dropped: bind it with `let _timing = ...`"]
pub struct TimeThis<'a> {
    /// `Some` until a consuming method or `Drop` takes it.
    active: Option<Active<'a>>,
}

impl TimeThis<'static> {
    /// Starts timing into a fresh timer owned by the guard.
    ///
    /// # Examples
    ///
    /// ```
    /// use skprocess::timing::TimeThis;
    ///
    /// let timing = TimeThis::new();
    /// std::hint::black_box((0..1_000).sum::<u64>());
    /// let timer = timing.into_timer();
    /// assert_eq!(timer.num_times(), 1);
    /// println!("took {:?} s", timer.most_recent());
    /// ```
    pub fn new() -> TimeThis<'static> {
        TimeThis::from_slot(Slot::Owned(Sktimer::new()))
    }
}

impl Default for TimeThis<'static> {
    /// Same as [`TimeThis::new`].
    fn default() -> TimeThis<'static> {
        TimeThis::new()
    }
}

impl<'a> TimeThis<'a> {
    /// Starts timing into `timer`.
    ///
    /// # Examples
    ///
    /// ```
    /// use skprocess::timing::{Sktimer, TimeThis};
    ///
    /// let api = Sktimer::new();
    /// for _ in 0..3 {
    ///     let _timing = TimeThis::with(&api);
    ///     // ... one request ...
    /// }
    /// assert_eq!(api.num_times(), 3);
    /// ```
    pub fn with(timer: &'a Sktimer) -> TimeThis<'a> {
        TimeThis::from_slot(Slot::Borrowed(timer))
    }

    fn from_slot(slot: Slot<'a>) -> TimeThis<'a> {
        TimeThis {
            active: Some(Active {
                slot,
                threshold: 0.0,
                watch: Stopwatch::start(),
                panicking_at_start: thread::panicking(),
            }),
        }
    }

    fn active(&self) -> &Active<'a> {
        self.active
            .as_ref()
            .expect("TimeThis is active until consumed")
    }

    fn active_mut(&mut self) -> &mut Active<'a> {
        self.active
            .as_mut()
            .expect("TimeThis is active until consumed")
    }

    /// Sets the minimum time worth recording, in seconds: shorter measurements are dropped.
    ///
    /// # Panics
    ///
    /// Panics if `seconds` is negative or NaN.
    ///
    /// # Examples
    ///
    /// ```
    /// use skprocess::timing::{Sktimer, TimeThis};
    ///
    /// let slow_calls = Sktimer::new();
    /// let recorded = TimeThis::with(&slow_calls).threshold(60.0).finish();
    /// assert_eq!(recorded, None); // far under a minute
    /// assert_eq!(slow_calls.num_times(), 0);
    /// ```
    pub fn threshold(mut self, seconds: f64) -> TimeThis<'a> {
        assert!(
            seconds >= 0.0,
            "TimeThis::threshold: expected a non-negative number of seconds, got {seconds}"
        );
        self.active_mut().threshold = seconds;
        self
    }

    /// Pauses the measurement: time until [`resume`](TimeThis::resume) is not counted.
    ///
    /// # Errors
    ///
    /// [`TimerError::AlreadyPaused`] if it is paused.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use skprocess::timing::{Sktimer, TimeThis};
    ///
    /// let timer = Sktimer::new();
    /// let mut timing = TimeThis::with(&timer);
    /// timing.pause()?;
    /// std::thread::sleep(Duration::from_millis(50)); // waiting for input, say
    /// timing.resume()?;
    /// let recorded = timing.finish().unwrap();
    /// assert!(recorded < 0.05);
    /// assert!(timer.total_time_paused() >= 0.05);
    /// # Ok::<(), skprocess::timing::TimerError>(())
    /// ```
    pub fn pause(&mut self) -> Result<(), TimerError> {
        let now = Instant::now();
        self.active_mut().watch.pause(now)
    }

    /// Resumes the measurement after [`pause`](TimeThis::pause).
    ///
    /// # Errors
    ///
    /// [`TimerError::NotPaused`] if it is not paused.
    pub fn resume(&mut self) -> Result<(), TimerError> {
        let now = Instant::now();
        self.active_mut().watch.resume(now)
    }

    /// Records the time since timing began (or since the last lap) and starts the next lap at
    /// once. Returns the recorded time in seconds, or `None` when it was under the threshold
    /// (and so not recorded).
    ///
    /// # Examples
    ///
    /// ```
    /// use skprocess::timing::{Sktimer, TimeThis};
    ///
    /// let timer = Sktimer::new();
    /// let mut timing = TimeThis::with(&timer);
    /// for _ in 0..3 {
    ///     timing.lap();
    /// }
    /// drop(timing); // the fourth lap
    /// assert_eq!(timer.num_times(), 4);
    /// ```
    pub fn lap(&mut self) -> Option<f64> {
        let now = Instant::now();
        let active = self.active_mut();
        let recorded = active.record(now);
        active.watch = Stopwatch::start_at(now);
        recorded
    }

    /// Returns the timer being recorded into.
    pub fn timer(&self) -> &Sktimer {
        self.active().slot.get()
    }

    /// Stops timing and records now. Returns the recorded time in seconds, or `None` when it
    /// was under the threshold.
    ///
    /// # Examples
    ///
    /// ```
    /// use skprocess::timing::{Sktimer, TimeThis};
    ///
    /// let timer = Sktimer::new();
    /// let timing = TimeThis::with(&timer);
    /// let recorded = timing.finish();
    /// assert_eq!(recorded, timer.most_recent());
    /// ```
    pub fn finish(mut self) -> Option<f64> {
        let now = Instant::now();
        self.active.take().and_then(|active| active.record(now))
    }

    /// Stops timing, records now (unless under the threshold) and returns the timer: the owned
    /// one, or a copy of the borrowed one.
    pub fn into_timer(mut self) -> Sktimer {
        let now = Instant::now();
        let active = self
            .active
            .take()
            .expect("TimeThis is active until consumed");
        active.record(now);
        active.slot.into_owned()
    }

    /// Runs `f`, timing only the call, and returns its value.
    ///
    /// The clock restarts when `f` starts. If `f` panics, nothing is recorded and the panic
    /// continues.
    ///
    /// # Examples
    ///
    /// ```
    /// use skprocess::timing::{Sktimer, TimeThis};
    ///
    /// let timer = Sktimer::new();
    /// let words: Vec<&str> = TimeThis::with(&timer)
    ///     .threshold(0.0)
    ///     .run(|| "a b c".split(' ').collect());
    /// assert_eq!(words, ["a", "b", "c"]);
    /// assert_eq!(timer.num_times(), 1);
    /// ```
    pub fn run<R>(mut self, f: impl FnOnce() -> R) -> R {
        self.active_mut().watch = Stopwatch::start();
        let value = f();
        drop(self);
        value
    }

    /// Wraps `future` so that the time from its first poll to its completion is recorded.
    ///
    /// Works on any executor. A future dropped before it completes records nothing, and neither
    /// does one that panics.
    ///
    /// # Examples
    ///
    /// ```
    /// use skprocess::timing::{Sktimer, TimeThis};
    ///
    /// let timer = Sktimer::new();
    /// let value = futures::executor::block_on(
    ///     TimeThis::with(&timer).run_async(async { 6 * 7 }),
    /// );
    /// assert_eq!(value, 42);
    /// assert_eq!(timer.num_times(), 1);
    /// ```
    pub fn run_async<F: Future>(mut self, future: F) -> Timed<'a, F> {
        let active = self
            .active
            .take()
            .expect("TimeThis is active until consumed");
        Timed {
            future: Box::pin(future),
            slot: Some(active.slot),
            threshold: active.threshold,
            watch: None,
        }
    }
}

impl Drop for TimeThis<'_> {
    fn drop(&mut self) {
        if let Some(active) = self.active.take()
            && (!thread::panicking() || active.panicking_at_start)
        {
            active.record(Instant::now());
        }
    }
}

impl fmt::Debug for TimeThis<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TimeThis");
        if let Some(active) = &self.active {
            d.field("timer", active.slot.get())
                .field("threshold", &active.threshold)
                .field("watch", &active.watch);
        }
        d.finish_non_exhaustive()
    }
}

/// A future timed from its first poll to its completion, from [`TimeThis::run_async`].
///
/// It yields the inner future's output. Dropped before completion, it records nothing.
///
/// # Panics
///
/// Polling it again after it completed panics, as most futures do.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Timed<'a, F> {
    // Boxed so that `Timed` is `Unpin` and needs no unsafe pin projection.
    future: Pin<Box<F>>,
    /// `None` once the output was returned.
    slot: Option<Slot<'a>>,
    threshold: f64,
    /// Started at the first poll.
    watch: Option<Stopwatch>,
}

impl<F: Future> Future for Timed<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        assert!(this.slot.is_some(), "`Timed` polled after completion");
        let watch = *this.watch.get_or_insert_with(Stopwatch::start);
        let output = std::task::ready!(this.future.as_mut().poll(cx));
        let (elapsed, paused) = watch.read(Instant::now());
        let slot = this.slot.take().expect("checked above");
        if elapsed >= this.threshold {
            slot.get().record_measurement(elapsed, paused);
        }
        Poll::Ready(output)
    }
}

impl<F> fmt::Debug for Timed<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timed")
            .field("timer", &self.slot.as_ref().map(Slot::get))
            .field("threshold", &self.threshold)
            .field("started", &self.watch.is_some())
            .finish_non_exhaustive()
    }
}

// ----- what `#[timethis]` expands to ---------------------------------------------------------

/// Times one call of a sync function: records on drop, unless the call panicked or took less
/// than the threshold. Used by `#[timethis]`; not public API.
#[doc(hidden)]
#[derive(Debug)]
pub struct TimedGuard<'a> {
    timer: &'a Sktimer,
    threshold: f64,
    start: Instant,
    panicking_at_start: bool,
}

impl<'a> TimedGuard<'a> {
    #[inline]
    pub fn start(timer: &'a Sktimer, threshold: f64) -> TimedGuard<'a> {
        TimedGuard {
            timer,
            threshold,
            panicking_at_start: thread::panicking(),
            start: Instant::now(),
        }
    }
}

impl Drop for TimedGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        let elapsed = self.start.elapsed().as_secs_f64();
        if elapsed >= self.threshold && (!thread::panicking() || self.panicking_at_start) {
            self.timer.add_time(elapsed);
        }
    }
}

/// Times one call of an async function: records only when [`finish`](TimedSpan::finish)ed,
/// so a future dropped early (or unwinding) records nothing. Used by `#[timethis]`; not
/// public API.
#[doc(hidden)]
#[derive(Debug)]
#[must_use]
pub struct TimedSpan<'a> {
    timer: &'a Sktimer,
    threshold: f64,
    start: Instant,
}

impl<'a> TimedSpan<'a> {
    #[inline]
    pub fn start(timer: &'a Sktimer, threshold: f64) -> TimedSpan<'a> {
        TimedSpan {
            timer,
            threshold,
            start: Instant::now(),
        }
    }

    #[inline]
    pub fn finish(self) {
        let elapsed = self.start.elapsed().as_secs_f64();
        if elapsed >= self.threshold {
            self.timer.add_time(elapsed);
        }
    }
}

/// Applies `#[timethis(timer = ..., max_times = N)]`'s window once per function, on its first
/// call. Used by `#[timethis]`; not public API.
#[doc(hidden)]
#[derive(Debug)]
pub struct MaxTimesOnce(std::sync::Once);

impl MaxTimesOnce {
    #[allow(clippy::new_without_default)] // only for `static`s in generated code
    pub const fn new() -> MaxTimesOnce {
        MaxTimesOnce(std::sync::Once::new())
    }

    #[inline]
    pub fn apply(&self, timer: &Sktimer, max_times: usize) {
        self.0.call_once(|| {
            // `max_times` was checked to be at least 1 at compile time.
            let _ = timer.set_max_times(Some(max_times));
        });
    }
}
