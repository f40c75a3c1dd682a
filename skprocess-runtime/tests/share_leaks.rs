//! Nothing is left behind by a Share, a pipe, a zero-copy buffer or the shared-memory channels
//! under them and under tell/listen: after Shares, their clients, a pool, pipes (with messages larger than a
//! ring, received synchronously and asynchronously) and processes that tell and listen have come
//! and gone, this process has no more memfd mappings, no more open descriptors and the
//! system no more shared memory (`Shmem` in `/proc/meminfo`) than before. A test binary of its own: no
//! other test may open descriptors or map memory while it counts.

use std::time::{Duration, Instant};

use skprocess::pool::Pool;
use skprocess::prelude::*;

mod common;
use common::{LIMIT, within};
#[path = "common/tally.rs"]
mod tally;
use tally::Tally;

/// Uses both kinds of shared value from a child.
#[skprocess(runs = 3)]
struct Client {
    share: Share,
}

#[skprocess]
impl Client {
    fn __run__(&mut self) -> Result<(), ShareError> {
        self.share.get::<Tally>("tally")?.add(1)?;
        self.share.get::<u64>("hits")?.fetch_add(1)?;
        Ok(())
    }

    fn __result__(&mut self) {}
}

/// Doubles what arrives on its pipe, once, then sends back a message larger than the ring
/// (every page of it is touched), and tells the parent the same.
#[skprocess(runs = 1)]
struct PipeDoubler {
    pipe: skprocess::pipe::Point,
}

#[skprocess]
impl PipeDoubler {
    fn __run__(
        &mut self,
        cx: &mut Context,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let n: u64 = self.pipe.recv()?;
        self.pipe.send(&(n * 2))?;
        self.pipe.send(&vec![n as u8; BIG])?;
        let told: u64 = cx.listen()?;
        cx.tell(vec![told as u8; BIG])?;
        let buffer: skprocess::buffer::Buffer = self.pipe.recv()?;
        self.pipe.send(&buffer.len())?;
        Ok(())
    }

    fn __result__(&mut self) {}
}

/// Larger than a channel's ring (256 KiB).
const BIG: usize = 300 * 1024;

fn touch(share: Share) -> u64 {
    share.get::<u64>("hits").unwrap().fetch_add(1).unwrap()
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Counts {
    memfd_mappings: usize,
    descriptors: usize,
    shmem_kib: u64,
}

fn counts() -> Counts {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let shmem_kib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("Shmem:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("Shmem in /proc/meminfo");
    Counts {
        memfd_mappings: maps.lines().filter(|l| l.contains("/memfd:")).count(),
        descriptors: std::fs::read_dir("/proc/self/fd").unwrap().count(),
        shmem_kib,
    }
}

const ROUNDS: usize = 20;

#[test]
fn no_mapping_descriptor_or_shared_memory_is_left_after_shares_and_their_processes_end() {
    within(LIMIT * 2, || {
        // Warm up what lives as long as the process (the hub, its threads), then measure.
        let warm_up = Share::new().unwrap();
        warm_up.insert("tally", Tally::default()).unwrap();
        warm_up.insert("hits", 0_u64).unwrap();
        Skprocess::new(Client {
            share: warm_up.clone(),
        })
        .timeout(LIMIT)
        .run()
        .unwrap();
        drop(warm_up);
        pipe_round(0); // the async receive starts the reactor thread, which stays
        let before = settled(None);

        for round in 0..ROUNDS {
            let share = Share::new().unwrap();
            share.insert("tally", Tally::default()).unwrap();
            let hits = share.insert("hits", 0_u64).unwrap();
            // Touch many slots so that a leaked region would show in Shmem.
            for i in 0..600 {
                share.insert(&format!("slot{i}"), i as i64).unwrap();
            }
            Skprocess::new(Client {
                share: share.clone(),
            })
            .timeout(LIMIT)
            .run()
            .unwrap();
            let pool = Pool::new(2).unwrap();
            pool.map(touch, vec![share.clone(); 4]).unwrap();
            assert_eq!(hits.load().unwrap(), 7, "round {round}");
            drop(pool);
            drop(hits);
            drop(share);
            pipe_round(round);
        }

        let after = settled(Some(before));
        println!("before {before:?}, after {after:?}");
        assert_eq!(after.memfd_mappings, before.memfd_mappings);
        assert_eq!(after.descriptors, before.descriptors);
        // Each round touched 600 slots (16 bytes each, about 10 KiB of pages) in its own
        // region and every page of two rings (256 KiB each): a leak of every region would be
        // 10 MiB or more. Other processes on the machine move Shmem a little, so allow 100 KiB.
        let leaked = after.shmem_kib.saturating_sub(before.shmem_kib);
        assert!(leaked < 100, "Shmem grew by {leaked} KiB");
    });
}

/// A pipe to a child, used (a message larger than the ring each way, one received
/// asynchronously) and dropped.
fn pipe_round(round: usize) {
    let (anchor, point) = Pipe::pair().unwrap();
    let doubler = Skprocess::new(PipeDoubler { pipe: point });
    doubler.start().unwrap();
    anchor.send(&(round as u64)).unwrap();
    assert_eq!(anchor.recv::<u64>().unwrap(), 2 * round as u64);
    let big: Vec<u8> = futures::executor::block_on(anchor.recv_async()).unwrap();
    assert_eq!(big, vec![round as u8; BIG]);
    doubler.tell(round as u64).unwrap();
    let told: Vec<u8> = doubler.listen_timeout(LIMIT).unwrap();
    assert_eq!(told, vec![round as u8; BIG]);
    // A zero-copy buffer of 1 MiB, every page touched: a leaked one would show in Shmem.
    let buffer = skprocess::buffer::Buffer::from_slice(&vec![1u8; 1 << 20]).unwrap();
    anchor.send(&buffer).unwrap();
    assert_eq!(anchor.recv::<usize>().unwrap(), 1 << 20);
    drop(buffer);
    doubler.timeout(LIMIT).result().unwrap();
    drop(anchor);
}

/// The counts once they stop changing (connection threads close their descriptors as they
/// notice the end of their connection); with `target`, as soon as they are back to it.
fn settled(target: Option<Counts>) -> Counts {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = counts();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = counts();
        let at_target = target.is_some_and(|t| {
            now.memfd_mappings <= t.memfd_mappings && now.descriptors <= t.descriptors
        });
        let steady = target.is_none()
            && now.memfd_mappings == last.memfd_mappings
            && now.descriptors == last.descriptors;
        if at_target || steady || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}
