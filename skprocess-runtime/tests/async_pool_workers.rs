//! `AsyncPool::with_workers`: async tasks across worker processes, `max_concurrent` a bound
//! across all of them, crash and deadline semantics, and a stress of the reply routing. Needs
//! the `tokio` feature.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use skprocess::pool::{AsyncPool, AsyncPoolError, AsyncWorkerPool};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;
use common::{LIMIT, within};

async fn double(x: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(1)).await;
    x * 2
}

async fn add(a: u64, b: u64) -> u64 {
    tokio::task::yield_now().await;
    a + b
}

async fn panics(x: u64) -> u64 {
    tokio::task::yield_now().await;
    assert!(x != 3, "item three is cursed");
    x
}

async fn pid_after(ms: u64) -> u32 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    std::process::id()
}

/// Registers item `id` at the test's counting server, which holds it `hold_ms`, then, for
/// `abort_after_ms > 0`, aborts the worker process that long after registering.
async fn visit((addr, id, hold_ms, abort_after_ms): (String, u32, u64, u64)) -> u32 {
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("the server");
    let mut request = id.to_le_bytes().to_vec();
    request.extend_from_slice(&hold_ms.to_le_bytes());
    stream.write_all(&request).await.expect("sent");
    if abort_after_ms > 0 {
        tokio::time::sleep(Duration::from_millis(abort_after_ms)).await;
        std::process::abort();
    }
    let mut reply = [0u8; 1];
    stream
        .read_exact(&mut reply)
        .await
        .expect("the server's reply");
    id
}

/// [`visit`] without an await point: the whole visit blocks its thread, so a cancellation
/// cannot stop it before it ends.
async fn visit_blocking((addr, id, hold_ms): (String, u32, u64)) -> u32 {
    let mut stream = std::net::TcpStream::connect(&addr).expect("the server");
    let mut request = id.to_le_bytes().to_vec();
    request.extend_from_slice(&hold_ms.to_le_bytes());
    stream.write_all(&request).expect("sent");
    let mut reply = [0u8; 1];
    stream.read_exact(&mut reply).expect("the server's reply");
    id
}

/// An item whose decoding panics for 3 (in the worker), and whose encoding panics for 104 (the
/// worker's result for item 4).
#[derive(Debug)]
struct Cursed(u32);

impl skprocess::serde::Serialize for Cursed {
    fn serialize<S: skprocess::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        assert!(self.0 != 104, "cursed output");
        s.serialize_u32(self.0)
    }
}

impl<'de> skprocess::serde::Deserialize<'de> for Cursed {
    fn deserialize<D: skprocess::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u32::deserialize(d)?;
        assert!(n != 3, "cursed input");
        Ok(Cursed(n))
    }
}

async fn echo_cursed(item: Cursed) -> Cursed {
    tokio::task::yield_now().await;
    Cursed(item.0 + 100)
}

/// A loopback server that counts, per item id, how often it was visited, and how many visits
/// were held at once at most.
struct Counter {
    addr: String,
    seen: Arc<Mutex<HashMap<u32, usize>>>,
    most_at_once: Arc<AtomicUsize>,
}

impl Counter {
    fn start() -> Counter {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let most_at_once = Arc::new(AtomicUsize::new(0));
        let now = Arc::new(AtomicUsize::new(0));
        let (seen2, most2) = (Arc::clone(&seen), Arc::clone(&most_at_once));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (seen, most, now) = (Arc::clone(&seen2), Arc::clone(&most2), Arc::clone(&now));
                std::thread::spawn(move || {
                    stream.set_read_timeout(Some(LIMIT)).unwrap();
                    let mut request = [0u8; 12];
                    if stream.read_exact(&mut request).is_err() {
                        return;
                    }
                    let id = u32::from_le_bytes(request[..4].try_into().unwrap());
                    let hold = u64::from_le_bytes(request[4..].try_into().unwrap());
                    *seen.lock().unwrap().entry(id).or_insert(0) += 1;
                    let at_once = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(at_once, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(hold));
                    now.fetch_sub(1, Ordering::SeqCst);
                    let _ = stream.write_all(&[1]);
                });
            }
        });
        Counter {
            addr,
            seen,
            most_at_once,
        }
    }

    fn visits(&self) -> HashMap<u32, usize> {
        self.seen.lock().unwrap().clone()
    }
}

fn block_on<T: Send + 'static>(
    pool: &AsyncWorkerPool,
    f: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    let pool = pool.clone();
    within(LIMIT, move || pool.block_on(f))
}

