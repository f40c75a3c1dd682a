//! `#[timethis(crate = "sk")]` where the runtime is a dependency renamed to `sk`: `::skprocess`
//! does not resolve in this crate, so every generated path must start with `sk`.

use sk::timing::Sktimer;

static SHARED: Sktimer = Sktimer::new();

// ANCHOR: renamed
// Cargo.toml: sk = { package = "skprocess-runtime", ... }
#[sk::timethis(crate = "sk")]
fn own(x: u32) -> u32 {
    x * 2
}
// ANCHOR_END: renamed

#[sk::timethis(crate = "sk", timer = SHARED, threshold = 0.0, max_times = 4)]
fn shared() {}

struct Counter {
    count: u32,
}

impl Counter {
    #[sk::timethis(crate = "sk")]
    fn bump(&mut self) -> u32 {
        self.count += 1;
        self.count
    }

    #[sk::timethis(crate = "sk", max_times = 2)]
    async fn bump_async(&mut self) -> u32 {
        self.count += 1;
        self.count
    }
}

#[test]
fn renamed_crate_function_and_method() {
    assert_eq!(own(21), 42);
    assert_eq!(own_timer().num_times(), 1);

    shared();
    shared();
    assert_eq!(SHARED.num_times(), 2);
    assert_eq!(SHARED.max_times(), Some(4));

    let mut counter = Counter { count: 0 };
    assert_eq!(counter.bump(), 1);
    assert_eq!(counter.bump(), 2);
    assert_eq!(Counter::bump_timer().num_times(), 2);

    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut future = std::pin::pin!(counter.bump_async());
    assert_eq!(future.as_mut().poll(&mut cx), std::task::Poll::Ready(3));
    assert_eq!(Counter::bump_async_timer().num_times(), 1);
    assert_eq!(Counter::bump_async_timer().max_times(), Some(2));

    let names: Vec<&str> = sk::timing::global_timers().map(|(name, _)| name).collect();
    for expected in ["timethis::own", "timethis::bump", "timethis::bump_async"] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
}
