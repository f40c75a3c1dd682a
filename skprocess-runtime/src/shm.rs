//! The status page: one page of memory shared by a parent and one child.
//!
//! The parent writes `stop`; the child writes `current_run` and `phase`. Both sides read with
//! plain atomic loads, so `stop()` costs the parent one store and the child's per-iteration
//! check costs one load: no message, no syscall. The page is a memfd the parent sends
//! the child over the authenticated socket (SCM_RIGHTS) before the Start message.

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
    /// In a pool worker: the number of the last chunk it claimed (see [`StatusPage::claim`]).
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
    // because its call was cancelled) is decided by compare-and-swaps on `revoked`, so that
    // exactly one side wins. Chunks are numbered per worker (`seq` 1, 2, 3, ... in the order the
    // worker takes them), so the parent can tell a chunk the worker has passed from one it has
    // not reached:
    //
    //   worker, before chunk s:  claimed := s;  if CAS(revoked: s -> 0) { skip s } else { run s }
    //   parent, revoking s:      CAS(revoked: 0 -> s), else a revocation is pending: give up;
    //                            if claimed < s { revoked }
    //                            else { revoked iff CAS(revoked: s -> 0) fails }
    //
    // All sequentially consistent. If the parent sees `claimed < s`, the worker's store of `s`
    // comes later in the total order, so its CAS sees `s` and it skips. Otherwise the worker has
    // reached (or passed) `s`: it either took the mark first (it skips; the parent's retraction
    // fails) or the parent retracts first (the worker found nothing and ran, or runs, `s`).
    // Either way the mark is gone afterwards, so it can never hit a later chunk.

    /// Worker side: claims chunk `seq` before running it. `false`: the parent revoked it; skip
    /// it (the revocation is used up).
    pub(crate) fn claim(&self, seq: u64) -> bool {
        let layout = self.layout();
        layout.claimed.store(seq, Ordering::SeqCst);
        #[cfg(feature = "__testing")]
        crate::__testing::claim_delay();
        layout
            .revoked
            .compare_exchange(seq, 0, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
    }

    /// The last chunk the worker claimed.
    pub(crate) fn claimed(&self) -> u64 {
        self.layout().claimed.load(Ordering::SeqCst)
    }

    /// Parent side: takes back chunk `seq` (never 0) if the worker has not started it. Returns
    /// whether it did; then the worker will skip it. At most one revocation is pending per
    /// worker: while one is, this returns `false`.
    pub(crate) fn revoke(&self, seq: u64) -> bool {
        debug_assert_ne!(seq, 0);
        let layout = self.layout();
        if layout
            .revoked
            .compare_exchange(0, seq, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return false;
        }
        if layout.claimed.load(Ordering::SeqCst) < seq {
            return true;
        }
        layout
            .revoked
            .compare_exchange(seq, 0, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
    }

    /// The stop flag's address, for the signal handler (which may only touch atomics).
    pub(crate) fn stop_flag(&self) -> &AtomicU32 {
        &self.layout().stop
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    /// The claim/revoke protocol, many times over, with a worker and a parent racing on the
    /// same page: every chunk is either run by the worker or taken back by the parent, never
    /// both and never neither; the worker skips exactly the chunks the parent took back.
    #[test]
    fn every_chunk_is_run_or_taken_back_exactly_once() {
        const TAKE_BACKS: usize = 2000;
        let (page, _fd) = StatusPage::create().unwrap();
        let page = Arc::new(page);
        let stop = Arc::new(AtomicBool::new(false));
        let worker = {
            let (page, stop) = (Arc::clone(&page), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut skipped = Vec::new();
                let mut seq = 0;
                while !stop.load(Ordering::SeqCst) {
                    seq += 1;
                    if !page.claim(seq) {
                        skipped.push(seq);
                    }
                    // A little work between chunks, so the parent keeps up.
                    for i in 0..50u64 {
                        std::hint::black_box(i);
                    }
                }
                (skipped, seq)
            })
        };
        let mut revoked = Vec::new();
        let mut pending: Option<u64> = None;
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while revoked.len() < TAKE_BACKS && std::time::Instant::now() < deadline {
            // The worker acknowledges a revocation when it reaches that chunk.
            if let Some(seq) = pending {
                if page.claimed() >= seq {
                    pending = None;
                } else {
                    std::hint::spin_loop();
                    continue;
                }
            }
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            // Around where the worker is: just passed, being claimed, or a little ahead.
            let seq = (page.claimed() + rng % 4).saturating_sub(1).max(1);
            if page.revoke(seq) {
                revoked.push(seq);
                pending = Some(seq);
            }
        }
        stop.store(true, Ordering::SeqCst);
        let (skipped, last) = worker.join().unwrap();
        assert!(
            revoked.len() >= TAKE_BACKS,
            "only {} take-backs in 60 s",
            revoked.len()
        );
        // A take-back of a chunk beyond the worker's last one is still pending: no skip for it.
        revoked.retain(|&seq| seq <= last);
        let first_difference = skipped.iter().zip(&revoked).position(|(a, b)| a != b);
        assert!(
            skipped.len() == revoked.len() && first_difference.is_none(),
            "skipped {} chunks, took back {}; first difference at {first_difference:?}",
            skipped.len(),
            revoked.len()
        );
    }
}
