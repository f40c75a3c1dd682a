//! Single tasks: [`submit`](super::Pool::submit) sends one task on one item and returns a
//! [`TaskHandle`] at once; [`as_completed`] yields handles as their tasks finish.
//!
//! A submitted task is a call of one item, in a chunk of its own, on the queue every call
//! shares. Its [`CallSink`] has a [`Bell`], rung after each delivery and failure, so that a
//! handle, a future or an [`AsCompleted`] iterator can wait on it (or on many at once) without
//! polling. A task's deadline is kept by one process-wide watcher thread, so that it holds
//! even when nobody waits on the handle.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::chunks::{ChunkBuilder, Push};
use super::error::{PoolError, TaskError};
use super::scheduler::{CallSink, Delivery, Next, Shared, decode_results};
use super::task::TaskCode;
use super::{CallOptions, Pool, TaskFn};
use crate::error::ProcessError;
use crate::lifecycle::Transferable;
use crate::sync::{deadline_in, lock, wait_until};

/// Wakes whoever waits on a submitted task: threads blocked in [`TaskHandle::result`], a
/// future's waker, and (by forwarding) the bell of an [`AsCompleted`] that watches many tasks.
pub(crate) struct Bell {
    state: Mutex<BellState>,
    rang: Condvar,
}

#[derive(Default)]
struct BellState {
    /// Counts the rings, so that a waiter that looked at its task after reading it cannot
    /// miss a ring that came after its look.
    generation: u64,
    /// The tags forwarded to this bell and not yet taken (the positions of the tasks of an
    /// [`AsCompleted`] that finished).
    rung: Vec<usize>,
    /// Another bell, rung with the tag each time this one rings.
    forward: Option<(Arc<Bell>, usize)>,
    /// The waker of the future awaiting the task (taken at each ring; the future sets it again
    /// when polled).
    waker: Option<Waker>,
}

impl Bell {
    fn new() -> Arc<Bell> {
        Arc::new(Bell {
            state: Mutex::new(BellState::default()),
            rang: Condvar::new(),
        })
    }

    /// Rings: wakes the waiting threads and the future, and rings the forwarded bell.
    pub(crate) fn ring(&self) {
        self.ring_tagged(None);
    }

    fn ring_tagged(&self, tag: Option<usize>) {
        let (waker, forward) = {
            let mut state = lock(&self.state);
            state.generation = state.generation.wrapping_add(1);
            state.rung.extend(tag);
            (state.waker.take(), state.forward.clone())
        };
        self.rang.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
        if let Some((bell, tag)) = forward {
            bell.ring_tagged(Some(tag));
        }
    }

    fn generation(&self) -> u64 {
        lock(&self.state).generation
    }

    /// Waits until the bell rang after `seen` (a generation read earlier), or `deadline`.
    fn wait_past(&self, seen: u64, deadline: Option<Instant>) {
        let _ = wait_until(&self.rang, lock(&self.state), deadline, |state| {
            state.generation != seen
        });
    }

    /// Waits until a tag was forwarded, or `deadline`, and takes the tags in ring order.
    fn take_rung(&self, deadline: Option<Instant>) -> Vec<usize> {
        let (mut state, _) = wait_until(&self.rang, lock(&self.state), deadline, |state| {
            !state.rung.is_empty()
        });
        std::mem::take(&mut state.rung)
    }

    fn set_forward(&self, forward: Option<(Arc<Bell>, usize)>) {
        lock(&self.state).forward = forward;
    }

    fn set_waker(&self, waker: &Waker) {
        let mut state = lock(&self.state);
        match &state.waker {
            Some(current) if current.will_wake(waker) => {}
            _ => state.waker = Some(waker.clone()),
        }
    }
}

/// How a task ended, as far as the parent knows; decoded when its result is taken.
enum Settled {
    Delivered(Delivery),
    Failed(PoolError),
    Interrupted,
    TimedOut(Duration),
    Cancelled,
}

