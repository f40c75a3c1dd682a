//! The ring's algorithm: one direction of a channel, a single producer and a single consumer
//! sharing a header of atomics and a byte area, with no knowledge of processes, files or
//! syscalls (those come in through [`Memory`] and [`Env`]), so that loom can run it in one
//! process (`RUSTFLAGS="--cfg loom" cargo test -p skprocess-ring-loom --release`).
//!
//! The byte area is a stream of records. A record is an 8-byte header (payload length and tag,
//! little-endian `u32` each) and its payload, and may wrap around the end of the area. The
//! producer writes a whole record past the published `tail`, then publishes it with one
//! release store of `tail`; the consumer reads the records between its `head` and an acquire load
//! of `tail`, then publishes `head`. So a record is seen whole or not at all.
//!
//! A message that fits the ring is one `END` record. A larger one is streamed as `PART` records
//! followed by an `END`, each written as space frees; if the producer gives up half way (its
//! deadline passed) it writes an `ABORT` record, for which it always keeps 8 bytes free, and the
//! consumer drops the pieces. The consumer hands out only whole messages.
//!
//! Waiting: a side that must wait spins a little when the peer runs on another CPU and is awake,
//! then announces itself in its `sleeping` word, re-checks, and waits on its sequence word (a
//! futex). The other side, after publishing, fences and looks at `sleeping`: the two SeqCst fences
//! make sure that either the waiter sees the new index or the publisher sees the waiter, who then
//! gets a bump of the sequence word and a wake-up. The publisher takes the flag as it wakes the
//! waiter (a swap to 0), so a burst of messages to a sleeper that has not run yet costs one
//! wake-up, not one per message. A futex waiter is not woken by its peer's
//! death, so the wait is cut in slices and [`Env::peer_gone`] is asked after each.

use std::time::{Duration, Instant};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

/// Bytes of a record's header.
pub(crate) const RECORD_HEADER: usize = 8;

/// The last (or only) piece of a message. Its high 24 bits count the descriptors that travel
/// with the message (beside the ring, on the channel's socket).
const TAG_END: u32 = 1;
/// A piece of a message; more follow.
const TAG_PART: u32 = 2;
/// The message being streamed is withdrawn.
const TAG_ABORT: u32 = 3;

/// The longest a waiter sleeps before it checks that its peer is still there.
pub(crate) const SLICE: Duration = Duration::from_millis(100);

/// What the producer writes (and the consumer reads).
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct ProducerLine {
    /// Bytes published so far (monotonic; the position is `tail % capacity`).
    pub(crate) tail: AtomicU64,
    /// The CPU the producer last ran on.
    pub(crate) cpu: AtomicU32,
    /// Non-zero while the producer sleeps for space.
    pub(crate) sleeping: AtomicU32,
    /// The producer's futex word: bumped by the consumer to wake it.
    pub(crate) space_seq: AtomicU32,
    /// Non-zero once the producer closed: nothing more will be published.
    pub(crate) closed: AtomicU32,
}

/// What the consumer writes (and the producer reads).
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct ConsumerLine {
    /// Bytes consumed so far.
    pub(crate) head: AtomicU64,
    /// The CPU the consumer last ran on.
    pub(crate) cpu: AtomicU32,
    /// Non-zero while the consumer sleeps on `data_seq`.
    pub(crate) sleeping: AtomicU32,
    /// The number of threads of the consumer's process waiting in `poll` on its doorbell.
    pub(crate) polling: AtomicU32,
    /// The consumer's futex word: bumped by the producer to wake it.
    pub(crate) data_seq: AtomicU32,
    /// Non-zero once the consumer closed: it reads nothing more.
    pub(crate) closed: AtomicU32,
}

/// One direction's header. Zeroed memory is a valid, empty ring.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct RingHeader {
    pub(crate) producer: ProducerLine,
    pub(crate) consumer: ConsumerLine,
}

