//! The pool under a small frame limit (1 MiB): items and results too large for one frame are
//! errors of their own item, chunks are cut by bytes as well as by count, and a deadline of one
//! call never fails another call's items.

use std::time::{Duration, Instant};

use skprocess::pool::{Payload, Pool, PoolError, TaskError};

const MIB: usize = 1 << 20;
const DEADLINE: Duration = Duration::from_secs(60);

fn small_pool(workers: usize) -> Pool {
    Pool::builder()
        .workers(workers)
        .frame_limit(MIB)
        .build()
        .expect("a pool starts")
}

fn make(n: usize) -> Vec<u8> {
    vec![7; n]
}

fn len(v: Vec<u8>) -> usize {
    v.len()
}

#[test]
fn a_result_too_large_for_a_frame_is_that_items_error_and_the_others_arrive() {
    let pool = small_pool(2);
    let sizes = [10, 2 * MIB, 20, MIB / 2, 30];
    let results: Vec<_> = pool.timeout(DEADLINE).imap(make, sizes).collect();
    assert_eq!(results.len(), 5);
    match &results[1] {
        Err(PoolError::Task {
            index: 1,
            error:
                TaskError::TooLarge {
                    what: Payload::Output,
                    len,
                    limit,
                },
        }) => assert!(
            *len > 2 * MIB as u64 && *limit == MIB as u64,
            "{len} {limit}"
        ),
        other => panic!("{other:?}"),
    }
    for (i, size) in [(0, 10), (2, 20), (3, MIB / 2), (4, 30)] {
        assert_eq!(results[i].as_ref().unwrap().len(), size);
    }
    // map reports the same error and the pool stays usable
    match pool.timeout(DEADLINE).map(make, sizes) {
        Err(PoolError::Task {
            index: 1,
            error: TaskError::TooLarge { .. },
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(pool.timeout(DEADLINE).map(len, [make(3)]).unwrap(), vec![3]);
}

#[test]
fn an_item_too_large_for_a_frame_is_that_items_error_and_nothing_is_sent() {
    let pool = small_pool(2);
    let items = vec![make(5), make(2 * MIB), make(6)];
    match pool.timeout(DEADLINE).map(len, items.clone()) {
        Err(PoolError::Task {
            index: 1,
            error:
                TaskError::TooLarge {
                    what: Payload::Input,
                    ..
                },
        }) => {}
        other => panic!("{other:?}"),
    }
    let lens: Vec<_> = pool.timeout(DEADLINE).imap(len, items).collect();
    assert_eq!(*lens[0].as_ref().unwrap(), 5);
    assert!(lens[1].is_err());
    assert_eq!(*lens[2].as_ref().unwrap(), 6);
}

#[test]
fn chunks_are_cut_by_bytes_so_large_items_never_overflow_a_frame() {
    // 480 items, the first 60 of 300 KiB: by count alone a chunk would hold 18 MiB.
    let pool = small_pool(2);
    let items: Vec<Vec<u8>> = (0..480)
        .map(|i| make(if i < 60 { 300 * 1024 } else { 16 }))
        .collect();
    let expected: Vec<usize> = items.iter().map(Vec::len).collect();
    let started = Instant::now();
    assert_eq!(
        pool.timeout(DEADLINE).map(len, items.clone()).unwrap(),
        expected
    );
    // and the results the other way
    let sizes: Vec<usize> = expected.clone();
    let made = pool.timeout(DEADLINE).map(make, sizes).unwrap();
    assert!(made.iter().zip(&expected).all(|(m, n)| m.len() == *n));
    assert!(started.elapsed() < DEADLINE);
}

#[test]
fn a_frame_limit_out_of_range_is_refused() {
    for limit in [0, 1024, usize::MAX] {
        match Pool::builder().workers(1).frame_limit(limit).build() {
            Err(PoolError::Spawn(skprocess::ProcessError::InvalidConfig { .. })) => {}
            other => panic!("{limit}: {other:?}"),
        }
    }
}

fn sleeps(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[test]
fn a_deadline_never_fails_an_unrelated_call_sharing_a_worker() {
    // Worker 0 runs X's first item (slow) and holds X's second, which the idle worker 1 takes
    // over: a take-over is pending on worker 0 while it runs. Then Y's chunk is queued on worker
    // 0 behind X's, and Y's deadline passes: only Y fails; X's items are delivered.
    let pool = Pool::new(2).unwrap();
    let x = {
        let pool = pool.clone();
        std::thread::spawn(move || pool.timeout(DEADLINE).map(sleeps, [1500, 1500]))
    };
    std::thread::sleep(Duration::from_millis(300));
    let y = pool.timeout(Duration::from_millis(300)).map(sleeps, [5000]);
    assert!(matches!(y, Err(PoolError::Timeout { .. })), "{y:?}");
    assert_eq!(x.join().unwrap().unwrap(), vec![1500, 1500]);
    assert_eq!(
        pool.timeout(DEADLINE).map(sleeps, [1, 2]).unwrap(),
        vec![1, 2]
    );
}
