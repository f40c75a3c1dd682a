//! The status page: one page of memory shared by a parent and one child.
//!
//! The parent writes `stop`; the child writes `current_run` and `phase`. Both sides read with
//! plain atomic loads, so `stop()` costs the parent one store and the child's per-iteration
//! check costs one load: no message, no syscall. The page is a memfd the child inherits.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::sys::SharedRegion;

const PAGE: usize = 4096;
const MAGIC: u64 = 0x736b_7072_6f63_0003; // "skproc" + layout version 3

/// The layout of the page. Only atomics: both processes access it concurrently.
#[repr(C)]
struct Layout {
    magic: AtomicU64,
    /// Non-zero once a stop was requested (by the parent, the child itself, or a signal).
    stop: AtomicU32,
    /// The child's [`Phase`].
    phase: AtomicU32,
    /// The index of the run the child is in (the number of completed iterations); in a pool
    /// worker, the index of the item it is running within its current task.
    current_run: AtomicU64,
    /// In a pool worker: the id of the last chunk it claimed (see [`StatusPage::claim`]).
    claimed: AtomicU64,
    /// In a pool worker: a chunk the parent revoked before it started, or 0 (see
    /// [`StatusPage::revoke`]).
    revoked: AtomicU64,
}

const _: () = assert!(size_of::<Layout>() <= PAGE);

/// What the child is doing, as seen in its status page.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Phase {
    Starting = 0,
    Running = 1,
    Finishing = 2,
    Done = 3,
}

/// A mapped status page.
pub(crate) struct StatusPage {
    region: SharedRegion,
}

impl std::fmt::Debug for StatusPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusPage")
            .field("stop", &self.stop_requested())
            .field("current_run", &self.current_run())
            .finish()
    }
}

impl StatusPage {
    /// Creates a page in the parent; the fd goes to the child.
    pub(crate) fn create() -> io::Result<(StatusPage, OwnedFd)> {
        let (region, fd) = SharedRegion::create(PAGE)?;
        let page = StatusPage { region };
        page.layout().magic.store(MAGIC, Ordering::Release);
        Ok((page, fd))
    }

    /// Maps the page the parent created (in the child).
    pub(crate) fn open(fd: BorrowedFd<'_>) -> io::Result<StatusPage> {
        let region = SharedRegion::map(fd, PAGE)?;
        let page = StatusPage { region };
        if page.layout().magic.load(Ordering::Acquire) != MAGIC {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the status page has an unknown layout",
            ));
        }
        Ok(page)
    }

    fn layout(&self) -> &Layout {
        debug_assert!(self.region.len() >= size_of::<Layout>());
        // SAFETY: the region is page aligned, at least PAGE bytes, zero-initialised by the
        // kernel (a valid bit pattern for atomics), lives as long as `self`, and is only ever
        // accessed through these atomics.
        unsafe { &*self.region.as_ptr().cast::<Layout>() }
    }

    pub(crate) fn request_stop(&self) {
        self.layout().stop.store(1, Ordering::Release);
    }

    pub(crate) fn stop_requested(&self) -> bool {
        self.layout().stop.load(Ordering::Acquire) != 0
    }

    pub(crate) fn set_current_run(&self, run: usize) {
        self.layout()
            .current_run
            .store(run as u64, Ordering::Release);
    }

    pub(crate) fn current_run(&self) -> usize {
        self.layout().current_run.load(Ordering::Acquire) as usize
    }

    pub(crate) fn set_phase(&self, phase: Phase) {
        self.layout().phase.store(phase as u32, Ordering::Release);
    }

    pub(crate) fn phase(&self) -> Phase {
        match self.layout().phase.load(Ordering::Acquire) {
            0 => Phase::Starting,
            1 => Phase::Running,
            2 => Phase::Finishing,
            _ => Phase::Done,
        }
    }

    // Taking back a chunk a worker holds but has not started (to give it to an idle worker, or
    // because its call was cancelled) is decided by one compare-and-swap on `revoked`, so that
    // exactly one side wins:
    //
    //   worker, before chunk c:  claimed := c;  if CAS(revoked: c -> 0) { skip c } else { run c }
    //   parent, revoking c:      CAS(revoked: 0 -> c) (else a revocation is pending: give up);
    //                            if claimed == c { revoked iff CAS(revoked: c -> 0) fails }
    //                            else { revoked }
    //
    // All sequentially consistent. If the parent sees `claimed != c`, the worker's store comes
    // later in the total order, so its CAS sees `c` and it skips. If the parent sees `claimed ==
    // c`, the worker either took the mark first (it skips; the parent's retraction fails) or the
    // parent retracts first (the worker finds nothing and runs). Either way the mark is gone
    // afterwards, so it can never hit the same chunk again if it comes back to this worker.

    /// Worker side: claims chunk `chunk` before running it. `false`: the parent revoked it;
    /// skip it (the revocation is used up).
    pub(crate) fn claim(&self, chunk: u64) -> bool {
        let layout = self.layout();
        layout.claimed.store(chunk, Ordering::SeqCst);
        #[cfg(feature = "__testing")]
        crate::__testing::claim_delay();
        layout
            .revoked
            .compare_exchange(chunk, 0, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
    }

    /// The last chunk the worker claimed.
    pub(crate) fn claimed(&self) -> u64 {
        self.layout().claimed.load(Ordering::SeqCst)
    }

    /// Parent side: takes back chunk `chunk` (never 0) if the worker has not started it.
    /// Returns whether it did; then the worker will skip it. At most one revocation is pending
    /// per worker: while one is, this returns `false`.
    pub(crate) fn revoke(&self, chunk: u64) -> bool {
        debug_assert_ne!(chunk, 0);
        let layout = self.layout();
        if layout
            .revoked
            .compare_exchange(0, chunk, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return false;
        }
        if layout.claimed.load(Ordering::SeqCst) != chunk {
            return true;
        }
        layout
            .revoked
            .compare_exchange(chunk, 0, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
    }

    /// The stop flag's address, for the signal handler (which may only touch atomics).
    pub(crate) fn stop_flag(&self) -> &AtomicU32 {
        &self.layout().stop
    }
}