#[cfg(any(loom, test))]
impl RingHeader {
    pub(crate) fn new() -> RingHeader {
        RingHeader {
            producer: ProducerLine {
                tail: AtomicU64::new(0),
                cpu: AtomicU32::new(0),
                sleeping: AtomicU32::new(0),
                space_seq: AtomicU32::new(0),
                closed: AtomicU32::new(0),
            },
            consumer: ConsumerLine {
                head: AtomicU64::new(0),
                cpu: AtomicU32::new(0),
                sleeping: AtomicU32::new(0),
                polling: AtomicU32::new(0),
                data_seq: AtomicU32::new(0),
                closed: AtomicU32::new(0),
            },
        }
    }
}

/// The memory of one direction.
pub(crate) trait Memory {
    /// The header.
    fn header(&self) -> &RingHeader;
    /// The byte area's length: a power of two.
    fn capacity(&self) -> usize;
    /// Copies `src` to `offset..offset + src.len()` of the byte area.
    ///
    /// # Safety
    ///
    /// The range lies within the area and past the published tail: the consumer does not read
    /// it until the next publication.
    unsafe fn copy_in(&self, offset: usize, src: &[u8]);
    /// Copies `offset..offset + dst.len()` of the byte area to `dst`.
    ///
    /// # Safety
    ///
    /// The range lies within the area and between the consumer's head and the published tail:
    /// the producer does not write it until the consumer publishes its head.
    unsafe fn copy_out(&self, offset: usize, dst: &mut [u8]);
}

/// What the algorithm needs from the world around it.
pub(crate) trait Env {
    /// Waits while `word` holds `seen`, at most `timeout` (it may return early).
    fn wait(&self, word: &AtomicU32, seen: u32, timeout: Duration);
    /// Wakes the waiters of `word`.
    fn wake(&self, word: &AtomicU32);
    /// Rings the consumer's doorbell (for a consumer waiting in `poll`).
    fn doorbell(&self);
    /// Whether the peer is gone (its process ended or it hung up).
    fn peer_gone(&self) -> bool;
    /// The CPU this thread runs on.
    fn current_cpu(&self) -> u32;
    /// How many times to look before sleeping, given the CPU the peer last ran on and whether
    /// it is asleep.
    fn spin_budget(&self, peer_cpu: u32, peer_asleep: bool) -> u32;
}

/// Why a ring operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RingError {
    /// The peer closed, or is gone, or this side closed.
    Closed,
    /// The deadline passed; nothing was taken.
    Timeout,
    /// The ring stayed full until the deadline; nothing of the message was delivered.
    Full {
        /// The ring's capacity in bytes.
        capacity: usize,
    },
    /// A message larger than the limit (from a peer that does not keep to it).
    TooLarge { len: u64, max: u64 },
    /// The peer wrote indices or records that cannot be.
    Corrupt(String),
}

fn write_at<M: Memory>(mem: &M, position: u64, bytes: &[u8]) {
    let capacity = mem.capacity();
    let offset = (position % capacity as u64) as usize;
    let first = bytes.len().min(capacity - offset);
    // SAFETY: the producer only writes past its tail, within free space (checked by callers);
    // the two pieces lie within the area.
    unsafe {
        mem.copy_in(offset, &bytes[..first]);
        mem.copy_in(0, &bytes[first..]);
    }
}

fn read_at<M: Memory>(mem: &M, position: u64, bytes: &mut [u8]) {
    let capacity = mem.capacity();
    let offset = (position % capacity as u64) as usize;
    let first = bytes.len().min(capacity - offset);
    let (a, b) = bytes.split_at_mut(first);
    // SAFETY: the consumer only reads published bytes (checked by callers); the two pieces lie
    // within the area.
    unsafe {
        mem.copy_out(offset, a);
        mem.copy_out(0, b);
    }
}

