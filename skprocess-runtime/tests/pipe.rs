//! Pipes: ends that connect once, typed end of stream when a peer closes or dies, timeouts that
//! lose nothing, several senders, waiting on several ends and processes, and every way a point
//! reaches another process.

use std::time::{Duration, Instant};

use skprocess::__testing;
use skprocess::pipe::{self, Pipe, PipeError, Point, RecvOnly};
use skprocess::pool::Pool;
use skprocess::prelude::*;

mod common;
use common::{LIMIT, within};

/// Sends numbers until the pipe closes (or `count` of them).
#[skprocess(runs = 1)]
struct Sender {
    pipe: Point,
    count: u64,
}

#[skprocess]
impl Sender {
    fn __run__(&mut self) -> Result<(), PipeError> {
        for i in 0..self.count {
            self.pipe.send(&i)?;
        }
        Ok(())
    }

    fn __result__(&mut self) {}
}

#[test]
fn a_peer_killed_mid_stream_ends_the_stream_with_a_typed_error_at_once() {
    within(LIMIT, || {
        let (anchor, point) = Pipe::pair().unwrap();
        let process = Skprocess::new(Sender {
            pipe: point,
            count: u64::MAX,
        });
        process.start().unwrap();
        // Messages flow, in order.
        for expected in 0..100_u64 {
            assert_eq!(anchor.recv::<u64>().unwrap(), expected);
        }
        process.kill().unwrap();
        let killed = Instant::now();
        let mut last = 99;
        let end = loop {
            match anchor.recv::<u64>() {
                Ok(n) => {
                    assert_eq!(n, last + 1, "a message lost or reordered");
                    last = n;
                }
                Err(error) => break error,
            }
        };
        assert!(matches!(end, PipeError::Closed), "{end:?}");
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "{:?}",
            killed.elapsed()
        );
        assert!(matches!(anchor.recv::<u64>(), Err(PipeError::Closed)));
    });
}

