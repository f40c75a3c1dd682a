//! [`Sktimer`]: the thread-safe statistical timer, and [`TimerError`].

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::thread::{self, ThreadId};
use std::time::Instant;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::stats::{Running, TimerStats, check_percent, percentile_of};
use super::stopwatch::Stopwatch;

/// What can go wrong when driving an [`Sktimer`] or a [`TimeThis`](super::TimeThis).
///
/// None of these leave the timer in a bad state: the call that failed changed nothing.
#[derive(Clone, Debug, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TimerError {
    /// [`stop`](Sktimer::stop), [`discard`](Sktimer::discard), [`lap`](Sktimer::lap),
    /// [`pause`](Sktimer::pause) or [`resume`](Sktimer::resume) was called on a thread that has
    /// no measurement in progress on this timer ([`start`](Sktimer::start) was not called there,
    /// or its measurement was already stopped).
    #[error("timer is not running on this thread")]
    NotRunning,
    /// `pause` was called while the measurement is already paused.
    #[error("timer is already paused")]
    AlreadyPaused,
    /// `resume` was called while the measurement is not paused.
    #[error("timer is not paused")]
    NotPaused,
    /// [`set_max_times`](Sktimer::set_max_times) was given `Some(0)`: a window must keep at
    /// least one sample.
    #[error("max_times must be at least 1")]
    ZeroMaxTimes,
    /// A percentile outside `0.0..=100.0` (or NaN) was asked for.
    #[error("percentile {0} is outside 0..=100")]
    PercentileOutOfRange(f64),
}

/// A thread-safe statistical timer: collects durations (in seconds) and reports their count,
/// total, mean, median, min, max, standard deviation, variance and any percentile.
///
/// Every method takes `&self`, so one timer can be shared by reference, in a `static`, or in an
/// [`Arc`](std::sync::Arc) between threads; an internal mutex orders the updates.
///
/// # Which samples each statistic covers
///
/// A timer keeps **running aggregates** over every sample recorded since it was created or
/// [`reset`](Sktimer::reset): [`num_times`](Sktimer::num_times),
/// [`total_time`](Sktimer::total_time), [`total_time_paused`](Sktimer::total_time_paused),
/// [`mean`](Sktimer::mean), [`min`](Sktimer::min), [`max`](Sktimer::max), their indices,
/// [`variance`](Sktimer::variance) and [`stdev`](Sktimer::stdev). These stay exact whatever the
/// window: the mean and variance use Welford's algorithm, the totals compensated summation.
///
/// It also **keeps the samples** themselves: all of them by default, or only the most recent
/// `max_times` ([`with_max_times`](Sktimer::with_max_times),
/// [`set_max_times`](Sktimer::set_max_times)). [`median`](Sktimer::median),
/// [`percentile`](Sktimer::percentile), [`get_time`](Sktimer::get_time) and
/// [`times`](Sktimer::times) read the kept samples. A window bounds the memory of a timer that
/// records forever (a process loop) and keeps its percentiles about recent behaviour.
///
/// Indices ([`most_recent_index`](Sktimer::most_recent_index),
/// [`fastest_index`](Sktimer::fastest_index), [`slowest_index`](Sktimer::slowest_index)) are
/// positions in the whole sequence of samples since the last reset; ties report the first.
///
/// # Measuring
///
/// [`add_time`](Sktimer::add_time) records a duration you measured yourself.
/// [`start`](Sktimer::start) and [`stop`](Sktimer::stop) measure one: each thread has its own
/// stack of measurements on a timer, so threads can time concurrently into the same timer, and a
/// `start` while a measurement is running on the same thread begins a nested one, which the next
/// `stop` ends. [`pause`](Sktimer::pause) and [`resume`](Sktimer::resume) exclude a stretch of
/// time from the measurement; the excluded time is added to
/// [`total_time_paused`](Sktimer::total_time_paused). For a scope or a closure,
/// [`TimeThis`](super::TimeThis) is simpler; for a whole function, [`#[timethis]`](crate::timethis).
///
/// # Sharing and sending
///
/// `Clone` copies the recorded data (not the measurements in progress). The serde
/// implementations carry the running aggregates, the window and the kept samples, so a timer
/// filled in a child process arrives whole in its parent; [`merge_from`](Sktimer::merge_from)
/// folds one timer's samples into another.
///
/// # Examples
///
/// ```
/// use skprocess::timing::Sktimer;
///
/// let timer = Sktimer::new();
/// for _ in 0..5 {
///     timer.start();
///     std::hint::black_box((0..1_000).sum::<u64>());
///     timer.stop()?;
/// }
/// timer.add_time(0.25);
///
/// assert_eq!(timer.num_times(), 6);
/// assert_eq!(timer.max(), Some(0.25));
/// assert_eq!(timer.slowest_index(), Some(5));
/// println!("mean {:?} s, p95 {:?} s", timer.mean(), timer.percentile(95.0)?);
/// # Ok::<(), skprocess::timing::TimerError>(())
/// ```
///
/// A `static` timer needs no setup:
///
/// ```
/// use skprocess::timing::Sktimer;
///
/// static REQUESTS: Sktimer = Sktimer::with_max_times(1_000);
///
/// REQUESTS.add_time(0.003);
/// assert_eq!(REQUESTS.max_times(), Some(1_000));
/// ```
pub struct Sktimer {
    inner: Mutex<Inner>,
}

