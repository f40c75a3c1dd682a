//! Tokio's primitives in process fields cross as copies of their values
//! (`skprocess::copies`), std's locks and atomics with nothing to add.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use skprocess::prelude::*;
use tokio::sync::{Mutex, Notify, RwLock, Semaphore};

mod common;
use common::LIMIT;

#[skprocess(runs = 1)]
struct Holder {
    #[serde(with = "skprocess::copies::tokio_mutex")]
    seen: Mutex<Vec<String>>,
    #[serde(with = "skprocess::copies::tokio_mutex")]
    shared_seen: Arc<Mutex<u32>>,
    #[serde(with = "skprocess::copies::tokio_rwlock")]
    table: RwLock<Vec<u8>>,
    #[serde(with = "skprocess::copies::tokio_semaphore")]
    permits: Arc<Semaphore>,
    #[serde(with = "skprocess::copies::tokio_semaphore")]
    closed: Semaphore,
    #[serde(with = "skprocess::copies::tokio_notify")]
    wake: Notify,
    counter: std::sync::Mutex<i64>,
    hits: AtomicI64,
}

#[skprocess]
impl Holder {
    fn __run__(&mut self) {
        // Used in the child: locks are free, permits are there.
        self.seen
            .try_lock()
            .expect("unlocked")
            .push("child".to_owned());
        *self.shared_seen.try_lock().expect("unlocked") += 1;
        let permit = self.permits.try_acquire().expect("a permit");
        permit.forget();
        self.wake.notify_one();
        self.hits.fetch_add(1, Ordering::SeqCst);
    }

    fn __result__(&mut self) -> (Vec<String>, u32, Vec<u8>, usize, bool, i64, i64) {
        (
            self.seen.try_lock().expect("unlocked").clone(),
            *self.shared_seen.try_lock().expect("unlocked"),
            self.table.try_read().expect("unlocked").clone(),
            self.permits.available_permits(),
            self.closed.is_closed(),
            *self.counter.lock().expect("not poisoned"),
            self.hits.load(Ordering::SeqCst),
        )
    }
}

fn holder() -> Holder {
    let closed = Semaphore::new(2);
    closed.close();
    Holder {
        seen: Mutex::new(vec!["parent".to_owned()]),
        shared_seen: Arc::new(Mutex::new(41)),
        table: RwLock::new(vec![1, 2, 3]),
        permits: Arc::new(Semaphore::new(5)),
        closed,
        wake: Notify::new(),
        counter: std::sync::Mutex::new(7),
        hits: AtomicI64::new(10),
    }
}

#[test]
fn primitives_cross_as_copies_of_their_values() {
    let parent = holder();
    let process = Skprocess::new(holder());
    let (seen, shared_seen, table, permits, closed, counter, hits) =
        process.timeout(LIMIT).run().expect("the child runs");
    assert_eq!(seen, ["parent", "child"]);
    assert_eq!(shared_seen, 42);
    assert_eq!(table, [1, 2, 3]);
    assert_eq!(permits, 4, "five permits crossed, the child took one");
    assert!(closed, "a closed semaphore arrives closed");
    assert_eq!((counter, hits), (7, 11));
    // Copies: nothing the child did reached the parent's primitives.
    assert_eq!(parent.permits.available_permits(), 5);
    assert_eq!(*parent.shared_seen.try_lock().expect("unlocked"), 41);
}

#[test]
fn a_locked_tokio_mutex_fails_to_encode_instead_of_blocking() {
    let held = holder();
    let guard = held.seen.try_lock().expect("unlocked");
    let error = skprocess::__testing::encode(&held).expect_err("locked");
    assert!(error.contains("tokio Mutex was locked"), "{error}");
    drop(guard);
    skprocess::__testing::encode(&held).expect("unlocked again: encodes");
}
