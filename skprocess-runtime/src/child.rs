//! The child side: how a re-executed binary becomes a child process instead of running `main`.
//!
//! The parent starts the child with the environment variable `SKPROCESS_CHILD` holding the
//! hub's name, the session secret, this child's token and the status page's descriptor. A
//! constructor in this crate (an `.init_array` entry, run by the loader before `main`) sees the
//! variable, removes it from the environment (so that the child's own children start clean),
//! connects back, authenticates, runs the requested entry and leaves with `exit`: `main` never
//! runs in a child. Programs built without the `auto-init` feature call [`init`] first thing in
//! `main` instead.

use std::io::Write;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::ProcessConfig;
use crate::engine::{Engine, Outcome};
use crate::error::{IpcError, ProcessError};
use crate::inbox::Inbox;
use crate::lifecycle::{ChildLink, Lifecycle, ProcessTimers};
use crate::shm::StatusPage;
use crate::wire::auth::{Secret, TOKEN, unhex};
use crate::wire::frame::{MAX_FRAME, read_frame};
use crate::wire::{Conn, Frame, Kind, decode, encode};

/// The environment variable that marks a child process.
pub(crate) const ENV: &str = "SKPROCESS_CHILD";

/// How long a child keeps going after its parent disappeared (to finish the current section and
/// run `__onfinish__`) before it exits hard.
pub(crate) const PARENT_GONE_GRACE: Duration = Duration::from_secs(2);

/// The stack of the thread that runs a child's work (and of timed sections): the size of a
/// main thread's stack on Linux, so that code that runs in `main` runs in a child too.
pub(crate) const CHILD_STACK: usize = 8 << 20;

/// Exit codes of a child that could not do its work (documented in the book).
pub(crate) mod exit_code {
    pub(crate) const OK: i32 = 0;
    pub(crate) const BAD_MARKER: i32 = 64;
    pub(crate) const CANNOT_CONNECT: i32 = 71;
    pub(crate) const SETUP_FAILED: i32 = 72;
    pub(crate) const PARENT_GONE: i32 = 75;
    pub(crate) const RUNTIME_PANIC: i32 = 101;
}

#[cfg(all(feature = "auto-init", target_os = "linux"))]
#[used]
#[unsafe(link_section = ".init_array")]
static AUTO_INIT: extern "C" fn() = auto_init;

#[cfg(all(feature = "auto-init", target_os = "linux"))]
extern "C" fn auto_init() {
    become_child_if_marked();
}

/// Runs this process as a skprocess child if it was started as one; returns at once otherwise.
///
/// With the default `auto-init` feature a constructor does this before `main`, and calling
/// `init` is harmless (it returns at once). Without the feature, call it as the very first
/// thing in `main`: in a child it never returns (everything before it runs in every child).
///
/// # Caveats
///
/// Without `auto-init`, processes cannot be spawned from tests run by the standard test
/// harness: the re-executed test binary runs the harness's `main`, not yours, so `init` is
/// never reached. Keep `auto-init` for programs with tests that spawn.
pub fn init() {
    become_child_if_marked();
}

fn become_child_if_marked() {
    // Touch the registry so its entries (and this constructor) stay linked.
    std::hint::black_box(&crate::registry::PROCESSES);
    let Some(marker) = std::env::var_os(ENV) else {
        return;
    };
    // SAFETY: called from the constructor, before `main` and before any other thread exists,
    // or as the first line of `main` (documented on `init`).
    unsafe { std::env::remove_var(ENV) };
    let marker = marker.to_string_lossy().into_owned();
    let code = std::thread::Builder::new()
        .name("skprocess-child".into())
        .stack_size(CHILD_STACK)
        .spawn(move || child_main(&marker))
        .map(|thread| thread.join().unwrap_or(exit_code::RUNTIME_PANIC))
        .unwrap_or(exit_code::RUNTIME_PANIC);
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(code);
}

/// What the marker variable carries.
struct Marker {
    hub: String,
    secret: Secret,
    token: [u8; TOKEN],
    parent: libc::pid_t,
}

