//! The in-memory counterpart of the shared-memory [`Channel`](crate::ring::Channel), for a
//! process whose lifecycle runs on a thread of this process
//! ([`InProcess`](crate::InProcess)).
//!
//! Two queues of encoded messages, one per direction, with the ring's contract and errors:
//! messages arrive whole and in order; a sender waits for room while the receiver's queue holds
//! [`CAPACITY`] bytes or more (then `Full` at its deadline); a message over the frame limit is
//! `TooLarge`; once a side closes (explicitly or by being dropped), the other reads what was
//! sent, then gets `Closed`, and its sends fail with `Closed`. Room is counted as the ring
//! counts it (each message costs its length plus a record header), so the same traffic fills
//! both at about the same point. One difference: a message larger than the whole capacity,
//! which the ring streams in pieces while the receiver reads, is queued whole here once the
//! queue is empty.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::Instant;

use crate::ring::CAPACITY;
use crate::ring::spsc::{RECORD_HEADER, RingError};
use crate::sync::lock;

/// One direction.
#[derive(Debug, Default)]
struct Direction {
    state: Mutex<Queue>,
    /// Notified on a push, a pop or a close while a thread waits.
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Queue {
    messages: VecDeque<Vec<u8>>,
    /// Bytes the queued messages take, each with a record header.
    bytes: usize,
    /// The sender closed: nothing more comes.
    sender_closed: bool,
    /// The receiver closed: it reads nothing more.
    receiver_closed: bool,
    /// Threads waiting on `changed` (a sender for room, a receiver for a message): without
    /// any, a change wakes nobody and costs no system call.
    waiting: usize,
    /// Futures waiting for a message (woken on a push or a close).
    wakers: Vec<Waker>,
}

impl Direction {
    fn notify(&self, queue: &mut Queue) {
        if queue.waiting > 0 {
            self.changed.notify_all();
        }
        queue.wakers.drain(..).for_each(Waker::wake);
    }

