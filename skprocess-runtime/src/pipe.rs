//! [`Pipe`]: a direct, two-way (or one-way) channel between two processes.
//!
//! [`Pipe::pair`] returns an [`Anchor`], which stays in the process that made it, and a
//! [`Point`], which travels to another process inside a process value, a pool item or a
//! `star()` tuple, and connects back to its anchor when it arrives. The connection is
//! authenticated like every connection of skprocess, and a point connects once: a second copy
//! of the same point is refused.
//!
//! ```
//! use skprocess::pipe::{Pipe, PipeError};
//! use skprocess::prelude::*;
//!
//! #[skprocess(runs = 1)]
//! struct Doubler {
//!     pipe: skprocess::pipe::Point,
//! }
//!
//! #[skprocess]
//! impl Doubler {
//!     fn __run__(&mut self) -> Result<(), PipeError> {
//!         let n: u64 = self.pipe.recv()?;
//!         self.pipe.send(&(n * 2))
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (anchor, point) = Pipe::pair()?;
//! let process = Skprocess::new(Doubler { pipe: point });
//! process.start()?;
//! anchor.send(&21_u64)?;
//! assert_eq!(anchor.recv::<u64>()?, 42);
//! process.wait()?;
//! // The child's end is gone: a typed end of stream, at once.
//! assert!(matches!(anchor.recv::<u64>(), Err(PipeError::Closed)));
//! # Ok(())
//! # }
//! ```
//!
//! Messages are any serde values, encoded with the runtime's codec; the receiver names the type
//! it expects, as with `tell` and `listen`. Every blocking call has a way out: a peer that
//! closes its end or dies gives [`PipeError::Closed`] at once, `recv_timeout` takes a timeout,
//! and an anchor whose point never arrives gives up after [`CONNECT_TIMEOUT`].

use std::marker::PhantomData;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::IpcError;
use crate::ring::spsc::RingError;
use crate::ring::{Channel, Received};
use crate::sync::lock;
use crate::wire::auth::{Secret, TOKEN};
use crate::wire::frame::DEFAULT_FRAME_LIMIT;
use crate::wire::hub::{self, Expectation};

/// How long an anchor waits for its point to connect before its calls fail with
/// [`PipeError::NotConnected`].
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// How many bytes an anchor queues while its point has not connected; beyond that, `send`
/// waits for the connection.
const QUEUE_LIMIT: usize = 64 << 20;