impl Marker {
    fn parse(text: &str) -> Option<Marker> {
        let mut parts = text.split(';');
        if parts.next()? != "1" {
            return None;
        }
        let marker = Marker {
            hub: parts.next()?.to_owned(),
            secret: Secret::from_hex(parts.next()?)?,
            token: unhex(parts.next()?)?,
            parent: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(marker)
    }
}

pub(crate) fn marker_value(hub: &str, secret: &Secret, token: &[u8; TOKEN], parent: u32) -> String {
    format!(
        "1;{hub};{};{};{parent}",
        secret.to_hex(),
        crate::wire::auth::hex(token)
    )
}

/// The status page's stop flag, for the signal handler.
static STOP_FLAG: AtomicPtr<AtomicU32> = AtomicPtr::new(std::ptr::null_mut());

extern "C" fn on_interrupt(_signal: libc::c_int) {
    let flag = STOP_FLAG.load(Ordering::Acquire);
    if !flag.is_null() {
        // SAFETY: the pointer targets the status page, which stays mapped for the rest of the
        // process's life (its Arc is leaked below); an atomic store is async-signal-safe.
        unsafe { (*flag).store(1, Ordering::Release) };
    }
}

/// Everything an entry needs to do its work in the child.
#[derive(Debug)]
pub(crate) struct ChildSession {
    pub(crate) conn: Arc<Conn>,
    pub(crate) status: Arc<StatusPage>,
    /// The entry's own start message.
    pub(crate) body: Vec<u8>,
}

/// The start frame: which entry to run, and the entry's own message.
#[derive(Serialize, Deserialize)]
pub(crate) struct StartFrame {
    pub(crate) entry: String,
    pub(crate) body: Vec<u8>,
}

/// A process entry's start message.
#[derive(Serialize, Deserialize)]
pub(crate) struct ProcessStart {
    pub(crate) config: ProcessConfig,
    pub(crate) state: Vec<u8>,
}

fn child_main(marker: &str) -> i32 {
    let Some(marker) = Marker::parse(marker) else {
        eprintln!("skprocess: malformed {ENV} marker; this process was not started by skprocess");
        return exit_code::BAD_MARKER;
    };
    crate::sys::ignore_sigpipe();
    crate::engine::install_panic_hook();
    if !crate::sys::die_with_parent(marker.parent) {
        // The parent is already gone (or this marker is not ours): nobody waits for us.
        return exit_code::PARENT_GONE;
    }

    let conn = match crate::wire::hub::connect(&marker.hub, &marker.secret, &marker.token) {
        Ok(conn) => Arc::new(conn),
        Err(e) => {
            eprintln!("skprocess: child cannot reach its parent: {e}");
            return exit_code::CANNOT_CONNECT;
        }
    };
    let status = match conn
        .recv_with_fd(Kind::Status)
        .map_err(|e| e.to_string())
        .and_then(|fd| StatusPage::open(fd.as_fd()).map_err(|e| e.to_string()))
    {
        Ok(page) => Arc::new(page),
        Err(message) => {
            return setup_failed(
                &conn,
                ProcessError::ChildSetup {
                    message: format!("cannot map the status page: {message}"),
                },
            );
        }
    };
    // The signal handler may touch the page at any time from now on: never unmap it.
    STOP_FLAG.store(
        std::ptr::from_ref(status.stop_flag()).cast_mut(),
        Ordering::Release,
    );
    std::mem::forget(Arc::clone(&status));
    crate::sys::on_interrupt(on_interrupt);

    let start = match read_start(&conn) {
        Ok(start) => start,
        Err(e) => {
            // The parent went away before telling us what to do.
            drop(e);
            return exit_code::PARENT_GONE;
        }
    };
    let entry = match crate::registry::lookup(&start.entry) {
        Ok(entry) => entry,
        Err(error) => return setup_failed(&conn, error),
    };
    entry.run(ChildSession {
        conn,
        status,
        body: start.body,
    })
}

fn read_start(conn: &Conn) -> Result<StartFrame, IpcError> {
    match read_frame(&mut conn.raw_reader(), MAX_FRAME)? {
        Some(Frame {
            kind: Kind::Start,
            payload,
        }) => decode(&payload).map_err(IpcError::Malformed),
        Some(frame) => Err(IpcError::Malformed(format!(
            "expected a Start frame, got {:?}",
            frame.kind
        ))),
        None => Err(IpcError::Disconnected),
    }
}

/// Tells the parent why this child cannot do its work, and gives the exit code to leave with.
pub(crate) fn setup_failed(conn: &Conn, error: ProcessError) -> i32 {
    let message = match &error {
        ProcessError::ChildSetup { message } => message.clone(),
        other => other.to_string(),
    };
    if let Ok(bytes) = encode(&message) {
        let _ = conn.send(Kind::SetupFailed, &bytes);
    }
    exit_code::SETUP_FAILED
}

/// Reads the parent's frames for a process child: messages to the inbox, stop requests to the
/// status page. When the parent goes away, stops the process and exits hard if it has not
/// finished within [`PARENT_GONE_GRACE`].
fn spawn_reader(conn: Arc<Conn>, inbox: Arc<Inbox>, status: Arc<StatusPage>) {
    let spawned = std::thread::Builder::new()
        .name("skprocess-child-io".into())
        .spawn(move || {
            let mut reader = conn.reader();
            loop {
                match read_frame(&mut reader, MAX_FRAME) {
                    Ok(Some(Frame {
                        kind: Kind::Tell,
                        payload,
                    })) => inbox.push(payload),
                    Ok(Some(Frame {
                        kind: Kind::Stop, ..
                    })) => status.request_stop(),
                    Ok(Some(_)) => {} // nothing else is meant for a process child
                    Ok(None) | Err(_) => break,
                }
            }
            inbox.close();
            parent_gone(&status);
        });
    drop(spawned);
}

/// The parent is gone: stop, and leave for good after the grace period.
pub(crate) fn parent_gone(status: &StatusPage) {
    status.request_stop();
    std::thread::sleep(PARENT_GONE_GRACE);
    let _ = std::io::stdout().flush();
    crate::sys::hard_exit(exit_code::PARENT_GONE);
}

/// The child-side entry point of a process type `T`.
pub(crate) fn run_process<T: Lifecycle>(session: ChildSession) -> i32 {
    let ChildSession { conn, status, body } = session;
    let start: ProcessStart = match decode(&body) {
        Ok(start) => start,
        Err(message) => {
            return setup_failed(
                &conn,
                ProcessError::ChildSetup {
                    message: format!("malformed process start message: {message}"),
                },
            );
        }
    };
    let state: T = match decode(&start.state) {
        Ok(state) => state,
        Err(message) => {
            return setup_failed(
                &conn,
                ProcessError::Decode {
                    what: format!("the state of `{}`", std::any::type_name::<T>()),
                    message,
                },
            );
        }
    };
    let inbox = Arc::new(Inbox::default());
    spawn_reader(Arc::clone(&conn), Arc::clone(&inbox), Arc::clone(&status));
    let link = Arc::new(ChildLink {
        conn: Some(Arc::clone(&conn)),
        inbox,
        status,
    });
    let (outcome, timers) = Engine::new(state, start.config, link).run();
    send_outcome(&conn, outcome, timers);
    exit_code::OK
}

/// Sends the outcome of a lifecycle to the parent. A result that cannot be encoded becomes an
/// error the parent receives instead.
pub(crate) fn send_outcome<O: Serialize>(conn: &Conn, outcome: Outcome<O>, timers: ProcessTimers) {
    let error = match outcome {
        Outcome::Value(value) => match encode(&(&timers, &value)) {
            Ok(bytes) => {
                let _ = conn.send(Kind::Result, &bytes);
                return;
            }
            Err(message) => ProcessError::Encode {
                what: format!("the result (`{}`)", std::any::type_name::<O>()),
                message,
            },
        },
        Outcome::Error(error) => error,
    };
    let bytes = encode(&(&timers, &error)).or_else(|message| {
        let fallback = ProcessError::ChildSetup {
            message: format!("{error} (and the error could not be encoded: {message})"),
        };
        encode(&(&timers, &fallback))
    });
    if let Ok(bytes) = bytes {
        let _ = conn.send(Kind::Error, &bytes);
    }
}

/// The runtime's own registry entry: replies to its start message with the same bytes.
pub(crate) fn self_check_entry(session: ChildSession) -> i32 {
    let _ = session.conn.send(Kind::Result, &session.body);
    exit_code::OK
}