#[test]
fn map_starmap_and_both_imaps_across_workers() {
    let pool = AsyncPool::with_workers(2, 16).unwrap();
    assert_eq!((pool.workers(), pool.max_concurrent()), (2, 16));
    let doubled = block_on(&pool, pool.map(double, 0..100u64)).unwrap();
    assert_eq!(doubled, (0..100).map(|x| x * 2).collect::<Vec<_>>());

    let sums = block_on(&pool, pool.starmap(add, (0..50u64).map(|x| (x, 1000))));
    assert_eq!(sums.unwrap(), (0..50).map(|x| x + 1000).collect::<Vec<_>>());

    let ordered = block_on(&pool, pool.imap(double, 0..40u64).collect::<Vec<_>>());
    let ordered: Vec<u64> = ordered.into_iter().map(Result::unwrap).collect();
    assert_eq!(ordered, (0..40).map(|x| x * 2).collect::<Vec<_>>());

    let unordered = block_on(
        &pool,
        pool.unordered_imap(double, 0..40u64).collect::<Vec<_>>(),
    );
    let mut unordered: Vec<u64> = unordered.into_iter().map(Result::unwrap).collect();
    unordered.sort_unstable();
    assert_eq!(unordered, (0..40).map(|x| x * 2).collect::<Vec<_>>());

    // A closure that captures nothing travels too.
    let tripled = block_on(&pool, pool.map(|x: u64| async move { x * 3 }, 0..10u64));
    assert_eq!(tripled.unwrap(), (0..10).map(|x| x * 3).collect::<Vec<_>>());
}

#[test]
fn max_concurrent_bounds_the_tasks_in_flight_across_all_workers() {
    let counter = Counter::start();
    let pool = AsyncPool::with_workers(3, 5).unwrap();
    let items: Vec<_> = (0..40u32)
        .map(|id| (counter.addr.clone(), id, 30u64, 0u64))
        .collect();
    let ids = block_on(&pool, pool.map(visit, items)).unwrap();
    assert_eq!(ids, (0..40).collect::<Vec<_>>());
    let most = counter.most_at_once.load(Ordering::SeqCst);
    assert!(
        most <= 5,
        "{most} tasks held at once, with max_concurrent 5"
    );
    assert!(most >= 2, "the tasks never overlapped ({most} at once)");
    assert!(counter.visits().values().all(|&n| n == 1));
}

#[test]
fn a_worker_crash_fails_every_task_in_flight_on_it_and_runs_none_again() {
    let counter = Counter::start();
    let pool = AsyncPool::with_workers(1, 8).unwrap();
    // Item 0 aborts the worker 300 ms after it registered; the others are held 60 s at the
    // server, so all eight are in flight on the one worker when it dies.
    let items: Vec<_> = (0..8u32)
        .map(|id| {
            let abort = if id == 0 { 300 } else { 0 };
            (counter.addr.clone(), id, 60_000u64, abort)
        })
        .collect();
    let results = block_on(&pool, pool.unordered_imap(visit, items).collect::<Vec<_>>());
    let mut crashed: Vec<usize> = results
        .iter()
        .map(|r| match r {
            Err(AsyncPoolError::Crashed { index, message }) => {
                assert!(message.contains("died"), "{message}");
                *index
            }
            other => panic!("expected a crash, got {other:?}"),
        })
        .collect();
    crashed.sort_unstable();
    assert_eq!(crashed, (0..8).collect::<Vec<_>>());
    // A replacement worker took over; nothing was sent again.
    let doubled = block_on(&pool, pool.map(double, 0..20u64)).unwrap();
    assert_eq!(doubled, (0..20).map(|x| x * 2).collect::<Vec<_>>());
    let visits = counter.visits();
    assert_eq!(visits.len(), 8, "{visits:?}");
    assert!(
        visits.values().all(|&n| n == 1),
        "an item ran twice: {visits:?}"
    );
}

