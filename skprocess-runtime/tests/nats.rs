//! The NATS JetStream backend against a real `nats-server` (2.9, Debian's), with worker hosts in
//! network namespaces of their own (see `common/nats.rs`): the calls of a pool, a worker host
//! killed mid-map, an item that kills its workers, deadlines, what cannot cross hosts, a worker
//! built from other code, the server going away, credentials and TLS.

mod common;
#[path = "common/nats.rs"]
mod harness;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use skprocess::nats::{NatsOptions, NatsPool, RemoteError};
use skprocess::pool::{PoolError, TaskError};
use skprocess::{ProcessError, skprocess};

use common::{LIMIT, within};
use harness::{Host, NatsServer};

fn square(x: u64) -> u64 {
    x * x
}

fn add(a: u64, b: u64) -> u64 {
    a + b
}

fn parse(text: String) -> Result<u64, std::num::ParseIntError> {
    text.parse()
}

fn panics_on_3(x: u64) -> u64 {
    assert!(x != 3, "three is not welcome");
    x
}

/// Which host ran the item, and the item back.
fn where_am_i(x: u64) -> (String, u64) {
    std::thread::sleep(Duration::from_millis(10));
    (std::env::var("SKP_TEST_HOST").unwrap_or_default(), x)
}

fn slow_square(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(20));
    x * x
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn aborts_on_7(x: u64) -> u64 {
    if x == 7 {
        std::process::abort();
    }
    x
}

fn pipe_end(point: skprocess::pipe::Point) -> u64 {
    drop(point);
    0
}

fn buffer_len(buffer: skprocess::buffer::Buffer<u8>) -> usize {
    buffer.len()
}

fn share_and_number(share: skprocess::share::Share, x: u64) -> u64 {
    drop(share);
    x
}

fn panics_loudly(x: u64) -> u64 {
    panic!("{x}: {}", "y".repeat(8192));
}

fn kills_its_host_on_0(x: u64) -> u64 {
    if x == 0 { kills_its_host(x) } else { x }
}

/// Kills the worker host it runs in (its local process's parent): an item that takes its
/// whole host down at every delivery.
fn kills_its_host(x: u64) -> u64 {
    // SAFETY: kill has no memory effects; the parent is the worker host.
    unsafe { libc::kill(libc::getppid(), libc::SIGKILL) };
    std::thread::sleep(Duration::from_secs(5));
    x
}

/// A process type as a task: its whole lifecycle runs in a worker.
#[skprocess(runs = 3)]
struct Tripler {
    value: u64,
    runs: u64,
}

#[skprocess]
impl Tripler {
    fn new(value: u64) -> Self {
        Tripler { value, runs: 0 }
    }

    fn __run__(&mut self) {
        self.runs += 1;
    }

    fn __result__(&mut self) -> u64 {
        self.value * self.runs
    }

    fn __error__(&mut self, error: ProcessError) -> Result<u64, ProcessError> {
        Err(error)
    }
}

skprocess::remote_tasks!(
    square,
    add,
    parse,
    panics_on_3,
    where_am_i,
    slow_square,
    sleep_ms,
    aborts_on_7,
    pipe_end,
    buffer_len,
    share_and_number,
    kills_its_host,
    kills_its_host_on_0,
    panics_loudly,
    Tripler::new,
);

/// A pool on `server`, as seen from this machine, with `configure` applied.
fn pool_on(
    server: &NatsServer,
    configure: impl FnOnce(skprocess::nats::NatsPoolBuilder) -> skprocess::nats::NatsPoolBuilder,
) -> NatsPool {
    configure(NatsPool::builder(
        NatsOptions::new(server.url()).pool("test"),
    ))
    .build()
    .unwrap_or_else(|error| {
        panic!(
            "a pool: {}\n{}",
            skprocess::ErrorChain(&error),
            server.log()
        )
    })
}

const POOL_ENV: (&str, &str) = (skprocess::nats::POOL_ENV, "test");

