//! One lazily started background thread that wakes futures at their deadlines.
//!
//! Executor-agnostic async sleeping: a [`Sleep`] registers its deadline and its task's [`Waker`]
//! in a shared ordered map; the thread sleeps on a condition variable until the earliest deadline,
//! then wakes every task whose deadline has passed. A `Sleep` dropped before its deadline removes
//! its entry at once, so cancelled timeouts cost nothing afterwards (this is why the queue is a
//! `BTreeMap` and not a `BinaryHeap`, which cannot remove arbitrary entries).
//!
//! The thread is started by the first `Sleep` that has to wait and lives until the process exits.
//! It is not fork-safe: a child created with a bare `fork()` has no timer thread while the map
//! says it has one (the process runtime re-executes its children, so this never happens there).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Instant;

/// The key of one registered sleep: its deadline, then a sequence number that keeps equal
/// deadlines apart.
type Key = (Instant, u64);

struct Shared {
    state: Mutex<State>,
    /// Signalled when a new earliest deadline is registered.
    changed: Condvar,
}

struct State {
    wakers: BTreeMap<Key, Waker>,
    next_seq: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        crate::sync::lock(&self.state)
    }
}

/// The shared queue, starting the timer thread on first use.
///
/// # Panics
///
/// Panics if the operating system refuses to start the thread.
fn shared() -> &'static Shared {
    static SHARED: OnceLock<&'static Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            state: Mutex::new(State {
                wakers: BTreeMap::new(),
                next_seq: 0,
            }),
            changed: Condvar::new(),
        }));
        thread::Builder::new()
            .name("skprocess-timer".into())
            .spawn(move || run(shared))
            .expect("cannot start the skprocess timer thread");
        shared
    })
}

/// The timer thread: wake whatever is due, then sleep until the next deadline.
fn run(shared: &'static Shared) -> ! {
    let mut due = Vec::new();
    let mut state = shared.lock();
    loop {
        let now = Instant::now();
        while let Some(entry) = state.wakers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            due.push(entry.remove());
        }
        if !due.is_empty() {
            // Wake outside the lock: a waker may poll its task inline.
            drop(state);
            for waker in due.drain(..) {
                waker.wake();
            }
            state = shared.lock();
            continue;
        }
        state = match state.wakers.first_key_value() {
            Some((&(deadline, _), _)) => {
                let wait = deadline.saturating_duration_since(now);
                shared
                    .changed
                    .wait_timeout(state, wait)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => shared
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner),
        };
    }
}

/// A future that completes at a deadline, woken by the timer thread.
///
/// Built by [`sleep_until`]. Dropping it before the deadline unregisters it.
#[must_use = "futures do nothing unless you `.await` or poll them"]
#[derive(Debug)]
pub(crate) struct Sleep {
    deadline: Instant,
    /// Set once the deadline and waker are in the timer thread's map.
    key: Option<Key>,
}

/// Returns a future that completes at `deadline` (at once if it has passed), on any executor.
pub(crate) fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        key: None,
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if Instant::now() >= this.deadline {
            this.unregister();
            return Poll::Ready(());
        }
        let shared = shared();
        let mut state = shared.lock();
        match this.key {
            // Still registered (the thread only removes entries whose deadline passed, and
            // ours has not): refresh the waker if the task moved.
            Some(key) if state.wakers.contains_key(&key) => {
                let stored = state.wakers.get_mut(&key).expect("checked above");
                if !stored.will_wake(cx.waker()) {
                    stored.clone_from(cx.waker());
                }
            }
            _ => {
                let key = (this.deadline, state.next_seq);
                state.next_seq += 1;
                let earliest = state.wakers.first_key_value().is_none_or(|(k, _)| key < *k);
                state.wakers.insert(key, cx.waker().clone());
                this.key = Some(key);
                if earliest {
                    shared.changed.notify_one();
                }
            }
        }
        Poll::Pending
    }
}

impl Sleep {
    fn unregister(&mut self) {
        if let Some(key) = self.key.take() {
            shared().lock().wakers.remove(&key);
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.unregister();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::Wake;
    use std::time::Duration;

    /// How long any wait in these tests may take: generous, for slow shared machines. A hang
    /// fails the test instead of stalling CI.
    const LIMIT: Duration = Duration::from_secs(60);

    /// Wakes the thread that waits for a future.
    struct Unpark(thread::Thread);

    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }

    /// `futures::executor::block_on` with a deadline: polls `future` on this thread until it
    /// is ready; panics if it is not within `limit`.
    fn block_on_within<F: Future>(limit: Duration, future: F) -> F::Output {
        let deadline = Instant::now() + limit;
        let waker = Waker::from(Arc::new(Unpark(thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
                return value;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the future was not ready within {limit:?}");
            thread::park_timeout(left);
        }
    }

    #[test]
    fn past_deadline_is_ready_without_the_thread() {
        let start = Instant::now();
        block_on_within(LIMIT, sleep_until(start));
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn dropped_sleep_unregisters() {
        let deadline = Instant::now() + Duration::from_secs(3600);
        let mut sleep = sleep_until(deadline);
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut sleep).poll(&mut cx).is_pending());
        let key = sleep.key.expect("registered");
        assert!(shared().lock().wakers.contains_key(&key));
        drop(sleep);
        assert!(!shared().lock().wakers.contains_key(&key));
    }

    #[test]
    fn every_sleep_wakes_after_its_deadline() {
        let order = Arc::new(Mutex::new(Vec::new()));
        let start = Instant::now();
        let tasks: Vec<_> = [60u64, 20, 40]
            .into_iter()
            .map(|ms| {
                let order = Arc::clone(&order);
                // Each body is bounded, so each join is.
                thread::spawn(move || {
                    block_on_within(LIMIT, sleep_until(start + Duration::from_millis(ms)));
                    order.lock().unwrap().push(ms);
                    assert!(start.elapsed() >= Duration::from_millis(ms));
                })
            })
            .collect();
        for task in tasks {
            task.join().unwrap();
        }
        assert_eq!(order.lock().unwrap().len(), 3);
    }
}
