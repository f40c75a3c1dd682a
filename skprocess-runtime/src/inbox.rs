//! The `listen` side of `tell`/`listen`, used by both the parent's handle and the child's
//! context: a [`Mailbox`] reads the channel between the two sides on the listening thread
//! itself (no reader thread in between), waits for the channel while the child is still
//! connecting, and keeps messages a caller put back.
//!
//! The channel is an [`Endpoint`]: the shared-memory [`Channel`] between two processes, or its
//! in-memory counterpart ([`memory`]) when the lifecycle runs on a thread of this process
//! ([`InProcess`](crate::InProcess)). Both speak the ring's errors, so `tell` and `listen` map
//! them to the same [`TellError`](crate::TellError) and [`ListenError`] either way.

pub(crate) mod memory;

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Poll, Waker};
use std::time::Instant;

use crate::error::ListenError;
use crate::ring::Channel;
use crate::ring::reactor::Interest;
use crate::ring::spsc::RingError;
use crate::sync::{lock, wait_until};

/// One side of the channel that carries `tell` and `listen` both ways.
#[derive(Debug, Clone)]
pub(crate) enum Endpoint {
    /// Shared memory between two processes.
    Ring(Arc<Channel>),
    /// Queues in this process's memory (a lifecycle running in-process).
    Memory(Arc<memory::MemoryEnd>),
}

impl Endpoint {
    /// Sends one message, waiting for room until `deadline`.
    pub(crate) fn send(&self, message: &[u8], deadline: Option<Instant>) -> Result<(), RingError> {
        match self {
            Endpoint::Ring(channel) => channel.send(message, deadline),
            Endpoint::Memory(end) => end.send(message, deadline),
        }
    }

    fn recv(&self, deadline: Option<Instant>) -> Result<Vec<u8>, RingError> {
        match self {
            Endpoint::Ring(channel) => channel.recv(deadline),
            Endpoint::Memory(end) => end.recv(deadline),
        }
    }
}

/// Where the messages come from.
#[derive(Debug)]
enum Source {
    /// The channel is not set up yet (the child is starting); futures to wake when it is.
    Pending(Vec<Waker>),
    Open(Endpoint),
    /// There never was a channel (the child never connected, or no parent listens).
    Never,
}

/// The receiving end of one process's messages.
#[derive(Debug)]
pub(crate) struct Mailbox {
    source: Mutex<Source>,
    changed: Condvar,
    /// Messages taken and put back (by a section abandoned after its timeout): they come first.
    returned: Mutex<VecDeque<Vec<u8>>>,
}

fn listen_error(err: RingError) -> ListenError {
    match err {
        RingError::Closed => ListenError::Disconnected,
        RingError::Timeout => ListenError::Timeout,
        RingError::Full { .. } => ListenError::Timeout,
        RingError::TooLarge { len, max } => ListenError::Broken(format!(
            "a message of {len} bytes exceeds the limit of {max} bytes"
        )),
        RingError::Corrupt(message) => ListenError::Broken(message),
    }
}

impl Mailbox {
    /// A mailbox whose channel comes later ([`open`](Self::open)).
    pub(crate) fn pending() -> Mailbox {
        Mailbox {
            source: Mutex::new(Source::Pending(Vec::new())),
            changed: Condvar::new(),
            returned: Mutex::new(VecDeque::new()),
        }
    }

    /// A mailbox that never receives anything (`listen` is `Disconnected` at once).
    pub(crate) fn never() -> Mailbox {
        let mailbox = Mailbox::pending();
        mailbox.set(Source::Never);
        mailbox
    }

    /// Reads `endpoint` from now on.
    pub(crate) fn open(&self, endpoint: Endpoint) {
        self.set(Source::Open(endpoint));
    }

    /// No channel will come: listeners get `Disconnected` once the put-back messages are
    /// read.
    pub(crate) fn close(&self) {
        let mut source = lock(&self.source);
        if let Source::Pending(wakers) = &mut *source {
            let wakers = std::mem::take(wakers);
            *source = Source::Never;
            drop(source);
            self.changed.notify_all();
            wakers.into_iter().for_each(Waker::wake);
        }
    }

    fn set(&self, new: Source) {
        let old = std::mem::replace(&mut *lock(&self.source), new);
        self.changed.notify_all();
        if let Source::Pending(wakers) = old {
            wakers.into_iter().for_each(Waker::wake);
        }
    }

    /// The channel, once there is one.
    pub(crate) fn channel(&self) -> Option<Endpoint> {
        match &*lock(&self.source) {
            Source::Open(endpoint) => Some(endpoint.clone()),
            _ => None,
        }
    }

    /// The channel, waiting until `deadline` for it to be set up.
    fn wait_channel(&self, deadline: Option<Instant>) -> Result<Endpoint, ListenError> {
        let (source, _) = wait_until(&self.changed, lock(&self.source), deadline, |source| {
            !matches!(source, Source::Pending(_))
        });
        match &*source {
            Source::Open(endpoint) => Ok(endpoint.clone()),
            Source::Never => Err(ListenError::Disconnected),
            Source::Pending(_) => Err(ListenError::Timeout),
        }
    }

    /// Takes the next message, waiting until `deadline` (`None`: as long as it takes).
    pub(crate) fn recv(&self, deadline: Option<Instant>) -> Result<Vec<u8>, ListenError> {
        if let Some(bytes) = lock(&self.returned).pop_front() {
            return Ok(bytes);
        }
        let channel = self.wait_channel(deadline)?;
        channel.recv(deadline).map_err(listen_error)
    }