    /// Waits until `ready` holds or `deadline` passes (`None`: no deadline); returns the guard
    /// and whether `ready` held.
    fn wait_until<'a>(
        &self,
        mut queue: MutexGuard<'a, Queue>,
        deadline: Option<Instant>,
        ready: impl Fn(&Queue) -> bool,
    ) -> (MutexGuard<'a, Queue>, bool) {
        loop {
            if ready(&queue) {
                return (queue, true);
            }
            let now = Instant::now();
            if deadline.is_some_and(|deadline| now >= deadline) {
                return (queue, false);
            }
            queue.waiting += 1;
            queue = match deadline {
                None => self.changed.wait(queue).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    self.changed
                        .wait_timeout(queue, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            queue.waiting -= 1;
        }
    }
}

/// One side of an in-memory channel: it sends on one direction and receives on the other.
#[derive(Debug)]
pub(crate) struct MemoryEnd {
    outgoing: Arc<Direction>,
    incoming: Arc<Direction>,
    limit: usize,
}

/// Two connected ends, each refusing messages larger than `limit` bytes.
pub(crate) fn pair(limit: u32) -> (MemoryEnd, MemoryEnd) {
    let a = Arc::new(Direction::default());
    let b = Arc::new(Direction::default());
    let limit = limit as usize;
    (
        MemoryEnd {
            outgoing: Arc::clone(&a),
            incoming: Arc::clone(&b),
            limit,
        },
        MemoryEnd {
            outgoing: b,
            incoming: a,
            limit,
        },
    )
}

impl MemoryEnd {
    /// Sends one message, waiting for room until `deadline` (then `Full`; nothing of the
    /// message is delivered).
    pub(crate) fn send(&self, message: &[u8], deadline: Option<Instant>) -> Result<(), RingError> {
        if message.len() > self.limit {
            return Err(RingError::TooLarge {
                len: message.len() as u64,
                max: self.limit as u64,
            });
        }
        let cost = RECORD_HEADER + message.len();
        let (mut queue, ready) =
            self.outgoing
                .wait_until(lock(&self.outgoing.state), deadline, |queue| {
                    queue.sender_closed
                        || queue.receiver_closed
                        || queue.messages.is_empty()
                        || queue.bytes + cost <= CAPACITY
                });
        if queue.sender_closed || queue.receiver_closed {
            return Err(RingError::Closed);
        }
        if !ready {
            return Err(RingError::Full { capacity: CAPACITY });
        }
        queue.messages.push_back(message.to_vec());
        queue.bytes += cost;
        self.outgoing.notify(&mut queue);
        Ok(())
    }

    /// The next message, waiting until `deadline` (then `Timeout`).
    pub(crate) fn recv(&self, deadline: Option<Instant>) -> Result<Vec<u8>, RingError> {
        let (mut queue, _) =
            self.incoming
                .wait_until(lock(&self.incoming.state), deadline, |queue| {
                    queue.receiver_closed || queue.sender_closed || !queue.messages.is_empty()
                });
        self.take(&mut queue).unwrap_or(Err(RingError::Timeout))
    }

    /// The next message if one is there; otherwise `waker` is woken when one comes or the
    /// sender is gone.
    pub(crate) fn poll_recv(&self, waker: &Waker) -> Poll<Result<Vec<u8>, RingError>> {
        let mut queue = lock(&self.incoming.state);
        match self.take(&mut queue) {
            Some(result) => Poll::Ready(result),
            None => {
                if !queue.wakers.iter().any(|w| w.will_wake(waker)) {
                    queue.wakers.push(waker.clone());
                }
                Poll::Pending
            }
        }
    }

    /// What a receive finds now: a message, `Closed`, or nothing yet (`None`).
    fn take(&self, queue: &mut Queue) -> Option<Result<Vec<u8>, RingError>> {
        if queue.receiver_closed {
            return Some(Err(RingError::Closed));
        }
        if let Some(message) = queue.messages.pop_front() {
            queue.bytes -= RECORD_HEADER + message.len();
            self.incoming.notify(queue);
            return Some(Ok(message));
        }
        queue.sender_closed.then_some(Err(RingError::Closed))
    }

    /// Closes both directions: the peer reads what was sent, then gets `Closed`, and its sends
    /// fail; this side's waiting threads wake with `Closed`.
    pub(crate) fn close(&self) {
        for (direction, sender) in [(&self.outgoing, true), (&self.incoming, false)] {
            let mut queue = lock(&direction.state);
            if sender {
                queue.sender_closed = true;
            } else {
                queue.receiver_closed = true;
            }
            direction.notify(&mut queue);
        }
    }
}

impl Drop for MemoryEnd {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// How long any wait in these tests may take: a hang fails the test instead of stalling CI.
    const LIMIT: Duration = Duration::from_secs(60);

    fn soon() -> Option<Instant> {
        Some(Instant::now() + Duration::from_millis(20))
    }

    #[test]
    fn messages_arrive_in_order_both_ways() {
        let (a, b) = pair(1 << 20);
        for i in 0..10u8 {
            a.send(&[i], None).unwrap();
            b.send(&[100 + i], None).unwrap();
        }
        let deadline = Some(Instant::now() + LIMIT);
        for i in 0..10u8 {
            assert_eq!(b.recv(deadline).unwrap(), vec![i]);
            assert_eq!(a.recv(deadline).unwrap(), vec![100 + i]);
        }
        assert_eq!(a.recv(soon()), Err(RingError::Timeout));
    }

    #[test]
    fn a_closed_peer_is_drained_then_closed() {
        let (a, b) = pair(1 << 20);
        a.send(b"one", None).unwrap();
        a.send(b"two", None).unwrap();
        drop(a);
        assert_eq!(b.recv(None).unwrap(), b"one");
        assert_eq!(b.recv(None).unwrap(), b"two");
        assert_eq!(b.recv(None), Err(RingError::Closed));
        assert_eq!(b.send(b"late", None), Err(RingError::Closed));
    }

    #[test]
    fn closing_wakes_this_sides_receiver() {
        let (a, b) = pair(1 << 20);
        let a = Arc::new(a);
        let waiting = Arc::clone(&a);
        let (tx, rx) = std::sync::mpsc::channel();
        // The un-timed `recv(None)` is the point: it runs on a helper thread, bounded below.
        std::thread::spawn(move || {
            let _ = tx.send(waiting.recv(None));
        });
        std::thread::sleep(Duration::from_millis(20));
        a.close();
        let got = rx.recv_timeout(LIMIT).expect("the receiver was not woken");
        assert_eq!(got, Err(RingError::Closed));
        drop(b);
    }

    #[test]
    fn over_the_limit_is_too_large_and_a_full_queue_is_full() {
        let (a, b) = pair(1 << 20);
        assert_eq!(
            a.send(&vec![0; (1 << 20) + 1], None),
            Err(RingError::TooLarge {
                len: (1 << 20) + 1,
                max: 1 << 20
            })
        );
        // A message larger than the whole capacity goes when nothing is queued.
        a.send(&vec![1; CAPACITY + 1], soon()).unwrap();
        assert_eq!(
            a.send(&[2], soon()),
            Err(RingError::Full { capacity: CAPACITY })
        );
        assert_eq!(b.recv(None).unwrap().len(), CAPACITY + 1);
        a.send(&[2], soon()).unwrap();
        assert_eq!(b.recv(None).unwrap(), vec![2]);
    }

    #[test]
    fn a_waiting_sender_goes_once_the_receiver_makes_room() {
        let (a, b) = pair(1 << 20);
        let half = vec![0; CAPACITY / 2];
        a.send(&half, None).unwrap();
        let a = Arc::new(a);
        let sender = Arc::clone(&a);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(sender.send(&[0; CAPACITY / 2], Some(Instant::now() + LIMIT)));
        });
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(b.recv(None).unwrap().len(), CAPACITY / 2);
        rx.recv_timeout(LIMIT)
            .expect("the sender was not woken")
            .unwrap();
        assert_eq!(b.recv(None).unwrap().len(), CAPACITY / 2);
    }

    #[test]
    fn a_pending_poll_is_woken_by_a_send() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::task::Wake;

        struct Flag(AtomicBool);
        impl Wake for Flag {
            fn wake(self: Arc<Self>) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let (a, b) = pair(1 << 20);
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(Arc::clone(&flag));
        assert!(b.poll_recv(&waker).is_pending());
        a.send(b"hi", None).unwrap();
        assert!(flag.0.load(Ordering::SeqCst));
        assert_eq!(b.poll_recv(&waker), Poll::Ready(Ok(b"hi".to_vec())));
    }
}