#[test]
fn every_kind_of_call_runs_across_two_hosts() {
    let server = NatsServer::start();
    let mut hosts = [Host::new("alpha"), Host::new("beta")];
    for host in &mut hosts {
        host.start_worker(&server, 2, &[POOL_ENV]);
    }
    let pool = pool_on(&server, |builder| builder);
    within(LIMIT, move || {
        assert_eq!(pool.map(square, 1..=5).unwrap(), vec![1, 4, 9, 16, 25]);
        assert_eq!(
            pool.star().map(add, [(1, 2), (30, 40)]).unwrap(),
            vec![3, 70]
        );
        let mut unordered = pool.unordered_map(square, 0..100u64).unwrap();
        unordered.sort_unstable();
        assert_eq!(unordered, (0..100u64).map(|x| x * x).collect::<Vec<_>>());

        // imap: in order, lazily, over an iterator of unknown size.
        let lazy = (0..300u64).filter(|x| x % 3 == 0);
        let squares: Vec<u64> = pool
            .chunk_size(7)
            .imap(square, lazy)
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            squares,
            (0..300u64)
                .filter(|x| x % 3 == 0)
                .map(|x| x * x)
                .collect::<Vec<_>>()
        );
        let mut arrived: Vec<u64> = pool
            .unordered_imap(slow_square, 0..40u64)
            .map(Result::unwrap)
            .collect();
        arrived.sort_unstable();
        assert_eq!(arrived, (0..40u64).map(|x| x * x).collect::<Vec<_>>());

        // fallible: an Err fails its item with its message; the others run.
        let error = pool
            .fallible()
            .map(parse, ["1".to_owned(), "x".to_owned(), "3".to_owned()])
            .unwrap_err();
        assert_eq!(error.index(), Some(1));
        let PoolError::Task {
            error: TaskError::Failed(failure),
            ..
        } = &error
        else {
            panic!("expected a failed item: {error:?}");
        };
        assert!(failure.message().contains("invalid digit"), "{failure:?}");
        // A panic names its item.
        let results: Vec<_> = pool.imap(panics_on_3, 0..6u64).collect();
        assert!(matches!(
            &results[3],
            Err(PoolError::Task { index: 3, error: TaskError::Failed(failure) })
                if failure.message().contains("three is not welcome")
        ));
        assert_eq!(results.iter().filter(|result| result.is_ok()).count(), 5);

        // Process types as tasks: the whole lifecycle runs in a worker.
        assert_eq!(
            pool.processes().map(Tripler::new, [1, 2, 5]).unwrap(),
            vec![3, 6, 15]
        );

        // Progress: reported as results arrive, ending at the total.
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        pool.chunk_size(10)
            .progress(move |progress| record.lock().unwrap().push(progress.done))
            .map(square, 0..100u64)
            .unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.last(), Some(&100));
        assert!(seen.windows(2).all(|pair| pair[0] <= pair[1]), "{seen:?}");

        // Both hosts served.
        let ran_on: HashSet<String> = pool
            .chunk_size(2)
            .map(where_am_i, 0..200u64)
            .unwrap()
            .into_iter()
            .map(|(host, _)| host)
            .collect();
        assert_eq!(
            ran_on,
            HashSet::from(["alpha".to_owned(), "beta".to_owned()])
        );
    });
    for host in &mut hosts {
        assert!(host.alive(), "{} died:\n{}", host.name, host.log());
    }
}

