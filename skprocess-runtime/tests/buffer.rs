//! Zero-copy buffers across processes: in a process value, in pool items, both ways on a pipe,
//! a writable buffer handed over and frozen, and the paths that cannot carry one refusing it
//! clearly.

use skprocess::buffer::{Buffer, BufferError, BufferMut, Handover};
use skprocess::pipe::{Pipe, PipeError, Point};
use skprocess::pool::Pool;
use skprocess::prelude::*;

mod common;
use common::{LIMIT, within};

/// Sums the numbers it was given.
#[skprocess(runs = 1)]
struct Sum {
    numbers: Buffer<u64>,
}

#[skprocess]
impl Sum {
    fn __run__(&mut self) {}

    fn __result__(&mut self) -> u64 {
        self.numbers.iter().sum()
    }
}

#[test]
fn a_buffer_in_a_process_value_is_read_by_the_child() {
    within(LIMIT, || {
        let numbers: Vec<u64> = (1..=100_000).collect();
        let buffer = Buffer::from_slice(&numbers).unwrap();
        let process = Skprocess::new(Sum {
            numbers: buffer.clone(),
        });
        assert_eq!(process.timeout(LIMIT).run().unwrap(), 5_000_050_000);
        // The parent's copy is untouched and still readable.
        assert_eq!(buffer.len(), 100_000);
        assert_eq!(buffer[99_999], 100_000);
    });
}

/// Receives a read-only buffer and a writable one on its pipe; answers with the first one's
/// sum, and with the second one changed, frozen and sent back.
#[skprocess(runs = 1)]
struct Worker {
    pipe: Point,
}

#[skprocess]
impl Worker {
    fn __run__(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let bytes: Buffer = self.pipe.recv()?;
        self.pipe
            .send(&bytes.iter().map(|&b| u64::from(b)).sum::<u64>())?;
        let handover: Handover<f32> = self.pipe.recv()?;
        let mut writable = handover.open()?;
        for x in writable.iter_mut() {
            *x *= 2.0;
        }
        self.pipe.send(&writable.freeze()?)?;
        Ok(())
    }

    fn __result__(&mut self) {}
}

#[test]
fn buffers_travel_both_ways_on_a_pipe_and_a_writable_one_is_handed_over_once() {
    within(LIMIT, || {
        let (anchor, point) = Pipe::pair().unwrap();
        let process = Skprocess::new(Worker { pipe: point });
        process.start().unwrap();
        let bytes = Buffer::from_slice(&[7u8; 1 << 20]).unwrap();
        anchor.send(&bytes).unwrap();
        assert_eq!(anchor.recv::<u64>().unwrap(), 7 << 20);

        let mut writable = BufferMut::<f32>::zeroed(1000).unwrap();
        for (i, x) in writable.iter_mut().enumerate() {
            *x = i as f32;
        }
        let handover = writable.hand_over();
        anchor.send(&handover).unwrap();
        // Sent: it opens in the child, not here, and cannot be sent again.
        assert!(matches!(
            anchor.send(&handover),
            Err(PipeError::Encode(message)) if message.contains("handed over")
        ));
        assert!(matches!(handover.open(), Err(BufferError::HandedOver)));
        let doubled: Buffer<f32> = anchor.recv().unwrap();
        assert_eq!(doubled.len(), 1000);
        assert!(
            doubled
                .iter()
                .enumerate()
                .all(|(i, &x)| x == 2.0 * i as f32)
        );
        process.timeout(LIMIT).result().unwrap();
    });
}

fn length(buffer: Buffer) -> usize {
    buffer.len()
}

fn total(numbers: Buffer<u32>) -> u64 {
    numbers.iter().map(|&n| u64::from(n)).sum()
}

#[test]
fn buffers_reach_pool_tasks_in_every_chunk() {
    within(LIMIT, || {
        let pool = Pool::new(2).unwrap();
        // Enough items for several chunks per worker, each with its own buffer.
        let buffers: Vec<Buffer<u32>> = (0..300u32)
            .map(|i| Buffer::from_slice(&vec![i; 1 + i as usize]).unwrap())
            .collect();
        let expected: Vec<u64> = (0..300u64).map(|i| i * (i + 1)).collect();
        assert_eq!(pool.map(total, buffers.clone()).unwrap(), expected);
        // Lazily, one item at a time.
        let lazily: Vec<u64> = pool.imap(total, buffers).collect::<Result<_, _>>().unwrap();
        assert_eq!(lazily, expected);
    });
}

fn echo(buffer: Buffer) -> Buffer {
    buffer
}

/// Tells the parent a buffer.
#[skprocess(runs = 1)]
struct Teller;

#[skprocess]
impl Teller {
    fn __run__(&mut self, cx: &mut Context) -> Result<(), TellError> {
        let buffer = Buffer::from_slice(&[1u8, 2, 3]).expect("shared memory");
        match cx.tell(buffer) {
            Err(TellError::Encode(message)) if message.contains("travels in a process value") => {
                cx.tell("refused")
            }
            other => other,
        }
    }
}

#[test]
fn paths_that_cannot_carry_a_buffer_refuse_it_with_a_clear_error() {
    within(LIMIT, || {
        let buffer = Buffer::from_slice(&[1u8, 2, 3]).unwrap();
        // A pool item carries one; a task's result cannot.
        let pool = Pool::new(1).unwrap();
        assert_eq!(pool.map(length, vec![buffer.clone()]).unwrap(), vec![3]);
        let refused = pool.map(echo, vec![buffer.clone()]);
        let message = format!("{:?}", refused.unwrap_err());
        assert!(message.contains("travels in a process value"), "{message}");
        let process = Skprocess::new(Teller);
        process.start().unwrap();
        assert_eq!(process.listen_timeout::<String>(LIMIT).unwrap(), "refused");
        process.timeout(LIMIT).result().unwrap();
        let handle = Skprocess::new(Sum {
            numbers: Buffer::from_slice(&[1u64]).unwrap(),
        });
        handle.start().unwrap();
        match handle.tell(buffer) {
            Err(TellError::Encode(message)) => {
                assert!(message.contains("travels in a process value"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(handle.timeout(LIMIT).result().unwrap(), 1);
    });
}
