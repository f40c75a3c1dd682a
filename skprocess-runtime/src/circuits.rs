//! Circuit breakers: count failures, and pause (or stop) once there are too many.
//!
//! - [`Circuit`] trips after `num_shorts_to_trip` failures ([`short`](Circuit::short)): it
//!   sleeps, then carries on by itself. For rate limits and passing failures.
//! - [`BreakingCircuit`] breaks after `num_shorts_to_trip` failures: it sleeps, then stays
//!   [`broken`](BreakingCircuit::broken) until [`reset`](BreakingCircuit::reset). For "stop after
//!   too many failures" and coordinated shutdown.
//!
//! Both are thread-safe (`&self` everywhere); the sleep happens outside the lock, so other
//! threads are never held up by it. Each sleeping method has an async twin (`short_async`,
//! `trip_async`) that waits with [`timing::sleep_async`](crate::timing::sleep_async), on any
//! executor. [`AsyncCircuit`] and [`AsyncBreakingCircuit`] are the same circuits with the async
//! methods under the plain names (`circuit.short(None).await`), for code that is async
//! throughout.
//!
//! Sleep times grow by `backoff_factor` (capped at `max_sleep_time`): on every trip for a
//! `Circuit`, on every `reset()` for a `BreakingCircuit`. `jitter` spreads each sleep over
//! `[1 - jitter, 1 + jitter]` times its length, so that processes tripped together do not all
//! wake together.
//!
//! ```
//! use skprocess::circuits::Circuit;
//!
//! let circuit = Circuit::new(3, 0.01);
//! let mut tripped = 0;
//! for _ in 0..7 {
//!     // a call failed
//!     if circuit.short(None) {
//!         tripped += 1; // it slept 10 ms, the counter starts over
//!     }
//! }
//! assert_eq!(tripped, 2);
//! assert_eq!(circuit.times_shorted(), 1);
//! assert_eq!(circuit.total_trips(), 2);
//! assert_eq!(circuit.total_failures(), 7);
//! ```
//!
//! Differences from the Python original: `short` checks the threshold and trips under one lock
//! (two threads cannot both trip on the same failure); a `BreakingCircuit`'s `total_trips`
//! counts breaks, not shorts (the original counts every short there), and both circuits count
//! every failure in `total_failures`; `num_shorts_to_trip` is at least 1, and a
//! `backoff_factor` under 1 is taken as 1 (the original would shrink the sleep).

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::share::{ShareError, shared};

/// The settings both circuits share.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct Settings {
    num_shorts_to_trip: u32,
    sleep_time_after_trip: f64,
    backoff_factor: f64,
    max_sleep_time: f64,
    jitter: f64,
}

impl Settings {
    fn new(num_shorts_to_trip: u32, sleep_time_after_trip: f64) -> Settings {
        Settings {
            num_shorts_to_trip: num_shorts_to_trip.max(1),
            sleep_time_after_trip: non_negative(sleep_time_after_trip),
            backoff_factor: 1.0,
            max_sleep_time: 30.0,
            jitter: 0.0,
        }
    }

    /// The next sleep after backoff: `min(current * factor, max)`.
    fn backed_off(&self, current: f64) -> f64 {
        if self.backoff_factor == 1.0 {
            current
        } else {
            (current * self.backoff_factor).min(self.max_sleep_time)
        }
    }

    /// `seconds` spread by the jitter.
    fn jittered(&self, seconds: f64) -> f64 {
        if self.jitter == 0.0 || seconds <= 0.0 {
            return seconds;
        }
        let mut bytes = [0u8; 8];
        crate::sys::random_bytes(&mut bytes);
        // A uniform number in [0, 1) from 53 random bits.
        let unit = (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64;
        let factor = 1.0 - self.jitter + 2.0 * self.jitter * unit;
        (seconds * factor).max(0.0)
    }
}

fn non_negative(seconds: f64) -> f64 {
    if seconds.is_nan() || seconds < 0.0 {
        0.0
    } else {
        seconds
    }
}

/// The counters, behind each circuit's lock.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    times_shorted: u32,
    total_trips: u64,
    total_failures: u64,
    current_sleep_time: f64,
    broken: bool,
}

impl State {
    fn new(settings: &Settings) -> State {
        State {
            times_shorted: 0,
            total_trips: 0,
            total_failures: 0,
            current_sleep_time: settings.sleep_time_after_trip,
            broken: false,
        }
    }