    /// Takes the next message if there is one; otherwise arranges for `waker` to be woken
    /// when one comes or the sender is gone (no thread waits). `interest` and `armed` belong
    /// to the polling future: see [`Channel::poll_recv`].
    pub(crate) fn poll_recv(
        &self,
        waker: &Waker,
        interest: &mut Option<Interest>,
        armed: &mut bool,
    ) -> Poll<Result<Vec<u8>, ListenError>> {
        if let Some(bytes) = lock(&self.returned).pop_front() {
            return Poll::Ready(Ok(bytes));
        }
        let channel = {
            let mut source = lock(&self.source);
            match &mut *source {
                Source::Open(Endpoint::Ring(channel)) => Arc::clone(channel),
                Source::Open(Endpoint::Memory(end)) => {
                    return end
                        .poll_recv(waker)
                        .map(|result| result.map_err(listen_error));
                }
                Source::Never => return Poll::Ready(Err(ListenError::Disconnected)),
                Source::Pending(wakers) => {
                    if !wakers.iter().any(|w| w.will_wake(waker)) {
                        wakers.push(waker.clone());
                    }
                    return Poll::Pending;
                }
            }
        };
        channel
            .poll_recv(waker, interest, armed)
            .map(|result| result.map(|(message, _)| message).map_err(listen_error))
    }

    /// Undoes what a dropped future's last [`poll_recv`](Self::poll_recv) armed.
    pub(crate) fn disarm(&self) {
        if let Some(Endpoint::Ring(channel)) = self.channel() {
            channel.disarm();
        }
    }

    /// Puts a message back at the front (a receiver that may no longer take it).
    pub(crate) fn unreceive(&self, bytes: Vec<u8>) {
        lock(&self.returned).push_front(bytes);
    }
}

/// Decodes a received message, keeping its bytes in the error if it does not decode.
pub(crate) fn decode_message<T: serde::de::DeserializeOwned>(
    bytes: Vec<u8>,
) -> Result<T, ListenError> {
    crate::wire::decode(&bytes).map_err(|message| ListenError::Decode {
        type_name: std::any::type_name::<T>(),
        message,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Conn;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    /// How long any wait in these tests may take: generous, for slow shared machines. A hang
    /// fails the test instead of stalling CI.
    const LIMIT: Duration = Duration::from_secs(60);

    fn channel_pair() -> (Arc<Channel>, Arc<Channel>) {
        let (a, b) = UnixStream::pair().unwrap();
        let offered = Channel::offer(Arc::new(Conn::new(a)), 1 << 20, true).unwrap();
        let accepted = Channel::accept(Arc::new(Conn::new(b)), 1 << 20, true).unwrap();
        (Arc::new(offered), Arc::new(accepted))
    }

    #[test]
    fn in_order_then_disconnected_once_the_sender_closed() {
        let (sender, receiver) = channel_pair();
        let mailbox = Mailbox::pending();
        sender.send(&[1], None).unwrap();
        sender.send(&[2], None).unwrap();
        sender.close();
        mailbox.open(Endpoint::Ring(receiver));
        let deadline = Some(Instant::now() + LIMIT);
        assert_eq!(mailbox.recv(deadline).unwrap(), vec![1]);
        assert_eq!(mailbox.recv(deadline).unwrap(), vec![2]);
        assert!(matches!(
            mailbox.recv(deadline),
            Err(ListenError::Disconnected)
        ));
    }

    #[test]
    fn a_pending_mailbox_times_out_and_a_closed_one_disconnects() {
        let mailbox = Mailbox::pending();
        let soon = Some(Instant::now() + Duration::from_millis(20));
        assert!(matches!(mailbox.recv(soon), Err(ListenError::Timeout)));
        mailbox.close();
        assert!(matches!(mailbox.recv(None), Err(ListenError::Disconnected)));
    }

    #[test]
    fn a_blocked_receiver_wakes_for_the_channel_and_its_message() {
        let (sender, receiver) = channel_pair();
        let mailbox = Arc::new(Mailbox::pending());
        let waiting = Arc::clone(&mailbox);
        let (got_tx, got_rx) = std::sync::mpsc::channel();
        // The un-timed `recv(None)` is the point: it runs on a helper thread, bounded below.
        std::thread::spawn(move || {
            let _ = got_tx.send(waiting.recv(None));
        });
        std::thread::sleep(Duration::from_millis(20));
        mailbox.open(Endpoint::Ring(receiver));
        std::thread::sleep(Duration::from_millis(20));
        sender.send(&[9], None).unwrap();
        let got = got_rx
            .recv_timeout(LIMIT)
            .expect("the receiver was not woken");
        assert_eq!(got.unwrap(), vec![9]);
    }

    #[test]
    fn a_message_put_back_comes_first() {
        let (sender, receiver) = channel_pair();
        let mailbox = Mailbox::pending();
        mailbox.open(Endpoint::Ring(receiver));
        sender.send(&[2], None).unwrap();
        mailbox.unreceive(vec![1]);
        let deadline = Some(Instant::now() + LIMIT);
        assert_eq!(mailbox.recv(deadline).unwrap(), vec![1]);
        assert_eq!(mailbox.recv(deadline).unwrap(), vec![2]);
    }
}