#[test]
fn a_worker_host_killed_mid_map_loses_no_item_and_reports_each_once() {
    let server = NatsServer::start();
    let mut doomed = Host::new("doomed");
    let mut survivor = Host::new("survivor");
    doomed.start_worker(&server, 2, &[POOL_ENV]);
    survivor.start_worker(&server, 2, &[POOL_ENV]);
    // A short ack_wait: the dead host's chunks go to the survivor within seconds.
    let pool = pool_on(&server, |builder| builder.ack_wait(Duration::from_secs(2)));
    let items = 300u64;
    let (results, killed_after, doomed) = within(LIMIT * 2, move || {
        let mut results = BTreeMap::new();
        let mut killed_after = None;
        for result in pool.chunk_size(3).unordered_imap(where_am_i, 0..items) {
            let (host, x) = result.unwrap();
            assert!(
                results.insert(x, host).is_none(),
                "item {x} was reported twice"
            );
            if results.len() == 60 && killed_after.is_none() {
                doomed.kill();
                killed_after = Some(results.len());
            }
        }
        (results, killed_after, doomed)
    });
    drop(doomed);
    assert_eq!(killed_after, Some(60));
    assert_eq!(results.len() as u64, items, "items were lost");
    assert!(results.keys().copied().eq(0..items));
    let by_survivor = results.values().filter(|host| *host == "survivor").count();
    assert!(
        by_survivor > 240 - 60,
        "the survivor ran {by_survivor} items"
    );
    assert!(survivor.alive(), "{}", survivor.log());
}

#[test]
fn an_item_that_kills_its_process_fails_after_max_deliver_naming_it() {
    let server = NatsServer::start();
    let mut host = Host::new("solo");
    host.start_worker(&server, 2, &[POOL_ENV]);
    let pool = pool_on(&server, |builder| builder.max_deliver(2));
    assert_eq!(pool.max_deliver(), 2);
    let results: Vec<_> = within(LIMIT, move || {
        pool.chunk_size(4).imap(aborts_on_7, 0..20u64).collect()
    });
    for (index, result) in results.iter().enumerate() {
        if index == 7 {
            assert!(
                matches!(
                    result,
                    Err(PoolError::Task {
                        index: 7,
                        error: TaskError::Poisoned { deliveries: 2 }
                    })
                ),
                "{result:?}"
            );
        } else {
            assert_eq!(result.as_ref().ok(), Some(&(index as u64)));
        }
    }
    // The crashes cost local processes, not the worker.
    assert!(host.alive(), "{}", host.log());
    assert_eq!(
        host.log().matches("item 7 of call").count(),
        2,
        "{}",
        host.log()
    );
}

#[test]
fn an_item_that_kills_its_host_at_every_delivery_fails_after_max_deliver() {
    let server = NatsServer::start();
    let mut host = Host::new("fragile");
    host.start_worker(&server, 1, &[POOL_ENV]);
    let pool = pool_on(&server, |builder| {
        builder.max_deliver(2).ack_wait(Duration::from_secs(1))
    });
    let call = std::thread::spawn(move || pool.map(kills_its_host, [0u64]));
    // Each delivery takes the host down; a new one comes up after each death (a machine that
    // reboots). The delivery past the limit is reported without being run.
    let deadline = Instant::now() + LIMIT;
    let mut deaths = 0;
    while !call.is_finished() {
        assert!(
            Instant::now() < deadline,
            "no answer within {LIMIT:?}: a hang"
        );
        if !host.alive() {
            deaths += 1;
            host.kill();
            host.start_worker(&server, 1, &[POOL_ENV]);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let error = call.join().unwrap().unwrap_err();
    assert!(
        matches!(
            error,
            PoolError::Task {
                index: 0,
                error: TaskError::Poisoned { deliveries: 2 }
            }
        ),
        "{error:?}"
    );
    assert_eq!(deaths, 2);
}

/// Publishes `payload` on `subject` with a raw client, as a buggy or hostile peer would.
fn publish_raw(url: &str, subject: String, payload: &'static [u8]) {
    let url = url.to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let client = async_nats::connect(url).await.unwrap();
        client.publish(subject, payload.into()).await.unwrap();
        client.flush().await.unwrap();
    });
}

