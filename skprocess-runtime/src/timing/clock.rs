//! `time`, `elapsed`, `sleep` and `sleep_async`: wall-clock helpers in f64 seconds.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::timer_thread::sleep_until;

/// Returns the current time as a Unix timestamp: seconds since 1970-01-01 UTC, with a
/// fractional part.
///
/// This is wall-clock time, which can jump (NTP, a user changing the clock). It suits
/// timestamps and coarse intervals; [`Sktimer`](super::Sktimer) and
/// [`TimeThis`](super::TimeThis) measure with the monotonic [`Instant`] instead.
///
/// # Examples
///
/// ```
/// let now = skprocess::timing::time();
/// assert!(now > 1.7e9); // after November 2023
/// ```
pub fn time() -> f64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_secs_f64(),
        Err(before) => -before.duration().as_secs_f64(),
    }
}

/// Returns the seconds between the timestamp `t1` and now ([`time()`]), always non-negative.
///
/// # Examples
///
/// ```
/// use skprocess::timing;
///
/// let start = timing::time();
/// timing::sleep(0.01);
/// assert!(timing::elapsed(start) >= 0.009);
/// ```
pub fn elapsed(t1: f64) -> f64 {
    elapsed_between(t1, time())
}

/// Returns the seconds between two timestamps, always non-negative: the order of the arguments
/// does not matter.
///
/// # Examples
///
/// ```
/// use skprocess::timing::elapsed_between;
///
/// assert_eq!(elapsed_between(10.0, 12.5), 2.5);
/// assert_eq!(elapsed_between(12.5, 10.0), 2.5);
/// ```
pub fn elapsed_between(t1: f64, t2: f64) -> f64 {
    (t2 - t1).abs()
}

/// Converts seconds to a duration: negative and NaN give zero, too large saturates.
fn duration(seconds: f64) -> Duration {
    if seconds.is_nan() || seconds <= 0.0 {
        Duration::ZERO
    } else {
        Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
    }
}

/// Blocks the current thread for `seconds`, then returns the current time ([`time()`]).
///
/// A negative or NaN duration does not sleep.
///
/// # Examples
///
/// ```
/// let before = skprocess::timing::time();
/// let after = skprocess::timing::sleep(0.01);
/// assert!(after - before >= 0.009);
/// ```
pub fn sleep(seconds: f64) -> f64 {
    std::thread::sleep(duration(seconds));
    time()
}

/// Returns a future that completes `seconds` after it is first polled, with the current time
/// ([`time()`]) as its output; the async counterpart of [`sleep`].
///
/// It runs on any executor: one background thread, started on first use, wakes the waiting
/// tasks at their deadlines. Dropping the future cancels the wait. A negative or NaN duration
/// completes at once.
///
/// # Panics
///
/// The first sleep that has to wait panics if the operating system cannot start the timer
/// thread.
///
/// # Examples
///
/// ```
/// use skprocess::timing;
///
/// let start = timing::time();
/// let woke_at = futures::executor::block_on(timing::sleep_async(0.02));
/// assert!(woke_at - start >= 0.019);
/// ```
#[allow(clippy::manual_async_fn)] // the explicit signature documents `Send + Sync + 'static`
pub fn sleep_async(seconds: f64) -> impl Future<Output = f64> + Send + Sync + 'static {
    async move {
        let now = Instant::now();
        // A deadline past what `Instant` can hold is, in practice, never.
        let deadline = now
            .checked_add(duration(seconds))
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600));
        sleep_until(deadline).await;
        time()
    }
}
