//! The shared-memory transport: a [`Channel`] is two single-producer single-consumer rings in
//! one memfd (one per direction), set up over an authenticated socket that stays open for one
//! thing only: telling each side when the other is gone.
//!
//! One side [offers](Channel::offer): it creates the memfd and the two doorbell eventfds (one
//! per side) and sends the three over the socket with SCM_RIGHTS. The other
//! [accepts](Channel::accept): it checks that the memfd is sealed and of a size it expects, and
//! maps it. Nothing comes back, so the offer costs no round trip. From
//! then on a message costs a copy into the ring, a release store, and a futex wake only when the
//! reader sleeps. The algorithm is in `spsc.rs`; this file is the process side of it: futexes
//! on shared memory, `sched_getcpu` for the spin decision, the socket for liveness, the
//! eventfds for readers that wait in `poll`.

pub(crate) mod reactor;
pub(crate) mod spsc;

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use self::spsc::{AtomicU32, Consumer, Env, Memory, Producer, RingError, RingHeader};
use crate::error::IpcError;
use crate::sync::lock;
use crate::sys::SharedRegion;
use crate::wire::{Conn, Kind};

/// Bytes of each direction's ring.
pub(crate) const CAPACITY: usize = 256 * 1024;
/// The smallest and largest ring a peer may offer.
const MIN_CAPACITY: usize = 4096;
const MAX_CAPACITY: usize = 64 << 20;
/// The first page: the channel header and the two ring headers.
const META: usize = 4096;
const MAGIC: u64 = 0x736b_7269_6e67_0001; // "skring" + layout version 1
/// The most descriptors one message may carry.
const MAX_FDS: u32 = 1024;
/// How long a receiver waits for descriptors that were sent before their message.
const FDS_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the set-up waits for the peer's half.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a spinning side looks before it sleeps (when the peer is awake on another CPU).
const SPIN_ROUNDS: u32 = 1000;

#[repr(C)]
struct Meta {
    magic: std::sync::atomic::AtomicU64,
    capacity: std::sync::atomic::AtomicU64,
}

const _: () = assert!(
    size_of::<Meta>() <= 128 && 128 + 2 * size_of::<RingHeader>() <= META,
    "the headers fit the first page"
);

/// One direction in the mapping.
struct Half<'a> {
    region: &'a SharedRegion,
    header: usize,
    data: usize,
    capacity: usize,
}

impl Memory for Half<'_> {
    fn header(&self) -> &RingHeader {
        // SAFETY: `header` is a 128-aligned offset within the first page of a live mapping;
        // RingHeader is only atomics, valid for any bits.
        unsafe { &*self.region.as_ptr().add(self.header).cast::<RingHeader>() }
    }

    fn capacity(&self) -> usize {
        self.capacity
    }

    unsafe fn copy_in(&self, offset: usize, src: &[u8]) {
        // SAFETY: the caller keeps the range within the area; the area lies within the mapping.
        unsafe {
            std::ptr::copy_nonoverlapping(
                src.as_ptr(),
                self.region.as_ptr().add(self.data + offset),
                src.len(),
            );
        }
    }

    unsafe fn copy_out(&self, offset: usize, dst: &mut [u8]) {
        // SAFETY: as for copy_in. The peer may scribble on these bytes meanwhile; they are
        // plain bytes, checked by whoever decodes them.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.region.as_ptr().add(self.data + offset),
                dst.as_mut_ptr(),
                dst.len(),
            );
        }
    }
}

/// The process side of the algorithm's environment.
struct Signals<'a> {
    socket: BorrowedFd<'a>,
    peer_doorbell: BorrowedFd<'a>,
    closed: &'a AtomicBool,
}

impl Env for Signals<'_> {
    fn wait(&self, word: &AtomicU32, seen: u32, timeout: Duration) {
        crate::sys::futex_wait(word, seen, timeout);
    }

    fn wake(&self, word: &AtomicU32) {
        crate::sys::futex_wake(word);
    }

    fn doorbell(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writing 8 bytes to a descriptor we hold; it was made non-blocking when it
        // arrived, so a peer cannot make this call wait.
        unsafe {
            libc::write(self.peer_doorbell.as_raw_fd(), one.as_ptr().cast(), 8);
        }
    }

    fn peer_gone(&self) -> bool {
        if self.closed.load(Ordering::Acquire) {
            return true;
        }
        let mut pollfd = libc::pollfd {
            fd: self.socket.as_raw_fd(),
            events: libc::POLLRDHUP,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no waiting.
        let rc = unsafe { libc::poll(&mut pollfd, 1, 0) };
        rc > 0 && pollfd.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
    }

    fn current_cpu(&self) -> u32 {
        // SAFETY: no arguments; -1 on error.
        u32::try_from(unsafe { libc::sched_getcpu() }).unwrap_or(u32::MAX)
    }

    fn spin_budget(&self, peer_cpu: u32, peer_asleep: bool) -> u32 {
        // Spinning helps only when the peer is awake on another CPU; on ours it cannot run
        // while we spin.
        if peer_asleep || peer_cpu == self.current_cpu() || peer_cpu == u32::MAX {
            0
        } else {
            SPIN_ROUNDS
        }
    }
}