#[test]
fn bytes_that_are_not_ours_fail_the_call_they_name_and_nothing_else() {
    let server = NatsServer::start();
    let mut host = Host::new("solo");
    host.start_worker(&server, 1, &[POOL_ENV]);
    let pool = pool_on(&server, |builder| builder);
    // Garbage as a chunk: the worker drops it for good and serves on.
    publish_raw(
        &server.url(),
        "skp.test.work.00ff.1".to_owned(),
        b"\xff\xff not a chunk",
    );
    assert_eq!(
        within(LIMIT, {
            let pool = pool.clone();
            move || pool.map(square, [2, 3]).unwrap()
        }),
        vec![4, 9]
    );
    // Garbage as a chunk of a call in progress: the worker tells that call.
    let subject = format!("skp.test.work.{}.2", pool.id());
    let call = std::thread::spawn({
        let pool = pool.clone();
        move || pool.chunk_size(1).map(sleep_ms, vec![300u64; 20])
    });
    std::thread::sleep(Duration::from_millis(200));
    publish_raw(&server.url(), subject, b"\x07 not a chunk");
    let error = within(LIMIT, move || call.join().unwrap()).unwrap_err();
    assert!(
        matches!(&error, PoolError::Remote(RemoteError::Unreadable { reason, .. }) if reason.contains("protocol")),
        "{error:?}"
    );
    // Garbage as a result of a call in progress: that call ends with a typed error.
    let subject = format!("skp.test.results.{}.3", pool.id());
    let call = std::thread::spawn({
        let pool = pool.clone();
        move || pool.chunk_size(1).map(sleep_ms, vec![300u64; 20])
    });
    std::thread::sleep(Duration::from_millis(200));
    publish_raw(&server.url(), subject, b"\x07 not a result");
    let error = within(LIMIT, move || call.join().unwrap()).unwrap_err();
    assert!(
        matches!(
            error,
            PoolError::Remote(RemoteError::MalformedResult { .. })
        ),
        "{error:?}"
    );
    // The pool serves the next call.
    assert_eq!(
        within(LIMIT, move || pool.map(square, [5]).unwrap()),
        vec![25]
    );
    assert!(host.alive(), "{}", host.log());
}

#[test]
fn an_item_that_kills_its_host_fails_alone_and_its_chunk_runs() {
    let server = NatsServer::start();
    let mut host = Host::new("fragile");
    host.start_worker(&server, 1, &[POOL_ENV]);
    let pool = pool_on(&server, |builder| {
        builder.max_deliver(2).ack_wait(Duration::from_secs(1))
    });
    let call = std::thread::spawn(move || {
        pool.chunk_size(4)
            .imap(kills_its_host_on_0, 0..4u64)
            .collect::<Vec<_>>()
    });
    let deadline = Instant::now() + LIMIT;
    while !call.is_finished() {
        assert!(
            Instant::now() < deadline,
            "no answer within {LIMIT:?}: a hang"
        );
        if !host.alive() {
            host.kill();
            host.start_worker(&server, 1, &[POOL_ENV]);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let results = call.join().unwrap();
    assert!(
        matches!(
            results[0],
            Err(PoolError::Task {
                index: 0,
                error: TaskError::Poisoned { deliveries: 2 }
            })
        ),
        "{:?}",
        results[0]
    );
    for (index, result) in results.iter().enumerate().skip(1) {
        assert_eq!(result.as_ref().ok(), Some(&(index as u64)), "item {index}");
    }
}

#[test]
fn failures_too_large_to_send_back_are_cut_not_lost() {
    let server = NatsServer::start();
    let mut host = Host::new("solo");
    host.start_worker(&server, 2, &[POOL_ENV]);
    let pool = pool_on(&server, |builder| builder.max_deliver(1));
    let results: Vec<_> = within(LIMIT, move || {
        pool.chunk_size(200)
            .imap(panics_loudly, 0..200u64)
            .collect()
    });
    assert_eq!(results.len(), 200);
    for (index, result) in results.iter().enumerate() {
        let Err(PoolError::Task {
            index: failed,
            error: TaskError::Failed(failure),
        }) = result
        else {
            panic!("item {index}: {result:?}");
        };
        assert_eq!(*failed, index);
        assert!(failure.message().starts_with(&format!("{index}: yyy")));
    }
}

#[test]
fn a_pool_built_with_a_shorter_ack_wait_does_not_lose_a_long_item() {
    let server = NatsServer::start();
    let mut host = Host::new("solo");
    // The worker made the consumer with the default 30 s; the pool shortens it to 1 s.
    host.start_worker(&server, 2, &[POOL_ENV]);
    let pool = pool_on(&server, |builder| {
        builder.ack_wait(Duration::from_secs(1)).max_deliver(2)
    });
    assert_eq!(
        within(LIMIT, move || pool.map(sleep_ms, [3_000u64])).unwrap(),
        vec![3_000]
    );
}

#[test]
fn ordered_imap_reads_a_bounded_window_ahead_of_a_slow_head() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    let server = NatsServer::start();
    let mut host = Host::new("solo");
    host.start_worker(&server, 2, &[POOL_ENV]);
    let pool = pool_on(&server, |builder| builder.max_in_flight(4));
    let read = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&read);
    within(LIMIT, move || {
        let input = (0..400u64).map(move |i| {
            counter.fetch_add(1, SeqCst);
            if i == 0 { 2_000 } else { 1 }
        });
        let mut results = pool.chunk_size(1).imap(sleep_ms, input);
        assert_eq!(results.next().unwrap().unwrap(), 2_000);
        let ahead = read.load(SeqCst);
        assert!(ahead <= 4, "read {ahead} items for a window of 4");
        assert_eq!(results.map(Result::unwrap).count(), 399);
    });
}

