//! Ctrl+C in a parent: an opt-in graceful stop of every child.
//!
//! The library installs no signal handler in a parent unless asked. [`graceful_ctrl_c`] asks:
//! from then on the first SIGINT stops every child process of this process (`__onfinish__` and
//! `__result__` run, and `wait`/`result` return their results) and ends every pool call in
//! progress with [`PoolError::Interrupted`](crate::pool::PoolError::Interrupted) (and every
//! call of an `AsyncPool::with_workers` with `AsyncPoolError::Interrupted`). A second
//! SIGINT restores the default action and re-raises it: the program ends as Ctrl+C always ends
//! it.
//!
//! The handler itself only counts and writes one byte to a pipe (both async-signal-safe); a
//! thread reading the pipe does the stopping.

use std::io;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::{Mutex, Weak};

use crate::sync::lock;

/// Something a Ctrl+C stops: a child process, a pool.
pub(crate) trait Interrupt: Send + Sync {
    fn interrupt(&self);
}

impl Interrupt for crate::shm::StatusPage {
    fn interrupt(&self) {
        self.request_stop();
    }
}

/// Every child and pool of this process (weakly: the list never keeps one alive).
static TRACKED: Mutex<Vec<Weak<dyn Interrupt>>> = Mutex::new(Vec::new());

/// Adds a child or a pool to what a Ctrl+C stops.
pub(crate) fn track(target: Weak<dyn Interrupt>) {
    let mut tracked = lock(&TRACKED);
    // Forget the ones that are gone, now and then, so the list stays as long as what lives.
    if tracked.len() >= 64 && tracked.len().is_power_of_two() {
        tracked.retain(|t| t.strong_count() > 0);
    }
    tracked.push(target);
}

/// Takes `target` off the list: its owner handles Ctrl+C for it (an async pool's workers, which
/// the pool interrupts as a whole).
#[cfg(feature = "tokio")]
pub(crate) fn untrack<T: ?Sized>(target: &std::sync::Arc<T>) {
    let wanted = std::sync::Arc::as_ptr(target).cast::<()>();
    lock(&TRACKED).retain(|t| t.as_ptr().cast::<()>() != wanted);
}

/// The pipe's write end for the handler (-1 until installed).
static PIPE: AtomicI32 = AtomicI32::new(-1);
/// How many SIGINTs arrived since the handler was installed.
static PRESSES: AtomicU32 = AtomicU32::new(0);
/// The result of the one installation.
static INSTALLED: Mutex<Option<bool>> = Mutex::new(None);

extern "C" fn on_sigint(_signal: libc::c_int) {
    if PRESSES.fetch_add(1, Ordering::AcqRel) >= 1 {
        crate::sys::reraise_default(libc::SIGINT);
        return;
    }
    let fd = PIPE.load(Ordering::Acquire);
    if fd >= 0 {
        let byte = 1u8;
        // SAFETY: write(2) is async-signal-safe; the descriptor stays open for the process's
        // life (it was leaked on installation).
        unsafe {
            libc::write(fd, (&raw const byte).cast(), 1);
        }
    }
}

/// Makes Ctrl+C (SIGINT) stop this process's children gracefully instead of ending the
/// program: every child process finishes its current section and runs `__onfinish__` and
/// `__result__` (so `wait` and `result` return its result), and every pool call in progress
/// returns [`PoolError::Interrupted`](crate::pool::PoolError::Interrupted) with the number of
/// items done (a call of an `AsyncPool::with_workers`: `AsyncPoolError::Interrupted`, its
/// tasks cancelled in workers that keep running). The program carries on; [`ctrl_c_pressed`] tells it that Ctrl+C was pressed. A
/// second Ctrl+C ends the program as usual.
///
/// Call it once, early in `main`; later calls do nothing. Children stop on Ctrl+C whether or
/// not this is called (a terminal sends SIGINT to the whole process group); what this changes is
/// that the parent survives to collect their results, and that a SIGINT sent to the parent
/// alone reaches them too.
///
/// # Errors
///
/// If the pipe or the thread that does the stopping cannot be created (no handler is installed
/// then).
pub fn graceful_ctrl_c() -> io::Result<()> {
    let mut installed = lock(&INSTALLED);
    if *installed == Some(true) {
        return Ok(());
    }
    let (read, write) = crate::sys::pipe()?;
    std::thread::Builder::new()
        .name("skprocess-ctrl-c".into())
        .spawn(move || watch(&read))?;
    // The write end lives as long as the process: the handler may use it at any time.
    PIPE.store(write.into_raw_fd(), Ordering::Release);
    crate::sys::set_signal_handler(libc::SIGINT, on_sigint);
    *installed = Some(true);
    Ok(())
}

/// Whether Ctrl+C was pressed since [`graceful_ctrl_c`] was called.
pub fn ctrl_c_pressed() -> bool {
    PRESSES.load(Ordering::Acquire) > 0
}

fn watch(read: &OwnedFd) {
    let mut byte = 0u8;
    loop {
        // SAFETY: reading one byte into a local from a descriptor we own.
        let n = unsafe { libc::read(read.as_raw_fd(), (&raw mut byte).cast(), 1) };
        if n == 1 {
            interrupt_all();
        } else if n == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

/// Stops every tracked child and interrupts every tracked pool.
pub(crate) fn interrupt_all() {
    let targets: Vec<_> = lock(&TRACKED).iter().filter_map(Weak::upgrade).collect();
    for target in targets {
        target.interrupt();
    }
}