struct Inner {
    running: Running,
    /// The kept samples, oldest first; at most `max_times` of them.
    kept: VecDeque<f64>,
    max_times: Option<usize>,
    /// Measurements in progress, one stack per thread. A `Vec` rather than a map so that
    /// `Sktimer::new` can be `const`; it holds only threads with a measurement running.
    frames: Vec<ThreadFrames>,
}

struct ThreadFrames {
    thread: ThreadId,
    stack: Vec<Stopwatch>,
}

impl Inner {
    const fn new(max_times: Option<usize>) -> Inner {
        Inner {
            running: Running::EMPTY,
            kept: VecDeque::new(),
            max_times,
            frames: Vec::new(),
        }
    }

    fn record(&mut self, elapsed: f64, paused: f64) {
        self.running.push(elapsed, paused);
        if let Some(max) = self.max_times
            && self.kept.len() >= max
        {
            self.kept.pop_front();
        }
        self.kept.push_back(elapsed);
    }

    fn trim(&mut self) {
        if let Some(max) = self.max_times
            && self.kept.len() > max
        {
            let excess = self.kept.len() - max;
            self.kept.drain(..excess);
        }
    }

    fn stack(&mut self, thread: ThreadId) -> Option<&mut Vec<Stopwatch>> {
        self.frames
            .iter_mut()
            .find(|f| f.thread == thread)
            .map(|f| &mut f.stack)
    }

    /// The innermost measurement of `thread`.
    fn top(&mut self, thread: ThreadId) -> Result<&mut Stopwatch, TimerError> {
        self.stack(thread)
            .and_then(|stack| stack.last_mut())
            .ok_or(TimerError::NotRunning)
    }

    /// Removes and returns the innermost measurement of `thread`.
    fn pop(&mut self, thread: ThreadId) -> Result<Stopwatch, TimerError> {
        let position = self
            .frames
            .iter()
            .position(|f| f.thread == thread)
            .ok_or(TimerError::NotRunning)?;
        let stack = &mut self.frames[position].stack;
        let frame = stack.pop().ok_or(TimerError::NotRunning)?;
        if stack.is_empty() {
            self.frames.swap_remove(position);
        }
        Ok(frame)
    }
}

// `#[shared]`: a timer in a Share records the samples every process adds. The measurements
// (`start`, `stop`, ...) belong to the thread that runs them, so they stay off the proxy: measure
// locally (`TimeThis`) and `add_time` the result.
#[crate::share::shared]
impl Sktimer {
    /// Creates an empty timer that keeps every sample.
    ///
    /// `const`, so a timer can live in a `static`.
    ///
    /// # Examples
    ///
    /// ```
    /// use skprocess::timing::Sktimer;
    ///
    /// static TIMER: Sktimer = Sktimer::new();
    /// assert_eq!(TIMER.num_times(), 0);
    /// assert_eq!(TIMER.max_times(), None);
    /// ```
    #[must_use]
    pub const fn new() -> Sktimer {
        Sktimer {
            inner: Mutex::new(Inner::new(None)),
        }
    }