#[test]
fn a_deadline_drops_the_call_without_killing_the_shared_worker() {
    let pool = AsyncPool::with_workers(1, 4).unwrap();
    let before = block_on(&pool, pool.map(pid_after, [0u64])).unwrap()[0];
    let slow = pool.timeout(Duration::from_millis(300));
    match block_on(&pool, slow.map(pid_after, [60_000u64; 4])) {
        Err(AsyncPoolError::Timeout { .. }) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    // The same worker, and its four permits back (the cancelled tasks answered): four more
    // tasks at once finish.
    let after = block_on(&pool, pool.map(pid_after, [10u64; 4])).unwrap();
    assert!(
        after.iter().all(|&pid| pid == before),
        "{before} vs {after:?}"
    );
}

#[test]
fn a_panicking_task_fails_its_item_and_the_pool_carries_on() {
    let pool = AsyncPool::with_workers(2, 4).unwrap();
    match block_on(&pool, pool.map(panics, 0..8u64)) {
        Err(AsyncPoolError::Panicked { index, message }) => {
            assert_eq!(index, 3);
            assert!(message.contains("cursed"), "{message}");
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    let results = block_on(&pool, pool.imap(panics, 0..6u64).collect::<Vec<_>>());
    assert!(matches!(
        results[3],
        Err(AsyncPoolError::Panicked { index: 3, .. })
    ));
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 5);
}

#[test]
fn many_small_tasks_from_concurrent_calls_all_arrive_once() {
    let rounds: u64 = std::env::var("SKPROCESS_STRESS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500)
        * 4;
    // More workers than CPUs, and two calls at once sharing them.
    let pool = AsyncPool::with_workers(3, 64).unwrap();
    let calls: Vec<_> = (0..2u64)
        .map(|call| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let items = (0..rounds).map(move |x| (x, call * 1_000_000));
                let sums = pool.block_on(pool.starmap(add, items)).unwrap();
                assert_eq!(
                    sums,
                    (0..rounds)
                        .map(|x| x + call * 1_000_000)
                        .collect::<Vec<_>>()
                );
            })
        })
        .collect();
    within(LIMIT * 2, move || {
        for call in calls {
            call.join().unwrap();
        }
    });
}

#[test]
fn a_panic_while_decoding_an_item_or_encoding_a_result_fails_that_item() {
    let pool = AsyncPool::with_workers(1, 4).unwrap();
    let results = block_on(
        &pool,
        pool.imap(echo_cursed, (0..6).map(Cursed))
            .collect::<Vec<_>>(),
    );
    for (index, result) in results.iter().enumerate() {
        match (index, result) {
            (3, Err(AsyncPoolError::Panicked { index: 3, message })) => {
                assert!(message.contains("cursed input"), "{message}")
            }
            (4, Err(AsyncPoolError::Panicked { index: 4, message })) => {
                assert!(message.contains("cursed output"), "{message}")
            }
            (_, Ok(Cursed(n))) => assert_eq!(*n as usize, index + 100),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn a_cancelled_task_that_never_awaits_keeps_its_place_until_it_ends() {
    let counter = Counter::start();
    let pool = AsyncPool::with_workers(1, 1).unwrap();
    let slow = pool.timeout(Duration::from_millis(200));
    let blocked = [(counter.addr.clone(), 0u32, 800u64)];
    match block_on(&pool, slow.map(visit_blocking, blocked)) {
        Err(AsyncPoolError::Timeout { .. }) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    // The next task waits for the place the cancelled one still holds: never two at once.
    let next = [(counter.addr.clone(), 1u32, 50u64, 0u64)];
    assert_eq!(block_on(&pool, pool.map(visit, next)).unwrap(), [1]);
    assert_eq!(counter.most_at_once.load(Ordering::SeqCst), 1);
}

async fn ballast(bytes: Vec<u8>) -> usize {
    bytes.len()
}

#[test]
fn a_deadline_holds_while_a_worker_is_paused_with_a_full_channel() {
    let pool = AsyncPool::with_workers(1, 8).unwrap();
    let worker = pool.pids()[0];
    // SAFETY: kill(2) on our own worker.
    unsafe { libc::kill(worker as i32, libc::SIGSTOP) };
    // Eight items of 100 KiB: more than the channel holds while nobody reads it.
    let slow = pool.timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let outcome = block_on(&pool, slow.map(ballast, vec![vec![7u8; 100 << 10]; 8]));
    let took = started.elapsed();
    // SAFETY: as above.
    unsafe { libc::kill(worker as i32, libc::SIGCONT) };
    assert!(
        matches!(outcome, Err(AsyncPoolError::Timeout { .. })),
        "{outcome:?}"
    );
    // The deadline, not the paused worker, ended the call (well before the 60 s a send may
    // wait for room).
    assert!(took < Duration::from_secs(20), "the call took {took:?}");
    // Resumed, the worker takes the queued tasks, answers their cancellations, and serves.
    let lengths = block_on(&pool, pool.map(ballast, vec![vec![1u8; 10]; 16])).unwrap();
    assert_eq!(lengths, [10; 16]);
}

/// Dropping the pool stops its workers.
#[test]
fn dropping_the_pool_ends_its_workers() {
    let pool = AsyncPool::with_workers(2, 4).unwrap();
    let pids = block_on(&pool, pool.map(pid_after, [20u64; 8])).unwrap();
    drop(pool);
    let deadline = std::time::Instant::now() + LIMIT;
    for pid in pids {
        while std::path::Path::new(&format!("/proc/{pid}/status")).exists() && !is_zombie(pid) {
            assert!(
                std::time::Instant::now() < deadline,
                "worker {pid} still runs"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let after = stat.rsplit_once(')')?.1.trim_start().to_owned();
            after.chars().next()
        })
        == Some('Z')
}
