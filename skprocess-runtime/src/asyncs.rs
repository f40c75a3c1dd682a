//! Executor-agnostic futures: run blocking work on a thread and complete a future with its
//! value. No runtime is required; any executor (tokio, async-std, `futures::executor`) can poll
//! these.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};

use crate::sync::lock;

struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
    /// The worker thread ended without a value (it panicked).
    abandoned: bool,
}

/// A future completed by a background thread. Polling after completion panics, as for any
/// future.
#[must_use = "futures do nothing unless polled"]
pub struct ThreadFuture<T> {
    slot: Arc<Mutex<Slot<T>>>,
}

impl<T> std::fmt::Debug for ThreadFuture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadFuture").finish_non_exhaustive()
    }
}

struct Completer<T> {
    slot: Arc<Mutex<Slot<T>>>,
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        let waker = {
            let mut slot = lock(&self.slot);
            if slot.value.is_none() {
                slot.abandoned = true;
            }
            slot.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// Runs `work` on a new thread; the returned future resolves to its value.
///
/// # Panics
///
/// Polling the future panics if `work` panicked.
pub(crate) fn spawn_blocking<T, F>(name: &str, work: F) -> ThreadFuture<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let slot = Arc::new(Mutex::new(Slot {
        value: None,
        waker: None,
        abandoned: false,
    }));
    let completer = Completer {
        slot: Arc::clone(&slot),
    };
    let spawned = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let value = work();
            lock(&completer.slot).value = Some(value);
            drop(completer); // wakes
        });
    if spawned.is_err() {
        lock(&slot).abandoned = true;
    }
    ThreadFuture { slot }
}

impl<T> Future for ThreadFuture<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut slot = lock(&self.slot);
        if let Some(value) = slot.value.take() {
            return Poll::Ready(value);
        }
        if slot.abandoned {
            panic!("the background work of this future panicked or could not start a thread");
        }
        match &slot.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => slot.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// A value computed on a background thread: `result()` blocks until it is ready,
/// `result_timeout(d)` waits at most `d` and leaves the work running.
///
/// Returned by the `background()` modifiers. Dropping it detaches the work (it still runs to
/// completion).
#[must_use = "call `.result()` to get the value"]
pub struct BackgroundHandle<T> {
    thread: std::thread::JoinHandle<T>,
    done: Arc<Done>,
}

/// Set when the background work has returned (or panicked), so that a bounded wait is
/// possible: a thread's join has no timeout.
#[derive(Default)]
struct Done {
    finished: Mutex<bool>,
    changed: Condvar,
}

/// Sets [`Done`] when dropped: on the work's return, and on its panic (by unwinding).
struct DoneGuard(Arc<Done>);

impl Drop for DoneGuard {
    fn drop(&mut self) {
        *lock(&self.0.finished) = true;
        self.0.changed.notify_all();
    }
}

impl<T> std::fmt::Debug for BackgroundHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackgroundHandle")
            .field("finished", &self.thread.is_finished())
            .finish()
    }
}

impl<T: Send + 'static> BackgroundHandle<T> {
    pub(crate) fn spawn(name: &str, work: impl FnOnce() -> T + Send + 'static) -> Self {
        let done = Arc::new(Done::default());
        let guard = DoneGuard(Arc::clone(&done));
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let _guard = guard;
                work()
            })
            .expect("cannot start a background thread");
        BackgroundHandle { thread, done }
    }

    /// Blocks until the value is ready and returns it.
    ///
    /// # Panics
    ///
    /// Re-raises a panic of the background work (which the library's own work does not do).
    pub fn result(self) -> T {
        match self.thread.join() {
            Ok(value) => value,
            Err(payload) => std::panic::resume_unwind(payload),
        }
    }

    /// Waits at most `timeout` for the value: `Ok` holds it, as [`result`](Self::result)
    /// gives it; `Err` gives the handle back when it is not ready yet. The wait has no side
    /// effect: the work (a process, a pool call) keeps running, and the handle can wait
    /// again. (A `.timeout(d)` modifier is different: it is a deadline that stops the work.)
    ///
    /// # Panics
    ///
    /// Re-raises a panic of the background work, as `result` does.
    pub fn result_timeout(self, timeout: std::time::Duration) -> Result<T, BackgroundHandle<T>> {
        let deadline = crate::sync::deadline_in(timeout);
        let (finished, _) = crate::sync::wait_until(
            &self.done.changed,
            lock(&self.done.finished),
            deadline,
            |finished| *finished,
        );
        if *finished {
            drop(finished);
            // The thread is past the work: the join is immediate.
            Ok(self.result())
        } else {
            drop(finished);
            Err(self)
        }
    }

    /// Whether the value is ready (`result()` would not block).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}
