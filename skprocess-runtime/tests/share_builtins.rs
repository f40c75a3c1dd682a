//! The ready-made shared objects across processes: the map's batch operations, the queue's
//! producers and consumers with task tracking, nothing handed to a consumer that died while
//! waiting, permits given back when their holder dies, the barrier, results and progress.

use std::time::Duration;

use skprocess::pool::Pool;
use skprocess::prelude::*;
use skprocess::share::{
    Barrier, Progress, Queue, Semaphore, SharedList, SharedMap, SharedResults, WaitError,
};

mod common;
use common::{LIMIT, within};

const ITEMS: u64 = 500;

/// Puts `ITEMS` numbers starting at `first`, or takes and marks done `count` items.
#[skprocess(runs = 1)]
struct QueueUser {
    queue: Shared<Queue<u64>>,
    first: u64,
    consume: Option<u64>,
}

#[skprocess]
impl QueueUser {
    fn __run__(&mut self) {}

    fn __result__(&mut self) -> Result<Vec<u64>, String> {
        let error = |e: ShareError| e.to_string();
        let mut taken = Vec::new();
        match self.consume {
            None => {
                for i in self.first..self.first + ITEMS {
                    self.queue
                        .put(i, Some(LIMIT))
                        .map_err(error)?
                        .map_err(|e| e.to_string())?;
                }
            }
            Some(count) => {
                for _ in 0..count {
                    let item = self
                        .queue
                        .get(Some(LIMIT))
                        .map_err(error)?
                        .map_err(|e| e.to_string())?;
                    taken.push(item);
                    self.queue
                        .task_done()
                        .map_err(error)?
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(taken)
    }
}

#[test]
fn producers_and_consumers_pass_every_item_exactly_once_and_join_waits_for_them() {
    within(LIMIT * 2, || {
        let share = Share::new().unwrap();
        let queue = share.insert("queue", Queue::<u64>::new(16)).unwrap();
        assert_eq!(
            queue.get(Some(Duration::ZERO)).unwrap(),
            Err(WaitError::Timeout)
        );
        let start = |first: u64, consume: Option<u64>| {
            let process = Skprocess::new(QueueUser {
                queue: queue.clone(),
                first,
                consume,
            });
            process.start().unwrap();
            process
        };
        let consumers = [start(0, Some(ITEMS)), start(0, Some(ITEMS))];
        let producers = [start(0, None), start(ITEMS, None)];
        for producer in producers {
            assert!(producer.timeout(LIMIT).result().unwrap().is_empty());
        }
        assert_eq!(queue.join(Some(LIMIT)).unwrap(), Ok(()));
        let mut all: Vec<u64> = Vec::new();
        for consumer in consumers {
            all.extend(consumer.timeout(LIMIT).result().unwrap());
        }
        all.sort_unstable();
        assert_eq!(all, (0..2 * ITEMS).collect::<Vec<_>>());
        assert!(queue.is_empty().unwrap());
        assert_eq!(queue.unfinished().unwrap(), 0);
        assert!(matches!(
            queue.task_done().unwrap(),
            Err(WaitError::Misuse(_))
        ));
        // A full queue refuses at once with a zero timeout.
        for i in 0..16 {
            queue.put(i, None).unwrap().unwrap();
        }
        assert_eq!(
            queue.put(99, Some(Duration::ZERO)).unwrap(),
            Err(WaitError::Timeout)
        );
    });
}

/// Blocks on a queue (or a semaphore) and is killed there.
#[skprocess(runs = 1)]
struct Blocked {
    share: Share,
    semaphore: bool,
}

#[skprocess]
impl Blocked {
    fn __run__(&mut self) -> Result<(), ShareError> {
        let ready = self.share.get::<u64>("ready")?;
        if self.semaphore {
            let permit = self.share.get::<Semaphore>("permit")?;
            permit.acquire(None)?.map_err(|_| ShareError::Stopped)?;
            ready.fetch_add(1)?;
            std::thread::sleep(Duration::from_secs(60)); // holds it until killed
        } else {
            ready.fetch_add(1)?;
            let _ = self.share.get::<Queue<u64>>("queue")?.get(None)?;
        }
        Ok(())
    }

    fn __result__(&mut self) {}
}

fn killed_while_blocked(share: &Share, semaphore: bool) {
    let ready = share.get::<u64>("ready").unwrap();
    ready.store(0).unwrap();
    let process = Skprocess::new(Blocked {
        share: share.clone(),
        semaphore,
    });
    process.start().unwrap();
    while ready.load().unwrap() == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200)); // into the blocking call
    process.kill().unwrap();
    let _ = process.wait();
}

#[test]
fn a_consumer_that_dies_while_waiting_takes_nothing() {
    within(LIMIT, || {
        let share = Share::new().unwrap();
        share.insert("ready", 0_u64).unwrap();
        let queue = share.insert("queue", Queue::<u64>::new(4)).unwrap();
        killed_while_blocked(&share, false);
        queue.put(7, None).unwrap().unwrap();
        // The dead consumer's waiting call notices its caller is gone and takes nothing.
        assert_eq!(queue.get(Some(LIMIT)).unwrap(), Ok(7));
    });
}

#[test]
fn permits_of_a_client_that_dies_are_given_back() {
    within(LIMIT, || {
        let share = Share::new().unwrap();
        share.insert("ready", 0_u64).unwrap();
        let permit = share.insert("permit", Semaphore::new(1)).unwrap();
        killed_while_blocked(&share, true);
        assert_eq!(permit.acquire(Some(LIMIT)).unwrap(), Ok(()));
        assert_eq!(permit.available().unwrap(), 0);
        assert_eq!(permit.release().unwrap(), Ok(()));
        assert!(matches!(
            permit.release().unwrap(),
            Err(WaitError::Misuse(_))
        ));
        assert_eq!(permit.available().unwrap(), 1);
    });
}

/// Waits at a barrier.
#[skprocess(runs = 1)]
struct AtBarrier {
    barrier: Shared<Barrier>,
}

#[skprocess]
impl AtBarrier {
    fn __run__(&mut self) {}