#[test]
fn chunks_stay_whole_while_results_are_consumed_one_by_one() {
    let server = NatsServer::start();
    let mut host = Host::new("solo");
    host.start_worker(&server, 2, &[POOL_ENV]);
    let pool = pool_on(&server, |builder| builder.max_in_flight(2));
    let reports = Arc::new(Mutex::new(0usize));
    let count = Arc::clone(&reports);
    let results = within(LIMIT, move || {
        pool.chunk_size(100)
            .progress(move |_| *count.lock().unwrap() += 1)
            .map(square, 0..6_400u64)
            .unwrap()
    });
    assert_eq!(results.len(), 6_400);
    // One report at the start and one per result message: 64 chunks of 100 (a window that
    // cut whatever room freed up would have sent thousands of chunks of one item).
    let reports = *reports.lock().unwrap();
    assert!(reports <= 65, "{reports} progress reports");
}

#[test]
fn a_dropped_imap_stops_what_its_workers_run() {
    let server = NatsServer::start();
    let mut host = Host::new("solo");
    host.start_worker(&server, 2, &[POOL_ENV]);
    let pool = pool_on(&server, |builder| builder);
    let mut host = within(LIMIT * 2, move || {
        let mut results = pool.chunk_size(1).unordered_imap(sleep_ms, [1u64, 60_000]);
        // Two local processes: the quick item's result comes first, whatever the order.
        assert_eq!(results.next().unwrap().unwrap(), 1);
        // The long item runs (the worker and its two processes are up)...
        let before = host.pids();
        assert_eq!(before.len(), 3, "{before:?}");
        // ...until the call is dropped: then the process running it is killed and replaced.
        drop(results);
        let replaced = harness::eventually(LIMIT, || {
            let now = host.pids();
            now.len() == 3 && now != before
        });
        assert!(replaced, "the long item still runs: {:?}", host.pids());
        assert_eq!(pool.map(square, [3]).unwrap(), vec![9]);
        host
    });
    assert!(host.alive(), "{}", host.log());
}

#[test]
fn a_server_that_comes_back_without_its_store_gets_its_streams_again() {
    let mut server = NatsServer::start();
    let mut host = Host::new("solo");
    host.start_worker(&server, 1, &[POOL_ENV]);
    let pool = pool_on(&server, |builder| {
        builder.server_timeout(Duration::from_secs(20))
    });
    assert_eq!(
        within(LIMIT, {
            let pool = pool.clone();
            move || pool.map(square, 0..50u64).unwrap().len()
        }),
        50
    );
    server.kill();
    std::fs::remove_dir_all(server.dir.join("store")).unwrap();
    server.restart();
    assert_eq!(
        within(LIMIT, move || pool.timeout(LIMIT).map(square, [3, 4])).unwrap(),
        vec![9, 16]
    );
    assert!(host.alive(), "{}", host.log());
}