    /// Creates an empty timer that keeps only the most recent `max_times` samples for
    /// [`median`](Sktimer::median), [`percentile`](Sktimer::percentile),
    /// [`get_time`](Sktimer::get_time) and [`times`](Sktimer::times). The other statistics still
    /// cover every sample.
    ///
    /// # Panics
    ///
    /// Panics if `max_times` is 0 (at compile time in a `static`).
    ///
    /// # Examples
    ///
    /// ```
    /// use skprocess::timing::Sktimer;
    ///
    /// let timer = Sktimer::with_max_times(2);
    /// for t in [3.0, 1.0, 2.0] {
    ///     timer.add_time(t);
    /// }
    /// assert_eq!(timer.times(), [1.0, 2.0]); // the window
    /// assert_eq!(timer.max(), Some(3.0)); // every sample
    /// ```
    #[must_use]
    pub const fn with_max_times(max_times: usize) -> Sktimer {
        assert!(
            max_times > 0,
            "Sktimer::with_max_times: max_times must be at least 1"
        );
        Sktimer {
            inner: Mutex::new(Inner::new(Some(max_times))),
        }
    }

    #[shared(skip)]
    fn lock(&self) -> MutexGuard<'_, Inner> {
        crate::sync::lock(&self.inner)
    }

    // ----- control -------------------------------------------------------------------------

    /// Starts a measurement on the current thread.
    ///
    /// If one is already running on this thread, a nested measurement begins; the next
    /// [`stop`](Sktimer::stop) (or `discard`) on this thread ends the innermost one. Other
    /// threads' measurements are independent.
    ///
    /// # Examples
    ///
    /// ```
    /// let timer = skprocess::timing::Sktimer::new();
    /// timer.start(); // outer
    /// timer.start(); // inner
    /// let inner = timer.stop()?;
    /// let outer = timer.stop()?;
    /// assert!(outer >= inner);
    /// assert_eq!(timer.num_times(), 2);
    /// # Ok::<(), skprocess::timing::TimerError>(())
    /// ```
    #[shared(skip)]
    pub fn start(&self) {
        let thread = thread::current().id();
        let mut inner = self.lock();
        let now = Instant::now();
        match inner.stack(thread) {
            Some(stack) => stack.push(Stopwatch::start_at(now)),
            None => inner.frames.push(ThreadFrames {
                thread,
                stack: vec![Stopwatch::start_at(now)],
            }),
        }
    }

    /// Ends the current thread's innermost measurement and records it.
    ///
    /// Returns the recorded time in seconds: the time since [`start`](Sktimer::start) minus the
    /// time spent paused (which goes to [`total_time_paused`](Sktimer::total_time_paused)).
    ///
    /// # Errors
    ///
    /// [`TimerError::NotRunning`] if no measurement is running on this thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let timer = skprocess::timing::Sktimer::new();
    /// assert!(timer.stop().is_err());
    /// timer.start();
    /// let elapsed = timer.stop()?;
    /// assert_eq!(timer.most_recent(), Some(elapsed));
    /// # Ok::<(), skprocess::timing::TimerError>(())
    /// ```
    #[shared(skip)]
    pub fn stop(&self) -> Result<f64, TimerError> {
        let now = Instant::now();
        let thread = thread::current().id();
        let mut inner = self.lock();
        let (elapsed, paused) = inner.pop(thread)?.read(now);
        inner.record(elapsed, paused);
        Ok(elapsed)
    }

    /// Ends the current thread's innermost measurement without recording it, and returns its
    /// time in seconds (paused time excluded).
    ///
    /// Use it when a measurement turns out to be meaningless, such as an attempt that failed.
    ///
    /// # Errors
    ///
    /// [`TimerError::NotRunning`] if no measurement is running on this thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let timer = skprocess::timing::Sktimer::new();
    /// timer.start();
    /// timer.discard()?;
    /// assert_eq!(timer.num_times(), 0);
    /// # Ok::<(), skprocess::timing::TimerError>(())
    /// ```
    #[shared(skip)]
    pub fn discard(&self) -> Result<f64, TimerError> {
        let now = Instant::now();
        let thread = thread::current().id();
        Ok(self.lock().pop(thread)?.read(now).0)
    }

    /// Records the time since the current thread's innermost measurement started (or since its
    /// last lap) and starts the next lap at once. Returns the recorded time in seconds.
    ///
    /// # Errors
    ///
    /// [`TimerError::NotRunning`] if no measurement is running on this thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let timer = skprocess::timing::Sktimer::new();
    /// timer.start();
    /// for _ in 0..3 {
    ///     timer.lap()?;
    /// }
    /// timer.discard()?; // drop the fourth, unfinished lap
    /// assert_eq!(timer.num_times(), 3);
    /// # Ok::<(), skprocess::timing::TimerError>(())
    /// ```
    #[shared(skip)]
    pub fn lap(&self) -> Result<f64, TimerError> {
        let now = Instant::now();
        let thread = thread::current().id();
        let mut inner = self.lock();
        let top = inner.top(thread)?;
        let (elapsed, paused) = top.read(now);
        *top = Stopwatch::start_at(now);
        inner.record(elapsed, paused);
        Ok(elapsed)
    }

    /// Pauses the current thread's innermost measurement: time until
    /// [`resume`](Sktimer::resume) is not counted.
    ///
    /// # Errors
    ///
    /// [`TimerError::NotRunning`] if no measurement is running on this thread,
    /// [`TimerError::AlreadyPaused`] if it is paused.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let timer = skprocess::timing::Sktimer::new();
    /// timer.start();
    /// timer.pause()?;
    /// std::thread::sleep(Duration::from_millis(50)); // not counted
    /// timer.resume()?;
    /// let elapsed = timer.stop()?;
    /// assert!(elapsed < 0.05);
    /// assert!(timer.total_time_paused() >= 0.05);
    /// # Ok::<(), skprocess::timing::TimerError>(())
    /// ```
    #[shared(skip)]
    pub fn pause(&self) -> Result<(), TimerError> {
        let now = Instant::now();
        let thread = thread::current().id();
        self.lock().top(thread)?.pause(now)
    }

    /// Resumes the current thread's innermost measurement after [`pause`](Sktimer::pause).
    ///
    /// # Errors
    ///
    /// [`TimerError::NotRunning`] if no measurement is running on this thread,
    /// [`TimerError::NotPaused`] if it is not paused.
    #[shared(skip)]
    pub fn resume(&self) -> Result<(), TimerError> {
        let now = Instant::now();
        let thread = thread::current().id();
        self.lock().top(thread)?.resume(now)
    }

    /// Records a duration measured elsewhere, in seconds.
    ///
    /// Cheap: one lock, O(1) updates, and no allocation once the window (if any) is full.
    ///
    /// # Caveats
    ///
    /// The value is recorded as given. Durations are expected to be finite and non-negative; a
    /// NaN makes the mean, total and variance NaN until the next [`reset`](Sktimer::reset).
    ///
    /// # Examples
    ///
    /// ```
    /// let timer = skprocess::timing::Sktimer::new();
    /// timer.add_time(1.5);
    /// timer.add_time(2.5);
    /// assert_eq!(timer.mean(), Some(2.0));
    /// ```
    pub fn add_time(&self, seconds: f64) {
        self.lock().record(seconds, 0.0);
    }

    /// Records a measurement and the paused time it excluded.
    pub(crate) fn record_measurement(&self, seconds: f64, paused: f64) {
        self.lock().record(seconds, paused);
    }

    /// Sets the window: keep only the most recent `max_times` samples (`None`: keep all).
    ///
    /// Shrinking the window drops the oldest kept samples at once. The running aggregates are
    /// not affected.
    ///
    /// # Errors
    ///
    /// [`TimerError::ZeroMaxTimes`] for `Some(0)`; the window is then left as it was.
    ///
    /// # Examples
    ///
    /// ```
    /// let timer = skprocess::timing::Sktimer::new();
    /// for t in [1.0, 2.0, 3.0] {
    ///     timer.add_time(t);
    /// }
    /// timer.set_max_times(Some(1))?;
    /// assert_eq!(timer.times(), [3.0]);
    /// assert_eq!(timer.num_times(), 3);
    /// assert!(timer.set_max_times(Some(0)).is_err());
    /// # Ok::<(), skprocess::timing::TimerError>(())
    /// ```
    pub fn set_max_times(&self, max_times: Option<usize>) -> Result<(), TimerError> {
        if max_times == Some(0) {
            return Err(TimerError::ZeroMaxTimes);
        }
        let mut inner = self.lock();
        inner.max_times = max_times;
        inner.trim();
        Ok(())
    }

    /// Forgets every sample and every measurement in progress, as if the timer were new. The
    /// window size is kept.
    ///
    /// # Examples
    ///
    /// ```
    /// let timer = skprocess::timing::Sktimer::with_max_times(10);
    /// timer.add_time(1.0);
    /// timer.reset();
    /// assert_eq!(timer.num_times(), 0);
    /// assert_eq!(timer.max_times(), Some(10));
    /// ```
    pub fn reset(&self) {
        let mut inner = self.lock();
        inner.running = Running::EMPTY;
        inner.kept.clear();
        inner.frames.clear();
    }

    /// Appends every sample of `other` to this timer, as if they had been recorded here after
    /// this timer's own samples.
    ///
    /// The running aggregates combine exactly (counts, totals, min, max and their indices, and
    /// Chan's formula for mean and variance). `other`'s kept samples are appended to this timer's
    /// kept samples, then this timer's window applies. `other` is not changed; merging a timer
    /// into itself doubles its samples.
    ///
    /// # Examples
    ///
    /// ```
    /// use skprocess::timing::Sktimer;
    ///
    /// let total = Sktimer::new();
    /// let worker = Sktimer::new();
    /// total.add_time(1.0);
    /// worker.add_time(3.0);
    /// total.merge_from(&worker);
    /// assert_eq!(total.num_times(), 2);
    /// assert_eq!(total.mean(), Some(2.0));
    /// assert_eq!(total.slowest_index(), Some(1));
    /// ```
    #[shared(skip)]
    pub fn merge_from(&self, other: &Sktimer) {
        // Copy `other` first and release its lock: never hold two timers' locks at once, so
        // `a.merge_from(&b)` racing `b.merge_from(&a)` (or `a.merge_from(&a)`) cannot deadlock.
        let (running, kept) = {
            let other = other.lock();
            (other.running, other.kept.clone())
        };
        if running.count == 0 {
            return;
        }
        let mut inner = self.lock();
        inner.running.merge(&running);
        let skip = match inner.max_times {
            Some(max) => kept.len().saturating_sub(max),
            None => 0,
        };
        inner.kept.extend(kept.iter().skip(skip));
        inner.trim();
    }

    // ----- statistics ----------------------------------------------------------------------

    /// Returns how many samples were recorded since the timer was created or reset (every
    /// sample, whatever the window).
    pub fn num_times(&self) -> usize {
        self.lock().running.count as usize
    }

    /// Returns the last recorded sample, in seconds; `None` when empty.
    pub fn most_recent(&self) -> Option<f64> {
        let inner = self.lock();
        (inner.running.count > 0).then_some(inner.running.last)
    }

    /// Returns the position of the last recorded sample (`num_times() - 1`); `None` when empty.
    pub fn most_recent_index(&self) -> Option<usize> {
        (self.lock().running.count as usize).checked_sub(1)
    }

    /// Returns the sum of every sample, in seconds (0 when empty).
    pub fn total_time(&self) -> f64 {
        self.lock().running.total.value()
    }

    /// Returns the time excluded from the samples by [`pause`](Sktimer::pause), summed over
    /// every sample, in seconds (0 when nothing was paused).
    pub fn total_time_paused(&self) -> f64 {
        self.lock().running.paused.value()
    }

    /// Returns the mean of every sample, in seconds; `None` when empty.
    pub fn mean(&self) -> Option<f64> {
        let inner = self.lock();
        (inner.running.count > 0).then_some(inner.running.mean)
    }

    /// Returns the median of the kept samples, in seconds (the mean of the two middle ones for
    /// an even count); `None` when empty.
    pub fn median(&self) -> Option<f64> {
        let mut kept = self.times();
        percentile_of(&mut kept, 50.0)
    }

    /// Returns the smallest sample (the fastest), in seconds; `None` when empty.
    pub fn min(&self) -> Option<f64> {
        let inner = self.lock();
        (inner.running.count > 0).then_some(inner.running.min)
    }

    /// Returns the largest sample (the slowest), in seconds; `None` when empty.
    pub fn max(&self) -> Option<f64> {
        let inner = self.lock();
        (inner.running.count > 0).then_some(inner.running.max)
    }

    /// Returns the position of the first smallest sample among all samples since the last
    /// reset; `None` when empty.
    pub fn fastest_index(&self) -> Option<usize> {
        let inner = self.lock();
        (inner.running.count > 0).then_some(inner.running.min_index as usize)
    }

    /// Returns the position of the first largest sample among all samples since the last
    /// reset; `None` when empty.
    pub fn slowest_index(&self) -> Option<usize> {
        let inner = self.lock();
        (inner.running.count > 0).then_some(inner.running.max_index as usize)
    }

    /// Returns the sample variance (divided by n − 1) of every sample, in seconds²; `None` with
    /// fewer than two samples.
    pub fn variance(&self) -> Option<f64> {
        self.lock().running.variance()
    }

    /// Returns the sample standard deviation (n − 1) of every sample, in seconds; `None` with
    /// fewer than two samples.
    ///
    /// # Examples
    ///
    /// ```
    /// let timer = skprocess::timing::Sktimer::new();
    /// timer.add_time(1.0);
    /// assert_eq!(timer.stdev(), None);
    /// timer.add_time(3.0);
    /// assert_eq!(timer.variance(), Some(2.0));
    /// assert_eq!(timer.stdev(), Some(2.0_f64.sqrt()));
    /// ```
    pub fn stdev(&self) -> Option<f64> {
        self.variance().map(f64::sqrt)
    }

    /// Returns the `percent` percentile (0–100) of the kept samples, in seconds, interpolating
    /// linearly between the two nearest ranks at `percent / 100 * (n - 1)` (numpy's `"linear"`
    /// method); `Ok(None)` when empty.
    ///
    /// # Errors
    ///
    /// [`TimerError::PercentileOutOfRange`] when `percent` is not within `0.0..=100.0` (NaN
    /// included), even when the timer is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// let timer = skprocess::timing::Sktimer::new();
    /// for t in [0.1, 0.4, 0.2, 0.3] {
    ///     timer.add_time(t);
    /// }
    /// assert_eq!(timer.percentile(0.0)?, Some(0.1));
    /// assert_eq!(timer.percentile(100.0)?, Some(0.4));
    /// assert!(timer.percentile(120.0).is_err());
    /// # Ok::<(), skprocess::timing::TimerError>(())
    /// ```
    pub fn percentile(&self, percent: f64) -> Result<Option<f64>, TimerError> {
        check_percent(percent)?;
        let mut kept = self.times();
        Ok(percentile_of(&mut kept, percent))
    }

    /// Returns the kept sample at `index`, oldest first (0 is the oldest kept sample); `None`
    /// past the end.
    ///
    /// Without a window (and without merging windowed timers in), this is the sample recorded at
    /// position `index`. With a window of `n`, only the last `n` samples are kept, so index 0 is
    /// the oldest of those.
    ///
    /// # Examples
    ///
    /// ```
    /// let timer = skprocess::timing::Sktimer::with_max_times(2);
    /// for t in [1.0, 2.0, 3.0] {
    ///     timer.add_time(t);
    /// }
    /// assert_eq!(timer.get_time(0), Some(2.0));
    /// assert_eq!(timer.get_time(1), Some(3.0));
    /// assert_eq!(timer.get_time(2), None);
    /// ```
    pub fn get_time(&self, index: usize) -> Option<f64> {
        self.lock().kept.get(index).copied()
    }

    /// Returns a copy of the kept samples, oldest first.
    pub fn times(&self) -> Vec<f64> {
        self.lock().kept.iter().copied().collect()
    }

    /// Returns the window size: how many recent samples are kept (`None`: all of them).
    pub fn max_times(&self) -> Option<usize> {
        self.lock().max_times
    }

    /// Returns a frozen snapshot of every statistic; `None` when empty.
    ///
    /// One lock for a consistent view, instead of one per statistic.
    ///
    /// # Examples
    ///
    /// ```
    /// let timer = skprocess::timing::Sktimer::new();
    /// assert!(timer.get_stats().is_none());
    /// timer.add_time(0.5);
    /// let stats = timer.get_stats().unwrap();
    /// assert_eq!((stats.num_times, stats.median, stats.stdev), (1, 0.5, None));
    /// ```
    pub fn get_stats(&self) -> Option<TimerStats> {
        let (running, kept, max_times) = {
            let inner = self.lock();
            if inner.running.count == 0 {
                return None;
            }
            (
                inner.running,
                inner.kept.iter().copied().collect::<Vec<f64>>(),
                inner.max_times,
            )
        };
        TimerStats::new(&running, kept, max_times)
    }
}

