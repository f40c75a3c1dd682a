//! The shared-memory transport under Pipe, tell/listen and Share calls, seen from outside:
//! messages of random sizes (some larger than a ring, so streamed in pieces) arrive whole and
//! in order; a full ring is a typed `Full`, and a message given up half way never appears; a
//! peer SIGKILLed in the middle of a message gives the other side a typed error soon, never a
//! hang and never part of the message.
//!
//! `SKPROCESS_RING_MESSAGES` sets how many messages the order test sends (100,000 by default;
//! the closing note of issue 9 reports a 10,000,000 run).

use std::time::{Duration, Instant};

use skprocess::pipe::{Pipe, PipeError, Point};
use skprocess::prelude::*;

mod common;
use common::{LIMIT, within};
#[path = "common/tally.rs"]
mod tally;
use tally::Tally;

/// A small deterministic generator (xorshift), so sender and receiver agree on every size.
struct Sizes(u64);

impl Sizes {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let roll = self.0 % 10_000;
        let span = self.0 >> 20;
        match roll {
            // One in a thousand is larger than the ring (256 KiB): streamed.
            0..10 => 256 * 1024 + (span % (200 * 1024)) as usize,
            10..1000 => (span % (16 * 1024)) as usize,
            _ => (span % 200) as usize,
        }
    }
}

/// Message `i`: its index, then bytes that depend on the index and the position.
fn message(i: u64, len: usize) -> Vec<u8> {
    let mut out = i.to_le_bytes().to_vec();
    out.extend((0..len).map(|k| (i as usize).wrapping_mul(31).wrapping_add(k) as u8));
    out
}

/// Sends `count` messages of random sizes on its pipe, then closes it.
#[skprocess(runs = 1)]
struct Flood {
    pipe: Point,
    count: u64,
}

#[skprocess]
impl Flood {
    fn __run__(&mut self) -> Result<(), PipeError> {
        let mut sizes = Sizes(0x9e37_79b9_7f4a_7c15);
        for i in 0..self.count {
            self.pipe.send(&message(i, sizes.next()))?;
        }
        self.pipe.close();
        Ok(())
    }

    fn __result__(&mut self) {}
}

