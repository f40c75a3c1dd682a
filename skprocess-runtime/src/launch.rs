//! Starting a child: the one path every child takes, standalone process or pool worker.
//!
//! ```text
//! launch()            register a token with the hub, create the status page, re-execute this
//!                     binary from the spawner thread with the marker in its environment
//! Launched::connect() wait for the child's authenticated connection (watching for its death and
//!                     a deadline), send it the status page and the Start message
//! ```
//!
//! Linux delivers `PR_SET_PDEATHSIG` when the *thread* that forked the child exits, not the
//! process, whenever the child asks for it. A user thread that starts a process and then ends
//! would otherwise take the child with it. So every spawn happens on the "skprocess-spawner"
//! thread, which lives as long as the process, and the death signal (SIGTERM, which the child
//! treats as a stop) fires only when the parent process itself is gone.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{IpcError, ProcessError};
use crate::shm::StatusPage;
use crate::sync::lock;
use crate::wire::hub::Expectation;
use crate::wire::protocol::{Kind, MARKER_ENV, Marker, StartMessage};
use crate::wire::{Conn, FrameBuf};

/// How long a child may take to start and connect back (generous: CI machines are slow).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// The Start frame for entry `entry` with its `body`, the session's frame limit applied to the
/// whole frame.
pub(crate) fn start_frame(
    entry: &str,
    body: Vec<u8>,
    frame_limit: u32,
) -> Result<Vec<u8>, ProcessError> {
    let identity =
        crate::identity::executable_identity().ok_or_else(|| ProcessError::ChildSetup {
            message: "cannot read this executable's identity (no GNU build id and no readable \
                  /proc/self/exe), so a child could not prove it runs the same code"
                .into(),
        })?;
    let message = StartMessage {
        entry: entry.to_owned(),
        identity: identity.to_vec(),
        frame_limit,
        body,
        log_levels: crate::logs::LogLevels::now(),
    };
    let mut frame = FrameBuf::new(Kind::Start);
    crate::wire::codec::encode_into(frame.buf(), &message).map_err(|message| {
        ProcessError::Encode {
            what: "the start message".into(),
            message,
        }
    })?;
    frame.finish(frame_limit).map_err(ProcessError::Ipc)
}

struct Request {
    command: Command,
    reply: mpsc::SyncSender<io::Result<Child>>,
}

static SPAWNER: Mutex<Option<mpsc::Sender<Request>>> = Mutex::new(None);

fn spawner() -> io::Result<mpsc::Sender<Request>> {
    let mut slot = lock(&SPAWNER);
    if let Some(tx) = &*slot {
        return Ok(tx.clone());
    }
    let (tx, rx) = mpsc::channel::<Request>();
    std::thread::Builder::new()
        .name("skprocess-spawner".into())
        .spawn(move || {
            // Lives forever: the senders sit in a static.
            while let Ok(mut request) = rx.recv() {
                let _ = request.reply.send(request.command.spawn());
            }
        })?;
    *slot = Some(tx.clone());
    Ok(tx)
}

/// The executable to re-execute: `/proc/self/exe` (right even if the file was moved), or
/// `current_exe()`.
fn executable() -> io::Result<PathBuf> {
    let proc_self = PathBuf::from("/proc/self/exe");
    if proc_self.exists() {
        return Ok(proc_self);
    }
    std::env::current_exe()
}

/// A child that was started and has not connected yet.
#[derive(Debug)]
pub(crate) struct Launched {
    pub(crate) child: Child,
    pub(crate) pid: u32,
    pub(crate) pidfd: Arc<OwnedFd>,
    pub(crate) status: Arc<StatusPage>,
    status_fd: OwnedFd,
    expectation: Expectation,
}