/// How long [`send`](Anchor::send) waits for room when the receiver does not read, before it
/// gives up with [`PipeError::Full`]. [`try_send`](Anchor::try_send) does not wait;
/// [`send_timeout`](Anchor::send_timeout) takes its own bound.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a pipe call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipeError {
    /// The other end closed its end, or its process is gone. Nothing more will arrive.
    #[error("the other end of the pipe is closed")]
    Closed,
    /// No message arrived within the timeout (nothing was taken).
    #[error("no message within the timeout")]
    Timeout,
    /// The receiver did not make room within the send's bound: its ring (or, before the point
    /// connected, the anchor's queue) stayed full. Nothing of the message was delivered.
    #[error("the pipe stayed full ({capacity} bytes) until the send gave up")]
    Full {
        /// The ring's (or the queue's) capacity in bytes.
        capacity: usize,
    },
    /// The point never connected: it was dropped without being sent, or the process it was
    /// sent to did not start within [`CONNECT_TIMEOUT`].
    #[error("the pipe's point never connected")]
    NotConnected,
    /// This point could not connect: another copy of it connected first (a point connects
    /// once), or its anchor is gone.
    #[error("the pipe's point was refused: {0}")]
    Refused(String),
    /// The message could not be encoded. Nothing was sent.
    #[error("cannot encode the message: {0}")]
    Encode(String),
    /// A message arrived but did not decode as the requested type. Its bytes are in the error,
    /// so nothing is lost.
    #[error("a message did not decode as `{type_name}`: {message}")]
    Decode {
        /// The requested type.
        type_name: &'static str,
        /// The codec's message.
        message: String,
        /// The message's encoded bytes.
        bytes: Vec<u8>,
    },
    /// The message is larger than the frame limit. Nothing was sent.
    #[error("a message of {len} bytes exceeds the frame limit of {max} bytes")]
    TooLarge {
        /// The encoded length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The connection failed otherwise (a malformed frame, an I/O error).
    #[error("pipe i/o failed")]
    Ipc(#[source] IpcError),
}

/// Creates pipes.
#[derive(Debug)]
#[non_exhaustive]
pub struct Pipe;

/// Both ends may send and receive.
#[derive(Debug)]
pub struct Duplex;
/// The anchor of a one-way pipe: it sends.
#[derive(Debug)]
pub struct SendOnly;
/// The point of a one-way pipe: it receives.
#[derive(Debug)]
pub struct RecvOnly;

mod sealed {
    pub trait Direction {}
    impl Direction for super::Duplex {}
    impl Direction for super::SendOnly {}
    impl Direction for super::RecvOnly {}
}

/// What an end may do, decided by its type: [`Duplex`], [`SendOnly`] or [`RecvOnly`].
pub trait Direction: sealed::Direction + Send + Sync + 'static {}
impl<D: sealed::Direction + Send + Sync + 'static> Direction for D {}

/// An end that may send.
pub trait CanSend: Direction {}
impl CanSend for Duplex {}
impl CanSend for SendOnly {}

/// An end that may receive.
pub trait CanRecv: Direction {}
impl CanRecv for Duplex {}
impl CanRecv for RecvOnly {}

impl Pipe {
    /// A two-way pipe: the anchor stays here, the point goes to another process.
    ///
    /// # Errors
    ///
    /// [`PipeError::Ipc`] if this process cannot listen for the point (the hub's socket).
    pub fn pair() -> Result<(Anchor, Point), PipeError> {
        Pipe::make()
    }

    /// A one-way pipe: the anchor only sends, the point only receives (Python's
    /// `Pipe.pair(one_way=True)`). Calling the missing direction is a compile error.
    ///
    /// # Errors
    ///
    /// As for [`pair`](Pipe::pair).
    pub fn one_way() -> Result<(Anchor<SendOnly>, Point<RecvOnly>), PipeError> {
        Pipe::make()
    }

    fn make<A: Direction, P: Direction>() -> Result<(Anchor<A>, Point<P>), PipeError> {
        let hub = hub::hub().map_err(PipeError::Ipc)?;
        let expectation = hub.expect();
        let ticket = Ticket {
            hub: hub.name().to_owned(),
            secret: hub.secret().0,
            token: *expectation.token(),
        };
        let fate = Arc::new(AtomicU8::new(UNSENT));
        let end = Arc::new(End::new(State::Waiting {
            queued: Vec::new(),
            queued_bytes: 0,
        }));
        // The connector waits for the point, hands its connection to the anchor's end and
        // sends what was queued, whether or not anyone is calling the anchor at that moment.
        let weak = Arc::downgrade(&end);
        let watched = Arc::clone(&fate);
        std::thread::Builder::new()
            .name("skprocess-pipe-connect".into())
            .spawn(move || connect_when_it_arrives(&expectation, &weak, &watched))
            .map_err(|e| PipeError::Ipc(IpcError::Io(e)))?;
        let anchor = Anchor {
            end,
            _direction: PhantomData,
        };
        let point = Point {
            link: PointLink::Here {
                ticket,
                fate,
                end: std::sync::OnceLock::new(),
            },
            _direction: PhantomData,
        };
        Ok((anchor, point))
    }
}

/// The connector thread of one anchor: gives up when the anchor is dropped, when its point
/// was dropped unsent, or after [`CONNECT_TIMEOUT`].
fn connect_when_it_arrives(expectation: &Expectation, end: &Weak<End>, fate: &AtomicU8) {
    let limit = Instant::now() + CONNECT_TIMEOUT;
    while Instant::now() < limit && fate.load(Ordering::Acquire) != DROPPED {
        if let Some(conn) = expectation.wait(Duration::from_millis(50)) {
            if let Some(end) = end.upgrade() {
                match Channel::accept(Arc::new(conn), DEFAULT_FRAME_LIMIT, true) {
                    Ok(channel) => end.adopt(channel),
                    Err(err) => end.finish(State::Failed(
                        format!("the point's shared-memory channel failed: {err}"),
                        true,
                    )),
                }
            }
            return;
        }
        if end.strong_count() == 0 {
            return;
        }
    }
    if let Some(end) = end.upgrade() {
        end.finish(State::Failed("never connected".into(), false));
    }
}

// ----- one end of a connection -----------------------------------------------------------------

/// What became of a point in the process that made it.
const UNSENT: u8 = 0;
const SENT: u8 = 1;
const DROPPED: u8 = 2;

/// One end: its channel once connected.
struct End {
    state: Mutex<State>,
    /// Signalled when the state leaves `Waiting`.
    changed: Condvar,
    /// Futures waiting for the state to leave `Waiting`.
    wakers: Mutex<Vec<std::task::Waker>>,
    /// True while the queued messages are handed to a fresh channel: no send overtakes them.
    flushing: Mutex<bool>,
    /// Signalled when the flush is over.
    flushed: Condvar,
}

enum State {
    /// An anchor whose point has not connected yet, and the messages sent meanwhile (sent
    /// in order once it connects).
    Waiting {
        queued: Vec<Received>,
        queued_bytes: usize,
    },
    Connected(Arc<Channel>),
    /// The connection could not be made; every call fails with this.
    Failed(String, bool),
    Closed,
}

fn pipe_error(err: RingError) -> PipeError {
    match err {
        RingError::Closed => PipeError::Closed,
        RingError::Timeout => PipeError::Timeout,
        RingError::Full { capacity } => PipeError::Full { capacity },
        RingError::TooLarge { len, max } => PipeError::TooLarge { len, max },
        RingError::Corrupt(message) => PipeError::Ipc(IpcError::Malformed(message)),
    }
}

impl End {
    fn new(state: State) -> End {
        End {
            state: Mutex::new(state),
            changed: Condvar::new(),
            wakers: Mutex::new(Vec::new()),
            flushing: Mutex::new(false),
            flushed: Condvar::new(),
        }
    }

    fn connected(channel: Channel) -> End {
        End::new(State::Connected(Arc::new(channel)))
    }

    fn failed(message: String, refused: bool) -> End {
        End::new(State::Failed(message, refused))
    }

    /// Takes the point's channel and sends what was queued, in order (a send that fails means
    /// the point is gone: the next call finds the channel closed).
    fn adopt(&self, channel: Channel) {
        let channel = Arc::new(channel);
        let previous = {
            let mut state = lock(&self.state);
            if matches!(*state, State::Closed) {
                channel.close();
                return;
            }
            // Before anyone can see the channel: sends wait for the flush, if there is one.
            if matches!(&*state, State::Waiting { queued, .. } if !queued.is_empty()) {
                *lock(&self.flushing) = true;
            }
            let previous = std::mem::replace(&mut *state, State::Connected(Arc::clone(&channel)));
            self.changed.notify_all();
            self.wake_futures();
            previous
        };
        if let State::Waiting { queued, .. } = previous {
            for (message, fds) in queued {
                // No deadline: these were accepted already; the flush ends when the point
                // reads them, closes, or dies.
                if channel.send_with_fds(&message, &fds, None).is_err() {
                    break;
                }
            }
        }
        *lock(&self.flushing) = false;
        self.flushed.notify_all();
    }

    fn wake_futures(&self) {
        std::mem::take(&mut *lock(&self.wakers))
            .into_iter()
            .for_each(std::task::Waker::wake);
    }

    /// Leaves `Waiting` for `state` (the point never came).
    fn finish(&self, state: State) {
        let mut current = lock(&self.state);
        if matches!(*current, State::Waiting { .. }) {
            *current = state;
            self.changed.notify_all();
            self.wake_futures();
        }
    }

    /// The channel, waiting (until `deadline`, if any) for an anchor's point to connect.
    fn channel(&self, deadline: Option<Instant>) -> Result<Arc<Channel>, PipeError> {
        let state = lock(&self.state);
        let (state, _) = crate::sync::wait_until(&self.changed, state, deadline, |s| {
            !matches!(s, State::Waiting { .. })
        });
        match &*state {
            State::Connected(channel) => Ok(Arc::clone(channel)),
            State::Closed => Err(PipeError::Closed),
            State::Failed(message, true) => Err(PipeError::Refused(message.clone())),
            State::Failed(_, false) => Err(PipeError::NotConnected),
            State::Waiting { .. } => Err(PipeError::Timeout),
        }
    }

    fn send_bytes(
        &self,
        (payload, fds): Received,
        deadline: Option<Instant>,
    ) -> Result<(), PipeError> {
        let max = DEFAULT_FRAME_LIMIT as usize;
        if payload.len() > max {
            return Err(PipeError::TooLarge {
                len: payload.len() as u64,
                max: max as u64,
            });
        }
        let mut state = lock(&self.state);
        // Not connected yet: queue (up to QUEUE_LIMIT; beyond, wait for the connection).
        if let State::Waiting {
            queued,
            queued_bytes,
        } = &mut *state
            && *queued_bytes + payload.len() <= QUEUE_LIMIT
        {
            *queued_bytes += payload.len();
            queued.push((payload, fds));
            return Ok(());
        }
        drop(state);
        let channel = match self.channel(deadline) {
            // The queue is full and the point has not come within the deadline.
            Err(PipeError::Timeout) => {
                return Err(PipeError::Full {
                    capacity: QUEUE_LIMIT,
                });
            }
            other => other?,
        };
        // Messages queued before the connection go first; a send waits for them within its own
        // deadline (a receiver that does not read makes it `Full`, as a full ring does).
        let (guard, flushed) =
            crate::sync::wait_until(&self.flushed, lock(&self.flushing), deadline, |f| !*f);
        drop(guard);
        if !flushed {
            return Err(PipeError::Full {
                capacity: channel.capacity(),
            });
        }
        channel
            .send_with_fds(&payload, &fds, deadline)
            .map_err(pipe_error)
    }

    fn recv_bytes(&self, deadline: Option<Instant>) -> Result<Received, PipeError> {
        let channel = self.channel(deadline)?;
        channel.recv_with_fds(deadline).map_err(pipe_error)
    }

    fn close(&self) {
        let mut state = lock(&self.state);
        if let State::Connected(channel) = &*state {
            channel.close();
        }
        *state = State::Closed;
        self.changed.notify_all();
        self.wake_futures();
    }
}

impl Drop for End {
    fn drop(&mut self) {
        self.close();
    }
}

/// Encodes a message and collects the descriptors of the buffers in it.
fn encode_message<T: Serialize + ?Sized>(
    value: &T,
) -> Result<(Vec<u8>, crate::buffer::Outgoing), PipeError> {
    let (bytes, outgoing) = crate::buffer::collecting(|| crate::wire::encode(value));
    match bytes {
        Ok(bytes) => Ok((bytes, outgoing)),
        Err(message) => {
            outgoing.unsent();
            Err(PipeError::Encode(message))
        }
    }
}

/// Sends an encoded message; if it is not sent, its handovers stay usable.
fn send_encoded(
    end: &End,
    (bytes, mut outgoing): (Vec<u8>, crate::buffer::Outgoing),
    deadline: Option<Instant>,
) -> Result<(), PipeError> {
    let fds = std::mem::take(&mut outgoing.fds);
    end.send_bytes((bytes, fds), deadline)
        .inspect_err(|_| outgoing.unsent())
}

fn decode_message<T: DeserializeOwned>((bytes, fds): Received) -> Result<T, PipeError> {
    crate::buffer::providing(fds, || crate::wire::decode(&bytes)).map_err(|message| {
        PipeError::Decode {
            type_name: std::any::type_name::<T>(),
            message,
            bytes,
        }
    })
}

// ----- the anchor ------------------------------------------------------------------------------

/// The end of a pipe that stays in the process that made it. It cannot be sent to another
/// process (it has no `Serialize`: putting it in a process value is a compile error).
///
/// Its first call waits for the point to connect (at most [`CONNECT_TIMEOUT`]). Dropping it
/// closes the pipe.
pub struct Anchor<D: Direction = Duplex> {
    end: Arc<End>,
    _direction: PhantomData<D>,
}

impl<D: Direction> std::fmt::Debug for Anchor<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anchor").finish_non_exhaustive()
    }
}