    /// Counts one short; whether the shorts reached `needed` (the circuit trips or breaks).
    fn shorted(&mut self, needed: u32) -> bool {
        self.total_failures += 1;
        self.times_shorted += 1;
        self.times_shorted >= needed
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // The counters stay consistent whatever panicked while the lock was held (no user code runs
    // under it), so a poisoned lock is used as it is.
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn sleep_for(seconds: f64) {
    if seconds > 0.0 {
        std::thread::sleep(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX));
    }
}

async fn sleep_async_for(seconds: f64) {
    if seconds > 0.0 {
        crate::timing::sleep_async(seconds).await;
    }
}

/// After a short: sleeps what it asks (if it tripped); whether it tripped.
fn sleep_after(short: Option<f64>) -> bool {
    short.map(sleep_for).is_some()
}

/// [`sleep_after`], waiting without blocking the thread.
async fn sleep_after_async(short: Option<f64>) -> bool {
    match short {
        Some(seconds) => {
            sleep_async_for(seconds).await;
            true
        }
        None => false,
    }
}

/// Builder methods both circuits take.
macro_rules! settings_builders {
    () => {
        /// Multiplies the sleep time by `factor` after each trip (see the type's docs for
        /// when), up to [`max_sleep_time`](Self::max_sleep_time). 1.0 (the default) keeps it
        /// constant; values under 1.0 are taken as 1.0.
        pub fn backoff_factor(mut self, factor: f64) -> Self {
            self.settings.backoff_factor = if factor.is_nan() || factor < 1.0 {
                1.0
            } else {
                factor
            };
            self
        }

        /// The longest sleep backoff can reach, in seconds (default 30).
        pub fn max_sleep_time(mut self, seconds: f64) -> Self {
            self.settings.max_sleep_time = non_negative(seconds);
            self
        }

        /// Spreads each sleep over `[1 - jitter, 1 + jitter]` times its length, a fraction
        /// clamped to `[0, 1]` (0.2 means ±20%; the default 0 means exact sleeps).
        pub fn jitter(mut self, jitter: f64) -> Self {
            self.settings.jitter = if jitter.is_nan() {
                0.0
            } else {
                jitter.clamp(0.0, 1.0)
            };
            self
        }
    };
}

/// A circuit that trips after `num_shorts_to_trip` failures, sleeps, and carries on.
///
/// Backoff grows the sleep on every trip.
///
/// In a [`Share`](crate::share::Share), every process counts into the same circuit through a
/// [`CircuitProxy`]; the coordinator only counts, and the sleep after a trip happens in the
/// process that tripped it ([`CircuitProxy::short`]).
#[derive(Debug, Serialize, Deserialize)]
pub struct Circuit {
    settings: Settings,
    state: Mutex<State>,
}

impl Circuit {
    /// A circuit that trips after `num_shorts_to_trip` shorts (at least 1) and then sleeps
    /// `sleep_time_after_trip` seconds.
    pub fn new(num_shorts_to_trip: u32, sleep_time_after_trip: f64) -> Circuit {
        let settings = Settings::new(num_shorts_to_trip, sleep_time_after_trip);
        Circuit {
            state: Mutex::new(State::new(&settings)),
            settings,
        }
    }

    settings_builders!();

    /// Counts a failure. On the `num_shorts_to_trip`-th since the last trip, trips: sleeps
    /// (`custom_sleep` seconds if given, else the current sleep time, with jitter), resets the
    /// count and applies backoff. Returns whether it tripped.
    pub fn short(&self, custom_sleep: Option<f64>) -> bool {
        sleep_after(self.record_short(custom_sleep))
    }

    /// Trips now, whatever the count, and sleeps. Returns `true` (it always trips).
    pub fn trip(&self, custom_sleep: Option<f64>) -> bool {
        sleep_for(self.record_trip(custom_sleep));
        true
    }

    /// [`short`](Self::short), waiting without blocking the thread.
    pub async fn short_async(&self, custom_sleep: Option<f64>) -> bool {
        sleep_after_async(self.record_short(custom_sleep)).await
    }

    /// [`trip`](Self::trip), waiting without blocking the thread.
    pub async fn trip_async(&self, custom_sleep: Option<f64>) -> bool {
        sleep_async_for(self.record_trip(custom_sleep)).await;
        true
    }