/// Starts a child of this executable that will connect to this process's hub.
pub(crate) fn launch() -> Result<Launched, ProcessError> {
    if crate::child::is_unclaimed_child() {
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
    let (status, status_fd) = StatusPage::create().map_err(ProcessError::Spawn)?;
    let expectation = hub.expect();
    let marker = Marker {
        hub: hub.name().to_owned(),
        secret: hub.secret().clone(),
        token: *expectation.token(),
        parent: libc::pid_t::try_from(std::process::id()).expect("pids fit in pid_t"),
    };
    let mut command = Command::new(executable().map_err(ProcessError::Spawn)?);
    if let Some(arg0) = std::env::args_os().next() {
        command.arg0(arg0);
    }
    command
        .env(MARKER_ENV, marker.to_value())
        .stdin(Stdio::null());
    #[cfg(feature = "__testing")]
    crate::__testing::apply_child_env(&mut command);
    // No `pre_exec`: without one, std spawns with posix_spawn (vfork-like, far cheaper than a
    // fork of a large parent). The child asks for its parent-death signal itself, and receives
    // its status page over the socket.
    let (reply, answer) = mpsc::sync_channel(1);
    let gone = || ProcessError::Spawn(io::Error::other("the spawner thread is gone"));
    spawner()
        .map_err(ProcessError::Spawn)?
        .send(Request { command, reply })
        .map_err(|_| gone())?;
    let mut child = answer
        .recv()
        .map_err(|_| gone())?
        .map_err(ProcessError::Spawn)?;
    let pidfd = match crate::sys::pidfd_open(child.id()) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ProcessError::Spawn(e));
        }
    };
    Ok(Launched {
        pid: child.id(),
        child,
        pidfd: Arc::new(pidfd),
        status: Arc::new(status),
        status_fd,
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
    /// It connected, but the status page or the Start message could not be sent.
    Send(IpcError),
}

impl ConnectFailure {
    /// The error to report, if any (a child that exited is reported as a crash by whoever
    /// reaps it).
    pub(crate) fn into_error(self) -> Option<ProcessError> {
        match self {
            ConnectFailure::Exited => None,
            ConnectFailure::TimedOut => {
                Some(ProcessError::Ipc(IpcError::ConnectTimeout(CONNECT_TIMEOUT)))
            }
            ConnectFailure::Send(e) => Some(ProcessError::Ipc(e)),
        }
    }
}

impl Launched {
    /// Waits for the child's authenticated connection, watching for its death and the
    /// deadline, then sends it the status page and `start` (a whole Start frame). The
    /// connection's frame limit is set to `frame_limit`.
    pub(crate) fn connect(
        &mut self,
        start: &[u8],
        frame_limit: u32,
    ) -> Result<Arc<Conn>, ConnectFailure> {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        let conn = loop {
            if let Some(conn) = self.expectation.wait(Duration::from_millis(20)) {
                break conn;
            }
            if crate::sys::poll_readable(self.pidfd.as_fd(), Duration::ZERO).unwrap_or(false) {
                return Err(ConnectFailure::Exited);
            }
            if Instant::now() > deadline {
                self.signal(libc::SIGKILL);
                return Err(ConnectFailure::TimedOut);
            }
        };
        conn.set_limit(frame_limit);
        conn.send_with_fd(Kind::Status, &[], self.status_fd.as_fd())
            .and_then(|()| conn.send_frames(start))
            .map_err(ConnectFailure::Send)?;
        Ok(Arc::new(conn))
    }

    /// Sends `signal` to the child (never to a recycled pid).
    pub(crate) fn signal(&self, signal: i32) {
        let _ = crate::sys::pidfd_send_signal(self.pidfd.as_fd(), signal);
    }

    /// Splits into what a reaper needs once the connection phase is over.
    pub(crate) fn into_reaper(self) -> Reaper {
        Reaper {
            child: self.child,
            pidfd: self.pidfd,
        }
    }
}

/// What reaps a child: its `Child` and its pidfd.
#[derive(Debug)]
pub(crate) struct Reaper {
    child: Child,
    pidfd: Arc<OwnedFd>,
}

impl Reaper {
    /// Reaps a child whose connection ended: it should be gone at once; it is killed if it
    /// lingers for more than `patience`.
    pub(crate) fn reap(mut self, patience: Duration) -> Option<std::process::ExitStatus> {
        if !crate::sys::poll_readable(self.pidfd.as_fd(), patience).unwrap_or(true) {
            let _ = crate::sys::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL);
        }
        self.child.wait().ok()
    }
}