/// What a handle, its future and the deadline watcher share about one task.
struct Core {
    /// Keeps the workers alive while the handle lives (a detached task runs as long as some
    /// other clone of the pool does).
    pool: Pool,
    sink: Arc<CallSink>,
    bell: Arc<Bell>,
    /// The task's deadline, and the timeout it was set from.
    deadline: Option<(Instant, Duration)>,
    settled: Mutex<Option<Settled>>,
}

impl Core {
    fn shared(&self) -> &Arc<Shared> {
        &self.pool.inner.shared
    }

    /// Takes what arrived in the sink, without waiting.
    fn arrived(&self) -> Option<Settled> {
        match self.sink.next(Some(Instant::now())) {
            Next::Delivery(delivery) => Some(Settled::Delivered(delivery)),
            Next::Failed(error) => Some(Settled::Failed(error)),
            Next::Interrupted => Some(Settled::Interrupted),
            Next::TimedOut => None,
        }
    }

    /// Whether the task has ended; settles it if it just did (or if its deadline passed, in
    /// which case the worker running it is killed). Never blocks for long.
    fn poll(&self) -> bool {
        let mut settled = lock(&self.settled);
        if settled.is_some() {
            return true;
        }
        if let Some(outcome) = self.arrived() {
            *settled = Some(outcome);
            return true;
        }
        let expired = self
            .deadline
            .is_some_and(|(at, _)| Instant::now() >= at || self.sink.is_cancelled());
        if !expired {
            return false;
        }
        // Cancelling (again, if the watcher did) also waits out a delivery in progress: once
        // it returns, a result that arrived before the deadline is in the sink, and it wins.
        self.shared().cancel(&self.sink, true);
        let timeout = self.deadline.map_or(Duration::ZERO, |(_, timeout)| timeout);
        *settled = Some(self.arrived().unwrap_or(Settled::TimedOut(timeout)));
        true
    }

    /// See [`TaskHandle::cancel`].
    fn cancel(&self) -> bool {
        let cancelled = {
            let mut settled = lock(&self.settled);
            if settled.is_some() {
                return false;
            }
            if let Some(outcome) = self.arrived() {
                *settled = Some(outcome);
                return false;
            }
            self.shared().cancel(&self.sink, true);
            // After the cancellation no delivery can come; one that was under way is in the
            // sink now, and then the task had finished.
            let outcome = self.arrived();
            let cancelled = outcome.is_none();
            *settled = Some(outcome.unwrap_or(Settled::Cancelled));
            cancelled
        };
        self.bell.ring();
        cancelled
    }

    /// Waits until the task has ended or `deadline` passes; returns whether it has ended.
    fn wait(&self, deadline: Option<Instant>) -> bool {
        loop {
            let seen = self.bell.generation();
            if self.poll() {
                return true;
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return false;
            }
            // Waiting no longer than the task's own deadline: this thread then settles it,
            // whether or not the watcher rang.
            let bound = match (deadline, self.deadline) {
                (Some(a), Some((b, _))) => Some(a.min(b)),
                (a, b) => a.or(b.map(|(at, _)| at)),
            };
            self.bell.wait_past(seen, bound);
        }
    }

    fn take<O: Transferable>(&self) -> Option<Result<O, PoolError>> {
        lock(&self.settled).take().map(decode)
    }
}

/// The result of a settled task.
fn decode<O: Transferable>(settled: Settled) -> Result<O, PoolError> {
    let failed = |error| PoolError::Task { index: 0, error };
    match settled {
        Settled::Delivered(Delivery::Done {
            count,
            bytes,
            start,
            ..
        }) => {
            let mut result = None;
            decode_results::<O>(&bytes[start..], count.min(1), &mut |_, r| result = Some(r));
            result
                .unwrap_or_else(|| Err(TaskError::Decode("no result was reported".into())))
                .map_err(failed)
        }
        Settled::Delivered(Delivery::Crashed { pid, exit, .. }) => {
            Err(failed(TaskError::Crashed { pid, exit }))
        }
        Settled::Failed(error) => Err(error),
        Settled::Interrupted => Err(PoolError::Interrupted { completed: 0 }),
        Settled::TimedOut(timeout) => Err(PoolError::Timeout {
            timeout,
            completed: 0,
        }),
        Settled::Cancelled => Err(PoolError::Cancelled),
    }
}

