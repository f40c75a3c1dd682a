//! Starting a child and getting its authenticated connection: what a process handle and a pool
//! worker have in common.

use std::os::fd::{AsFd, OwnedFd};
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{IpcError, ProcessError};
use crate::wire::Conn;
use crate::wire::hub::Expectation;

/// How long a child may take to start and connect back (generous: CI machines are slow).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// A child that was started and has not connected yet.
#[derive(Debug)]
pub(crate) struct Launched {
    pub(crate) child: Child,
    pub(crate) pid: u32,
    pub(crate) pidfd: OwnedFd,
    pub(crate) expectation: Expectation,
}

/// Starts a child of this executable that will connect to this process's hub.
pub(crate) fn launch(greeter: Option<crate::wire::hub::Greeter>) -> Result<Launched, ProcessError> {
    if std::env::var_os(crate::child::ENV).is_some() {
        // Started as a child, yet running user code: built without `auto-init`, and `init()`
        // was not the first call of `main`. Spawning here would repeat forever.
        return Err(ProcessError::ChildSetup {
            message: "this process was started as a skprocess child but is running `main`: \
                      call `skprocess::init()` first thing in `main` (or enable the \
                      `auto-init` feature)"
                .into(),
        });
    }
    let hub = crate::wire::hub::hub().map_err(ProcessError::Ipc)?;
    let expectation = hub.expect(greeter);
    let spawned = crate::spawn::spawn_child(hub.name(), hub.secret(), expectation.token())
        .map_err(ProcessError::Spawn)?;
    Ok(Launched {
        pid: spawned.child.id(),
        child: spawned.child,
        pidfd: spawned.pidfd,
        expectation,
    })
}

/// Why a child never connected.
#[derive(Debug)]
pub(crate) enum ConnectFailure {
    /// It exited (or was killed) first.
    Exited,
    /// It did not connect within [`CONNECT_TIMEOUT`]; it was killed.
    TimedOut,
}

impl ConnectFailure {
    pub(crate) fn into_error(self) -> Option<ProcessError> {
        match self {
            ConnectFailure::Exited => None,
            ConnectFailure::TimedOut => {
                Some(ProcessError::Ipc(IpcError::ConnectTimeout(CONNECT_TIMEOUT)))
            }
        }
    }
}

/// Waits for the child's authenticated connection, watching for its death and the deadline.
pub(crate) fn await_connection(
    pidfd: &OwnedFd,
    expectation: &Expectation,
) -> Result<Arc<Conn>, ConnectFailure> {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        if let Some(conn) = expectation.wait(Duration::from_millis(20)) {
            return Ok(conn);
        }
        if crate::sys::poll_readable(pidfd.as_fd(), Duration::ZERO).unwrap_or(false) {
            return Err(ConnectFailure::Exited);
        }
        if Instant::now() > deadline {
            let _ = crate::sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
            return Err(ConnectFailure::TimedOut);
        }
    }
}

/// Reaps a child whose connection ended: it should be gone at once; it is killed if it lingers
/// for more than `patience`.
pub(crate) fn reap(
    mut child: Child,
    pidfd: &OwnedFd,
    patience: Duration,
) -> Option<std::process::ExitStatus> {
    if !crate::sys::poll_readable(pidfd.as_fd(), patience).unwrap_or(true) {
        let _ = crate::sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
    }
    child.wait().ok()
}