#[test]
fn a_point_connects_once_and_a_second_copy_is_refused() {
    within(LIMIT, || {
        let (anchor, point) = Pipe::pair().unwrap();
        let bytes = __testing::encode(&point).unwrap();
        let first: Point = __testing::decode(&bytes).unwrap();
        let second: Point = __testing::decode(&bytes).unwrap();
        first.send(&7_u32).unwrap();
        assert_eq!(anchor.recv::<u32>().unwrap(), 7);
        match second.send(&8_u32) {
            Err(PipeError::Refused(message)) => {
                assert!(message.contains("connects once"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        // A point that already connected cannot move again.
        assert!(__testing::encode(&first).is_err());
        // Another serializer never sees the secret.
        let (_anchor, point) = Pipe::pair().unwrap();
        assert!(serde_json::to_string(&point).is_err());
    });
}

#[test]
fn timeouts_lose_nothing_and_a_mistyped_message_keeps_its_bytes() {
    within(LIMIT, || {
        let (anchor, point) = Pipe::pair().unwrap();
        assert!(matches!(point.try_recv::<u8>(), Err(PipeError::Timeout)));
        let started = Instant::now();
        assert!(matches!(
            point.recv_timeout::<u8>(Duration::from_millis(50)),
            Err(PipeError::Timeout)
        ));
        assert!(started.elapsed() >= Duration::from_millis(40));
        anchor.send("a string").unwrap();
        anchor.send(&5_u8).unwrap();
        match point.recv::<Vec<u64>>() {
            Err(PipeError::Decode { bytes, .. }) => {
                assert_eq!(__testing::decode::<String>(&bytes).unwrap(), "a string");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(point.recv_timeout::<u8>(LIMIT).unwrap(), 5);
        // A large message crosses whole.
        let big: Vec<u8> = (0..8 << 20).map(|i| (i % 251) as u8).collect();
        let sender = std::thread::spawn(move || {
            anchor.send(&big).unwrap();
            (anchor, big)
        });
        let got: Vec<u8> = point.recv().unwrap();
        let (anchor, big) = sender.join().unwrap();
        assert_eq!(got, big);
        anchor.close();
        assert!(matches!(point.recv::<u8>(), Err(PipeError::Closed)));
    });
}

#[test]
fn an_anchor_whose_point_was_dropped_unsent_fails_at_once() {
    within(LIMIT, || {
        let (anchor, point) = Pipe::pair().unwrap();
        drop(point);
        let started = Instant::now();
        assert!(matches!(anchor.recv::<u8>(), Err(PipeError::NotConnected)));
        assert!(started.elapsed() < Duration::from_secs(10));
    });
}

#[test]
fn four_sending_threads_share_one_end_and_each_ones_order_is_kept() {
    within(LIMIT, || {
        let (anchor, point) = Pipe::pair().unwrap();
        let point = std::sync::Arc::new(point);
        let senders: Vec<_> = (0..4_u64)
            .map(|thread| {
                let point = std::sync::Arc::clone(&point);
                std::thread::spawn(move || {
                    for i in 0..1_000_u64 {
                        point.send(&(thread, i)).unwrap();
                    }
                })
            })
            .collect();
        let mut next = [0_u64; 4];
        for _ in 0..4_000 {
            let (thread, i): (u64, u64) = anchor.recv().unwrap();
            assert_eq!(i, next[thread as usize], "thread {thread} out of order");
            next[thread as usize] += 1;
        }
        for sender in senders {
            sender.join().unwrap();
        }
        assert_eq!(next, [1_000; 4]);
    });
}

/// Waits for one message, then returns it.
#[skprocess(runs = 1)]
struct Echo {
    pipe: Point,
}

#[skprocess]
impl Echo {
    fn __run__(&mut self) {}

    fn __result__(&mut self) -> Result<u64, PipeError> {
        let n: u64 = self.pipe.recv()?;
        self.pipe.send(&(n + 1))?;
        Ok(n)
    }
}

#[test]
fn wait_reports_the_ends_and_processes_that_are_ready() {
    within(LIMIT, || {
        let (a1, p1) = Pipe::pair().unwrap();
        let (a2, p2) = Pipe::pair().unwrap();
        let echo = Skprocess::new(Echo { pipe: p2 });
        echo.start().unwrap();
        p1.send(&1_u8).unwrap();
        a1.recv::<u8>().unwrap(); // connected, nothing pending now
        assert!(pipe::wait(&[&a1, &echo], Some(Duration::from_millis(50))).is_empty());
        p1.send(&2_u8).unwrap();
        assert_eq!(pipe::wait(&[&a1, &echo], Some(LIMIT)), [0]);
        assert_eq!(a1.recv::<u8>().unwrap(), 2);
        a2.send(&41_u64).unwrap();
        assert_eq!(pipe::wait(&[&a2], Some(LIMIT)), [0]);
        assert_eq!(a2.recv::<u64>().unwrap(), 42);
        assert!(pipe::wait(&[&a1, &echo], Some(LIMIT)).contains(&1));
        assert_eq!(echo.result().unwrap(), 41);
    });
}

fn double_through(point: Point<RecvOnly>, reply: Point) -> u64 {
    let n: u64 = point.recv().expect("a number");
    reply.send(&(n * 2)).expect("sent");
    n
}

#[test]
fn points_reach_pool_tasks_in_star_tuples_and_receive_asynchronously() {
    within(LIMIT, || {
        let pool = Pool::new(2).unwrap();
        let mut anchors = Vec::new();
        let mut items = Vec::new();
        for n in 0..4_u64 {
            let (to_task, from_parent) = Pipe::one_way().unwrap();
            let (back, reply) = Pipe::pair().unwrap();
            // Queued until the point, sent below, connects.
            to_task.send(&n).unwrap();
            anchors.push((to_task, back));
            items.push((from_parent, reply));
        }
        let results = std::thread::scope(|scope| {
            let call = scope.spawn(|| pool.star().map(double_through, items).unwrap());
            let answers: Vec<u64> = anchors
                .iter()
                .map(|(_, back)| futures::executor::block_on(back.recv_async::<u64>()).unwrap())
                .collect();
            (call.join().unwrap(), answers)
        });
        assert_eq!(results.0, [0, 1, 2, 3]);
        assert_eq!(results.1, [0, 2, 4, 6]);
    });
}

/// Echoes every message back until the pipe closes; the number it echoed.
#[skprocess(runs = 1)]
struct Echoer {
    pipe: Point,
}

#[skprocess]
impl Echoer {
    fn __run__(&mut self) {}

    fn __result__(&mut self) -> Result<u64, PipeError> {
        let mut count = 0;
        loop {
            match self.pipe.recv::<(u64, Vec<u8>)>() {
                Ok(message) => self.pipe.send(&message)?,
                Err(PipeError::Closed) => return Ok(count),
                Err(other) => return Err(other),
            }
            count += 1;
        }
    }
}

/// The bytes of message `i`: a length from 0 to 64 KiB and a content that depend on `i`.
fn payload(process: u64, i: u64) -> Vec<u8> {
    let len = ((i * 7_919 + process * 104_729) % 65_537) as usize;
    (0..len).map(|b| (b as u64 ^ i ^ process) as u8).collect()
}

/// Four pipes to four echoing processes (twice the CPUs), driven at once from four threads:
/// every message comes back whole and in order. `SKPROCESS_STRESS_ROUNDS` sets the messages per
/// pipe (default 2,000).
#[test]
fn four_pipes_echo_thousands_of_messages_of_random_sizes_whole_and_in_order() {
    let rounds: u64 = std::env::var("SKPROCESS_STRESS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    within(LIMIT * 3, move || {
        let drivers: Vec<_> = (0..4_u64)
            .map(|process| {
                std::thread::spawn(move || {
                    let (anchor, point) = Pipe::pair().unwrap();
                    let echo = Skprocess::new(Echoer { pipe: point });
                    echo.start().unwrap();
                    // Several messages in flight: send ahead by up to 8.
                    let mut sent = 0;
                    for i in 0..rounds {
                        while sent < rounds && sent < i + 8 {
                            anchor.send(&(sent, payload(process, sent))).unwrap();
                            sent += 1;
                        }
                        let (index, bytes): (u64, Vec<u8>) = anchor.recv().unwrap();
                        assert_eq!(index, i, "pipe {process}: reordered");
                        assert!(
                            bytes == payload(process, i),
                            "pipe {process}: message {i} torn"
                        );
                    }
                    anchor.close();
                    assert_eq!(echo.timeout(LIMIT).result().unwrap(), rounds);
                })
            })
            .collect();
        for driver in drivers {
            driver.join().unwrap();
        }
    });
}