/// The end of a pipe that travels to another process and connects back to its anchor on
/// arrival. It is encoded only by skprocess (inside a process value, a pool item, a `tell`),
/// and connects once: a second copy gets [`PipeError::Refused`].
pub struct Point<D: Direction = Duplex> {
    link: PointLink,
    _direction: PhantomData<D>,
}

enum PointLink {
    /// In the process that made the pipe: connects (to this same process) on first use.
    Here {
        ticket: Ticket,
        fate: Arc<AtomicU8>,
        end: std::sync::OnceLock<Arc<End>>,
    },
    /// Decoded in another process: connected (or failed) on arrival.
    Arrived(Arc<End>),
}

impl<D: Direction> std::fmt::Debug for Point<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Point").finish_non_exhaustive()
    }
}

/// Where a point connects and how it proves it may.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename = "PipePoint")]
struct Ticket {
    hub: String,
    secret: [u8; 32],
    token: [u8; TOKEN],
}

impl Ticket {
    fn connect(&self) -> End {
        match hub::connect(&self.hub, &Secret(self.secret), &self.token)
            .and_then(|conn| Channel::offer(Arc::new(conn), DEFAULT_FRAME_LIMIT, true))
        {
            Ok(channel) => End::connected(channel),
            Err(IpcError::Auth(message)) => End::failed(
                format!("{message} (a point connects once, and only while its anchor lives)"),
                true,
            ),
            Err(other) => End::failed(other.to_string(), true),
        }
    }
}

