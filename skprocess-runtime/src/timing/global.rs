//! The registry of the timers `#[timethis]` creates: a `linkme` distributed slice, filled at
//! link time (no code runs before `main`).

use std::fmt;

use super::Sktimer;

/// One registered timer: its name (`module::path::function`) and the timer. Built by code that
/// `#[timethis]` generates; not public API.
#[doc(hidden)]
pub struct GlobalTimer {
    name: &'static str,
    timer: &'static Sktimer,
}

impl GlobalTimer {
    pub const fn new(name: &'static str, timer: &'static Sktimer) -> GlobalTimer {
        GlobalTimer { name, timer }
    }
}

impl fmt::Debug for GlobalTimer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlobalTimer")
            .field("name", &self.name)
            .field("timer", self.timer)
            .finish()
    }
}

/// Every timer `#[timethis]` created for a function without `timer = ...`.
#[doc(hidden)]
#[linkme::distributed_slice]
pub static GLOBAL_TIMERS: [GlobalTimer];

// The runtime's own entry: an empty distributed slice breaks some linkers (lld-link, linkme
// issue 114), so there is always at least this one. It is skipped when listing.
static SENTINEL_TIMER: Sktimer = Sktimer::new();

#[linkme::distributed_slice(GLOBAL_TIMERS)]
static SENTINEL: GlobalTimer = GlobalTimer::new("", &SENTINEL_TIMER);

/// Returns the timers `#[timethis]` created, with their names.
///
/// A function marked [`#[timethis]`](crate::timethis) without `timer = ...` gets a timer of its
/// own, registered at link time under `module::path::function` (the path of the function's
/// module, then its name; for a method, the module of its `impl` block, then the method name).
/// Order is unspecified.
///
/// # Examples
///
/// ```
/// use skprocess::timethis;
/// use skprocess::timing::global_timers;
///
/// #[timethis]
/// fn parse() {}
///
/// parse();
/// let (name, timer) = global_timers()
///     .find(|(name, _)| name.ends_with("::parse"))
///     .expect("registered");
/// assert!(std::ptr::eq(timer, parse_timer()));
/// println!("{name}: {} call(s)", timer.num_times());
/// ```
pub fn global_timers() -> impl Iterator<Item = (&'static str, &'static Sktimer)> {
    GLOBAL_TIMERS
        .iter()
        .filter(|entry| !std::ptr::eq(entry.timer, &SENTINEL_TIMER))
        .map(|entry| (entry.name, entry.timer))
}

/// Resets every timer `#[timethis]` created (see [`global_timers`]): their samples are
/// forgotten, the timers stay registered and keep recording.
///
/// Useful between test cases, or in a long-running process that reports and restarts its
/// statistics periodically. Timers given with `timer = ...` are not affected.
///
/// # Examples
///
/// ```
/// use skprocess::timethis;
///
/// #[timethis]
/// fn step() {}
///
/// step();
/// assert_eq!(step_timer().num_times(), 1);
/// skprocess::timing::clear_global_timers();
/// assert_eq!(step_timer().num_times(), 0);
/// ```
pub fn clear_global_timers() {
    for (_, timer) in global_timers() {
        timer.reset();
    }
}