    fn __result__(&mut self) -> Result<bool, String> {
        match self.barrier.wait(Some(LIMIT)) {
            Ok(Ok(leader)) => Ok(leader),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }
}

fn record(results: Shared<SharedResults<String>>, slot: usize) -> usize {
    results
        .set(slot, format!("worker {slot}"))
        .unwrap()
        .unwrap();
    let progress = results.share().get::<Progress>("progress").unwrap();
    progress.increment(1).unwrap() as usize
}

fn fill(map: Shared<SharedMap<String, u64>>, k: u64) -> usize {
    map.update((0..10).map(|i| (format!("{k}-{i}"), i)).collect())
        .unwrap();
    let list = map.share().get::<SharedList<u64>>("list").unwrap();
    list.extend(vec![k; 3]).unwrap()
}

#[test]
fn barrier_results_progress_map_and_list_across_a_pool() {
    within(LIMIT, || {
        let share = Share::new().unwrap();
        let pool = Pool::new(3).unwrap();

        let barrier = share.insert("barrier", Barrier::new(3)).unwrap();
        // Three processes at once (a pool might run the items one after another).
        let waiting: Vec<_> = (0..3)
            .map(|_| {
                let p = Skprocess::new(AtBarrier {
                    barrier: barrier.clone(),
                });
                p.start().unwrap();
                p
            })
            .collect();
        let leaders: Vec<bool> = waiting
            .into_iter()
            .map(|p| p.timeout(LIMIT).result().unwrap())
            .collect();
        assert_eq!(leaders.iter().filter(|&&leader| leader).count(), 1);
        assert_eq!(
            barrier.wait(Some(Duration::from_millis(10))).unwrap(),
            Err(WaitError::Timeout)
        );

        let results = share
            .insert("results", SharedResults::<String>::new(4))
            .unwrap();
        let progress = share.insert("progress", Progress::new(4)).unwrap();
        let pairs: Vec<_> = (0..4).map(|slot| (results.clone(), slot)).collect();
        pool.star().map(record, pairs).unwrap();
        assert_eq!(
            results.collect().unwrap(),
            (0..4)
                .map(|s| Some(format!("worker {s}")))
                .collect::<Vec<_>>()
        );
        assert!(results.set(9, "x".into()).unwrap().is_err());
        assert!(progress.is_complete().unwrap());
        assert_eq!(progress.percent().unwrap(), 100.0);

        let map = share
            .insert("map", SharedMap::<String, u64>::new())
            .unwrap();
        share.insert("list", SharedList::<u64>::new()).unwrap();
        let pairs: Vec<_> = (0..3).map(|k| (map.clone(), k)).collect();
        pool.star().map(fill, pairs).unwrap();
        assert_eq!(map.len().unwrap(), 30);
        assert_eq!(
            map.get_many(vec!["0-1".into(), "2-9".into(), "nope".into()])
                .unwrap(),
            [Some(1), Some(9), None]
        );
        let list = share.get::<SharedList<u64>>("list").unwrap();
        let mut items = list.to_vec().unwrap();
        items.sort_unstable();
        assert_eq!(items, [0, 0, 0, 1, 1, 1, 2, 2, 2]);
        assert_eq!(list.drain().unwrap().len(), 9);
        assert!(list.is_empty().unwrap());
    });
}