impl<D: Direction> Point<D> {
    fn end(&self) -> &Arc<End> {
        match &self.link {
            PointLink::Arrived(end) => end,
            PointLink::Here { ticket, fate, end } => end.get_or_init(|| {
                fate.store(SENT, Ordering::Release);
                Arc::new(ticket.connect())
            }),
        }
    }
}

impl<D: Direction> Drop for Point<D> {
    fn drop(&mut self) {
        // A point dropped in its own process without being sent or used: its anchor stops
        // waiting for it.
        if let PointLink::Here { fate, end, .. } = &self.link
            && end.get().is_none()
        {
            let _ = fate.compare_exchange(UNSENT, DROPPED, Ordering::AcqRel, Ordering::Acquire);
        }
    }
}

impl<D: Direction> Serialize for Point<D> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !crate::wire::codec::on_the_wire() {
            return Err(serde::ser::Error::custom(
                "a pipe point carries a secret and can only be sent to processes by skprocess \
                 (inside a process, a pool item or a tell)",
            ));
        }
        crate::wire::codec::refuse_if_crossing_hosts::<S::Error>("a pipe point")?;
        match &self.link {
            PointLink::Here { ticket, fate, .. } => {
                fate.store(SENT, Ordering::Release);
                ticket.serialize(serializer)
            }
            PointLink::Arrived(_) => Err(serde::ser::Error::custom(
                "this pipe point is already connected in this process; it cannot move again",
            )),
        }
    }
}

