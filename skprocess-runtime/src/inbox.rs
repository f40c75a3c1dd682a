//! A queue of encoded messages with blocking, timed and async receive: the `listen` side of
//! `tell`/`listen`, used by both the parent's handle and the child's context.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::task::Waker;
use std::time::Instant;

use crate::error::ListenError;
use crate::sync::{lock, wait_until};

/// Received, still encoded messages.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    state: Mutex<State>,
    ready: Condvar,
}

#[derive(Debug, Default)]
struct State {
    messages: VecDeque<Vec<u8>>,
    /// No more messages will arrive (the sender is gone).
    closed: bool,
    wakers: Vec<Waker>,
}

impl Inbox {
    pub(crate) fn push(&self, bytes: Vec<u8>) {
        let wakers = {
            let mut state = self.lock();
            state.messages.push_back(bytes);
            std::mem::take(&mut state.wakers)
        };
        self.ready.notify_one();
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Marks the end of the stream: queued messages stay readable.
    pub(crate) fn close(&self) {
        let wakers = {
            let mut state = self.lock();
            state.closed = true;
            std::mem::take(&mut state.wakers)
        };
        self.ready.notify_all();
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Takes the next message, waiting until `deadline` (`None`: as long as it takes).
    pub(crate) fn recv(&self, deadline: Option<Instant>) -> Result<Vec<u8>, ListenError> {
        let (mut state, _) = wait_until(&self.ready, self.lock(), deadline, |state| {
            state.closed || !state.messages.is_empty()
        });
        match state.messages.pop_front() {
            Some(bytes) => Ok(bytes),
            None if state.closed => Err(ListenError::Disconnected),
            None => Err(ListenError::Timeout),
        }
    }

    /// Takes the next message if one is queued; otherwise registers `waker` to be woken when
    /// one arrives or the inbox closes (async receive, no thread).
    pub(crate) fn poll_recv(&self, waker: &Waker) -> Option<Result<Vec<u8>, ListenError>> {
        let mut state = self.lock();
        if let Some(bytes) = state.messages.pop_front() {
            return Some(Ok(bytes));
        }
        if state.closed {
            return Some(Err(ListenError::Disconnected));
        }
        if !state.wakers.iter().any(|w| w.will_wake(waker)) {
            state.wakers.push(waker.clone());
        }
        None
    }

    /// Puts a message back at the front (a receiver that may no longer take it).
    pub(crate) fn unreceive(&self, bytes: Vec<u8>) {
        self.lock().messages.push_front(bytes);
        self.ready.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
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
    use std::sync::Arc;
    use std::time::Duration;

    /// How long any wait in these tests may take: generous, for slow shared machines. A hang
    /// fails the test instead of stalling CI.
    const LIMIT: Duration = Duration::from_secs(60);

    /// Whether thread `tid` of this process is asleep (blocked in the kernel), from `/proc`.
    fn is_asleep(tid: i32) -> bool {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
        // The state follows the thread's name, which is in parentheses and may hold anything.
        let (_, after_name) = stat.rsplit_once(')').expect("a stat line");
        after_name.split_whitespace().next() == Some("S")
    }

    #[test]
    fn fifo_then_disconnected_after_close() {
        let inbox = Inbox::default();
        inbox.push(vec![1]);
        inbox.push(vec![2]);
        inbox.close();
        let deadline = Instant::now() + LIMIT;
        assert_eq!(inbox.recv(Some(deadline)).unwrap(), vec![1]);
        assert_eq!(inbox.recv(Some(deadline)).unwrap(), vec![2]);
        assert!(matches!(
            inbox.recv(Some(deadline)),
            Err(ListenError::Disconnected)
        ));
    }

    #[test]
    fn timeout_is_distinct() {
        let inbox = Inbox::default();
        let deadline = Instant::now() + Duration::from_millis(20);
        assert!(matches!(
            inbox.recv(Some(deadline)),
            Err(ListenError::Timeout)
        ));
    }

    #[test]
    fn wakes_a_blocked_receiver() {
        let inbox = Arc::new(Inbox::default());
        let receiver = Arc::clone(&inbox);
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (got_tx, got_rx) = std::sync::mpsc::channel();
        // The un-timed `recv(None)` is the point: it runs on a helper thread, bounded below.
        std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            tid_tx.send(unsafe { libc::gettid() }).unwrap();
            let _ = got_tx.send(receiver.recv(None));
        });
        let tid = tid_rx
            .recv_timeout(LIMIT)
            .expect("the receiver never started");
        // Nothing else takes the inbox's lock: once the receiver sleeps, it waits in `recv`.
        let deadline = Instant::now() + LIMIT;
        while !is_asleep(tid) {
            assert!(Instant::now() < deadline, "the receiver never blocked");
            std::thread::sleep(Duration::from_millis(1));
        }
        inbox.push(vec![9]);
        let got = got_rx
            .recv_timeout(LIMIT)
            .expect("the receiver was not woken");
        assert_eq!(got.unwrap(), vec![9]);
    }

    #[test]
    fn undecodable_message_keeps_its_bytes() {
        let err = decode_message::<String>(vec![200, 1]).unwrap_err();
        match err {
            ListenError::Decode { bytes, .. } => assert_eq!(bytes, vec![200, 1]),
            other => panic!("{other:?}"),
        }
    }
}