/// A message and the descriptors that travelled with it.
pub(crate) type Received = (Vec<u8>, Vec<OwnedFd>);

/// Two rings between two processes, and the socket that says when the peer is gone.
pub(crate) struct Channel {
    region: SharedRegion,
    /// 0 for the offering side, 1 for the accepting side: the ring this side produces into.
    side: usize,
    capacity: usize,
    producer: Mutex<Producer>,
    consumer: Mutex<Consumer>,
    conn: Arc<Conn>,
    /// Whether closing the channel shuts the socket down (not when the socket carries more
    /// than this channel: a process's lifecycle frames).
    owns_socket: bool,
    /// Written by the peer when it publishes and this side waits in `poll`.
    doorbell: OwnedFd,
    peer_doorbell: OwnedFd,
    closed: AtomicBool,
    limit: usize,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("side", &self.side)
            .field("capacity", &self.capacity)
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; a new descriptor on success.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes a descriptor from the peer non-blocking, so writing to it never waits.
fn make_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fcntl on a valid descriptor with integer arguments.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn setup_error(err: IpcError) -> IpcError {
    match err {
        IpcError::Timeout => IpcError::Malformed("the peer did not set up the ring in time".into()),
        other => other,
    }
}

impl Channel {
    /// Creates the rings and the doorbells and sends them to the peer over `conn`
    /// (authenticated already). `owns_socket`: closing the channel shuts `conn` down.
    pub(crate) fn offer(
        conn: Arc<Conn>,
        limit: u32,
        owns_socket: bool,
    ) -> Result<Channel, IpcError> {
        let (region, memfd) = SharedRegion::create(META + 2 * CAPACITY).map_err(IpcError::Io)?;
        // SAFETY: the first page of a fresh mapping; Meta is only atomics.
        let meta = unsafe { &*region.as_ptr().cast::<Meta>() };
        meta.capacity
            .store(CAPACITY as u64, std::sync::atomic::Ordering::Relaxed);
        meta.magic
            .store(MAGIC, std::sync::atomic::Ordering::Release);
        let doorbell = eventfd().map_err(IpcError::Io)?;
        let peer_doorbell = eventfd().map_err(IpcError::Io)?;
        // The peer's doorbell first, then ours (which the peer rings).
        for fd in [&memfd, &peer_doorbell, &doorbell] {
            conn.send_with_fd(Kind::RingSetup, &[], fd.as_fd())?;
        }
        Ok(Channel::new(
            region,
            0,
            CAPACITY,
            conn,
            owns_socket,
            doorbell,
            peer_doorbell,
            limit,
        ))
    }