/// Waits until `ready()`, the deadline (`Timeout`) or the peer's end (`Closed`).
#[allow(clippy::too_many_arguments)]
fn wait_for<E: Env>(
    env: &E,
    deadline: Option<Instant>,
    sleeping: &AtomicU32,
    seq: &AtomicU32,
    peer_cpu: &AtomicU32,
    peer_sleeping: &AtomicU32,
    mut ready: impl FnMut() -> bool,
) -> Result<(), RingError> {
    // A call that may not wait (its deadline is now) does not spin either.
    let budget = if deadline.is_some_and(|deadline| deadline <= Instant::now()) {
        0
    } else {
        env.spin_budget(
            peer_cpu.load(Ordering::Relaxed),
            peer_sleeping.load(Ordering::Relaxed) != 0,
        )
    };
    for _ in 0..budget {
        if ready() {
            return Ok(());
        }
        std::hint::spin_loop();
    }
    loop {
        let seen = seq.load(Ordering::Acquire);
        sleeping.store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if ready() {
            sleeping.store(0, Ordering::Relaxed);
            return Ok(());
        }
        let slice = match deadline {
            None => SLICE,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    sleeping.store(0, Ordering::Relaxed);
                    // A peer that is gone is the answer even to a call that may not wait.
                    if env.peer_gone() {
                        return Err(RingError::Closed);
                    }
                    return Err(RingError::Timeout);
                }
                left.min(SLICE)
            }
        };
        env.wait(seq, seen, slice);
        sleeping.store(0, Ordering::Relaxed);
        if ready() {
            return Ok(());
        }
        if env.peer_gone() {
            return Err(RingError::Closed);
        }
    }
}

/// The producer's side of one direction (its own copy of `tail`: the peer cannot move it).
#[derive(Debug, Default)]
pub(crate) struct Producer {
    tail: u64,
    /// When the producer last asked whether its peer is still there.
    checked: Option<Instant>,
}

impl Producer {
    fn free<M: Memory>(&self, mem: &M) -> Result<usize, RingError> {
        let head = mem.header().consumer.head.load(Ordering::Acquire);
        let used = self.tail.wrapping_sub(head);
        if used > mem.capacity() as u64 {
            return Err(RingError::Corrupt(format!(
                "the peer's read index {head} is not within the ring's {} bytes behind {}",
                mem.capacity(),
                self.tail
            )));
        }
        Ok(mem.capacity() - used as usize)
    }