    /// Trips with the lock held; returns the sleep, jitter applied.
    fn trip_locked(&self, state: &mut State, custom_sleep: Option<f64>) -> f64 {
        let seconds = custom_sleep.map_or(state.current_sleep_time, non_negative);
        state.total_trips += 1;
        state.times_shorted = 0;
        state.current_sleep_time = self.settings.backed_off(state.current_sleep_time);
        self.settings.jittered(seconds)
    }
}

#[shared(crate = "crate")]
impl Circuit {
    /// How many shorts trip the circuit.
    pub fn num_shorts_to_trip(&self) -> u32 {
        self.settings.num_shorts_to_trip
    }

    /// The sleep after a trip before any backoff, in seconds.
    pub fn sleep_time_after_trip(&self) -> f64 {
        self.settings.sleep_time_after_trip
    }

    /// Shorts since the last trip.
    pub fn times_shorted(&self) -> u32 {
        lock(&self.state).times_shorted
    }

    /// Trips over the circuit's life.
    pub fn total_trips(&self) -> u64 {
        lock(&self.state).total_trips
    }

    /// Failures over the circuit's life: every `short` and every `trip`.
    pub fn total_failures(&self) -> u64 {
        lock(&self.state).total_failures
    }

    /// The sleep of the next trip (before jitter), in seconds.
    pub fn current_sleep_time(&self) -> f64 {
        lock(&self.state).current_sleep_time
    }

    /// Puts the sleep time back to `sleep_time_after_trip`, undoing the backoff (after a
    /// success, say).
    pub fn reset_backoff(&self) {
        lock(&self.state).current_sleep_time = self.settings.sleep_time_after_trip;
    }

    /// [`short`](Self::short) without the sleep: counts the failure and, when it trips,
    /// returns the seconds the caller should sleep (jitter applied). For callers that wait in
    /// their own way, and for a Share, whose coordinator must never sleep.
    pub fn record_short(&self, custom_sleep: Option<f64>) -> Option<f64> {
        let mut state = lock(&self.state);
        let needed = self.settings.num_shorts_to_trip;
        state
            .shorted(needed)
            .then(|| self.trip_locked(&mut state, custom_sleep))
    }

    /// [`trip`](Self::trip) without the sleep: returns the seconds to sleep.
    pub fn record_trip(&self, custom_sleep: Option<f64>) -> f64 {
        let mut state = lock(&self.state);
        state.total_failures += 1;
        self.trip_locked(&mut state, custom_sleep)
    }
}

impl CircuitProxy {
    /// [`Circuit::short`] through a Share: the coordinator counts the failure for every
    /// process, and the sleep after a trip happens here, in the caller.
    pub fn short(&self, custom_sleep: Option<f64>) -> Result<bool, ShareError> {
        Ok(sleep_after(self.record_short(custom_sleep)?))
    }

    /// [`Circuit::trip`] through a Share; the sleep happens here.
    pub fn trip(&self, custom_sleep: Option<f64>) -> Result<bool, ShareError> {
        sleep_for(self.record_trip(custom_sleep)?);
        Ok(true)
    }

    /// [`short`](Self::short), waiting out the sleep without blocking the thread (the call to
    /// the Share itself is an ordinary blocking call, of a few microseconds).
    pub async fn short_async(&self, custom_sleep: Option<f64>) -> Result<bool, ShareError> {
        Ok(sleep_after_async(self.record_short(custom_sleep)?).await)
    }

    /// [`trip`](Self::trip), waiting out the sleep without blocking the thread (the call to
    /// the Share itself is an ordinary blocking call).
    pub async fn trip_async(&self, custom_sleep: Option<f64>) -> Result<bool, ShareError> {
        sleep_async_for(self.record_trip(custom_sleep)?).await;
        Ok(true)
    }
}

/// A circuit that breaks after `num_shorts_to_trip` failures, sleeps, and stays
/// [`broken`](Self::broken) until [`reset`](Self::reset).
///
/// Backoff grows the sleep on every `reset()`: the next break sleeps longer.
///
/// In a [`Share`](crate::share::Share), one process breaking it is seen by all
/// ([`BreakingCircuitProxy::broken`]); the sleep after a break happens in the process that broke
/// it ([`BreakingCircuitProxy::short`]).
///
/// ```
/// use skprocess::circuits::BreakingCircuit;
///
/// let breaker = BreakingCircuit::new(3, 0.0);
/// let mut attempts = 0;
/// while !breaker.broken() {
///     attempts += 1; // a call that fails
///     breaker.short(None);
/// }
/// assert_eq!(attempts, 3);
/// breaker.reset();
/// assert!(!breaker.broken());
/// ```
#[derive(Debug, Serialize, Deserialize)]
pub struct BreakingCircuit {
    settings: Settings,
    state: Mutex<State>,
}

impl BreakingCircuit {
    /// A circuit that breaks after `num_shorts_to_trip` shorts (at least 1) and then sleeps
    /// `sleep_time_after_trip` seconds.
    pub fn new(num_shorts_to_trip: u32, sleep_time_after_trip: f64) -> BreakingCircuit {
        let settings = Settings::new(num_shorts_to_trip, sleep_time_after_trip);
        BreakingCircuit {
            state: Mutex::new(State::new(&settings)),
            settings,
        }
    }