    /// Takes the rings a peer offered over `conn` (authenticated already).
    pub(crate) fn accept(
        conn: Arc<Conn>,
        limit: u32,
        owns_socket: bool,
    ) -> Result<Channel, IpcError> {
        conn.set_read_timeout(Some(SETUP_TIMEOUT))
            .map_err(IpcError::Io)?;
        let received = (0..3)
            .map(|_| conn.recv_with_fd(Kind::RingSetup).map_err(setup_error))
            .collect::<Result<Vec<OwnedFd>, IpcError>>();
        conn.set_read_timeout(None).map_err(IpcError::Io)?;
        let [memfd, doorbell, peer_doorbell]: [OwnedFd; 3] =
            received?.try_into().expect("three descriptors");
        make_nonblocking(peer_doorbell.as_fd()).map_err(IpcError::Io)?;
        make_nonblocking(doorbell.as_fd()).map_err(IpcError::Io)?;
        let size = file_size(memfd.as_fd()).map_err(IpcError::Io)?;
        let capacity = size.saturating_sub(META) / 2;
        if !capacity.is_power_of_two()
            || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity)
            || size != META + 2 * capacity
        {
            return Err(IpcError::Malformed(format!(
                "the peer's ring file of {size} bytes has no valid layout"
            )));
        }
        let region = SharedRegion::map(memfd.as_fd(), size).map_err(IpcError::Io)?;
        // SAFETY: the first page of the mapping; Meta is only atomics.
        let meta = unsafe { &*region.as_ptr().cast::<Meta>() };
        if meta.magic.load(std::sync::atomic::Ordering::Acquire) != MAGIC
            || meta.capacity.load(std::sync::atomic::Ordering::Relaxed) != capacity as u64
        {
            return Err(IpcError::Malformed(
                "the peer's ring has an unknown layout".into(),
            ));
        }
        Ok(Channel::new(
            region,
            1,
            capacity,
            conn,
            owns_socket,
            doorbell,
            peer_doorbell,
            limit,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn new(
        region: SharedRegion,
        side: usize,
        capacity: usize,
        conn: Arc<Conn>,
        owns_socket: bool,
        doorbell: OwnedFd,
        peer_doorbell: OwnedFd,
        limit: u32,
    ) -> Channel {
        Channel {
            region,
            side,
            capacity,
            producer: Mutex::new(Producer::default()),
            consumer: Mutex::new(Consumer::default()),
            conn,
            owns_socket,
            doorbell,
            peer_doorbell,
            closed: AtomicBool::new(false),
            limit: limit as usize,
        }
    }

    fn half(&self, ring: usize) -> Half<'_> {
        Half {
            region: &self.region,
            header: 128 + ring * size_of::<RingHeader>(),
            data: META + ring * self.capacity,
            capacity: self.capacity,
        }
    }

    fn outgoing(&self) -> Half<'_> {
        self.half(self.side)
    }

    fn incoming(&self) -> Half<'_> {
        self.half(1 - self.side)
    }