#[test]
fn messages_of_random_sizes_arrive_whole_and_in_order() {
    let count: u64 = std::env::var("SKPROCESS_RING_MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    // A generous bound: 100,000 messages take a few seconds; ten million, minutes.
    let limit = LIMIT + Duration::from_millis(count / 10);
    within(limit, move || {
        let (anchor, point) = Pipe::pair().unwrap();
        let process = Skprocess::new(Flood { pipe: point, count });
        process.start().unwrap();
        let mut sizes = Sizes(0x9e37_79b9_7f4a_7c15);
        let started = Instant::now();
        let mut bytes = 0_u64;
        for i in 0..count {
            let got: Vec<u8> = anchor.recv().unwrap();
            let expected = message(i, sizes.next());
            if got != expected {
                let index = got
                    .get(..8)
                    .map(|b| u64::from_le_bytes(b.try_into().unwrap()));
                panic!(
                    "message {i}: got {} bytes (index {index:?}), expected {} bytes",
                    got.len(),
                    expected.len()
                );
            }
            bytes += got.len() as u64;
        }
        assert!(matches!(anchor.recv::<Vec<u8>>(), Err(PipeError::Closed)));
        process.timeout(LIMIT).result().unwrap();
        println!(
            "{count} messages, {:.1} MiB, in {:.2?}",
            bytes as f64 / (1 << 20) as f64,
            started.elapsed()
        );
    });
}

/// Says it is connected, then receives nothing until told, then everything.
#[skprocess(runs = 1)]
struct Sleeper {
    pipe: Point,
}

#[skprocess]
impl Sleeper {
    fn __run__(
        &mut self,
        cx: &mut Context,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.pipe.send(&())?;
        let () = cx.listen()?;
        let mut got = Vec::new();
        loop {
            match self.pipe.recv::<Vec<u8>>() {
                Ok(message) => got.push(message.len() as u64),
                Err(PipeError::Closed) => break,
                Err(other) => return Err(other.into()),
            }
        }
        cx.tell(got)?;
        Ok(())
    }

    fn __result__(&mut self) {}
}

#[test]
fn a_full_ring_is_full_and_a_message_given_up_half_way_never_arrives() {
    within(LIMIT, || {
        let (anchor, point) = Pipe::pair().unwrap();
        let process = Skprocess::new(Sleeper { pipe: point });
        process.start().unwrap();
        // Once the point has connected, messages go to its ring (before, they queue here).
        let () = anchor.recv().unwrap();
        // Fill the ring with 1 KiB messages: try_send says Full at once when it is full.
        let mut sent = 0_u64;
        loop {
            match anchor.try_send(&vec![0u8; 1024]) {
                Ok(()) => sent += 1,
                Err(PipeError::Full { capacity }) => {
                    assert_eq!(capacity, 256 * 1024);
                    break;
                }
                Err(other) => panic!("{other:?}"),
            }
            assert!(sent < 1000, "the ring never filled");
        }
        assert!(sent > 200, "only {sent} messages fit");
        // A bounded send waits, then gives up the same way.
        let started = Instant::now();
        assert!(matches!(
            anchor.send_timeout(&vec![0u8; 1024], Duration::from_millis(100)),
            Err(PipeError::Full { .. })
        ));
        assert!(started.elapsed() >= Duration::from_millis(100));
        // Let the child read; a message larger than the ring is streamed, but given up when the
        // reader is slower than the bound: it is withdrawn, never seen.
        process.tell(()).unwrap();
        let given_up = anchor.send_timeout(&vec![1u8; 4 << 20], Duration::from_nanos(1));
        assert!(
            matches!(given_up, Err(PipeError::Full { .. })),
            "{given_up:?}"
        );
        anchor.send(&vec![2u8; 10]).unwrap();
        anchor.close();
        let lengths: Vec<u64> = process.listen_timeout(LIMIT).unwrap();
        assert_eq!(lengths.len() as u64, sent + 1);
        // Every 1 KiB message, then the last one: nothing of the 4 MiB message.
        assert!(lengths[..sent as usize].iter().all(|&len| len == 1024));
        assert_eq!(*lengths.last().unwrap(), 10);
        process.timeout(LIMIT).result().unwrap();
    });
}

/// Sends one message far larger than the ring and waits to be killed in the middle of it
/// (nobody reads, so it blocks with the ring full of pieces).
#[skprocess(runs = 1)]
struct HalfWay {
    pipe: Option<Point>,
}

#[skprocess]
impl HalfWay {
    fn __run__(
        &mut self,
        cx: &mut Context,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let big = vec![7u8; 32 << 20];
        match &self.pipe {
            Some(pipe) => pipe.send(&big)?,
            None => cx.tell(big)?,
        }
        Ok(())
    }
}

/// Gives the child time to fill the ring with pieces of its message: it cannot get further,
/// as nobody reads.
fn until_mid_message<P: skprocess::Lifecycle>(process: &Skprocess<P>) {
    std::thread::sleep(Duration::from_millis(300));
    assert!(process.is_alive(), "the child ended before it was killed");
}

#[test]
fn a_pipe_peer_killed_mid_message_is_closed_soon_and_no_piece_is_seen() {
    within(LIMIT, || {
        let (anchor, point) = Pipe::pair().unwrap();
        let process = Skprocess::new(HalfWay { pipe: Some(point) });
        process.start().unwrap();
        until_mid_message(&process);
        process.kill().unwrap();
        let killed = Instant::now();
        let got = anchor.recv::<Vec<u8>>();
        let took = killed.elapsed();
        assert!(matches!(got, Err(PipeError::Closed)), "{got:?}");
        println!("pipe: Closed {took:?} after the kill");
        assert!(took < Duration::from_secs(5), "took {took:?}");
        // Every other call says so too, the ones that may not wait included.
        assert!(matches!(anchor.try_recv::<u8>(), Err(PipeError::Closed)));
        let got = futures::executor::block_on(anchor.recv_async::<u8>());
        assert!(matches!(got, Err(PipeError::Closed)), "{got:?}");
    });
}

/// Answers one message, then waits to be killed.
#[skprocess(runs = 1)]
struct ReadOnce {
    pipe: Point,
}

#[skprocess]
impl ReadOnce {
    fn __run__(&mut self) -> Result<(), PipeError> {
        let () = self.pipe.recv()?;
        self.pipe.send(&())?;
        std::thread::sleep(LIMIT);
        Ok(())
    }
}

#[test]
fn sends_to_a_peer_that_died_fail_soon_though_its_ring_has_room() {
    within(LIMIT, || {
        let (anchor, point) = Pipe::pair().unwrap();
        let process = Skprocess::new(ReadOnce { pipe: point });
        process.start().unwrap();
        anchor.send(&()).unwrap();
        let () = anchor.recv().unwrap(); // connected, and nothing left to read
        process.kill().unwrap();
        let killed = Instant::now();
        loop {
            match anchor.send(&1u8) {
                Ok(()) => std::thread::sleep(Duration::from_millis(10)),
                Err(PipeError::Closed) => break,
                Err(other) => panic!("{other:?}"),
            }
            assert!(
                killed.elapsed() < Duration::from_secs(10),
                "sends kept succeeding"
            );
        }
        println!("pipe send: Closed {:?} after the kill", killed.elapsed());
    });
}

#[test]
fn a_telling_child_killed_mid_message_is_disconnected_soon_and_no_piece_is_seen() {
    within(LIMIT, || {
        let process = Skprocess::new(HalfWay { pipe: None });
        process.start().unwrap();
        until_mid_message(&process);
        process.kill().unwrap();
        let killed = Instant::now();
        let got = process.listen::<Vec<u8>>();
        let took = killed.elapsed();
        assert!(matches!(got, Err(ListenError::Disconnected)), "{got:?}");
        println!("tell/listen: Disconnected {took:?} after the kill");
        assert!(took < Duration::from_secs(5), "took {took:?}");
    });
}

/// Calls the Share with a request far larger than a ring, telling the parent just before, so
/// that the parent's kill lands in the middle of it: the coordinator reads as fast as the child
/// writes, so a sleep cannot promise that, while a tell takes well under a millisecond and a
/// call carrying 256 MiB takes a debug build seconds (measured: 0.26 s for 48 MiB, over 3 s for
/// 256 MiB).
#[skprocess(runs = 1)]
struct BigCaller {
    share: Share,
}

#[skprocess]
impl BigCaller {
    fn __run__(
        &mut self,
        cx: &mut Context,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let tally = self.share.get::<Tally>("tally")?;
        let text = "x".repeat(256 << 20);
        cx.tell(())?;
        tally.weigh(text)?;
        std::thread::sleep(LIMIT);
        Ok(())
    }
}

/// Adds one to the tally from a child.
#[skprocess(runs = 1)]
struct AddOne {
    share: Share,
}

#[skprocess]
impl AddOne {
    fn __run__(&mut self) {}

    fn __result__(&mut self) -> Result<u64, ShareError> {
        self.share.get::<Tally>("tally")?.add(1)
    }
}

#[test]
fn a_share_client_killed_mid_request_leaves_the_share_serving_others() {
    within(LIMIT, || {
        let share = Share::new().unwrap();
        let tally = share.insert("tally", Tally::default()).unwrap();
        let process = Skprocess::new(BigCaller {
            share: share.clone(),
        });
        process.start().unwrap();
        let () = process.listen_timeout(LIMIT).unwrap();
        process.kill().unwrap();
        // The coordinator dropped the pieces: the owner and other clients carry on, and the
        // half-sent call never ran.
        assert_eq!(tally.add(2).unwrap(), 2);
        let other = Skprocess::new(AddOne {
            share: share.clone(),
        });
        assert_eq!(other.timeout(LIMIT).run().unwrap(), 3);
    });
}