    settings_builders!();

    /// Counts a failure. On the `num_shorts_to_trip`-th since the last break or reset, breaks:
    /// sleeps (`custom_sleep` seconds if given, else the current sleep time, with jitter) and
    /// stays broken. Returns whether this short broke it.
    pub fn short(&self, custom_sleep: Option<f64>) -> bool {
        sleep_after(self.record_short(custom_sleep))
    }

    /// Breaks now, whatever the count, and sleeps.
    pub fn trip(&self, custom_sleep: Option<f64>) {
        sleep_for(self.record_trip(custom_sleep));
    }

    /// [`short`](Self::short), waiting without blocking the thread.
    pub async fn short_async(&self, custom_sleep: Option<f64>) -> bool {
        sleep_after_async(self.record_short(custom_sleep)).await
    }

    /// [`trip`](Self::trip), waiting without blocking the thread.
    pub async fn trip_async(&self, custom_sleep: Option<f64>) {
        sleep_async_for(self.record_trip(custom_sleep)).await;
    }

    fn break_locked(&self, state: &mut State, custom_sleep: Option<f64>) -> f64 {
        let seconds = custom_sleep.map_or(state.current_sleep_time, non_negative);
        state.broken = true;
        state.total_trips += 1;
        state.times_shorted = 0;
        self.settings.jittered(seconds)
    }
}

#[shared(crate = "crate")]
impl BreakingCircuit {
    /// How many shorts break the circuit.
    pub fn num_shorts_to_trip(&self) -> u32 {
        self.settings.num_shorts_to_trip
    }

    /// The sleep after a break before any backoff, in seconds.
    pub fn sleep_time_after_trip(&self) -> f64 {
        self.settings.sleep_time_after_trip
    }

    /// Whether the circuit is broken (until [`reset`](Self::reset)).
    pub fn broken(&self) -> bool {
        lock(&self.state).broken
    }

    /// Shorts since the last break or reset.
    pub fn times_shorted(&self) -> u32 {
        lock(&self.state).times_shorted
    }

    /// Breaks over the circuit's life.
    pub fn total_trips(&self) -> u64 {
        lock(&self.state).total_trips
    }

    /// Failures over the circuit's life: every `short` and every `trip`.
    pub fn total_failures(&self) -> u64 {
        lock(&self.state).total_failures
    }

    /// The sleep of the next break (before jitter), in seconds.
    pub fn current_sleep_time(&self) -> f64 {
        lock(&self.state).current_sleep_time
    }

    /// Makes the circuit operational again: not broken, count cleared, and backoff applied
    /// to the sleep of the next break.
    pub fn reset(&self) {
        let mut state = lock(&self.state);
        state.broken = false;
        state.times_shorted = 0;
        state.current_sleep_time = self.settings.backed_off(state.current_sleep_time);
    }

    /// Puts the sleep time back to `sleep_time_after_trip`, undoing the backoff. The broken
    /// state stays as it is (that is [`reset`](Self::reset)).
    pub fn reset_backoff(&self) {
        lock(&self.state).current_sleep_time = self.settings.sleep_time_after_trip;
    }

    /// [`short`](Self::short) without the sleep: counts the failure and, when it breaks the
    /// circuit, returns the seconds the caller should sleep (jitter applied).
    pub fn record_short(&self, custom_sleep: Option<f64>) -> Option<f64> {
        let mut state = lock(&self.state);
        let needed = self.settings.num_shorts_to_trip;
        state
            .shorted(needed)
            .then(|| self.break_locked(&mut state, custom_sleep))
    }