    fn signals(&self) -> Signals<'_> {
        Signals {
            socket: self.conn_fd(),
            peer_doorbell: self.peer_doorbell.as_fd(),
            closed: &self.closed,
        }
    }

    fn conn_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the socket lives as long as `self.conn`.
        unsafe { BorrowedFd::borrow_raw(self.conn.raw_fd()) }
    }

    /// Sends one message, waiting for room until `deadline` (then `Full`; nothing of the
    /// message is delivered). Threads of this process take turns, a whole message each.
    pub(crate) fn send(&self, message: &[u8], deadline: Option<Instant>) -> Result<(), RingError> {
        if message.len() > self.limit {
            return Err(RingError::TooLarge {
                len: message.len() as u64,
                max: self.limit as u64,
            });
        }
        let mut producer = lock(&self.producer);
        producer.send(&self.outgoing(), &self.signals(), message, deadline)
    }

    /// The next message, waiting until `deadline`. Descriptors that came with it (a peer
    /// that sends any on a channel that carries none is an error) are closed.
    pub(crate) fn recv(&self, deadline: Option<Instant>) -> Result<Vec<u8>, RingError> {
        self.recv_with_fds(deadline).map(|(message, _fds)| message)
    }

    /// The next message and the descriptors that travelled with it.
    pub(crate) fn recv_with_fds(&self, deadline: Option<Instant>) -> Result<Received, RingError> {
        self.recv_locked(&mut lock(&self.consumer), deadline)
    }

    fn recv_locked(
        &self,
        consumer: &mut Consumer,
        deadline: Option<Instant>,
    ) -> Result<Received, RingError> {
        let (message, count) =
            consumer.recv_counted(&self.incoming(), &self.signals(), self.limit, deadline)?;
        if count == 0 {
            return Ok((message, Vec::new()));
        }
        let fds = self.take_fds(count);
        if fds.is_err() {
            // The socket's descriptors and the ring's messages no longer match up.
            self.close();
        }
        Ok((message, fds?))
    }

    /// Reads the `count` descriptors a message announced from the socket.
    fn take_fds(&self, count: u32) -> Result<Vec<OwnedFd>, RingError> {
        if !self.owns_socket {
            // This socket carries other frames, read elsewhere: never descriptors.
            return Err(RingError::Corrupt(format!(
                "a message announced {count} descriptors on a channel that carries none"
            )));
        }
        if count > MAX_FDS {
            return Err(RingError::Corrupt(format!(
                "a message announced {count} descriptors (at most {MAX_FDS})"
            )));
        }
        // They were sent before the message was published: they are in the socket already, so
        // a short wait is enough, whatever the caller's deadline.
        self.conn
            .set_read_timeout(Some(FDS_TIMEOUT))
            .map_err(|err| RingError::Corrupt(err.to_string()))?;
        let fds = (0..count)
            .map(|_| {
                self.conn
                    .recv_with_fd(Kind::BufferFd)
                    .map_err(|err| RingError::Corrupt(format!("a message's descriptor: {err}")))
            })
            .collect::<Result<Vec<_>, _>>();
        let _ = self.conn.set_read_timeout(None);
        fds
    }

    /// Sends a message with descriptors (on a channel that owns its socket): they go on the
    /// socket just before the message is published, so the receiver finds them there.
    pub(crate) fn send_with_fds(
        &self,
        message: &[u8],
        fds: &[OwnedFd],
        deadline: Option<Instant>,
    ) -> Result<(), RingError> {
        if fds.is_empty() {
            return self.send(message, deadline);
        }
        if fds.len() > MAX_FDS as usize {
            return Err(RingError::TooLarge {
                len: fds.len() as u64,
                max: u64::from(MAX_FDS),
            });
        }
        if !self.owns_socket {
            return Err(RingError::Corrupt(
                "this channel cannot carry descriptors".into(),
            ));
        }
        if message.len() > self.limit {
            return Err(RingError::TooLarge {
                len: message.len() as u64,
                max: self.limit as u64,
            });
        }
        let mut producer = lock(&self.producer);
        producer.send_counted(
            &self.outgoing(),
            &self.signals(),
            message,
            deadline,
            u32::try_from(fds.len()).unwrap_or(u32::MAX),
            || {
                // Bounded by the send's deadline: a receiver that reads nothing fills the
                // socket's buffer too.
                let timeout = deadline.map(|deadline| {
                    deadline
                        .saturating_duration_since(Instant::now())
                        .max(Duration::from_millis(1))
                });
                let sent = self
                    .conn
                    .set_write_timeout(timeout)
                    .map_err(|_| RingError::Closed)
                    .and_then(|()| {
                        fds.iter().try_for_each(|fd| {
                            self.conn
                                .send_with_fd(Kind::BufferFd, &[], fd.as_fd())
                                .map_err(|_| RingError::Closed)
                        })
                    });
                let _ = self.conn.set_write_timeout(None);
                if sent.is_err() {
                    // Some descriptors may be in the socket without their message: the two
                    // no longer match up, so the channel ends here.
                    self.close();
                }
                sent
            },
        )
    }

    /// Whether `recv` would return at once (a record is there, or the stream ended). Takes no
    /// lock: a thread blocked in `recv` holds the consumer's.
    pub(crate) fn ready(&self) -> bool {
        let incoming = self.incoming();
        let header = incoming.header();
        self.closed.load(Ordering::Acquire)
            || header.producer.tail.load(spsc::Ordering::Acquire)
                != header.consumer.head.load(spsc::Ordering::Relaxed)
            || header.producer.closed.load(spsc::Ordering::Acquire) != 0
            || self.signals().peer_gone()
    }

    /// Arms the doorbell for a `poll` on [`poll_fds`](Self::poll_fds): the peer writes the
    /// eventfd when it publishes. Returns whether the channel is ready already (then nothing is
    /// armed).
    pub(crate) fn arm(&self) -> bool {
        let incoming = self.incoming();
        incoming
            .header()
            .consumer
            .polling
            .fetch_add(1, spsc::Ordering::SeqCst);
        spsc::fence(spsc::Ordering::SeqCst);
        // Drain a stale ring of the bell, then look again.
        self.drain_doorbell();
        if self.ready() {
            // Ring it again: another waiter on this doorbell must not miss what we saw.
            self.ring_own_doorbell();
            self.disarm();
            return true;
        }
        false
    }

    fn drain_doorbell(&self) {
        let mut count = [0u8; 8];
        // SAFETY: reading 8 bytes from our non-blocking eventfd into a local buffer.
        unsafe {
            libc::read(self.doorbell.as_raw_fd(), count.as_mut_ptr().cast(), 8);
        }
    }

    fn ring_own_doorbell(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writing 8 bytes to our own non-blocking eventfd.
        unsafe {
            libc::write(self.doorbell.as_raw_fd(), one.as_ptr().cast(), 8);
        }
    }

    /// Undoes [`arm`](Self::arm).
    pub(crate) fn disarm(&self) {
        self.incoming()
            .header()
            .consumer
            .polling
            .fetch_sub(1, spsc::Ordering::SeqCst);
    }

    /// The next message as a future would take it: `Ready` with a message or an error, or
    /// `Pending` with the doorbell armed and `waker` registered (`interest` holds the
    /// registration; pass the same slot again on the next poll, and call
    /// [`disarm`](Self::disarm) when `*armed` is left true and the future is dropped).
    pub(crate) fn poll_recv(
        &self,
        waker: &Waker,
        interest: &mut Option<reactor::Interest>,
        armed: &mut bool,
    ) -> Poll<Result<Received, RingError>> {
        *interest = None;
        if std::mem::take(armed) {
            self.disarm();
        }
        loop {
            // Never block an executor: a thread in a blocking `recv` holds the consumer's lock;
            // then wait for the next publication instead.
            let attempt = match self.consumer.try_lock() {
                Ok(mut consumer) => Some(self.recv_locked(&mut consumer, Some(Instant::now()))),
                Err(std::sync::TryLockError::Poisoned(poisoned)) => {
                    Some(self.recv_locked(&mut poisoned.into_inner(), Some(Instant::now())))
                }
                Err(std::sync::TryLockError::WouldBlock) => None,
            };
            match attempt {
                Some(Err(RingError::Timeout)) | None => {}
                Some(other) => return Poll::Ready(other),
            }
            if attempt.is_none() {
                // Another thread is receiving: wait for the next publication (or hang-up).
                self.incoming()
                    .header()
                    .consumer
                    .polling
                    .fetch_add(1, spsc::Ordering::SeqCst);
                self.drain_doorbell();
            } else if self.arm() {
                continue; // something came meanwhile (arm disarmed again)
            }
            *armed = true;
            let [doorbell, socket] = self.poll_fds();
            return match reactor::wake_on(doorbell, socket, waker) {
                Ok(registered) => {
                    *interest = Some(registered);
                    Poll::Pending
                }
                Err(err) => Poll::Ready(Err(RingError::Corrupt(format!(
                    "cannot wait for the doorbell: {err}"
                )))),
            };
        }
    }

    /// Bytes of each direction's ring.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The socket: it hangs up when the peer is gone.
    pub(crate) fn socket_fd(&self) -> RawFd {
        self.conn.raw_fd()
    }

    /// The descriptors a poll waits on: the doorbell (data) and the socket (the peer is gone).
    pub(crate) fn poll_fds(&self) -> [RawFd; 2] {
        [self.doorbell.as_raw_fd(), self.conn.raw_fd()]
    }

    /// Closes both directions: the peer reads what was sent, then gets `Closed`; this side's
    /// waiting threads wake with `Closed`.
    pub(crate) fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let signals = self.signals();
        Producer::close(&self.outgoing(), &signals);
        Consumer::close(&self.incoming(), &signals);
        if self.owns_socket {
            self.conn.shutdown();
        }
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.close();
    }
}