#[test]
fn a_worker_stopped_by_sigterm_finishes_what_it_runs_and_gives_back_the_rest() {
    let server = NatsServer::start();
    let mut leaving = Host::new("leaving");
    leaving.start_worker(&server, 2, &[POOL_ENV]);
    // One delivery only: anything the stop counted as a delivery would come back Poisoned.
    let pool = pool_on(&server, |builder| builder.max_deliver(1));
    let call = std::thread::spawn(move || pool.chunk_size(1).map(slow_square, 0..100u64));
    std::thread::sleep(Duration::from_millis(300));
    let statuses = leaving.stop(LIMIT);
    assert!(
        statuses
            .iter()
            .all(|status| status.is_some_and(|s| s.success())),
        "{statuses:?}\n{}",
        leaving.log()
    );
    let mut staying = Host::new("staying");
    staying.start_worker(&server, 2, &[POOL_ENV]);
    let results = within(LIMIT, move || call.join().unwrap()).unwrap();
    assert_eq!(results, (0..100u64).map(|x| x * x).collect::<Vec<_>>());
    assert!(staying.alive(), "{}", staying.log());
}

#[test]
fn a_deadline_ends_the_call_and_the_workers_serve_the_next() {
    let server = NatsServer::start();
    let mut host = Host::new("solo");
    host.start_worker(&server, 2, &[POOL_ENV]);
    let pool = pool_on(&server, |builder| builder);
    within(LIMIT, move || {
        let started = Instant::now();
        let error = pool
            .timeout(Duration::from_millis(500))
            .chunk_size(1)
            .map(sleep_ms, vec![20_000u64; 8])
            .unwrap_err();
        assert!(error.is_timeout(), "{error:?}");
        assert!(started.elapsed() < Duration::from_secs(15));
        // The workers stopped the long items and serve at once.
        let started = Instant::now();
        assert_eq!(pool.map(square, [3, 4]).unwrap(), vec![9, 16]);
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{:?}",
            started.elapsed()
        );
    });
    assert!(host.alive(), "{}", host.log());
}

#[test]
fn what_cannot_cross_hosts_is_refused_before_anything_is_sent() {
    let server = NatsServer::start();
    // No worker: a call that sent anything would wait for one.
    let pool = pool_on(&server, |builder| builder);
    within(LIMIT, move || {
        let error = pool.map(|x: u64| x + 1, [1]).unwrap_err();
        assert!(
            matches!(
                error,
                PoolError::Remote(RemoteError::NotRegistered { task }) if task.contains("closure")
            ),
            "{error:?}"
        );
        fn not_registered(x: u64) -> u64 {
            x
        }
        let error = pool.map(not_registered, [1]).unwrap_err();
        assert!(
            matches!(error, PoolError::Remote(RemoteError::NotRegistered { task }) if task.ends_with("not_registered")),
            "{error:?}"
        );
        let (_anchor, point) = skprocess::pipe::Pipe::pair().unwrap();
        let error = pool.map(pipe_end, [point]).unwrap_err();
        assert!(
            matches!(
                error,
                PoolError::Remote(RemoteError::CannotCrossHosts {
                    index: 0,
                    what: "a pipe point"
                })
            ),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "item 0 holds a pipe point, which cannot cross to another host"
        );
        let buffer = skprocess::buffer::Buffer::from_slice(&[1u8, 2, 3]).unwrap();
        let error = pool.map(buffer_len, [buffer]).unwrap_err();
        assert!(
            matches!(
                error,
                PoolError::Remote(RemoteError::CannotCrossHosts {
                    index: 0,
                    what: "a shared-memory buffer"
                })
            ),
            "{error:?}"
        );
        // The second item holds a Share: nothing is sent, not even the first.
        let share = skprocess::share::Share::new().unwrap();
        let error = pool
            .star()
            .map(share_and_number, [(share.clone(), 1), (share, 2)])
            .unwrap_err();
        assert!(
            matches!(
                error,
                PoolError::Remote(RemoteError::CannotCrossHosts {
                    index: 0,
                    what: "a Share"
                })
            ),
            "{error:?}"
        );
    });
}