/// A task submitted to a pool with [`Pool::submit`] (or
/// [`PoolCall::submit`](super::PoolCall::submit)): the handle of its result, like a
/// `concurrent.futures.Future`.
///
/// - [`result`](Self::result) waits for it; [`result_timeout`](Self::result_timeout) waits at
///   most a while and, if it is not done yet, gives the handle back: the task keeps running.
/// - [`is_finished`](Self::is_finished) tells without waiting; [`cancel`](Self::cancel)
///   drops it if it is queued and kills its worker if it runs.
/// - `.await` it (it is [`IntoFuture`]), from any executor: no thread waits for it.
/// - [`as_completed`] yields many handles as their tasks finish.
///
/// Dropping a handle detaches its task: it still runs (and its deadline still holds), and its
/// result is thrown away. A detached task keeps a worker busy like any other; the pool's
/// [`close`](Pool::close) waits for it, and dropping the pool's last clone gives it the same
/// one-second grace as any call in progress.
#[must_use = "dropping a handle detaches its task; call `.result()` to get its value"]
pub struct TaskHandle<O> {
    core: Arc<Core>,
    _output: PhantomData<fn() -> O>,
}

impl<O> std::fmt::Debug for TaskHandle<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskHandle")
            .field("output", &std::any::type_name::<O>())
            .field("timeout", &self.core.deadline.map(|(_, timeout)| timeout))
            .field("settled", &lock(&self.core.settled).is_some())
            .finish()
    }
}

impl<O: Transferable> TaskHandle<O> {
    /// Waits for the task and returns its result.
    ///
    /// # Errors
    ///
    /// [`PoolError::Task`] (with index 0) when the task panicked, returned `Err` (with
    /// [`fallible`](Pool::fallible)), crashed its worker, or its item or result could not
    /// cross; [`PoolError::Timeout`] when its deadline passed; [`PoolError::Cancelled`] after
    /// [`cancel`](Self::cancel); [`PoolError::TaskCapturesData`] and the like for a task that
    /// could not be sent; [`PoolError::Closed`], [`PoolError::Interrupted`].
    pub fn result(self) -> Result<O, PoolError> {
        loop {
            self.core.wait(None);
            if let Some(result) = self.core.take() {
                return result;
            }
        }
    }

    /// Waits at most `timeout` for the task. `Ok` holds its result, as [`result`] gives it;
    /// `Err` gives the handle back when the task has not finished yet: nothing happened to it,
    /// it keeps running, and the handle can wait again.
    ///
    /// The handle comes back in `Err`, rather than a "not yet" error inside the result,
    /// because a task's own errors include timeouts of its own ([`PoolError::Timeout`] for
    /// a submit with a deadline): a "not yet" could be mistaken for one of them. And taking the
    /// result consumes the handle, as `result` does, so there is no spent handle to misuse.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use skprocess::pool::Pool;
    /// # fn slow(ms: u64) -> u64 { std::thread::sleep(Duration::from_millis(ms)); ms }
    /// # fn main() -> Result<(), skprocess::pool::PoolError> {
    /// let pool = Pool::new(1)?;
    /// let mut handle = pool.submit(slow, 200);
    /// let value = loop {
    ///     match handle.result_timeout(Duration::from_millis(50)) {
    ///         Ok(result) => break result?,
    ///         Err(pending) => handle = pending, // not yet: do something else meanwhile
    ///     }
    /// };
    /// assert_eq!(value, 200);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// [`result`]: Self::result
    #[allow(clippy::result_large_err)]
    pub fn result_timeout(self, timeout: Duration) -> Result<Result<O, PoolError>, TaskHandle<O>> {
        if self.core.wait(deadline_in(timeout))
            && let Some(result) = self.core.take()
        {
            return Ok(result);
        }
        Err(self)
    }

