//! Counters and flags in real shared memory.
//!
//! Every Share has one region of [`SLOTS`] slots (a memfd; its pages are allocated only when
//! touched). A slot is two words: the generation of the value living there (0: free, or
//! removed) and the value's bits. The owner hands out slots; every process that reaches the
//! Share maps the same memfd (sent over the authenticated socket) and reads and writes the
//! values with atomic instructions: no message, no system call, except to wake a flag's
//! waiters.
//!
//! A slot is never reused within a Share's life, so a stale handle can never touch another
//! value: a removed value's generation is cleared, and every operation checks it first.
//! Slot 0 is the header: a magic number and the Share's running flag.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use crate::sys::SharedRegion;

/// Slots in a region (the first is the header).
pub(crate) const SLOTS: usize = 65_536;
const SLOT_BYTES: usize = 16;
const LEN: usize = SLOTS * SLOT_BYTES;
const MAGIC: u64 = 0x736b_7368_6172_0001; // "skshar" + layout version 1

/// A mapped region of slots.
pub(crate) struct Region {
    map: SharedRegion,
}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region")
            .field("running", &self.running())
            .finish()
    }
}

impl Region {
    /// Creates a region in the owner; the fd goes to every client.
    pub(crate) fn create() -> io::Result<(Region, OwnedFd)> {
        let (map, fd) = SharedRegion::create(LEN)?;
        let region = Region { map };
        region.word(0, 0).store(MAGIC, Ordering::Release);
        Ok((region, fd))
    }

    /// Maps the owner's region (in a client).
    pub(crate) fn open(fd: BorrowedFd<'_>) -> io::Result<Region> {
        let map = SharedRegion::map(fd, LEN)?;
        let region = Region { map };
        if region.word(0, 0).load(Ordering::Acquire) != MAGIC {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the Share's shared memory has an unknown layout",
            ));
        }
        Ok(region)
    }

    /// Word `which` (0: generation, 1: value) of slot `slot`.
    fn word(&self, slot: usize, which: usize) -> &AtomicU64 {
        assert!(slot < SLOTS && which < 2, "slot {slot} out of range");
        debug_assert!(self.map.len() >= LEN);
        // SAFETY: in bounds (checked above), 8-aligned (the mapping is page aligned and slots
        // are 16 bytes), and the memory is only ever accessed through atomics, by every process.
        unsafe {
            &*self
                .map
                .as_ptr()
                .add(slot * SLOT_BYTES + which * 8)
                .cast::<AtomicU64>()
        }
    }

    /// Whether the owner's Share is running (header word 1).
    pub(crate) fn running(&self) -> bool {
        self.word(0, 1).load(Ordering::Acquire) != 0
    }

    pub(crate) fn set_running(&self, running: bool) {
        self.word(0, 1).store(u64::from(running), Ordering::Release);
    }

    /// Makes `slot` live with generation `generation` and value `bits`.
    pub(crate) fn occupy(&self, slot: u32, generation: u64, bits: u64) {
        self.word(slot as usize, 1).store(bits, Ordering::Relaxed);
        self.word(slot as usize, 0)
            .store(generation, Ordering::Release);
        wake_all(self.word(slot as usize, 1));
    }

    /// Stores a new value into a live slot (re-inserting a name with a value of the same kind).
    pub(crate) fn store(&self, slot: u32, bits: u64) {
        self.word(slot as usize, 1).store(bits, Ordering::Release);
        wake_all(self.word(slot as usize, 1));
    }

    /// Frees a slot for good: stale handles see it gone.
    pub(crate) fn vacate(&self, slot: u32) {
        self.word(slot as usize, 0).store(0, Ordering::Release);
        wake_all(self.word(slot as usize, 1));
    }

    /// The value word of `slot` if it still holds generation `generation`.
    pub(crate) fn value(&self, slot: u32, generation: u64) -> Option<&AtomicU64> {
        let slot = slot as usize;
        if slot == 0 || slot >= SLOTS {
            return None;
        }
        (self.word(slot, 0).load(Ordering::Acquire) == generation).then(|| self.word(slot, 1))
    }
}

/// Wakes every process waiting on the low half of `word` (a flag's waiters).
pub(crate) fn wake_all(word: &AtomicU64) {
    crate::sys::futex_wake(low_half(word));
}

/// Waits until the low half of `word` is no longer `seen`, `deadline` passes, or a spurious
/// wake-up: the caller checks again.
pub(crate) fn wait_changed(word: &AtomicU64, seen: u32, deadline: Instant) {
    let left = deadline.saturating_duration_since(Instant::now());
    if !left.is_zero() {
        crate::sys::futex_wait(low_half(word), seen, left);
    }
}

fn low_half(word: &AtomicU64) -> &AtomicU32 {
    // Little endian: the low 32 bits come first.
    const _: () = assert!(cfg!(target_endian = "little"));
    // SAFETY: an AtomicU64 is 8-aligned, so its first 4 bytes are an aligned u32; both views
    // are only ever accessed atomically (the kernel reads the low half for futex calls).
    unsafe { &*std::ptr::from_ref(word).cast::<AtomicU32>() }
}