#[test]
fn a_worker_built_from_other_code_refuses_the_task_by_name() {
    let server = NatsServer::start();
    let mut host = Host::new("other");
    host.start_worker(&server, 1, &[POOL_ENV]);
    let pool = pool_on(&server, |builder| builder);
    within(LIMIT, move || {
        let error = pool
            .timeout(LIMIT)
            .sent_as("nats::square#0000000000000000")
            .map(square, [1, 2])
            .unwrap_err();
        let PoolError::Remote(RemoteError::UnknownTask { task, worker }) = &error else {
            panic!("expected a refusal: {error:?}");
        };
        assert_eq!(task, "nats::square#0000000000000000");
        assert!(worker.contains(':'), "{worker}");
        // The worker still serves what it knows.
        assert_eq!(pool.map(square, [5]).unwrap(), vec![25]);
    });
    assert!(host.alive(), "{}", host.log());
}

#[test]
fn the_server_going_away_is_a_typed_error_not_a_hang() {
    let mut server = NatsServer::start();
    let url = server.url();
    let pool = pool_on(&server, |builder| {
        builder.server_timeout(Duration::from_secs(2))
    });
    // No worker: the call waits; then the server dies.
    let call = std::thread::spawn(move || pool.map(square, [1, 2, 3]));
    std::thread::sleep(Duration::from_millis(500));
    server.kill();
    let error = within(LIMIT, move || call.join().unwrap()).unwrap_err();
    assert!(
        matches!(
            error,
            PoolError::Remote(RemoteError::ServerGone { completed: 0, .. })
        ),
        "{error:?}"
    );
    // No server at all: a connect error, at once.
    let error = within(LIMIT, move || {
        NatsPool::connect(NatsOptions::new(url).connect_timeout(Duration::from_secs(1)))
    })
    .unwrap_err();
    assert!(
        matches!(error, PoolError::Remote(RemoteError::Connect { .. })),
        "{error:?}"
    );
}

#[test]
fn a_server_that_restarts_mid_map_is_waited_for() {
    let mut server = NatsServer::start();
    let mut host = Host::new("patient");
    host.start_worker(&server, 2, &[POOL_ENV]);
    let pool = pool_on(&server, |builder| {
        builder
            .server_timeout(Duration::from_secs(30))
            .ack_wait(Duration::from_secs(3))
    });
    let call = std::thread::spawn(move || pool.chunk_size(2).map(slow_square, 0..200u64));
    std::thread::sleep(Duration::from_millis(700));
    server.restart();
    let results = within(LIMIT * 2, move || call.join().unwrap()).unwrap();
    assert_eq!(results, (0..200u64).map(|x| x * x).collect::<Vec<_>>());
    assert!(host.alive(), "{}", host.log());
}