impl Default for Sktimer {
    fn default() -> Sktimer {
        Sktimer::new()
    }
}

/// Copies the recorded samples, the aggregates and the window; measurements in progress are
/// not copied. The copy is independent of the original.
impl Clone for Sktimer {
    fn clone(&self) -> Sktimer {
        let inner = self.lock();
        Sktimer {
            inner: Mutex::new(Inner {
                running: inner.running,
                kept: inner.kept.clone(),
                max_times: inner.max_times,
                frames: Vec::new(),
            }),
        }
    }
}

impl fmt::Debug for Sktimer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        let count = inner.running.count;
        f.debug_struct("Sktimer")
            .field("num_times", &count)
            .field("total_time", &inner.running.total.value())
            .field("mean", &(count > 0).then_some(inner.running.mean))
            .field("max_times", &inner.max_times)
            .field("kept", &inner.kept.len())
            .finish_non_exhaustive()
    }
}

// ----- serde -------------------------------------------------------------------------------
//
// A timer travels as its recorded data: the running aggregates, the window and the kept
// samples. Measurements in progress are per-thread and stay behind. The layout is a plain
// struct of fixed fields (no flatten, no untagged, nothing skipped), so positional formats (the
// wire's own, bincode) decode it.

#[derive(Serialize)]
#[serde(rename = "Sktimer")]
struct TimerDataRef<'a> {
    running: &'a Running,
    max_times: Option<usize>,
    kept: &'a VecDeque<f64>,
}

