//! The non-generic part of a process handle: one started child and its I/O thread.
//!
//! The I/O thread owns the connection phase and the reading: it waits for the child's
//! authenticated connection, writes the status page and the Start frame, offers the
//! shared-memory channel that carries `tell`/`listen` both ways, hands it any messages told
//! while the child was starting (in order, so no `tell` overtakes them), then reads the child's
//! lifecycle frames until it hangs up, and reaps it. Messages from the child never pass through
//! this thread: `listen` reads the channel on the caller's thread. Nothing of this runs on a thread shared with
//! other children: a child that is slow or stopped holds up only its own handle.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::error::{ExitInfo, IpcError, ProcessError, TellError};
use crate::inbox::{Endpoint, Mailbox};
use crate::launch::Launched;
use crate::lifecycle::ProcessTimers;
use crate::ring::Channel;
use crate::ring::spsc::RingError;
use crate::shm::StatusPage;
use crate::sync::{lock, wait_until};
use crate::wire::codec::Decoder;
use crate::wire::{Conn, Frame, Kind, decode};

/// One started child.
pub(crate) struct ChildHandle {
    pub(super) pid: u32,
    pub(super) status: Arc<StatusPage>,
    pub(super) io: Arc<IoShared>,
    thread: Option<JoinHandle<()>>,
}

/// State shared between a handle and its child's I/O thread.
pub(crate) struct IoShared {
    pidfd: Arc<OwnedFd>,
    conn: Mutex<ConnSlot>,
    /// The session's frame limit.
    pub(super) frame_limit: u32,
    pub(super) inbox: Mailbox,
    done: Mutex<Done>,
    done_cond: Condvar,
    killed: AtomicBool,
}

enum ConnSlot {
    /// Not connected yet: messages to send once connected, in order.
    Connecting(Vec<Vec<u8>>),
    Connected(Arc<Channel>),
    Closed,
}

#[derive(Default)]
struct Done {
    finished: bool,
    delivered: Option<Delivered>,
    timers: Option<ProcessTimers>,
    exit: Option<ExitInfo>,
    taken: bool,
}

/// A child's outcome, as it arrived.
pub(super) enum Delivered {
    /// The encoded result value (after the timers).
    Value(Vec<u8>),
    Error(ProcessError),
}

impl ChildHandle {
    /// Starts a child that will run the Start frame `start`.
    pub(super) fn spawn(
        start: Vec<u8>,
        frame_limit: u32,
        descriptors: Vec<OwnedFd>,
        process: &'static str,
    ) -> Result<ChildHandle, ProcessError> {
        let launched = crate::launch::launch()?;
        let pid = launched.pid;
        let status = Arc::clone(&launched.status);
        let io = Arc::new(IoShared {
            pidfd: Arc::clone(&launched.pidfd),
            conn: Mutex::new(ConnSlot::Connecting(Vec::new())),
            frame_limit,
            inbox: Mailbox::pending(),
            done: Mutex::new(Done::default()),
            done_cond: Condvar::new(),
            killed: AtomicBool::new(false),
        });
        let thread_io = Arc::clone(&io);
        let thread = std::thread::Builder::new()
            .name(format!("skprocess-io-{pid}"))
            .spawn(move || io_main(&thread_io, launched, &start, &descriptors, process));
        let thread = match thread {
            Ok(thread) => thread,
            Err(e) => {
                io.signal(libc::SIGKILL);
                return Err(ProcessError::Spawn(e));
            }
        };
        crate::signals::track(Arc::downgrade(&status) as _);
        Ok(ChildHandle {
            pid,
            status,
            io,
            thread: Some(thread),
        })
    }

    pub(super) fn kill(&self) {
        self.io.killed.store(true, Ordering::Release);
        self.io.signal(libc::SIGKILL);
    }

