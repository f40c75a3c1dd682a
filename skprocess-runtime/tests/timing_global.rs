//! The registry of `#[timethis]`'s own timers: `global_timers` and `clear_global_timers`.
//!
//! A separate test binary with a single test: clearing resets every registered timer of the
//! process, which would disturb tests running in parallel with it.

use skprocess::timethis;
use skprocess::timing::{self, Sktimer};

static GIVEN: Sktimer = Sktimer::new();

#[timethis]
fn first() {}

#[timethis(max_times = 4)]
fn second() {}

#[timethis(timer = GIVEN)]
fn given() {}

struct Service;

impl Service {
    #[timethis]
    fn handle(&self) {}
}

mod nested {
    #[skprocess::timethis]
    pub(crate) fn inner() {}
}

#[test]
fn global_timers_are_listed_by_name_and_cleared() {
    first();
    first();
    second();
    given();
    Service.handle();
    nested::inner();

    let mut names: Vec<&str> = timing::global_timers().map(|(name, _)| name).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "timing_global::first",
            "timing_global::handle",
            "timing_global::nested::inner",
            "timing_global::second",
        ],
        "only the own timers of #[timethis] functions, without the runtime's sentinel"
    );
    let counts = |name: &str| {
        timing::global_timers()
            .find(|(n, _)| *n == name)
            .map(|(_, timer)| timer.num_times())
    };
    assert_eq!(counts("timing_global::first"), Some(2));
    assert!(std::ptr::eq(
        timing::global_timers()
            .find(|(n, _)| *n == "timing_global::handle")
            .unwrap()
            .1,
        Service::handle_timer()
    ));

    timing::clear_global_timers();
    assert!(timing::global_timers().all(|(_, timer)| timer.num_times() == 0));
    assert_eq!(
        second_timer().max_times(),
        Some(4),
        "the window survives a reset"
    );
    assert_eq!(
        GIVEN.num_times(),
        1,
        "timers given with `timer = ...` are not touched"
    );

    // Still registered and recording.
    first();
    assert_eq!(first_timer().num_times(), 1);
    assert_eq!(counts("timing_global::first"), Some(1));
}