#[test]
fn credentials_from_the_environment_user_password_and_nkey() {
    let nkey = nkeys::KeyPair::new_user();
    let seed = nkey.seed().unwrap();
    let server = NatsServer::with_config(
        &format!(
            "authorization {{ users = [ {{ user: pooler, password: \"pool pass\" }}, {{ nkey: {} }} ] }}",
            nkey.public_key()
        ),
        false,
    );
    // A worker logs in with an nkey from the environment, another with a user and password.
    let mut by_nkey = Host::new("nkey");
    by_nkey.start_worker(&server, 1, &[POOL_ENV, (skprocess::nats::NKEY_ENV, &seed)]);
    let mut by_password = Host::new("password");
    by_password.start_worker(
        &server,
        1,
        &[
            POOL_ENV,
            (skprocess::nats::USER_ENV, "pooler"),
            (skprocess::nats::PASSWORD_ENV, "pool pass"),
        ],
    );
    let pool = NatsPool::connect(
        NatsOptions::new(server.url())
            .pool("test")
            .user_and_password("pooler", "pool pass"),
    )
    .unwrap();
    let ran_on: HashSet<String> = within(LIMIT, move || {
        pool.chunk_size(1)
            .map(where_am_i, 0..60u64)
            .unwrap()
            .into_iter()
            .map(|(host, _)| host)
            .collect()
    });
    assert_eq!(
        ran_on,
        HashSet::from(["nkey".to_owned(), "password".to_owned()])
    );
    // A wrong password is a connect error, which shows no password.
    let error = NatsPool::connect(
        NatsOptions::new(server.url()).user_and_password("pooler", "wrong horse"),
    )
    .unwrap_err();
    assert!(
        matches!(&error, PoolError::Remote(RemoteError::Connect { .. })),
        "{error:?}"
    );
    assert!(!format!("{error:?}").contains("wrong horse"));
    // A worker with a wrong nkey does not start serving: it says why and exits.
    let stranger = nkeys::KeyPair::new_user().seed().unwrap();
    let (status, stderr) = Host::new("stranger").run_worker_to_end(
        &server,
        &[POOL_ENV, (skprocess::nats::NKEY_ENV, &stranger)],
        LIMIT,
    );
    assert!(!status.success());
    assert!(stderr.contains("cannot connect"), "{stderr}");
}

#[test]
fn tls_with_a_certificate_authority_made_for_the_test() {
    let host = Host::new("secure");
    let dir = harness::scratch("tls");
    let (ca, cert, key) = harness::make_certificates(&dir, &["127.0.0.1", host.server_address()]);
    let server = NatsServer::with_config(
        &format!(
            "tls {{ cert_file: {:?}, key_file: {:?} }}",
            cert.display().to_string(),
            key.display().to_string()
        ),
        true,
    );
    let mut host = host;
    host.start_worker(
        &server,
        1,
        &[POOL_ENV, (skprocess::nats::CA_ENV, ca.to_str().unwrap())],
    );
    let pool = NatsPool::connect(NatsOptions::new(server.url()).pool("test").ca_file(&ca)).unwrap();
    within(LIMIT, move || {
        assert_eq!(pool.map(square, [6, 7]).unwrap(), vec![36, 49]);
    });
    // Without the CA, the server's certificate is not trusted.
    let error =
        NatsPool::connect(NatsOptions::new(server.url()).connect_timeout(Duration::from_secs(2)))
            .unwrap_err();
    assert!(
        matches!(&error, PoolError::Remote(RemoteError::Connect { .. })),
        "{error:?}"
    );
    assert!(host.alive(), "{}", host.log());
    let _ = std::fs::remove_dir_all(dir);
}

/// Rounds of maps over more worker processes than CPUs, with a host killed and replaced in
/// each round: every item is reported exactly once, with the right value. More rounds with
/// `SKPROCESS_STRESS_ROUNDS`.
#[test]
fn stress_hosts_die_and_return_while_maps_run() {
    let rounds: usize = std::env::var("SKPROCESS_STRESS_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(3);
    let server = NatsServer::start();
    let mut hosts = [Host::new("h0"), Host::new("h1"), Host::new("h2")];
    for host in &mut hosts {
        host.start_worker(&server, 2, &[POOL_ENV]);
    }
    let pool = pool_on(&server, |builder| builder.ack_wait(Duration::from_secs(2)));
    for round in 0..rounds {
        let pool = pool.clone();
        let victim = round % hosts.len();
        let mut host = std::mem::replace(&mut hosts[victim], Host::new(&format!("h{victim}")));
        let results = within(LIMIT * 2, move || {
            let mut results = BTreeMap::new();
            for result in pool.chunk_size(5).unordered_imap(slow_square, 0..600u64) {
                let value = result.unwrap();
                let root = (value as f64).sqrt() as u64;
                assert!(results.insert(root, value).is_none(), "{root} came twice");
                if results.len() == 100 {
                    host.kill();
                }
            }
            results
        });
        assert_eq!(results.len(), 600, "round {round}");
        assert!(results.iter().all(|(x, value)| x * x == *value));
        hosts[victim].start_worker(&server, 2, &[POOL_ENV]);
    }
}