impl<'de, D: Direction> Deserialize<'de> for Point<D> {
    /// Connects to the anchor (the point arrived). A refused connection is not a decode error:
    /// the point's calls return it.
    fn deserialize<De: Deserializer<'de>>(deserializer: De) -> Result<Point<D>, De::Error> {
        let ticket = Ticket::deserialize(deserializer)?;
        Ok(Point {
            link: PointLink::Arrived(Arc::new(ticket.connect())),
            _direction: PhantomData,
        })
    }
}

// Ends are used from any thread (several may send on one end).
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Anchor>();
    send_sync::<Point>();
    send_sync::<Anchor<SendOnly>>();
    send_sync::<Point<RecvOnly>>();
};

/// The calls of both ends, written once.
macro_rules! end_methods {
    ($ty:ident, $end:ident) => {
        impl<D: CanSend> $ty<D> {
            /// Sends a message. Returns once it is handed to the connection (the receiver may
            /// not have read it yet).
            ///
            /// # Errors
            ///
            /// [`PipeError::Closed`] when the other end is gone, [`PipeError::Encode`],
            /// [`PipeError::TooLarge`], [`PipeError::NotConnected`] or
            /// [`PipeError::Refused`] for a pipe that never connected.
            ///
            /// When the receiver does not read and its ring is full, waits for room up to
            /// [`SEND_TIMEOUT`], then [`PipeError::Full`]. A message larger than the ring is
            /// streamed through it in pieces; the receiver sees it whole or not at all.
            pub fn send<T: Serialize + ?Sized>(&self, message: &T) -> Result<(), PipeError> {
                self.send_timeout(message, SEND_TIMEOUT)
            }

            /// [`send`](Self::send), waiting at most `timeout` for room.
            ///
            /// # Errors
            ///
            /// As for [`send`](Self::send).
            pub fn send_timeout<T: Serialize + ?Sized>(
                &self,
                message: &T,
                timeout: Duration,
            ) -> Result<(), PipeError> {
                let encoded = encode_message(message)?;
                let deadline = crate::sync::deadline_in(timeout);
                send_encoded($end(self), encoded, deadline)
            }

            /// [`send`](Self::send) without waiting: [`PipeError::Full`] at once if the
            /// message does not fit now (a message larger than the ring never does).
            ///
            /// # Errors
            ///
            /// As for [`send`](Self::send).
            pub fn try_send<T: Serialize + ?Sized>(&self, message: &T) -> Result<(), PipeError> {
                let encoded = encode_message(message)?;
                send_encoded($end(self), encoded, Some(Instant::now()))
            }
        }

        impl<D: CanRecv> $ty<D> {
            /// Waits for the next message and decodes it as a `T`.
            ///
            /// # Errors
            ///
            /// [`PipeError::Closed`] once the other end is gone and every message it sent was
            /// read; [`PipeError::Decode`] (with the message's bytes) for a message of another
            /// type; the connection errors of [`send`](Self::send).
            pub fn recv<T: DeserializeOwned>(&self) -> Result<T, PipeError> {
                decode_message($end(self).recv_bytes(None)?)
            }

            /// [`recv`](Self::recv), waiting at most `timeout`: [`PipeError::Timeout`] after
            /// that, and nothing is lost (a message arriving later is returned by the next
            /// call).
            pub fn recv_timeout<T: DeserializeOwned>(
                &self,
                timeout: Duration,
            ) -> Result<T, PipeError> {
                let deadline = crate::sync::deadline_in(timeout);
                decode_message($end(self).recv_bytes(deadline.or(Some(Instant::now())))?)
            }

            /// [`recv`](Self::recv) without waiting: [`PipeError::Timeout`] if no whole message
            /// is there yet.
            pub fn try_recv<T: DeserializeOwned>(&self) -> Result<T, PipeError> {
                decode_message($end(self).recv_bytes(Some(Instant::now()))?)
            }

            /// [`recv`](Self::recv) as a future, usable from any executor. No thread waits
            /// for the message: the future is woken when the sender rings this end's doorbell
            /// (or hangs up). Dropping the future takes nothing.
            pub fn recv_async<T: DeserializeOwned>(&self) -> RecvFuture<T> {
                RecvFuture {
                    end: Arc::clone($end(self)),
                    interest: None,
                    armed: false,
                    _message: PhantomData,
                }
            }
        }

        impl<D: Direction> $ty<D> {
            /// Closes this end: the other end's calls fail with [`PipeError::Closed`] (after it
            /// has read what was sent before), and so do this end's.
            pub fn close(&self) {
                $end(self).close();
            }
        }
    };
}

