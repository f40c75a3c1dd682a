//! A process started as a child but running `main` (built without `auto-init`, `init()` not
//! called) must not spawn: that would repeat forever. Its own test binary, because it sets the
//! child marker in this process's environment (its tests take a lock around that).

use std::time::Duration;

use skprocess::prelude::*;

/// How long any wait in these tests may take: generous, for slow shared machines. A hang fails
/// the test instead of stalling CI.
const LIMIT: Duration = Duration::from_secs(60);

#[skprocess(runs = 1)]
struct Anything;

#[skprocess]
impl Anything {
    fn __run__(&mut self) {}
}

#[test]
fn a_child_running_main_refuses_to_spawn() {
    let _guard = ENV_LOCK.lock().unwrap();
    // SAFETY: the tests of this binary take ENV_LOCK, so nothing else touches the environment
    // meanwhile.
    unsafe { std::env::set_var("SKPROCESS_CHILD", "1;x;y;z;0") };
    let result = Skprocess::new(Anything).start();
    // SAFETY: as above.
    unsafe { std::env::remove_var("SKPROCESS_CHILD") };
    match result {
        Err(ProcessError::ChildSetup { message }) => {
            assert!(message.contains("init()"), "{message}")
        }
        other => panic!("unexpected: {other:?}"),
    }
    // Once the marker is gone, spawning works.
    Skprocess::new(Anything).timeout(LIMIT).run().unwrap();
}

#[test]
fn a_pool_whose_workers_cannot_start_reports_why() {
    // The same marker makes every worker start refuse; the pool gives up with the reason.
    let _guard = ENV_LOCK.lock().unwrap();
    // SAFETY: as above.
    unsafe { std::env::set_var("SKPROCESS_CHILD", "1;x;y;z;0") };
    let result = skprocess::pool::Pool::new(2);
    // SAFETY: as above.
    unsafe { std::env::remove_var("SKPROCESS_CHILD") };
    match result {
        Err(skprocess::pool::PoolError::Spawn(error)) => {
            assert!(error.to_string().contains("init()"), "{error}");
        }
        other => panic!("unexpected: {other:?}"),
    }
}

static ENV_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