#[derive(Deserialize)]
#[serde(rename = "Sktimer")]
struct TimerData {
    running: Running,
    max_times: Option<usize>,
    kept: VecDeque<f64>,
}

impl Serialize for Sktimer {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let inner = self.lock();
        TimerDataRef {
            running: &inner.running,
            max_times: inner.max_times,
            kept: &inner.kept,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Sktimer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Sktimer, D::Error> {
        let data = TimerData::deserialize(deserializer)?;
        let running = &data.running;
        let kept = data.kept.len() as u64;
        let problem = if data.max_times == Some(0) {
            Some("max_times must be at least 1")
        } else if kept > running.count || (running.count > 0 && kept == 0) {
            Some("the kept samples do not match the sample count")
        } else if data.max_times.is_some_and(|max| data.kept.len() > max) {
            Some("more kept samples than max_times")
        } else if running.count > 0
            && (running.min_index >= running.count || running.max_index >= running.count)
        {
            Some("an index is past the sample count")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(serde::de::Error::custom(format_args!(
                "invalid Sktimer: {problem}"
            )));
        }
        Ok(Sktimer {
            inner: Mutex::new(Inner {
                running: data.running,
                kept: data.kept,
                max_times: data.max_times,
                frames: Vec::new(),
            }),
        })
    }
}
