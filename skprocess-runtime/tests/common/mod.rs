//! Helpers shared by the integration tests (`mod common;` in each test crate).

// Each test crate uses some of these, not all.
#![allow(dead_code)]

use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long any wait in these tests may take: generous, for slow shared machines. A hang fails
/// the test instead of stalling CI.
pub(crate) const LIMIT: Duration = Duration::from_secs(60);

/// Runs `f` on a helper thread and returns its value; panics if it has not returned within
/// `limit` (a panic in `f` is passed on). Bounds the calls that take no deadline of their own.
pub(crate) fn within<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let helper = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("no answer within {limit:?}: a hang"),
        Err(mpsc::RecvTimeoutError::Disconnected) => match helper.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the helper ended without an answer"),
        },
    }
}

/// Waits, reaping, until `pid` (a child of this process, directly or by reparenting to it as a
/// subreaper) has exited; returns whether it did within `limit`.
pub(crate) fn reaped_within(pid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        // SAFETY: waitpid on a process that is our child (directly, or by reparenting).
        let rc = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        if rc == pid
            || (rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD))
        {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `command.output()`, waiting at most `limit` for the command to exit: past that, it is killed
/// and the test fails.
pub(crate) fn output_within(command: &mut Command, limit: Duration) -> Output {
    // As `output()` does: stdin from nowhere, stdout and stderr captured.
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            // SAFETY: our own child, not reaped yet (its waiter is still waiting).
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("the command did not exit within {limit:?}");
        }
    }
}