    /// Waits at most `timeout` for the task to finish; returns whether it has. The wait never
    /// affects the task.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.core.wait(deadline_in(timeout))
    }

    /// Whether the task has finished (or failed, timed out or was cancelled): then
    /// [`result`](Self::result) does not block. Never blocks.
    pub fn is_finished(&self) -> bool {
        self.core.poll()
    }

    /// Cancels the task: if it is queued (or held by a worker that has not started it), it is
    /// dropped; if it runs, its worker is killed and replaced (the other calls on the pool are
    /// not affected: what that worker held for them goes to other workers). Returns whether
    /// it was cancelled: `false` when it had already finished, and then its result stays
    /// available. After a successful cancel, [`result`](Self::result) returns
    /// [`PoolError::Cancelled`].
    pub fn cancel(&self) -> bool {
        self.core.cancel()
    }
}

impl<O: Transferable> IntoFuture for TaskHandle<O> {
    type Output = Result<O, PoolError>;
    type IntoFuture = TaskFuture<O>;

    /// The task's result as a future: no thread waits for it; the worker's report wakes it.
    fn into_future(self) -> TaskFuture<O> {
        TaskFuture { handle: Some(self) }
    }
}

/// A submitted task's result as a future (`handle.await`, or `handle.into_future()`). It
/// needs no particular executor and no thread of its own: the pool wakes it when the task
/// ends (or its deadline passes). Dropping it detaches the task, as dropping the handle does.
/// Polling it after it completed panics, as for any future.
#[must_use = "futures do nothing unless polled"]
pub struct TaskFuture<O> {
    handle: Option<TaskHandle<O>>,
}

impl<O> std::fmt::Debug for TaskFuture<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskFuture")
            .field("handle", &self.handle)
            .finish()
    }
}

impl<O: Transferable> Future for TaskFuture<O> {
    type Output = Result<O, PoolError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let core = &this
            .handle
            .as_ref()
            .expect("a TaskFuture polled after it completed")
            .core;
        // The waker first: a ring after it is set wakes us; the look below sees any before.
        core.bell.set_waker(cx.waker());
        if core.poll()
            && let Some(result) = core.take()
        {
            this.handle = None;
            return Poll::Ready(result);
        }
        Poll::Pending
    }
}

/// Submits one task (see [`PoolCall::submit`](super::PoolCall::submit)).
pub(super) fn submit<T, A, K, I>(
    pool: &Pool,
    code: Result<TaskCode, PoolError>,
    item: I,
    options: &CallOptions,
) -> TaskHandle<T::Output>
where
    T: TaskFn<A, K, I>,
    I: Transferable,
{
    let deadline = options
        .timeout
        .map(|timeout| (Instant::now().checked_add(timeout), timeout));
    let bell = Bell::new();
    let sink = Arc::new(CallSink::with_bell(Arc::clone(&bell)));
    let sent = send(
        pool,
        code,
        &sink,
        &bell,
        &item,
        deadline.and_then(|(at, _)| at),
    );
    TaskHandle {
        core: Arc::new(Core {
            pool: pool.clone(),
            sink,
            bell,
            deadline: deadline.and_then(|(at, timeout)| Some((at?, timeout))),
            settled: Mutex::new(sent.err().map(Settled::Failed)),
        }),
        _output: PhantomData,
    }
}

/// Encodes the item into a chunk of its own and queues it (after registering the deadline, so
/// that a task whose deadline cannot be kept is never sent).
fn send<I: Transferable>(
    pool: &Pool,
    code: Result<TaskCode, PoolError>,
    sink: &Arc<CallSink>,
    bell: &Arc<Bell>,
    item: &I,
    deadline: Option<Instant>,
) -> Result<(), PoolError> {
    let code = code?;
    let shared = &pool.inner.shared;
    let mut builder = ChunkBuilder::new(Arc::clone(sink), code, shared.frame_limit());
    match builder.push(0, item) {
        Push::Added => {}
        Push::Failed(error) => return Err(PoolError::Task { index: 0, error }),
        Push::Full => unreachable!("an empty chunk takes any item that fits in a frame"),
    }
    let chunk = builder.take().expect("the chunk holds the item");
    if let Some(at) = deadline {
        watch(at, shared, sink, bell)?;
    }
    shared.submit(vec![chunk])
}