fn file_size(fd: BorrowedFd<'_>) -> io::Result<usize> {
    // SAFETY: fstat writes into a zeroed stat we own.
    let size = unsafe {
        let mut stat: libc::stat = std::mem::zeroed();
        if libc::fstat(fd.as_raw_fd(), &mut stat) != 0 {
            return Err(io::Error::last_os_error());
        }
        stat.st_size
    };
    usize::try_from(size).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
}

/// A ring read by a consumer in this process from bytes a peer wrote: the fuzz target's entry.
/// `bytes` starts with the tail the "peer" published (8 bytes); the rest fills the ring.
#[cfg(feature = "__testing")]
pub(crate) fn read_all_for_fuzzing(bytes: &[u8]) {
    let (region, _fd) = SharedRegion::create(META + 2 * MIN_CAPACITY).expect("a region");
    let half = Half {
        region: &region,
        header: 128,
        data: META,
        capacity: MIN_CAPACITY,
    };
    let (tail, body) = bytes.split_at(bytes.len().min(8));
    let mut word = [0u8; 8];
    word[..tail.len()].copy_from_slice(tail);
    let body = &body[..body.len().min(MIN_CAPACITY)];
    // SAFETY: within the area; nobody else reads it.
    unsafe { half.copy_in(0, body) };
    let header = half.header();
    header
        .producer
        .tail
        .store(u64::from_le_bytes(word), spsc::Ordering::Release);
    header.producer.closed.store(1, spsc::Ordering::Release);
    struct Nobody;
    impl Env for Nobody {
        fn wait(&self, _: &AtomicU32, _: u32, _: Duration) {}
        fn wake(&self, _: &AtomicU32) {}
        fn doorbell(&self) {}
        fn peer_gone(&self) -> bool {
            true
        }
        fn current_cpu(&self) -> u32 {
            0
        }
        fn spin_budget(&self, _: u32, _: bool) -> u32 {
            0
        }
    }
    for limit in [256, 1 << 20] {
        let mut consumer = Consumer::default();
        while consumer
            .recv(&half, &Nobody, limit, Some(Instant::now()))
            .is_ok()
        {}
    }
}