fn anchor_end<D: Direction>(anchor: &Anchor<D>) -> &Arc<End> {
    &anchor.end
}

fn point_end<D: Direction>(point: &Point<D>) -> &Arc<End> {
    point.end()
}

end_methods!(Anchor, anchor_end);
end_methods!(Point, point_end);

/// The next message of a pipe end, as a future: see [`Anchor::recv_async`].
#[must_use = "futures do nothing unless polled"]
pub struct RecvFuture<T> {
    end: Arc<End>,
    interest: Option<crate::ring::reactor::Interest>,
    armed: bool,
    _message: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for RecvFuture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvFuture").finish_non_exhaustive()
    }
}

impl<T> Unpin for RecvFuture<T> {}

impl<T: DeserializeOwned> std::future::Future for RecvFuture<T> {
    type Output = Result<T, PipeError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        let this = &mut *self;
        let channel = {
            let state = lock(&this.end.state);
            match &*state {
                State::Connected(channel) => Arc::clone(channel),
                State::Waiting { .. } => {
                    // Registered under the state's lock: a connection after this wakes us.
                    let mut wakers = lock(&this.end.wakers);
                    if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                        wakers.push(cx.waker().clone());
                    }
                    return Poll::Pending;
                }
                State::Closed => return Poll::Ready(Err(PipeError::Closed)),
                State::Failed(message, true) => {
                    return Poll::Ready(Err(PipeError::Refused(message.clone())));
                }
                State::Failed(_, false) => return Poll::Ready(Err(PipeError::NotConnected)),
            }
        };
        match channel.poll_recv(cx.waker(), &mut this.interest, &mut this.armed) {
            Poll::Ready(Ok(bytes)) => Poll::Ready(decode_message(bytes)),
            Poll::Ready(Err(err)) => Poll::Ready(Err(pipe_error(err))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> Drop for RecvFuture<T> {
    fn drop(&mut self) {
        self.interest = None;
        if self.armed {
            end_disarm(&self.end);
        }
    }
}

// ----- waiting on several ends and processes -------------------------------------------------

/// Something [`wait`] can watch: a pipe end that receives, or a process handle.
pub trait Waitable {
    /// `Ready` if it is ready now, else what to poll. A pipe end arms its doorbell here.
    #[doc(hidden)]
    fn __readiness(&self) -> Readiness;

    /// Undoes what [`__readiness`](Self::__readiness) armed, after the poll.
    #[doc(hidden)]
    fn __disarm(&self) {}
}

/// What [`Waitable::__readiness`] reports. Not an API.
#[doc(hidden)]
#[derive(Debug)]
pub enum Readiness {
    /// Ready now.
    Ready,
    /// Ready when one of these descriptors is readable (it is armed: call `__disarm`).
    Fds([RawFd; 2]),
    /// Must be asked again (a process handle: ready once it finished).
    Poll,
}

impl<D: CanRecv> Waitable for Anchor<D> {
    fn __readiness(&self) -> Readiness {
        end_readiness(&self.end)
    }

    fn __disarm(&self) {
        end_disarm(&self.end);
    }
}

impl<D: CanRecv> Waitable for Point<D> {
    fn __readiness(&self) -> Readiness {
        end_readiness(self.end())
    }

    fn __disarm(&self) {
        end_disarm(self.end());
    }
}

fn end_readiness(end: &End) -> Readiness {
    match &*lock(&end.state) {
        // An anchor not connected yet is not ready (its point may still arrive).
        State::Waiting { .. } => Readiness::Poll,
        State::Connected(channel) => {
            if channel.arm() {
                Readiness::Ready
            } else {
                Readiness::Fds(channel.poll_fds())
            }
        }
        // Closed or failed: a call returns at once.
        State::Failed(..) | State::Closed => Readiness::Ready,
    }
}

fn end_disarm(end: &End) {
    if let State::Connected(channel) = &*lock(&end.state) {
        channel.disarm();
    }
}

impl<P: crate::Lifecycle> Waitable for crate::Skprocess<P> {
    fn __readiness(&self) -> Readiness {
        if self.pid().is_some() && !self.is_alive() {
            Readiness::Ready
        } else {
            Readiness::Poll
        }
    }
}

/// Waits until at least one of `items` is ready, at most `timeout` (`None`: as long as it
/// takes), and returns the indices of those that are (Python's
/// `multiprocessing.connection.wait`). A pipe end is ready when a call to `recv` would not wait
/// (a message is there, or the other end is gone); a process handle when the process has
/// finished. An empty vector means the timeout passed.
pub fn wait(items: &[&dyn Waitable], timeout: Option<Duration>) -> Vec<usize> {
    let deadline = timeout.and_then(crate::sync::deadline_in);
    loop {
        let mut fds = Vec::new();
        let mut armed = Vec::new();
        let mut ready = Vec::new();
        let mut must_poll = false;
        for (index, item) in items.iter().enumerate() {
            match item.__readiness() {
                Readiness::Ready => ready.push(index),
                Readiness::Fds(pair) => {
                    armed.push(index);
                    fds.extend(pair.map(|fd| (index, fd)));
                }
                Readiness::Poll => must_poll = true,
            }
        }
        let disarm = || armed.iter().for_each(|&index| items[index].__disarm());
        if !ready.is_empty() {
            disarm();
            return ready;
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            disarm();
            return Vec::new();
        }
        // Processes and unconnected anchors are asked again every 10 ms.
        let slice = if must_poll {
            left.map_or(Duration::from_millis(10), |l| {
                l.min(Duration::from_millis(10))
            })
        } else {
            left.unwrap_or(Duration::from_secs(3600))
        };
        // A doorbell is readable when data came; a socket hangs up when the peer is gone
        // (data on it wakes nothing: nothing but the set-up travels there).
        let mut pollfds: Vec<libc::pollfd> = fds
            .iter()
            .enumerate()
            .map(|(i, &(_, fd))| libc::pollfd {
                fd,
                events: if i % 2 == 0 {
                    libc::POLLIN
                } else {
                    libc::POLLRDHUP
                },
                revents: 0,
            })
            .collect();
        let millis = slice.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: a valid array of pollfds (possibly empty: then poll only sleeps).
        unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, millis) };
        // Whatever woke the poll, the next round asks every item again (a doorbell may ring
        // for a record that is not a whole message yet).
        disarm();
    }
}