// ---------------------------------------------------------------------------------------------
// Deadlines of submitted tasks
// ---------------------------------------------------------------------------------------------

/// A deadline to enforce. Weak references: a task that finished and whose handle is gone
/// needs nothing done (its sink is gone too).
struct Expiry {
    at: Instant,
    seq: u64,
    shared: Weak<Shared>,
    sink: Weak<CallSink>,
    bell: Weak<Bell>,
}

impl PartialEq for Expiry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Expiry {}

impl PartialOrd for Expiry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Expiry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

struct WatchState {
    due: BinaryHeap<Reverse<Expiry>>,
    next_seq: u64,
    running: bool,
}

/// The deadlines of every submitted task of the process, earliest first, and the thread that
/// enforces them (started with the first one; one thread, however many tasks and pools).
static WATCH: (Mutex<WatchState>, Condvar) = (
    Mutex::new(WatchState {
        due: BinaryHeap::new(),
        next_seq: 0,
        running: false,
    }),
    Condvar::new(),
);

fn watch(
    at: Instant,
    shared: &Arc<Shared>,
    sink: &Arc<CallSink>,
    bell: &Arc<Bell>,
) -> Result<(), PoolError> {
    let mut state = lock(&WATCH.0);
    if !state.running {
        std::thread::Builder::new()
            .name("skprocess-pool-deadlines".into())
            .spawn(watch_main)
            .map_err(|e| PoolError::Spawn(ProcessError::Spawn(e)))?;
        state.running = true;
    }
    let seq = state.next_seq;
    state.next_seq += 1;
    state.due.push(Reverse(Expiry {
        at,
        seq,
        shared: Arc::downgrade(shared),
        sink: Arc::downgrade(sink),
        bell: Arc::downgrade(bell),
    }));
    drop(state);
    WATCH.1.notify_all();
    Ok(())
}