    /// [`trip`](Self::trip) without the sleep: returns the seconds to sleep.
    pub fn record_trip(&self, custom_sleep: Option<f64>) -> f64 {
        let mut state = lock(&self.state);
        state.total_failures += 1;
        self.break_locked(&mut state, custom_sleep)
    }
}

impl BreakingCircuitProxy {
    /// [`BreakingCircuit::short`] through a Share: the coordinator counts the failure for
    /// every process, and the sleep after a break happens here, in the caller.
    pub fn short(&self, custom_sleep: Option<f64>) -> Result<bool, ShareError> {
        Ok(sleep_after(self.record_short(custom_sleep)?))
    }

    /// [`BreakingCircuit::trip`] through a Share; the sleep happens here.
    pub fn trip(&self, custom_sleep: Option<f64>) -> Result<(), ShareError> {
        sleep_for(self.record_trip(custom_sleep)?);
        Ok(())
    }

    /// [`short`](Self::short), waiting out the sleep without blocking the thread (the call to
    /// the Share itself is an ordinary blocking call, of a few microseconds).
    pub async fn short_async(&self, custom_sleep: Option<f64>) -> Result<bool, ShareError> {
        Ok(sleep_after_async(self.record_short(custom_sleep)?).await)
    }

    /// [`trip`](Self::trip), waiting out the sleep without blocking the thread (the call to
    /// the Share itself is an ordinary blocking call).
    pub async fn trip_async(&self, custom_sleep: Option<f64>) -> Result<(), ShareError> {
        sleep_async_for(self.record_trip(custom_sleep)?).await;
        Ok(())
    }
}

/// A [`Circuit`] for async code: `short` and `trip` wait without blocking the thread.
///
/// The counters and settings are the inner circuit's (`Deref`).
///
/// ```
/// use skprocess::circuits::AsyncCircuit;
///
/// let circuit = AsyncCircuit::new(2, 0.01);
/// futures::executor::block_on(async {
///     assert!(!circuit.short(None).await);
///     assert!(circuit.short(None).await); // tripped: waited 10 ms without blocking
/// });
/// assert_eq!(circuit.total_trips(), 1);
/// ```
#[derive(Debug)]
pub struct AsyncCircuit(Circuit);

impl AsyncCircuit {
    /// See [`Circuit::new`].
    pub fn new(num_shorts_to_trip: u32, sleep_time_after_trip: f64) -> AsyncCircuit {
        AsyncCircuit(Circuit::new(num_shorts_to_trip, sleep_time_after_trip))
    }

    /// See [`Circuit::backoff_factor`].
    pub fn backoff_factor(self, factor: f64) -> AsyncCircuit {
        AsyncCircuit(self.0.backoff_factor(factor))
    }

    /// See [`Circuit::max_sleep_time`].
    pub fn max_sleep_time(self, seconds: f64) -> AsyncCircuit {
        AsyncCircuit(self.0.max_sleep_time(seconds))
    }

    /// See [`Circuit::jitter`].
    pub fn jitter(self, jitter: f64) -> AsyncCircuit {
        AsyncCircuit(self.0.jitter(jitter))
    }

    /// [`Circuit::short`], waiting without blocking the thread.
    pub async fn short(&self, custom_sleep: Option<f64>) -> bool {
        self.0.short_async(custom_sleep).await
    }

    /// [`Circuit::trip`], waiting without blocking the thread.
    pub async fn trip(&self, custom_sleep: Option<f64>) -> bool {
        self.0.trip_async(custom_sleep).await
    }
}

impl std::ops::Deref for AsyncCircuit {
    type Target = Circuit;

    fn deref(&self) -> &Circuit {
        &self.0
    }
}

/// A [`BreakingCircuit`] for async code: `short` and `trip` wait without blocking the thread.
///
/// The counters, `broken`, `reset` and the settings are the inner circuit's (`Deref`).
#[derive(Debug)]
pub struct AsyncBreakingCircuit(BreakingCircuit);

impl AsyncBreakingCircuit {
    /// See [`BreakingCircuit::new`].
    pub fn new(num_shorts_to_trip: u32, sleep_time_after_trip: f64) -> AsyncBreakingCircuit {
        AsyncBreakingCircuit(BreakingCircuit::new(
            num_shorts_to_trip,
            sleep_time_after_trip,
        ))
    }

    /// See [`BreakingCircuit::backoff_factor`].
    pub fn backoff_factor(self, factor: f64) -> AsyncBreakingCircuit {
        AsyncBreakingCircuit(self.0.backoff_factor(factor))
    }

