//! Timing: a thread-safe statistical timer, scope and function timing, and clock helpers.
//!
//! **Every figure in this module is an `f64` number of seconds**, like
//! [`Duration::as_secs_f64`](std::time::Duration::as_secs_f64): what you pass to
//! [`Sktimer::add_time`], [`sleep`] and thresholds, and what comes back from
//! [`Sktimer::stop`], [`Sktimer::mean`], [`TimerStats`] and [`time`]. One unit everywhere means
//! no conversions between a timer, a threshold and a printout.
//!
//! ```
//! use skprocess::timethis;
//! use skprocess::timing::{Sktimer, TimeThis};
//!
//! // A function timed on every call, into a timer of its own.
//! #[timethis]
//! fn checksum(data: &[u8]) -> u32 {
//!     data.iter().map(|&b| u32::from(b)).sum()
//! }
//!
//! for _ in 0..10 {
//!     checksum(b"hello");
//! }
//! let timer: &Sktimer = checksum_timer();
//! assert_eq!(timer.num_times(), 10);
//!
//! // A scope, timed into a timer you own.
//! let io = Sktimer::new();
//! {
//!     let _timing = TimeThis::with(&io);
//!     // ... work ...
//! }
//! println!("mean {:?} s, p99 {:?} s", io.mean(), io.percentile(99.0)?);
//! # Ok::<(), skprocess::timing::TimerError>(())
//! ```
//!
//! # What is here
//!
//! - [`Sktimer`]: collects durations and reports count, total, mean, median, min, max, standard
//!   deviation, variance and percentiles; thread-safe, `const`-constructible, serializable,
//!   with an optional window of recent samples. [`TimerStats`] is a frozen snapshot of it.
//! - [`TimeThis`]: times a scope (a guard), a closure ([`TimeThis::run`]) or a future
//!   ([`TimeThis::run_async`]), with pause/resume and a threshold.
//! - [`#[timethis]`](crate::timethis): times every call of a function or method, sync or async.
//!   [`global_timers`] lists the timers it creates, [`clear_global_timers`] resets them.
//! - [`time`], [`elapsed`], [`elapsed_between`], [`sleep`] and [`sleep_async`] (an
//!   executor-agnostic async sleep).
//!
//! # Differences from Python's `suitkaise.timing`
//!
//! - Paused time is recorded in [`Sktimer::total_time_paused`] for every way of measuring (the
//!   original records 0 for `TimeThis`).
//! - Count, total, mean, min, max and variance cover every sample even with a `max_times`
//!   window; median and percentiles cover the window (the original drops old samples from
//!   every statistic).
//! - Misuse returns a [`TimerError`] instead of printing a warning.

mod clock;
pub(crate) mod global;
pub(crate) mod sktimer;
mod stats;
mod stopwatch;
// `timer_thread::sleep_until` is reusable for async timeouts elsewhere in the runtime.
pub(crate) mod timer_thread;
pub(crate) mod timethis;

pub use self::clock::{elapsed, elapsed_between, sleep, sleep_async, time};
pub use self::global::{clear_global_timers, global_timers};
pub use self::sktimer::{Sktimer, SktimerProxy, TimerError};
pub use self::stats::TimerStats;
pub use self::timethis::{TimeThis, Timed};