    /// Asks the child to stop; a watcher kills it if it has not ended after `grace`.
    pub(super) fn stop_then_kill(&self, grace: Duration) {
        self.status.request_stop();
        let io = Arc::clone(&self.io);
        let _ = std::thread::Builder::new()
            .name("skprocess-grace".into())
            .spawn(move || {
                if !io.wait_finished(Instant::now().checked_add(grace)) {
                    io.killed.store(true, Ordering::Release);
                    io.signal(libc::SIGKILL);
                }
            });
    }

    pub(super) fn take_outcome<O: DeserializeOwned>(&self) -> Result<O, ProcessError> {
        let mut done = lock(&self.io.done);
        if done.taken {
            return Err(ProcessError::ResultTaken);
        }
        done.taken = true;
        match done.delivered.take() {
            Some(delivered) => delivered.into_result(),
            None if self.io.killed.load(Ordering::Acquire) => {
                Err(ProcessError::Killed { pid: self.pid })
            }
            None => Err(ProcessError::Crashed {
                pid: self.pid,
                exit: done.exit.clone().unwrap_or(ExitInfo::Unknown),
                current_run: self.status.current_run(),
            }),
        }
    }

    /// Called when the last handle goes: a child that is still running is killed (after a short
    /// wait if it already delivered its outcome and is merely exiting), and reaped.
    pub(super) fn shut_down(&mut self) {
        if !self.io.is_finished() {
            let delivered = lock(&self.io.done).delivered.is_some();
            if !delivered
                || !self
                    .io
                    .wait_finished(Instant::now().checked_add(Duration::from_secs(1)))
            {
                self.kill();
            }
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl IoShared {
    fn signal(&self, signal: i32) {
        let _ = crate::sys::pidfd_send_signal(self.pidfd.as_fd(), signal);
    }

    pub(super) fn is_finished(&self) -> bool {
        lock(&self.done).finished
    }

    /// Waits until the child ended and was reaped, or `deadline` passes. Returns whether it
    /// ended.
    pub(super) fn wait_finished(&self, deadline: Option<Instant>) -> bool {
        wait_until(&self.done_cond, lock(&self.done), deadline, |done| {
            done.finished
        })
        .1
    }

    /// Waits until the child delivered its outcome or ended, or `deadline` passes. Returns
    /// whether one of the two happened.
    pub(super) fn wait_outcome(&self, deadline: Option<Instant>) -> bool {
        wait_until(&self.done_cond, lock(&self.done), deadline, |done| {
            done.finished || done.delivered.is_some() || done.taken
        })
        .1
    }

    pub(super) fn timers(&self) -> Option<ProcessTimers> {
        lock(&self.done).timers.clone()
    }

    /// Sends an encoded message, or queues it while the child is starting.
    pub(super) fn send_or_queue(&self, message: Vec<u8>) -> Result<(), TellError> {
        if message.len() > self.frame_limit as usize {
            return Err(TellError::Encode(format!(
                "the message of {} bytes exceeds the limit of {} bytes (`ProcessConfig::frame_limit`)",
                message.len(),
                self.frame_limit
            )));
        }
        let mut slot = lock(&self.conn);
        match &mut *slot {
            ConnSlot::Connecting(queue) => {
                queue.push(message);
                Ok(())
            }
            ConnSlot::Connected(channel) => {
                let channel = Arc::clone(channel);
                drop(slot);
                let deadline = Instant::now().checked_add(crate::error::TELL_TIMEOUT);
                channel.send(&message, deadline).map_err(tell_error)
            }
            ConnSlot::Closed => Err(TellError::Disconnected),
        }
    }

    fn deliver(&self, delivered: Delivered, timers: Option<ProcessTimers>) {
        let mut done = lock(&self.done);
        if done.delivered.is_none() && !done.taken {
            done.delivered = Some(delivered);
            done.timers = timers;
            drop(done);
            self.done_cond.notify_all();
        }
    }
}

/// The I/O thread of one child: connects, sends the start frame and any queued messages, reads
/// the child's frames until it hangs up, then reaps it.
fn io_main(
    io: &Arc<IoShared>,
    mut launched: Launched,
    start: &[u8],
    descriptors: &[OwnedFd],
    process: &'static str,
) {
    let source = crate::logs::Source {
        pid: launched.pid,
        process,
    };
    match launched.connect(start, io.frame_limit) {
        Ok(conn) => {
            // The buffers of the process value follow the channel's set-up.
            let offered =
                Channel::offer(Arc::clone(&conn), io.frame_limit, false).and_then(|channel| {
                    descriptors
                        .iter()
                        .try_for_each(|fd| conn.send_with_fd(Kind::BufferFd, &[], fd.as_fd()))?;
                    Ok(channel)
                });
            match offered {
                Ok(channel) => {
                    let channel = Arc::new(channel);
                    io.inbox.open(Endpoint::Ring(Arc::clone(&channel)));
                    start_flush(io, &channel);
                    read_frames(io, &conn, source);
                }
                Err(e) => io.deliver(Delivered::Error(ProcessError::Ipc(e)), None),
            }
            *lock(&io.conn) = ConnSlot::Closed;
            // The channel stays mapped (the mailbox holds it) so that what the child told
            // before it ended is still read; the socket's hang-up ends its stream.
            conn.shutdown();
        }
        Err(failure) => {
            *lock(&io.conn) = ConnSlot::Closed;
            if let Some(error) = failure.into_error() {
                io.deliver(Delivered::Error(error), None);
            }
        }
    }
    io.inbox.close(); // if it never connected
    // The child hung up or died; it should be gone at once. Never wait forever on it.
    let exit = launched
        .into_reaper()
        .reap(Duration::from_secs(5))
        .map(ExitInfo::from_status);
    let mut done = lock(&io.done);
    done.exit = exit;
    done.finished = true;
    drop(done);
    io.done_cond.notify_all();
}

/// Marks the channel as up once the messages queued while the child was starting are in it,
/// in order. Tells made meanwhile join the queue, so none overtakes them. With nothing queued
/// (the usual case) that is at once; otherwise a thread of its own hands them over, so that
/// this I/O thread reads the child's frames meanwhile (a child that does not listen may be
/// waiting to send its result).
fn start_flush(io: &Arc<IoShared>, channel: &Arc<Channel>) {
    {
        let mut slot = lock(&io.conn);
        match &*slot {
            ConnSlot::Connecting(queued) if queued.is_empty() => {
                *slot = ConnSlot::Connected(Arc::clone(channel));
                return;
            }
            ConnSlot::Connecting(_) => {}
            _ => return,
        }
    }
    let (shared, channel) = (Arc::clone(io), Arc::clone(channel));
    let spawned = std::thread::Builder::new()
        .name("skprocess-tell-flush".into())
        .spawn(move || flush_queue(&shared.conn, &channel));
    if spawned.is_err() {
        // No thread: the queued tells are dropped, and the next tell says the child is gone.
        *lock(&io.conn) = ConnSlot::Closed;
    }
}

/// Hands the queued messages to the channel one by one, without holding the slot's lock while
/// one waits for room (no deadline: these tells returned already; the flush ends when the
/// child reads them or is gone), then marks the channel as up.
fn flush_queue(slot: &Mutex<ConnSlot>, channel: &Arc<Channel>) {
    loop {
        let message = {
            let mut guard = lock(slot);
            match &mut *guard {
                ConnSlot::Connecting(queued) if !queued.is_empty() => queued.remove(0),
                ConnSlot::Connecting(_) => {
                    *guard = ConnSlot::Connected(Arc::clone(channel));
                    return;
                }
                _ => return,
            }
        };
        if channel.send(&message, None).is_err() {
            // The child is gone: later tells find the channel closed.
            *lock(slot) = ConnSlot::Connected(Arc::clone(channel));
            return;
        }
    }
}

/// A `tell`'s error from the channel's.
pub(crate) fn tell_error(err: RingError) -> TellError {
    match err {
        RingError::Full { capacity } => TellError::Full { capacity },
        RingError::TooLarge { len, max } => TellError::Encode(format!(
            "the message of {len} bytes exceeds the limit of {max} bytes (`ProcessConfig::frame_limit`)"
        )),
        RingError::Closed | RingError::Timeout | RingError::Corrupt(_) => TellError::Disconnected,
    }
}

/// Reads the child's frames until it hangs up. Log records are re-emitted here, in the order
/// they come, so a record the child logged before its result is emitted before the result is
/// delivered.
fn read_frames(io: &IoShared, conn: &Conn, source: crate::logs::Source<'_>) {
    let mut frames = conn.frames();
    loop {
        let frame = match frames.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => return,
            Err(error) => {
                // A child that sends garbage is broken: report it and put it down.
                if !io.killed.load(Ordering::Acquire) {
                    io.deliver(Delivered::Error(ProcessError::Ipc(error)), None);
                    io.signal(libc::SIGKILL);
                }
                return;
            }
        };
        match frame {
            Frame {
                kind: Kind::Ready, ..
            } => {}
            Frame {
                kind: kind @ (Kind::Result | Kind::Error | Kind::SetupFailed),
                payload,
            } => {
                let (delivered, timers) = Delivered::from_frame(kind, &payload);
                io.deliver(delivered, timers);
            }
            Frame {
                kind: Kind::Log,
                payload,
            } => {
                if let Err(error) = crate::logs::receive(&payload, source) {
                    // Malformed: the child is broken, as with any other bad frame.
                    if !io.killed.load(Ordering::Acquire) {
                        io.deliver(Delivered::Error(ProcessError::Ipc(error)), None);
                        io.signal(libc::SIGKILL);
                    }
                    return;
                }
            }
            Frame { kind, .. } => {
                io.deliver(
                    Delivered::Error(ProcessError::Ipc(IpcError::Malformed(format!(
                        "unexpected {kind:?} frame from a process child"
                    )))),
                    None,
                );
                io.signal(libc::SIGKILL);
                return;
            }
        }
    }
}

impl Delivered {
    /// The outcome an outcome frame (`Result`, `Error` or `SetupFailed`) carries, and the
    /// timers that came with it. A frame whose payload does not decode is a `Decode` error.
    pub(super) fn from_frame(kind: Kind, payload: &[u8]) -> (Delivered, Option<ProcessTimers>) {
        match kind {
            Kind::Result => {
                let mut decoder = Decoder::new(payload);
                match decoder.next::<ProcessTimers>() {
                    Ok(timers) => (Delivered::Value(decoder.remaining().to_vec()), Some(timers)),
                    Err(message) => (
                        Delivered::Error(ProcessError::Decode {
                            what: "the result's timers".into(),
                            message,
                        }),
                        None,
                    ),
                }
            }
            Kind::Error => match decode::<(ProcessTimers, ProcessError)>(payload) {
                Ok((timers, error)) => (Delivered::Error(error), Some(timers)),
                Err(message) => (
                    Delivered::Error(ProcessError::Decode {
                        what: "the child's error".into(),
                        message,
                    }),
                    None,
                ),
            },
            _ => {
                let failure = crate::error::SetupFailure::decode(payload);
                (Delivered::Error(failure.to_error()), None)
            }
        }
    }

    /// The outcome as `result()` returns it: the value decoded as `O`, or the error.
    pub(super) fn into_result<O: DeserializeOwned>(self) -> Result<O, ProcessError> {
        match self {
            Delivered::Value(bytes) => decode(&bytes).map_err(|message| ProcessError::Decode {
                what: format!("the result (`{}`)", std::any::type_name::<O>()),
                message,
            }),
            Delivered::Error(error) => Err(error),
        }
    }
}
