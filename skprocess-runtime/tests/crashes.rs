//! A child that fails in every way a child can fail gives the parent a typed error, promptly,
//! and never a hang.

use std::time::{Duration, Instant};

use skprocess::prelude::*;
use skprocess::{ExitInfo, FailureKind};

mod common;
use common::{LIMIT, within};

#[skprocess(runs = 3)]
struct Panics;

#[skprocess]
impl Panics {
    fn __run__(&mut self, cx: &mut Context) {
        if cx.current_run() == 1 {
            panic!("boom on run {}", cx.current_run());
        }
    }
}

#[test]
fn a_panic_in_run_is_a_typed_error_with_message_and_location() {
    let err = Skprocess::new(Panics).timeout(LIMIT).run().unwrap_err();
    match &err {
        ProcessError::Section {
            section: Section::Run,
            current_run: 1,
            failure,
        } => {
            assert_eq!(failure.message(), "boom on run 1");
            assert!(failure.is_panic());
            let location = failure.panic_location().expect("a location");
            assert!(location.contains("tests/crashes.rs"), "{location}");
            assert!(matches!(failure.kind(), FailureKind::Panic { .. }));
        }
        other => panic!("unexpected: {other:?}"),
    }
    assert!(err.to_string().contains("boom on run 1"), "{err}");
}

#[skprocess(runs = 1)]
struct Aborts;

#[skprocess]
impl Aborts {
    fn __run__(&mut self) {
        std::process::abort();
    }
}

#[test]
fn an_abort_is_a_crash_with_sigabrt() {
    let err = Skprocess::new(Aborts).timeout(LIMIT).run().unwrap_err();
    match err {
        ProcessError::Crashed { exit, .. } => {
            assert_eq!(exit.signal(), Some(libc::SIGABRT), "{exit}");
        }
        other => panic!("unexpected: {other:?}"),
    }
}

#[skprocess(runs = 1)]
struct Segfaults;

#[skprocess]
impl Segfaults {
    fn __run__(&mut self) {
        // A write through a null pointer: a real segmentation fault, not a raised signal.
        let null = std::hint::black_box(std::ptr::null_mut::<u64>());
        // SAFETY: not safe at all; crashing the child is the point of this test.
        unsafe { null.write_volatile(7) };
    }
}

#[test]
fn a_segfault_is_a_crash_with_sigsegv() {
    let err = Skprocess::new(Segfaults).timeout(LIMIT).run().unwrap_err();
    match err {
        ProcessError::Crashed { exit, .. } => {
            assert_eq!(exit.signal(), Some(libc::SIGSEGV), "{exit}");
            assert!(exit.to_string().contains("SIGSEGV"), "{exit}");
        }
        other => panic!("unexpected: {other:?}"),
    }
}

/// Runs until stopped, counting.
#[skprocess]
struct Forever {
    count: u64,
}

#[skprocess]
impl Forever {
    fn __run__(&mut self) {
        self.count += 1;
        std::thread::sleep(Duration::from_millis(1));
    }

    fn __result__(&mut self) -> u64 {
        self.count
    }
}

#[test]
fn a_sigkill_from_outside_is_a_crash_without_a_hang() {
    let process = Skprocess::new(Forever { count: 0 });
    process.start().unwrap();
    let pid = process.pid().unwrap();
    // let it get going
    let deadline = Instant::now() + LIMIT;
    while process.current_run() < 3 {
        assert!(Instant::now() < deadline, "the child never ran");
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: sending a signal to our own child, which has not been reaped (it is running).
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    // The point is that the un-timed `result()` returns: it runs on a helper thread, bounded.
    let (result, process) = within(LIMIT, move || (process.result(), process));
    match result.unwrap_err() {
        ProcessError::Crashed {
            pid: crashed,
            exit,
            current_run,
        } => {
            assert_eq!(crashed, pid);
            assert_eq!(
                exit,
                ExitInfo::Signal {
                    number: libc::SIGKILL,
                    name: "SIGKILL".into()
                }
            );
            assert!(current_run >= 3, "{current_run}");
        }
        other => panic!("unexpected: {other:?}"),
    }
    assert!(!process.is_alive());
}

#[test]
fn kill_through_the_handle_is_reported_as_killed() {
    let process = Skprocess::new(Forever { count: 0 });
    process.start().unwrap();
    process.kill().unwrap();
    assert!(!process.is_alive());
    assert!(matches!(
        process.timeout(LIMIT).result(),
        Err(ProcessError::Killed { .. })
    ));
    assert!(matches!(
        process.timeout(LIMIT).result(),
        Err(ProcessError::ResultTaken)
    ));
}

#[test]
fn stop_ends_an_endless_process_gracefully() {
    let process = Skprocess::new(Forever { count: 0 });
    process.start().unwrap();
    let deadline = Instant::now() + LIMIT;
    while process.current_run() < 2 {
        assert!(Instant::now() < deadline, "the child never ran");
        std::thread::sleep(Duration::from_millis(5));
    }
    process.stop();
    let count = process.timeout(LIMIT).result().unwrap();
    assert!(count >= 2, "{count}");
    assert!(process.current_run() as u64 >= count - 1);
}

#[test]
fn dropping_a_running_handle_kills_and_reaps_the_child() {
    let process = Skprocess::new(Forever { count: 0 });
    process.start().unwrap();
    let pid = process.pid().unwrap() as i32;
    drop(process);
    // Reaped: the pid is no longer ours to wait for (ECHILD), and no zombie is left.
    // SAFETY: waitpid with WNOHANG on our own (former) child.
    let rc = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
    assert_eq!(rc, -1, "the child was not reaped");
    // SAFETY: existence check only.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    assert!(!alive, "the child still exists");
}

#[skprocess(runs = 5, timeouts(run = 0.3))]
struct Sleeper;

#[skprocess]
impl Sleeper {
    fn __prerun__(&mut self, cx: &mut Context) -> Result<(), TellError> {
        cx.tell("run starts")
    }

    fn __run__(&mut self) {
        std::thread::sleep(Duration::from_secs(60));
    }
}

#[test]
fn a_300ms_section_timeout_fires_long_before_a_second() {
    let process = Skprocess::new(Sleeper);
    process.start().unwrap();
    let _: String = process.listen_timeout(LIMIT).unwrap();
    let section_started = Instant::now();
    let err = process.timeout(LIMIT).result().unwrap_err();
    let elapsed = section_started.elapsed();
    match err {
        ProcessError::Timeout {
            section: Section::Run,
            timeout,
            current_run: 0,
        } => assert_eq!(timeout, Duration::from_millis(300)),
        other => panic!("unexpected: {other:?}"),
    }
    // The original rounds 0.3 s up to a whole second; the section here sleeps for a minute.
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
}
