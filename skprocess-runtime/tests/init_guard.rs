//! A process started as a child but running `main` (built without `auto-init`, `init()` not
//! called) must not spawn: that would repeat forever. Its own test binary, because it sets the
//! child marker in this process's environment.

use skprocess::prelude::*;

#[skprocess(runs = 1)]
struct Anything;

#[skprocess]
impl Anything {
    fn __run__(&mut self) {}
}

#[test]
fn a_child_running_main_refuses_to_spawn() {
    // SAFETY: this test binary has one test, and nothing else reads the environment meanwhile.
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
    Skprocess::new(Anything).run().unwrap();
}
