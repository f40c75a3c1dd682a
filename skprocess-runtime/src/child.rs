//! The child's entry: how a re-executed binary becomes a child process instead of running
//! `main`.
//!
//! The parent starts the child with the environment variable `SKPROCESS_CHILD` holding the
//! hub's name, the session secret, this child's token and the parent's pid (see
//! [`protocol`](crate::wire::protocol)). A constructor in this crate (an `.init_array` entry,
//! run by the loader before `main`) sees the variable, connects back, authenticates, receives
//! its status page and its Start message, checks that it runs the parent's executable, and runs
//! the registered entry the message names. It leaves with an exit code: `main` never runs in a
//! child. Programs built without the `auto-init` feature call [`init`] first thing in `main`.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};

use crate::error::{IpcError, ProcessError};
use crate::exit::code;
use crate::registry::ChildSession;
use crate::shm::StatusPage;
use crate::wire::protocol::{Kind, MARKER_ENV, Marker, StartMessage};
use crate::wire::{Frame, decode};

/// Set once this process has become a child (its marker was taken, whether or not the variable
/// could be removed from the environment), or found a marker that was meant for another process.
static CAUGHT: AtomicBool = AtomicBool::new(false);

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
///
/// The child removes its marker variable from the environment only while it is the process's
/// only thread (removing a variable while another thread may read the environment is undefined
/// behaviour). If `init` runs after other threads were started, the variable stays (the marker
/// is used up either way, and this process's own children get fresh ones).
pub fn init() {
    become_child_if_marked();
}

/// Whether this process was started as a child but is running user code instead of its entry
/// (built without `auto-init`, and `init()` was not called first): spawning from here would
/// repeat forever, so the spawn path refuses.
pub(crate) fn is_unclaimed_child() -> bool {
    !CAUGHT.load(Ordering::Acquire) && std::env::var_os(MARKER_ENV).is_some()
}

fn become_child_if_marked() {
    // Touch the registry so its entries (and this constructor) stay linked.
    std::hint::black_box(&crate::registry::PROCESSES);
    if CAUGHT.load(Ordering::Acquire) {
        return;
    }
    let Some(marker) = std::env::var_os(MARKER_ENV) else {
        #[cfg(feature = "nats")]
        crate::nats::serve_if_asked();
        return;
    };
    CAUGHT.store(true, Ordering::Release);
    if meant_for_another(&marker.to_string_lossy()) {
        // A program started by a child's own code inherited the child's marker (the variable
        // could not be removed there): it is not a skprocess child. Run `main`.
        return;
    }
    if crate::sys::thread_count() == Some(1) {
        // SAFETY: this is the only thread of the process (just counted), so nothing can read
        // or write the environment concurrently; a new thread can only be started by this one.
        unsafe { std::env::remove_var(MARKER_ENV) };
    }
    let marker = marker.to_string_lossy().into_owned();
    let exit = std::thread::Builder::new()
        .name("skprocess-child".into())
        .stack_size(crate::engine::WORK_STACK)
        .spawn(move || child_main(&marker))
        .map(|thread| thread.join().unwrap_or(code::RUNTIME_PANIC))
        .unwrap_or(code::RUNTIME_PANIC);
    crate::exit::flush_and_exit(exit);
}

/// Whether `marker` names a parent that is alive but is not this process's parent: then the
/// marker was inherited from a child that started this program itself. (A parent that died is
/// not "another": the child must then exit, not run `main`.)
fn meant_for_another(marker: &str) -> bool {
    let Some(marker) = Marker::parse(marker) else {
        return false;
    };
    // SAFETY: getppid always succeeds; kill with signal 0 only checks that the pid exists
    // (EPERM: it exists, but belongs to another user).
    let (parent, probe) = unsafe { (libc::getppid(), libc::kill(marker.parent, 0)) };
    let named_alive =
        probe == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    parent != marker.parent && named_alive
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

fn child_main(marker: &str) -> i32 {
    let Some(marker) = Marker::parse(marker) else {
        eprintln!(
            "skprocess: malformed {MARKER_ENV} marker; this process was not started by skprocess"
        );
        return code::BAD_MARKER;
    };
    crate::sys::ignore_signal(libc::SIGPIPE);
    crate::engine::install_panic_hook();
    if !crate::sys::die_with_parent(marker.parent) {
        // The parent is already gone (or this marker is not ours): nobody waits for us.
        return code::PARENT_GONE;
    }
    let conn = match crate::wire::hub::connect(&marker.hub, &marker.secret, &marker.token) {
        Ok(conn) => Arc::new(conn),
        Err(e) => {
            eprintln!("skprocess: child cannot reach its parent: {e}");
            return code::CANNOT_CONNECT;
        }
    };
    let status = match conn
        .recv_with_fd(Kind::Status)
        .map_err(|e| e.to_string())
        .and_then(|fd| StatusPage::open(fd.as_fd()).map_err(|e| e.to_string()))
    {
        Ok(page) => Arc::new(page),
        Err(message) => {
            return ChildSession::report_setup_failure(
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
    crate::sys::set_signal_handler(libc::SIGINT, on_interrupt);
    crate::sys::set_signal_handler(libc::SIGTERM, on_interrupt);

    let start = match read_start(&conn) {
        Ok(start) => start,
        // The parent went away (or broke the protocol) before telling us what to do.
        Err(_) => return code::PARENT_GONE,
    };
    if let Err(message) = check_start(&start) {
        return ChildSession::report_setup_failure(&conn, ProcessError::ChildSetup { message });
    }
    let entry = match crate::registry::lookup(&start.entry) {
        Ok(entry) => entry,
        Err(error) => return ChildSession::report_setup_failure(&conn, error),
    };
    conn.set_limit(start.frame_limit);
    if conn.send(Kind::Ready, &[]).is_err() {
        return code::PARENT_GONE;
    }
    entry.run(ChildSession {
        conn,
        status,
        body: start.body,
        log_levels: start.log_levels,
    })
}

/// Reads the Start message. Only the authenticated parent can send it; its size is bounded by
/// the parent's own frame limit, which the child learns from the message itself.
fn read_start(conn: &crate::wire::Conn) -> Result<StartMessage, IpcError> {
    conn.set_limit(u32::MAX);
    match conn.read_one()? {
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

/// Checks that this child runs the parent's code and can honour its frame limit.
fn check_start(start: &StartMessage) -> Result<(), String> {
    match crate::identity::executable_identity() {
        Some(own) if own == start.identity.as_slice() => {}
        Some(_) => {
            return Err(
                "the child runs a different executable than its parent (their build ids, \
                        or file identities, differ); refusing to run anything"
                    .into(),
            );
        }
        None => return Err("the child cannot read its own executable's identity".into()),
    }
    if start.frame_limit < crate::wire::frame::MIN_FRAME_LIMIT {
        return Err(format!("frame limit {} is too small", start.frame_limit));
    }
    Ok(())
}