    /// Writes one record (the caller checked that it fits) and publishes it.
    fn put<M: Memory, E: Env>(&mut self, mem: &M, env: &E, tag: u32, payload: &[u8]) {
        let mut head = [0u8; RECORD_HEADER];
        head[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        head[4..].copy_from_slice(&tag.to_le_bytes());
        write_at(mem, self.tail, &head);
        write_at(mem, self.tail + RECORD_HEADER as u64, payload);
        self.tail += (RECORD_HEADER + payload.len()) as u64;
        let header = mem.header();
        header.producer.tail.store(self.tail, Ordering::Release);
        fence(Ordering::SeqCst);
        let consumer = &header.consumer;
        // Taking the flag wakes the sleeper once: the messages published before it runs again
        // cost no more system calls.
        if consumer.sleeping.load(Ordering::Relaxed) != 0
            && consumer.sleeping.swap(0, Ordering::Relaxed) != 0
        {
            consumer.data_seq.fetch_add(1, Ordering::Release);
            env.wake(&consumer.data_seq);
        }
        if consumer.polling.load(Ordering::Relaxed) != 0 {
            env.doorbell();
        }
    }

    /// Sends one message, waiting for space until `deadline` (`Full` after it).
    pub(crate) fn send<M: Memory, E: Env>(
        &mut self,
        mem: &M,
        env: &E,
        message: &[u8],
        deadline: Option<Instant>,
    ) -> Result<(), RingError> {
        self.send_counted(mem, env, message, deadline, 0, || Ok(()))
    }

    /// [`send`](Self::send), announcing `count` descriptors in the message's `END` record;
    /// `before_end` runs once, just before that record is published (it sends them).
    pub(crate) fn send_counted<M: Memory, E: Env>(
        &mut self,
        mem: &M,
        env: &E,
        message: &[u8],
        deadline: Option<Instant>,
        count: u32,
        before_end: impl FnOnce() -> Result<(), RingError>,
    ) -> Result<(), RingError> {
        let mut before_end = Some(before_end);
        if count >= 1 << 24 {
            return Err(RingError::TooLarge {
                len: u64::from(count),
                max: (1 << 24) - 1,
            });
        }
        let header = mem.header();
        let capacity = mem.capacity();
        if message.len() > u32::MAX as usize - RECORD_HEADER {
            return Err(RingError::TooLarge {
                len: message.len() as u64,
                max: u64::from(u32::MAX) - RECORD_HEADER as u64,
            });
        }
        header
            .producer
            .cpu
            .store(env.current_cpu(), Ordering::Relaxed);
        // A send that finds room never waits, so it never learns that the peer died: ask, at
        // most once a slice (one `poll` each time), so that sends to a dead peer fail soon.
        let now = Instant::now();
        if self
            .checked
            .is_none_or(|at| now.duration_since(at) >= SLICE)
        {
            self.checked = Some(now);
            if env.peer_gone() {
                return Err(RingError::Closed);
            }
        }
        // A message that can never fit whole is streamed in pieces of at least a quarter ring.
        let streamed = RECORD_HEADER + message.len() > capacity;
        let mut sent = 0;
        loop {
            if header.producer.closed.load(Ordering::Relaxed) != 0
                || header.consumer.closed.load(Ordering::Acquire) != 0
            {
                return Err(RingError::Closed);
            }
            let rest = &message[sent..];
            let free = self.free(mem)?;
            if RECORD_HEADER + rest.len() <= free {
                if let Some(before_end) = before_end.take()
                    && let Err(err) = before_end()
                {
                    if sent > 0 {
                        self.put(mem, env, TAG_ABORT, &[]);
                    }
                    return Err(err);
                }
                self.put(mem, env, TAG_END | count << 8, rest);
                return Ok(());
            }
            let least = rest.len().min(capacity / 4);
            let need = if streamed {
                // Room for the piece and for an ABORT after it.
                let room = free.saturating_sub(2 * RECORD_HEADER);
                if room >= least {
                    self.put(mem, env, TAG_PART, &rest[..room]);
                    sent += room;
                    continue;
                }
                least + 2 * RECORD_HEADER
            } else {
                RECORD_HEADER + rest.len()
            };
            let waited = wait_for(
                env,
                deadline,
                &header.producer.sleeping,
                &header.producer.space_seq,
                &header.consumer.cpu,
                &header.consumer.sleeping,
                || {
                    self.free(mem).map_or(true, |free| free >= need)
                        || header.consumer.closed.load(Ordering::Acquire) != 0
                },
            );
            match waited {
                Ok(()) => {}
                Err(RingError::Timeout) => {
                    if sent > 0 {
                        // Kept free by every PART: the ABORT fits.
                        self.put(mem, env, TAG_ABORT, &[]);
                    }
                    return Err(RingError::Full { capacity });
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// Closes this direction: the consumer gets `Closed` once it has read what was sent.
    pub(crate) fn close<M: Memory, E: Env>(mem: &M, env: &E) {
        let header = mem.header();
        header.producer.closed.store(1, Ordering::Release);
        fence(Ordering::SeqCst);
        header.consumer.data_seq.fetch_add(1, Ordering::Release);
        env.wake(&header.consumer.data_seq);
        // A producer of this process waiting for space wakes and sees `closed`.
        header.producer.space_seq.fetch_add(1, Ordering::Release);
        env.wake(&header.producer.space_seq);
        env.doorbell();
    }
}

/// The consumer's side of one direction: its own copy of `head`, and the pieces of a message
/// being streamed (kept across a timeout, so nothing is lost).
#[derive(Debug, Default)]
pub(crate) struct Consumer {
    head: u64,
    partial: Vec<u8>,
    broken: Option<RingError>,
}

impl Consumer {
    fn available<M: Memory>(&self, mem: &M) -> Result<usize, RingError> {
        let tail = mem.header().producer.tail.load(Ordering::Acquire);
        let available = tail.wrapping_sub(self.head);
        if available > mem.capacity() as u64 {
            return Err(RingError::Corrupt(format!(
                "the peer's write index {tail} is not within the ring's {} bytes ahead of {}",
                mem.capacity(),
                self.head
            )));
        }
        Ok(available as usize)
    }

    /// Whether a `recv` would not wait: a record is there, or the stream ended.
    pub(crate) fn ready<M: Memory>(&self, mem: &M) -> bool {
        let header = mem.header();
        self.broken.is_some()
            || self.available(mem).map_or(true, |n| n > 0)
            || header.producer.closed.load(Ordering::Acquire) != 0
            || header.consumer.closed.load(Ordering::Relaxed) != 0
    }

    /// Takes the records that are there, up to the end of a message: the message and the
    /// number of descriptors its `END` announced.
    fn take<M: Memory, E: Env>(
        &mut self,
        mem: &M,
        env: &E,
        limit: usize,
    ) -> Result<Option<(Vec<u8>, u32)>, RingError> {
        let start = self.head;
        let result = loop {
            let available = match self.available(mem) {
                Ok(n) => n,
                Err(err) => break Err(err),
            };
            if available == 0 {
                break Ok(None);
            }
            if available < RECORD_HEADER {
                break Err(RingError::Corrupt(format!(
                    "{available} bytes published: less than a record"
                )));
            }
            let mut head = [0u8; RECORD_HEADER];
            read_at(mem, self.head, &mut head);
            let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
            let word = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
            let (tag, count) = (word & 0xff, word >> 8);
            if RECORD_HEADER + len > available {
                break Err(RingError::Corrupt(format!(
                    "a record of {len} bytes runs past the {available} bytes published"
                )));
            }
            match tag {
                TAG_END | TAG_PART if tag == TAG_END || count == 0 => {
                    let total = self.partial.len() + len;
                    if total > limit {
                        break Err(RingError::TooLarge {
                            len: total as u64,
                            max: limit as u64,
                        });
                    }
                    let old = self.partial.len();
                    self.partial.resize(total, 0);
                    read_at(
                        mem,
                        self.head + RECORD_HEADER as u64,
                        &mut self.partial[old..],
                    );
                }
                // Dropped with its memory: a withdrawn gigabyte is not kept.
                TAG_ABORT if len == 0 && count == 0 => self.partial = Vec::new(),
                _ => {
                    break Err(RingError::Corrupt(format!(
                        "a record with tag {word:#x} and {len} bytes"
                    )));
                }
            }
            self.head += (RECORD_HEADER + len) as u64;
            if tag == TAG_END {
                break Ok(Some((std::mem::take(&mut self.partial), count)));
            }
        };
        if self.head != start {
            let header = mem.header();
            header.consumer.head.store(self.head, Ordering::Release);
            fence(Ordering::SeqCst);
            if header.producer.sleeping.load(Ordering::Relaxed) != 0
                && header.producer.sleeping.swap(0, Ordering::Relaxed) != 0
            {
                header.producer.space_seq.fetch_add(1, Ordering::Release);
                env.wake(&header.producer.space_seq);
            }
        }
        result
    }

    /// The next message, waiting until `deadline`. A message is never handed out in part.
    #[allow(dead_code)] // the runtime takes the count (recv_counted); tests, loom, the fuzz target
    pub(crate) fn recv<M: Memory, E: Env>(
        &mut self,
        mem: &M,
        env: &E,
        limit: usize,
        deadline: Option<Instant>,
    ) -> Result<Vec<u8>, RingError> {
        self.recv_counted(mem, env, limit, deadline)
            .map(|(message, _)| message)
    }

    /// [`recv`](Self::recv), with the number of descriptors the message announced.
    pub(crate) fn recv_counted<M: Memory, E: Env>(
        &mut self,
        mem: &M,
        env: &E,
        limit: usize,
        deadline: Option<Instant>,
    ) -> Result<(Vec<u8>, u32), RingError> {
        if let Some(err) = &self.broken {
            return Err(err.clone());
        }
        let header = mem.header();
        header
            .consumer
            .cpu
            .store(env.current_cpu(), Ordering::Relaxed);
        loop {
            if header.consumer.closed.load(Ordering::Relaxed) != 0 {
                return Err(RingError::Closed);
            }
            match self.take(mem, env, limit) {
                Ok(Some(message)) => return Ok(message),
                Ok(None) => {}
                Err(err) => {
                    self.broken = Some(err.clone());
                    return Err(err);
                }
            }
            if header.producer.closed.load(Ordering::Acquire) != 0 {
                // Everything published before the close is visible now: take it, then end.
                return match self.take(mem, env, limit) {
                    Ok(Some(message)) => Ok(message),
                    Ok(None) => Err(RingError::Closed),
                    Err(err) => {
                        self.broken = Some(err.clone());
                        Err(err)
                    }
                };
            }
            wait_for(
                env,
                deadline,
                &header.consumer.sleeping,
                &header.consumer.data_seq,
                &header.producer.cpu,
                &header.producer.sleeping,
                || self.ready(mem),
            )?;
        }
    }

    /// Closes this direction for reading: the producer's sends fail with `Closed`.
    pub(crate) fn close<M: Memory, E: Env>(mem: &M, env: &E) {
        let header = mem.header();
        header.consumer.closed.store(1, Ordering::Release);
        fence(Ordering::SeqCst);
        header.producer.space_seq.fetch_add(1, Ordering::Release);
        env.wake(&header.producer.space_seq);
        // A consumer of this process waiting for data wakes and sees `closed`.
        header.consumer.data_seq.fetch_add(1, Ordering::Release);
        env.wake(&header.consumer.data_seq);
        env.doorbell();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::cell::UnsafeCell;

    /// A ring in this process's heap.
    struct Heap {
        header: RingHeader,
        bytes: Box<[UnsafeCell<u8>]>,
    }

    impl Heap {
        fn new(capacity: usize) -> Heap {
            Heap {
                header: RingHeader::new(),
                bytes: (0..capacity).map(|_| UnsafeCell::new(0)).collect(),
            }
        }
    }

    impl Memory for Heap {
        fn header(&self) -> &RingHeader {
            &self.header
        }
        fn capacity(&self) -> usize {
            self.bytes.len()
        }
        unsafe fn copy_in(&self, offset: usize, src: &[u8]) {
            for (i, byte) in src.iter().enumerate() {
                // SAFETY: single-threaded test.
                unsafe { *self.bytes[offset + i].get() = *byte };
            }
        }
        unsafe fn copy_out(&self, offset: usize, dst: &mut [u8]) {
            for (i, byte) in dst.iter_mut().enumerate() {
                // SAFETY: single-threaded test.
                *byte = unsafe { *self.bytes[offset + i].get() };
            }
        }
    }

    struct Quiet;
    impl Env for Quiet {
        fn wait(&self, _: &AtomicU32, _: u32, timeout: Duration) {
            std::thread::sleep(timeout.min(Duration::from_millis(1)));
        }
        fn wake(&self, _: &AtomicU32) {}
        fn doorbell(&self) {}
        fn peer_gone(&self) -> bool {
            false
        }
        fn current_cpu(&self) -> u32 {
            0
        }
        fn spin_budget(&self, _: u32, _: bool) -> u32 {
            0
        }
    }

    fn now() -> Option<Instant> {
        Some(Instant::now())
    }

    #[test]
    fn messages_come_out_whole_and_in_order_across_the_wrap() {
        let ring = Heap::new(64);
        let (mut tx, mut rx) = (Producer::default(), Consumer::default());
        for round in 0..200_u32 {
            let message: Vec<u8> = (0..round % 40).map(|i| (i + round) as u8).collect();
            tx.send(&ring, &Quiet, &message, now()).unwrap();
            assert_eq!(rx.recv(&ring, &Quiet, 1 << 20, now()).unwrap(), message);
        }
        assert_eq!(
            rx.recv(&ring, &Quiet, 1 << 20, now()),
            Err(RingError::Timeout)
        );
    }

    #[test]
    fn a_full_ring_is_full_at_once_for_try_send_and_loses_nothing() {
        let ring = Heap::new(64);
        let (mut tx, mut rx) = (Producer::default(), Consumer::default());
        tx.send(&ring, &Quiet, &[1; 40], now()).unwrap();
        assert_eq!(
            tx.send(&ring, &Quiet, &[2; 40], now()),
            Err(RingError::Full { capacity: 64 })
        );
        assert_eq!(rx.recv(&ring, &Quiet, 1024, now()).unwrap(), vec![1; 40]);
        tx.send(&ring, &Quiet, &[3; 40], now()).unwrap();
        assert_eq!(rx.recv(&ring, &Quiet, 1024, now()).unwrap(), vec![3; 40]);
    }

    #[test]
    fn a_stream_given_up_half_way_is_dropped_by_the_reader() {
        let ring = Heap::new(64);
        let (mut tx, mut rx) = (Producer::default(), Consumer::default());
        // 200 bytes cannot fit: the producer sends a piece, then times out and aborts.
        assert_eq!(
            tx.send(&ring, &Quiet, &[7; 200], now()),
            Err(RingError::Full { capacity: 64 })
        );
        assert_eq!(rx.recv(&ring, &Quiet, 1024, now()), Err(RingError::Timeout));
        tx.send(&ring, &Quiet, b"after", now()).unwrap();
        assert_eq!(rx.recv(&ring, &Quiet, 1024, now()).unwrap(), b"after");
    }

    #[test]
    fn a_closed_producer_ends_the_stream_after_its_messages() {
        let ring = Heap::new(64);
        let (mut tx, mut rx) = (Producer::default(), Consumer::default());
        tx.send(&ring, &Quiet, b"last", now()).unwrap();
        Producer::close(&ring, &Quiet);
        assert_eq!(rx.recv(&ring, &Quiet, 1024, None).unwrap(), b"last");
        assert_eq!(rx.recv(&ring, &Quiet, 1024, None), Err(RingError::Closed));
        assert_eq!(tx.send(&ring, &Quiet, b"x", None), Err(RingError::Closed));
    }

    #[test]
    fn lying_indices_and_records_are_typed_errors() {
        let ring = Heap::new(64);
        let mut rx = Consumer::default();
        ring.header.producer.tail.store(1000, Ordering::Release);
        assert!(matches!(
            rx.recv(&ring, &Quiet, 1024, now()),
            Err(RingError::Corrupt(_))
        ));
        // A record that claims more than was published.
        let ring = Heap::new(64);
        let mut rx = Consumer::default();
        write_at(&ring, 0, &[50, 0, 0, 0, 1, 0, 0, 0]);
        ring.header.producer.tail.store(16, Ordering::Release);
        assert!(matches!(
            rx.recv(&ring, &Quiet, 1024, now()),
            Err(RingError::Corrupt(_))
        ));
        // Over the limit.
        let ring = Heap::new(64);
        let (mut tx, mut rx) = (Producer::default(), Consumer::default());
        tx.send(&ring, &Quiet, &[0; 30], now()).unwrap();
        assert_eq!(
            rx.recv(&ring, &Quiet, 10, now()),
            Err(RingError::TooLarge { len: 30, max: 10 })
        );
        // A read index the producer cannot have let happen.
        let ring = Heap::new(64);
        let mut tx = Producer::default();
        ring.header.consumer.head.store(5, Ordering::Release);
        assert!(matches!(
            tx.send(&ring, &Quiet, b"x", now()),
            Err(RingError::Corrupt(_))
        ));
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! The wake-up protocol under every interleaving loom can find: no lost wake-up (loom
    //! reports a deadlock if both sides sleep), no torn or reordered message, no data race on
    //! the byte area (loom's cells check every access).
    use super::*;
    use loom::cell::UnsafeCell;
    use loom::sync::{Arc, Condvar, Mutex};

    struct Heap {
        header: RingHeader,
        bytes: Vec<UnsafeCell<u8>>,
    }

    impl Memory for Heap {
        fn header(&self) -> &RingHeader {
            &self.header
        }
        fn capacity(&self) -> usize {
            self.bytes.len()
        }
        unsafe fn copy_in(&self, offset: usize, src: &[u8]) {
            for (i, byte) in src.iter().enumerate() {
                // SAFETY: loom checks the claim.
                self.bytes[offset + i].with_mut(|p| unsafe { *p = *byte });
            }
        }
        unsafe fn copy_out(&self, offset: usize, dst: &mut [u8]) {
            for (i, byte) in dst.iter_mut().enumerate() {
                // SAFETY: loom checks the claim.
                *byte = self.bytes[offset + i].with(|p| unsafe { *p });
            }
        }
    }

    /// A futex: waiting re-checks the word under the lock the waker takes to notify.
    #[derive(Clone)]
    struct Futex(Arc<(Mutex<()>, Condvar)>);

    impl Env for Futex {
        fn wait(&self, word: &AtomicU32, seen: u32, _: Duration) {
            let guard = self.0.0.lock().unwrap();
            if word.load(Ordering::Acquire) == seen {
                drop(self.0.1.wait(guard).unwrap());
            }
        }
        fn wake(&self, _: &AtomicU32) {
            let _guard = self.0.0.lock().unwrap();
            self.0.1.notify_all();
        }
        fn doorbell(&self) {}
        fn peer_gone(&self) -> bool {
            false
        }
        fn current_cpu(&self) -> u32 {
            0
        }
        fn spin_budget(&self, _: u32, _: bool) -> u32 {
            0
        }
    }

    fn model(capacity: usize, messages: &'static [&'static [u8]], close: bool) {
        let mut builder = loom::model::Builder::new();
        // Every interleaving with up to three preemptions (LOOM_MAX_PREEMPTIONS overrides):
        // the bugs loom finds in practice need two or three; an unbounded search of a
        // streamed message does not end in a CI run.
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = Some(3);
        }
        builder.check(move || {
            let ring = Arc::new(Heap {
                header: RingHeader::new(),
                bytes: (0..capacity).map(|_| UnsafeCell::new(0)).collect(),
            });
            let env = Futex(Arc::new((Mutex::new(()), Condvar::new())));
            let (ring2, env2) = (Arc::clone(&ring), env.clone());
            let producer = loom::thread::spawn(move || {
                let mut tx = Producer::default();
                for message in messages {
                    tx.send(&*ring2, &env2, message, None).unwrap();
                }
                if close {
                    Producer::close(&*ring2, &env2);
                }
            });
            let mut rx = Consumer::default();
            for message in messages {
                assert_eq!(rx.recv(&*ring, &env, 1024, None).unwrap(), *message);
            }
            if close {
                assert_eq!(rx.recv(&*ring, &env, 1024, None), Err(RingError::Closed));
            }
            producer.join().unwrap();
        });
    }

    #[test]
    fn small_messages_through_a_ring_that_fills() {
        model(32, &[b"abcdefghijkl", b"mnopqrstuvwx", b"yz"], false);
    }

    #[test]
    fn a_message_larger_than_the_ring_is_streamed_whole() {
        model(32, &[b"0123456789abcdefghijklmnopqrstuvwxyz!"], false);
    }

    #[test]
    fn a_close_after_the_last_message_is_seen_after_it() {
        model(32, &[b"last"], true);
    }
}