    /// See [`BreakingCircuit::max_sleep_time`].
    pub fn max_sleep_time(self, seconds: f64) -> AsyncBreakingCircuit {
        AsyncBreakingCircuit(self.0.max_sleep_time(seconds))
    }

    /// See [`BreakingCircuit::jitter`].
    pub fn jitter(self, jitter: f64) -> AsyncBreakingCircuit {
        AsyncBreakingCircuit(self.0.jitter(jitter))
    }

    /// [`BreakingCircuit::short`], waiting without blocking the thread.
    pub async fn short(&self, custom_sleep: Option<f64>) -> bool {
        self.0.short_async(custom_sleep).await
    }

    /// [`BreakingCircuit::trip`], waiting without blocking the thread.
    pub async fn trip(&self, custom_sleep: Option<f64>) {
        self.0.trip_async(custom_sleep).await
    }
}

impl std::ops::Deref for AsyncBreakingCircuit {
    type Target = BreakingCircuit;

    fn deref(&self) -> &BreakingCircuit {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_on_trip_for_a_circuit_and_is_capped() {
        let circuit = Circuit::new(1, 1.0).backoff_factor(2.0).max_sleep_time(5.0);
        let mut sleeps = Vec::new();
        for _ in 0..5 {
            sleeps.push(circuit.current_sleep_time());
            // Trip without sleeping: the custom sleep replaces this trip's sleep only.
            assert!(circuit.trip(Some(0.0)));
        }
        assert_eq!(sleeps, [1.0, 2.0, 4.0, 5.0, 5.0]);
        circuit.reset_backoff();
        assert_eq!(circuit.current_sleep_time(), 1.0);
        assert_eq!(circuit.total_trips(), 5);
        assert_eq!(circuit.total_failures(), 5);
    }

    #[test]
    fn backoff_grows_on_reset_for_a_breaking_circuit() {
        let breaker = BreakingCircuit::new(2, 1.0).backoff_factor(3.0);
        assert!(!breaker.short(Some(0.0)));
        assert!(breaker.short(Some(0.0)));
        assert!(breaker.broken());
        assert_eq!(breaker.times_shorted(), 0);
        assert_eq!(breaker.current_sleep_time(), 1.0, "no backoff until reset");
        breaker.reset();
        assert!(!breaker.broken());
        assert_eq!(breaker.current_sleep_time(), 3.0);
        breaker.trip(Some(0.0));
        assert!(breaker.broken());
        assert_eq!(breaker.total_trips(), 2, "breaks, not shorts");
        assert_eq!(breaker.total_failures(), 3);
        breaker.reset_backoff();
        assert!(
            breaker.broken(),
            "reset_backoff leaves the broken state alone"
        );
        assert_eq!(breaker.current_sleep_time(), 1.0);
    }

    #[test]
    fn jitter_stays_within_its_band() {
        let settings = Settings {
            jitter: 0.2,
            ..Settings::new(1, 1.0)
        };
        for _ in 0..1000 {
            let s = settings.jittered(1.0);
            assert!((0.8..=1.2).contains(&s), "{s}");
        }
        let clamped = Circuit::new(1, 1.0).jitter(7.0);
        assert_eq!(clamped.settings.jitter, 1.0);
        assert_eq!(Circuit::new(1, 1.0).jitter(-1.0).settings.jitter, 0.0);
    }

    #[test]
    fn odd_settings_are_made_sane() {
        let c = Circuit::new(0, -3.0)
            .backoff_factor(0.5)
            .max_sleep_time(f64::NAN);
        assert_eq!(c.num_shorts_to_trip(), 1);
        assert_eq!(c.sleep_time_after_trip(), 0.0);
        assert_eq!(c.settings.backoff_factor, 1.0);
        assert_eq!(c.settings.max_sleep_time, 0.0);
        assert!(c.short(Some(-5.0)), "a negative custom sleep is no sleep");
    }

    #[test]
    fn concurrent_shorts_trip_exactly_once_per_threshold() {
        let circuit = std::sync::Arc::new(Circuit::new(10, 0.0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let circuit = std::sync::Arc::clone(&circuit);
                std::thread::spawn(move || (0..1000).filter(|_| circuit.short(None)).count())
            })
            .collect();
        let trips: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(trips, 800);
        assert_eq!(circuit.total_trips(), 800);
        assert_eq!(circuit.total_failures(), 8000);
        assert_eq!(circuit.times_shorted(), 0);
    }
}
