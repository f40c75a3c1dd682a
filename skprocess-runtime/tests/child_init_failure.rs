//! A start hook that fails: the parent gets a typed error naming it, for a process and for a
//! pool, and a pool does not keep starting workers that fail the same way.
//!
//! Whether the hook fails is decided by a variable of the children's environment, so the tests
//! of this binary take turns (one lock).

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use skprocess::__testing::{clear_child_env, set_child_env};
use skprocess::pool::{Pool, PoolError};
use skprocess::prelude::*;

mod common;
use common::LIMIT;

/// What the first hook does: `err`, `panic`, or nothing.
const MODE: &str = "SKPROCESS_TEST_HOOK_MODE";
/// A file each run of the first hook appends a line to.
const RUNS_FILE: &str = "SKPROCESS_TEST_HOOK_RUNS";

static TURN: Mutex<()> = Mutex::new(());

#[child_init]
fn read_settings() -> Result<(), String> {
    if let Some(path) = std::env::var_os(RUNS_FILE) {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| e.to_string())?;
        writeln!(file, "{}", std::process::id()).map_err(|e| e.to_string())?;
    }
    match std::env::var(MODE).as_deref() {
        Ok("err") => Err("the settings file is missing".into()),
        Ok("panic") => panic!("the settings are garbage"),
        _ => Ok(()),
    }
}

/// Runs after `read_settings`; it must not run once that one failed.
#[child_init(order = 1)]
fn after_the_settings() {
    if std::env::var_os(MODE).is_some() {
        panic!("a hook ran after a failed one");
    }
}

#[skprocess(runs = 1)]
struct Work;

#[skprocess]
impl Work {
    fn __run__(&mut self) {
        panic!("user code ran after a failed hook");
    }
}

fn double(x: u32) -> u32 {
    x * 2
}

/// Sets the mode for children started while the guard lives, and a fresh runs file.
struct Scenario {
    _turn: MutexGuard<'static, ()>,
    runs: PathBuf,
}

impl Scenario {
    fn new(mode: &str) -> Scenario {
        let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        let runs = std::env::temp_dir().join(format!(
            "skprocess-hook-runs-{}-{mode}-{:?}",
            std::process::id(),
            Instant::now()
        ));
        let _ = std::fs::remove_file(&runs);
        set_child_env(MODE, mode);
        set_child_env(RUNS_FILE, runs.to_str().unwrap());
        Scenario { _turn: turn, runs }
    }

    /// How many times the first hook ran.
    fn runs(&self) -> usize {
        std::fs::read_to_string(&self.runs)
            .map(|text| text.lines().count())
            .unwrap_or(0)
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        clear_child_env(MODE);
        clear_child_env(RUNS_FILE);
        let _ = std::fs::remove_file(&self.runs);
    }
}

#[test]
fn a_process_whose_hook_returns_an_error_fails_with_it() {
    let scenario = Scenario::new("err");
    let error = Skprocess::new(Work).timeout(LIMIT).run().unwrap_err();
    let ProcessError::ChildInit { hook, failure } = &error else {
        panic!("not a hook's error: {error:?}");
    };
    assert_eq!(hook, "child_init_failure::read_settings");
    assert_eq!(failure.message(), "the settings file is missing");
    assert!(!failure.is_panic());
    assert_eq!(error.failure(), Some(failure));
    assert_eq!(
        error.to_string(),
        "#[child_init] hook `child_init_failure::read_settings` failed: the settings file is missing"
    );
    assert_eq!(scenario.runs(), 1);
}

#[test]
fn a_process_whose_hook_panics_fails_with_the_panic() {
    let _scenario = Scenario::new("panic");
    let process = Skprocess::new(Work);
    process.start().unwrap();
    assert!(process.wait_timeout(LIMIT).unwrap());
    let error = process.result().unwrap_err();
    let ProcessError::ChildInit { hook, failure } = &error else {
        panic!("not a hook's error: {error:?}");
    };
    assert_eq!(hook, "child_init_failure::read_settings");
    assert_eq!(failure.message(), "the settings are garbage");
    assert!(failure.is_panic());
    let location = failure.panic_location().expect("the panic's location");
    assert!(location.contains("child_init_failure.rs"), "{location}");
}

#[test]
fn a_pool_whose_hook_fails_fails_its_calls_and_stops_starting_workers() {
    let scenario = Scenario::new("err");
    let expect_hook_error = |error: PoolError| {
        let PoolError::Spawn(ProcessError::ChildInit { hook, failure }) = &error else {
            panic!("not a hook's error: {error:?}");
        };
        assert_eq!(hook, "child_init_failure::read_settings");
        assert_eq!(failure.message(), "the settings file is missing");
    };
    // `build` waits until each worker ran its hooks (and initializer), so the pool is not
    // built; the other arm is kept in case the first failure comes after the build one day.
    match Pool::new(3) {
        Err(error) => expect_hook_error(error),
        Ok(pool) => {
            let started = Instant::now();
            expect_hook_error(pool.timeout(LIMIT).map(double, 0..10).unwrap_err());
            assert!(
                started.elapsed() < LIMIT,
                "the call waited for its deadline"
            );
            // Later calls fail at once with the same error.
            expect_hook_error(pool.timeout(LIMIT).map(double, [1]).unwrap_err());
            assert!(pool.pids().is_empty(), "{:?}", pool.pids());
        }
    }
    // At most one start per worker, and no more later: a slot whose hook failed is not
    // restarted (a worker still starting when the build fails is killed, maybe before its
    // hooks ran).
    std::thread::sleep(Duration::from_millis(300));
    let runs = scenario.runs();
    assert!((1..=3).contains(&runs), "{runs} starts for 3 workers");
}

#[test]
fn the_next_hook_runs_after_a_passing_one() {
    let scenario = Scenario::new("pass");
    // `after_the_settings` panics whenever MODE is set: that is a failure too, of the second
    // hook, which shows that it runs after the first.
    let error = Skprocess::new(Work).timeout(LIMIT).run().unwrap_err();
    let ProcessError::ChildInit { hook, .. } = &error else {
        panic!("not a hook's error: {error:?}");
    };
    assert_eq!(hook, "child_init_failure::after_the_settings");
    assert_eq!(scenario.runs(), 1);
    drop(scenario);
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.timeout(LIMIT).map(double, 0..4).unwrap(), [0, 2, 4, 6]);
}
