//! How a child leaves: its exit codes, and exit paths that cannot hang.
//!
//! A child must end when it is done or its parent is gone, whatever its threads hold. Flushing
//! stdout takes the stdout lock, which a section abandoned after its timeout may hold forever;
//! so every exit path flushes from a helper thread and exits within [`FLUSH_PATIENCE`] whether
//! or not the flush finished.

use std::io::Write;
use std::sync::mpsc;
use std::time::Duration;

/// Exit codes of a child that could not do its work (documented in the book).
pub(crate) mod code {
    pub(crate) const OK: i32 = 0;
    pub(crate) const BAD_MARKER: i32 = 64;
    pub(crate) const CANNOT_CONNECT: i32 = 71;
    pub(crate) const SETUP_FAILED: i32 = 72;
    pub(crate) const PARENT_GONE: i32 = 75;
    pub(crate) const RUNTIME_PANIC: i32 = 101;
}

/// How long an exit path waits for stdout and stderr to be flushed.
pub(crate) const FLUSH_PATIENCE: Duration = Duration::from_millis(200);

/// How long a child keeps going after its parent disappeared (to finish the current section and
/// run `__onfinish__`) before it exits hard.
pub(crate) const PARENT_GONE_GRACE: Duration = Duration::from_secs(2);

/// Flushes stdout and stderr from a helper thread, waits at most [`FLUSH_PATIENCE`] for that,
/// then ends the process with `code` (without running destructors).
pub(crate) fn flush_and_exit(code: i32) -> ! {
    let (done, flushed) = mpsc::channel();
    let helper = std::thread::Builder::new()
        .name("skprocess-exit".into())
        .spawn(move || {
            let _ = std::io::stdout().flush();
            let _ = std::io::stderr().flush();
            let _ = done.send(());
        });
    if helper.is_ok() {
        let _ = flushed.recv_timeout(FLUSH_PATIENCE);
    }
    crate::sys::hard_exit(code)
}

/// The parent is gone: request a stop, give the process [`PARENT_GONE_GRACE`] to finish (its
/// `__onfinish__` runs), then leave for good. Never returns.
pub(crate) fn parent_gone(status: &crate::shm::StatusPage) -> ! {
    status.request_stop();
    std::thread::sleep(PARENT_GONE_GRACE);
    flush_and_exit(code::PARENT_GONE)
}