fn watch_main() {
    let mut state = lock(&WATCH.0);
    loop {
        let now = Instant::now();
        let mut expired = Vec::new();
        while state.due.peek().is_some_and(|Reverse(e)| e.at <= now) {
            expired.extend(state.due.pop().map(|Reverse(e)| e));
        }
        if !expired.is_empty() {
            drop(state);
            expired.into_iter().for_each(expire);
            state = lock(&WATCH.0);
            continue;
        }
        state = match state.due.peek() {
            Some(Reverse(next)) => {
                let wait = next.at.saturating_duration_since(now);
                WATCH
                    .1
                    .wait_timeout(state, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => WATCH.1.wait(state).unwrap_or_else(|e| e.into_inner()),
        };
    }
}

/// A task's deadline passed: cancel it (killing its worker if it runs) and wake its waiters,
/// who find it cancelled with nothing delivered and report the timeout. A task that finished
/// in time has its result in the sink, which wins.
fn expire(expiry: Expiry) {
    let (Some(shared), Some(sink)) = (expiry.shared.upgrade(), expiry.sink.upgrade()) else {
        return;
    };
    shared.cancel(&sink, true);
    if let Some(bell) = expiry.bell.upgrade() {
        bell.ring();
    }
}

// ---------------------------------------------------------------------------------------------
// as_completed
// ---------------------------------------------------------------------------------------------

/// Yields submitted tasks as they finish, like Python's `concurrent.futures.as_completed`:
/// each item is the task's position in `handles` and its handle, whose
/// [`result`](TaskHandle::result) then returns at once. Tasks already finished come first.
///
/// ```
/// # use std::time::Duration;
/// use skprocess::pool::{Pool, as_completed};
/// # fn nap(ms: u64) -> u64 { std::thread::sleep(Duration::from_millis(ms)); ms }
/// # fn main() -> Result<(), skprocess::pool::PoolError> {
/// let pool = Pool::new(2)?;
/// let handles = vec![pool.submit(nap, 300), pool.submit(nap, 1)];
/// let order: Vec<usize> = as_completed(handles).map(|(index, _handle)| index).collect();
/// assert_eq!(order, [1, 0]);
/// # Ok(())
/// # }
/// ```
///
/// It never polls: each task's bell forwards to the iterator's, which it sleeps on. With
/// [`AsCompleted::timeout`] the iteration ends when the time is up; the tasks not finished by
/// then keep running, and [`AsCompleted::into_pending`] gives their handles back.
pub fn as_completed<O: Transferable>(
    handles: impl IntoIterator<Item = TaskHandle<O>>,
) -> AsCompleted<O> {
    let bell = Bell::new();
    let pending: Vec<Option<TaskHandle<O>>> = handles.into_iter().map(Some).collect();
    for (index, handle) in pending.iter().flatten().enumerate() {
        handle
            .core
            .bell
            .set_forward(Some((Arc::clone(&bell), index)));
    }
    // Every task is looked at once, after its bell forwards: one that finishes later rings.
    let candidates = (0..pending.len()).rev().collect();
    AsCompleted {
        left: pending.len(),
        pending,
        bell,
        candidates,
        deadline: None,
        timed_out: false,
    }
}

/// The iterator of [`as_completed`].
#[must_use = "iterators are lazy"]
pub struct AsCompleted<O> {
    pending: Vec<Option<TaskHandle<O>>>,
    left: usize,
    bell: Arc<Bell>,
    /// Positions to look at, the next one last.
    candidates: Vec<usize>,
    deadline: Option<Instant>,
    timed_out: bool,
}

impl<O> std::fmt::Debug for AsCompleted<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsCompleted")
            .field("pending", &self.left)
            .field("timed_out", &self.timed_out)
            .finish()
    }
}

impl<O> AsCompleted<O> {
    /// Ends the iteration `timeout` from now if tasks are still pending then (a bound on the
    /// whole iteration, as `as_completed(fs, timeout)` in Python). The tasks keep running;
    /// [`timed_out`](Self::timed_out) tells how the iteration ended, and
    /// [`into_pending`](Self::into_pending) gives back their handles.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.deadline = deadline_in(timeout);
        self
    }

    /// Whether the iteration ended because the [`timeout`](Self::timeout) passed.
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }

    /// The handles not yielded yet, with their positions (their tasks are unaffected).
    pub fn into_pending(mut self) -> Vec<(usize, TaskHandle<O>)> {
        let pending = std::mem::take(&mut self.pending);
        pending
            .into_iter()
            .enumerate()
            .filter_map(|(index, handle)| {
                let handle = handle?;
                handle.core.bell.set_forward(None);
                Some((index, handle))
            })
            .collect()
    }
}

impl<O> Drop for AsCompleted<O> {
    fn drop(&mut self) {
        for handle in self.pending.iter().flatten() {
            handle.core.bell.set_forward(None);
        }
    }
}

impl<O: Transferable> Iterator for AsCompleted<O> {
    type Item = (usize, TaskHandle<O>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            while let Some(index) = self.candidates.pop() {
                let finished = self.pending[index]
                    .as_ref()
                    .is_some_and(|handle| handle.core.poll());
                if finished && let Some(handle) = self.pending[index].take() {
                    handle.core.bell.set_forward(None);
                    self.left -= 1;
                    return Some((index, handle));
                }
            }
            if self.left == 0 {
                return None;
            }
            if self
                .deadline
                .is_some_and(|deadline| Instant::now() >= deadline)
            {
                self.timed_out = true;
                return None;
            }
            // A task's own deadline rings its bell too (the watcher does), so this sleep ends
            // for every way a task can end.
            let rung = self.bell.take_rung(self.deadline);
            self.candidates.extend(rung.into_iter().rev());
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let sure = if self.deadline.is_some() {
            0
        } else {
            self.left
        };
        (sure, Some(self.left))
    }
}
