//! Spawning children: re-execute this binary with the child marker, from one long-lived thread.
//!
//! Linux delivers `PR_SET_PDEATHSIG` when the *thread* that forked the child exits, not the
//! process, whenever the child asks for it. A user thread that starts a process and then ends
//! would otherwise take the child with it. So every spawn happens on the "skprocess-spawner"
//! thread, which lives as long as the process, and the death signal (SIGTERM, which the child
//! treats as a stop) fires only when the parent process itself is gone.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;

use crate::wire::auth::{Secret, TOKEN};

struct Request {
    command: Command,
    reply: mpsc::SyncSender<io::Result<Child>>,
}

static SPAWNER: Mutex<Option<mpsc::Sender<Request>>> = Mutex::new(None);

fn spawner() -> io::Result<mpsc::Sender<Request>> {
    let mut slot = SPAWNER.lock().unwrap_or_else(|e| e.into_inner());
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

/// A spawned child with a pidfd for race-free signalling.
#[derive(Debug)]
pub(crate) struct Spawned {
    pub(crate) child: Child,
    pub(crate) pidfd: OwnedFd,
}

/// Starts a child that will connect to `hub` with `token`, mapping the status page `status_fd`.
pub(crate) fn spawn_child(hub: &str, secret: &Secret, token: &[u8; TOKEN]) -> io::Result<Spawned> {
    let exe = executable()?;
    let mut command = Command::new(exe);
    if let Some(arg0) = std::env::args_os().next() {
        command.arg0(arg0);
    }
    command
        .env(
            crate::child::ENV,
            crate::child::marker_value(hub, secret, token, std::process::id()),
        )
        .stdin(Stdio::null());
    // No `pre_exec`: without one, std spawns with posix_spawn (vfork-like, far cheaper than a
    // fork of a large parent). The child asks for its parent-death signal itself, and receives
    // its status page over the socket.
    let (reply, answer) = mpsc::sync_channel(1);
    spawner()?
        .send(Request { command, reply })
        .map_err(|_| io::Error::other("the spawner thread is gone"))?;
    let child = answer
        .recv()
        .map_err(|_| io::Error::other("the spawner thread is gone"))??;
    let pidfd = match crate::sys::pidfd_open(child.id()) {
        Ok(fd) => fd,
        Err(e) => {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    Ok(Spawned { child, pidfd })
}
