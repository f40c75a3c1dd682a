//! `AsyncPool::with_workers`: async tasks across worker processes, each worker running many of
//! them at once on its tokio runtime, with one bound on the tasks in flight across all workers.
//!
//! # How it works
//!
//! Each worker is a child process running [`AsyncWorker`], an async process type of this crate:
//! its `__run__` listens for `Run` and `Cancel` messages (the process's `tell`/`listen`
//! channel) and spawns one tokio task per `Run`, which replies with a `Done` message. A task
//! travels as in the sync pool, as the offset of a monomorphized trampoline from a fixed function
//! of this crate (see [`task`](super::task)): the worker is a child this process started from
//! its own executable, over an authenticated connection.
//!
//! In the parent, each item of a call is a future that takes a permit of the pool's semaphore
//! (`max_concurrent` permits, shared by every call), registers the task as in flight on the
//! least loaded worker, hands the message to that worker's sender thread (which may wait for
//! room; the caller's executor never does), and waits for the answer on a oneshot channel. One
//! router thread per worker reads the worker's answers and completes the items. The permit is
//! held until the worker has answered for the task, which it does once the task has ended: its
//! result, its panic, or its cancellation.
//!
//! - **Crash**: when a worker dies, its router fails every task in flight on it with
//!   [`AsyncPoolError::Crashed`] (none is sent again: it may have done its side effects) and
//!   starts a replacement (after a growing pause when workers keep dying as they start; none
//!   after five such deaths in a row).
//! - **Deadline**: a call's deadline drops the call's futures; an item dropped before its answer
//!   sends `Cancel`, and the worker aborts that task at its next await point. The worker, shared
//!   by other calls, is not killed. (A task that never awaits cannot be aborted: it runs to its
//!   end and keeps its permit meanwhile.)

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_core::Stream;
use futures_util::future::FutureExt;
use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::async_pool::sealed::StarPointer;
use super::async_pool::{AsyncPoolError, Deadlined, StarCall, in_order};
use super::task::{AsyncTaskRun, TaskCode, assert_can_travel, async_task_code, task_value_at};
use crate::error::{ListenError, TellError};
use crate::lifecycle::{Context, Transferable};
use crate::process::Skprocess;
use crate::sync::lock;

/// Why a task did not produce a value in its worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum TaskFailure {
    /// The task panicked (in the call or in its future).
    Panicked(String),
    /// The item did not decode in the worker.
    Decode(String),
    /// The output did not encode.
    Encode(String),
    /// Aborted after a `Cancel`.
    Cancelled,
}

/// The parent's messages to a worker.
#[derive(Debug, Serialize, Deserialize)]
enum ToWorker {
    /// Run the task at `offset` (and `data`, see [`TaskCode`]) on the encoded item.
    Run {
        id: u64,
        offset: i64,
        data: i64,
        input: Vec<u8>,
    },
    /// Abort task `id` (its call was dropped).
    Cancel { id: u64 },
}

/// A worker's answer for one task.
#[derive(Debug, Serialize, Deserialize)]
struct Done {
    id: u64,
    outcome: Result<Vec<u8>, TaskFailure>,
}

/// The worker process: runs the tasks it is sent, many at once, until the pool stops it or
/// goes away.
#[crate::skprocess(crate = "crate")]
struct AsyncWorker {}

#[crate::skprocess(crate = "crate")]
impl AsyncWorker {
    async fn __run__(&mut self, cx: &mut Context) {
        // Ctrl+C is the parent's to handle (as for a `Pool`'s workers): with `graceful_ctrl_c`
        // the pool cancels its calls' tasks and keeps its workers.
        crate::sys::ignore_signal(libc::SIGINT);
        serve(cx).await;
        // The pool stopped this worker, or is gone: the process ends.
        cx.stop();
    }
}

async fn serve(cx: &Context) {
    let (finished_tx, mut finished) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let mut running: HashMap<u64, tokio::task::AbortHandle> = HashMap::new();
    let mut stopped = std::pin::pin!(cx.stopped());
    loop {
        while let Ok(id) = finished.try_recv() {
            running.remove(&id);
        }
        let listen = cx.listen_async::<ToWorker>();
        let message = match futures_util::future::select(listen, stopped.as_mut()).await {
            futures_util::future::Either::Left((Ok(message), _)) => message,
            // Stopped, the parent gone, or a message that is not ours: nothing more to do.
            _ => break,
        };
        match message {
            ToWorker::Run {
                id,
                offset,
                data,
                input,
            } => {
                // SAFETY: the offset comes from the parent, which started this process from its
                // own executable and computed it with `async_task_code` from an
                // `AsyncTrampoline`; the channel is this process's authenticated link to it.
                let trampoline = unsafe { super::task::async_trampoline_at(offset) };
                let work = tokio::spawn(trampoline(input, data));
                running.insert(id, work.abort_handle());
                let reply = cx.clone();
                let finished_tx = finished_tx.clone();
                // Exactly one answer per task, once it has ended: its outcome, its panic
                // (anywhere in it, decoding and encoding included) or its cancellation. Until
                // then the parent counts it in `max_concurrent`.
                tokio::spawn(async move {
                    let outcome = match work.await {
                        Ok(outcome) => outcome,
                        Err(error) if error.is_panic() => Err(TaskFailure::Panicked(
                            crate::engine::panic_message(&*error.into_panic()),
                        )),
                        Err(_) => Err(TaskFailure::Cancelled),
                    };
                    if let Err(TellError::Encode(message)) =
                        reply.tell_async(Done { id, outcome }).await
                    {
                        // The output is larger than a message may be.
                        let outcome = Err(TaskFailure::Encode(message));
                        let _ = reply.tell_async(Done { id, outcome }).await;
                    }
                    let _ = finished_tx.send(id);
                });
            }
            ToWorker::Cancel { id } => {
                // Aborted at its next await point; its supervisor answers once it has ended.
                // (A task that already ended has answered.)
                if let Some(task) = running.get(&id) {
                    task.abort();
                }
            }
        }
    }
    for task in running.values() {
        task.abort();
    }
}

/// Where the async task `f` of one argument is (refused at compile time if it captures data).
fn plain_code<F, T, Fut>(f: &F) -> Result<TaskCode, super::PoolError>
where
    F: Fn(T) -> Fut + Copy + Send + Sync + 'static,
    T: Transferable,
    Fut: Future + Send + 'static,
    Fut::Output: Transferable,
{
    assert_can_travel!(F);
    async_task_code(
        f,
        std::any::type_name::<fn(T) -> Fut>(),
        trampoline::<F, T, Fut>,
    )
}

/// The trampoline of an async task `F` over items `T`: what a `Run` message's offset points at.
fn trampoline<F, T, Fut>(input: Vec<u8>, data: i64) -> AsyncTaskRun
where
    F: Fn(T) -> Fut + Copy + Send + Sync + 'static,
    T: Transferable,
    Fut: Future + Send + 'static,
    Fut::Output: Transferable,
{
    // SAFETY: the parent held a value of `F` when it sent this task; one that is not zero-sized
    // is sent only as the function pointer type of its signature, with `data` the offset of
    // such a function in this same executable (`async_task_code`).
    let task: F = unsafe { task_value_at::<F>(data) };
    Box::pin(async move {
        let item: T = crate::wire::decode(&input).map_err(TaskFailure::Decode)?;
        run_caught(move || task(item)).await
    })
}

/// The trampoline of an async task `F` of several arguments, over tuples of them.
fn star_trampoline<F, Args, Fut>(input: Vec<u8>, data: i64) -> AsyncTaskRun
where
    F: StarCall<Args, Future = Fut> + StarPointer<Args> + Copy + Send + Sync + 'static,
    Args: Transferable,
    Fut: Future + Send + 'static,
    Fut::Output: Transferable,
{
    // SAFETY: as in `trampoline`.
    let mut task: F = unsafe { task_value_at::<F>(data) };
    Box::pin(async move {
        let args: Args = crate::wire::decode(&input).map_err(TaskFailure::Decode)?;
        run_caught(move || task.call(args)).await
    })
}

/// Makes the task's future and runs it, a panic in either caught; encodes the output.
async fn run_caught<Fut>(make: impl FnOnce() -> Fut) -> Result<Vec<u8>, TaskFailure>
where
    Fut: Future,
    Fut::Output: Serialize,
{
    let panicked = |payload: Box<dyn std::any::Any + Send>| {
        TaskFailure::Panicked(crate::engine::panic_message(&*payload))
    };
    let future = std::panic::catch_unwind(AssertUnwindSafe(make)).map_err(panicked)?;
    let output = AssertUnwindSafe(future)
        .catch_unwind()
        .await
        .map_err(panicked)?;
    crate::wire::encode(&output).map_err(TaskFailure::Encode)
}

/// Runs async tasks in worker processes, many at once in each, at most `max_concurrent` in
/// flight across all of them. Built by [`AsyncPool::with_workers`](super::AsyncPool::with_workers).
///
/// The methods mirror [`AsyncPool`](super::AsyncPool)'s. A task travels to a worker as code,
/// like a [`Pool`](super::Pool)'s: an `async fn` item, or a closure that captures nothing,
/// returning a `Send` future; items and outputs cross processes
/// ([`Transferable`](crate::Transferable)). The calls' futures and streams run on any executor
/// (a thread per worker routes the replies); [`block_on`](Self::block_on) runs one from sync
/// code.
///
/// Dropping the last clone stops the workers (tasks still running in them are aborted).
#[derive(Clone)]
pub struct AsyncWorkerPool {
    inner: Arc<Inner>,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for AsyncWorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncWorkerPool")
            .field("workers", &self.inner.workers)
            .field("max_concurrent", &self.inner.max_concurrent)
            .field("timeout", &self.timeout)
            .finish()
    }
}

struct Inner {
    workers: usize,
    max_concurrent: usize,
    permits: Arc<Semaphore>,
    next_id: AtomicU64,
    state: Mutex<State>,
    /// Notified when a replacement worker is in place (or could not be started).
    replaced: tokio::sync::Notify,
    /// How many times Ctrl+C interrupted the pool's calls (with `graceful_ctrl_c`): a call
    /// made before the count changed ends with `Interrupted`.
    interrupts: AtomicU64,
    /// What the Ctrl+C handler holds weakly: kept alive here.
    interruptible: std::sync::OnceLock<Arc<dyn crate::signals::Interrupt>>,
}

/// What a Ctrl+C interrupts: an async pool's calls in progress.
struct Interruptible(Weak<Inner>);

impl crate::signals::Interrupt for Interruptible {
    fn interrupt(&self) {
        if let Some(inner) = self.0.upgrade() {
            inner.interrupt_calls();
        }
    }
}

impl Inner {
    /// Ends every call in progress with `Interrupted`: each task in flight is answered so and
    /// cancelled in its worker (its permit comes back when the worker has answered).
    fn interrupt_calls(&self) {
        self.interrupts.fetch_add(1, Ordering::SeqCst);
        let cancels: Vec<_> = {
            let mut state = lock(&self.state);
            let State {
                slots, in_flight, ..
            } = &mut *state;
            in_flight
                .iter_mut()
                .filter_map(|(id, entry)| {
                    let reply = entry.reply.take()?;
                    let outbox = slots[entry.slot].outbox.clone();
                    Some((*id, reply, outbox))
                })
                .collect()
        };
        for (id, reply, outbox) in cancels {
            let _ = reply.send(Err(AsyncPoolError::Interrupted { completed: 0 }));
            if let Some(outbox) = outbox {
                let _ = outbox.send(ToWorker::Cancel { id });
            }
        }
    }
}

struct State {
    slots: Vec<Slot>,
    in_flight: HashMap<u64, InFlight>,
    /// Workers being replaced: a call that finds no worker waits for them.
    restarting: usize,
}

/// One worker's place in the pool: its current process, replaced when it dies.
struct Slot {
    worker: Option<Arc<Skprocess<AsyncWorker>>>,
    /// Where messages to the worker go: its sender thread sends them (a full channel blocks
    /// that thread, never a caller's executor).
    outbox: Option<std::sync::mpsc::Sender<ToWorker>>,
    generation: u64,
    load: usize,
    /// When the current worker was installed, and how many workers in a row died soon after
    /// they started (the replacement waits longer each time; past a limit, none is started).
    started: std::time::Instant,
    quick_deaths: u32,
}

/// A task sent to a worker and not answered yet.
struct InFlight {
    slot: usize,
    generation: u64,
    index: usize,
    /// Where the answer goes; `None` once the item's future was dropped (the answer is then
    /// only awaited to free the permit).
    reply: Option<oneshot::Sender<Result<Vec<u8>, AsyncPoolError>>>,
    _permit: OwnedSemaphorePermit,
}

impl AsyncWorkerPool {
    pub(super) fn start(workers: usize, max_concurrent: usize) -> Result<Self, AsyncPoolError> {
        let workers = workers.max(1);
        let max_concurrent = max_concurrent.max(1);
        let inner = Arc::new(Inner {
            workers,
            max_concurrent,
            permits: Arc::new(Semaphore::new(max_concurrent)),
            next_id: AtomicU64::new(0),
            state: Mutex::new(State {
                slots: (0..workers)
                    .map(|_| Slot {
                        worker: None,
                        outbox: None,
                        generation: 0,
                        load: 0,
                        started: std::time::Instant::now(),
                        quick_deaths: 0,
                    })
                    .collect(),
                in_flight: HashMap::new(),
                restarting: 0,
            }),
            replaced: tokio::sync::Notify::new(),
            interrupts: AtomicU64::new(0),
            interruptible: std::sync::OnceLock::new(),
        });
        let interruptible: Arc<dyn crate::signals::Interrupt> =
            Arc::new(Interruptible(Arc::downgrade(&inner)));
        crate::signals::track(Arc::downgrade(&interruptible));
        let _ = inner.interruptible.set(interruptible);
        for slot in 0..workers {
            let worker = spawn_worker().map_err(|message| AsyncPoolError::NoWorkers { message })?;
            install(&inner, slot, worker);
        }
        Ok(AsyncWorkerPool {
            inner,
            timeout: None,
        })
    }

    /// The number of worker processes.
    pub fn workers(&self) -> usize {
        self.inner.workers
    }

    /// The process ids of the workers running now (a worker being replaced is missing).
    pub fn pids(&self) -> Vec<u32> {
        lock(&self.inner.state)
            .slots
            .iter()
            .filter_map(|slot| slot.worker.as_ref()?.pid())
            .collect()
    }

    /// The bound on tasks in flight, across all workers and calls.
    pub fn max_concurrent(&self) -> usize {
        self.inner.max_concurrent
    }

    /// The same pool (the same workers), with a deadline on each call: past it, the call's
    /// futures are dropped, its tasks aborted in their workers (which keep running), and it
    /// returns (or its stream yields) [`AsyncPoolError::Timeout`].
    pub fn timeout(&self, limit: Duration) -> AsyncWorkerPool {
        AsyncWorkerPool {
            timeout: Some(limit),
            ..self.clone()
        }
    }

    /// Runs `f(item)` for every item in the workers, and returns the results in the items'
    /// order. The first failure (a panic, a crash, the deadline) ends the call and aborts its
    /// other tasks.
    pub fn map<F, T, Fut, I>(
        &self,
        f: F,
        items: I,
    ) -> impl Future<Output = Result<Vec<Fut::Output>, AsyncPoolError>>
    + Send
    + 'static
    + use<F, T, Fut, I>
    where
        F: Fn(T) -> Fut + Copy + Send + Sync + 'static,
        T: Transferable,
        Fut: Future + Send + 'static,
        Fut::Output: Transferable,
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
    {
        let code = plain_code(&f);
        self.collect(code, items)
    }

    /// [`map`](Self::map) for functions of several arguments: each item is a tuple of them.
    pub fn starmap<F, Args, Fut, I>(
        &self,
        f: F,
        items: I,
    ) -> impl Future<Output = Result<Vec<Fut::Output>, AsyncPoolError>>
    + Send
    + 'static
    + use<F, Args, Fut, I>
    where
        F: StarCall<Args, Future = Fut> + StarPointer<Args> + Copy + Send + Sync + 'static,
        Args: Transferable,
        Fut: Future + Send + 'static,
        Fut::Output: Transferable,
        I: IntoIterator<Item = Args>,
        I::IntoIter: Send + 'static,
    {
        assert_can_travel!(F);
        let code = async_task_code(&f, F::pointer_type(), star_trampoline::<F, Args, Fut>);
        self.collect(code, items)
    }

    /// Runs `f(item)` for every item in the workers and yields the results in the items' order,
    /// each as soon as it and those before it are done.
    pub fn imap<F, T, Fut, I>(
        &self,
        f: F,
        items: I,
    ) -> impl Stream<Item = Result<Fut::Output, AsyncPoolError>> + Send + 'static + use<F, T, Fut, I>
    where
        F: Fn(T) -> Fut + Copy + Send + Sync + 'static,
        T: Transferable,
        Fut: Future + Send + 'static,
        Fut::Output: Transferable,
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
    {
        let code = plain_code(&f);
        let stream = self
            .items(code, items)
            .buffered(self.inner.max_concurrent)
            .map(|(_, result)| result);
        UntilInterrupted::new(Deadlined::new(stream, self.timeout), &self.inner)
    }

    /// Like [`imap`](Self::imap), yielding each result as soon as it is done, whatever its
    /// place.
    pub fn unordered_imap<F, T, Fut, I>(
        &self,
        f: F,
        items: I,
    ) -> impl Stream<Item = Result<Fut::Output, AsyncPoolError>> + Send + 'static + use<F, T, Fut, I>
    where
        F: Fn(T) -> Fut + Copy + Send + Sync + 'static,
        T: Transferable,
        Fut: Future + Send + 'static,
        Fut::Output: Transferable,
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
    {
        let code = plain_code(&f);
        let stream = self
            .items(code, items)
            .buffer_unordered(self.inner.max_concurrent)
            .map(|(_, result)| result);
        UntilInterrupted::new(Deadlined::new(stream, self.timeout), &self.inner)
    }

    /// Runs `future` to completion from sync code, on a new single-threaded tokio runtime:
    /// `pool.block_on(pool.map(fetch, urls))`.
    ///
    /// # Panics
    ///
    /// If called from inside a tokio runtime (use `.await` there), or if the runtime cannot be
    /// built.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        super::AsyncPool::new(1).block_on(future)
    }

    /// The results of `items` put back in order; the first error ends the call.
    fn collect<T, O, I>(
        &self,
        code: Result<TaskCode, super::PoolError>,
        items: I,
    ) -> impl Future<Output = Result<Vec<O>, AsyncPoolError>> + Send + 'static + use<T, O, I>
    where
        T: Transferable,
        O: Transferable,
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
    {
        let stream = self
            .items(code, items)
            .buffer_unordered(self.inner.max_concurrent)
            .map(|(index, result)| result.map(|value| (index, value)));
        let mut done = UntilInterrupted::new(Deadlined::new(stream, self.timeout), &self.inner);
        async move { in_order(&mut done).await }
    }

    /// One future per item, made lazily: each sends its item to a worker and decodes the
    /// output. A task that cannot travel fails every item with `Refused` (nothing is sent).
    fn items<T, O, I>(
        &self,
        code: Result<TaskCode, super::PoolError>,
        items: I,
    ) -> impl Stream<
        Item = impl Future<Output = (usize, Result<O, AsyncPoolError>)> + Send + 'static + use<T, O, I>,
    >
    + Send
    + 'static
    + use<T, O, I>
    where
        T: Transferable,
        O: Transferable,
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let code = code.map_err(|error| AsyncPoolError::Refused {
            message: error.to_string(),
        });
        stream::iter(items.into_iter().enumerate()).map(move |(index, item)| {
            let inner = Arc::clone(&inner);
            let code = code.clone();
            let input = crate::wire::encode(&item)
                .map_err(|message| AsyncPoolError::Encode { index, message });
            async move {
                let result = async {
                    let bytes = run_item(inner, code?, index, input?).await?;
                    crate::wire::decode::<O>(&bytes)
                        .map_err(|message| AsyncPoolError::Decode { index, message })
                }
                .await;
                (index, result)
            }
        })
    }
}

/// A call's stream, ended with `Interrupted` once Ctrl+C interrupted the pool after the call
/// was made (with `graceful_ctrl_c`); dropping the rest cancels its tasks.
struct UntilInterrupted<S> {
    inner: Option<std::pin::Pin<Box<S>>>,
    pool: Arc<Inner>,
    epoch: u64,
    completed: usize,
}

impl<S> UntilInterrupted<S> {
    fn new(inner: S, pool: &Arc<Inner>) -> Self {
        UntilInterrupted {
            inner: Some(Box::pin(inner)),
            epoch: pool.interrupts.load(Ordering::SeqCst),
            pool: Arc::clone(pool),
            completed: 0,
        }
    }

    fn interrupted(&mut self) -> Option<AsyncPoolError> {
        (self.pool.interrupts.load(Ordering::SeqCst) != self.epoch).then(|| {
            self.inner = None;
            AsyncPoolError::Interrupted {
                completed: self.completed,
            }
        })
    }
}

impl<S, R> Stream for UntilInterrupted<S>
where
    S: Stream<Item = Result<R, AsyncPoolError>>,
{
    type Item = Result<R, AsyncPoolError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = &mut *self;
        if this.inner.is_none() {
            return Poll::Ready(None);
        }
        if let Some(error) = this.interrupted() {
            return Poll::Ready(Some(Err(error)));
        }
        let inner = this.inner.as_mut().expect("checked above");
        match inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(item)) => {
                if let Some(error) = this.interrupted() {
                    return Poll::Ready(Some(Err(error)));
                }
                if item.is_ok() {
                    this.completed += 1;
                }
                Poll::Ready(Some(item))
            }
            Poll::Ready(None) => {
                this.inner = None;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Sends one item to the least loaded worker and waits for its answer. Nothing here blocks the
/// executor: the message goes through the worker's sender thread, which also answers for a
/// task it could not send.
async fn run_item(
    inner: Arc<Inner>,
    code: TaskCode,
    index: usize,
    input: Vec<u8>,
) -> Result<Vec<u8>, AsyncPoolError> {
    let permit = Arc::clone(&inner.permits)
        .acquire_owned()
        .await
        .expect("the pool's semaphore is never closed");
    let (reply, answer) = oneshot::channel();
    let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
    let mut permit = Some(permit);
    let mut reply = Some(reply);
    let outbox = loop {
        // Registered before the state is read, so a replacement installed in between is not
        // missed.
        let replaced = inner.replaced.notified();
        let mut replaced = std::pin::pin!(replaced);
        replaced.as_mut().enable();
        {
            let mut state = lock(&inner.state);
            let least_loaded = state
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| Some((i, s.generation, s.load, s.outbox.as_ref()?)))
                .min_by_key(|(_, _, load, _)| *load)
                .map(|(i, generation, _, outbox)| (i, generation, outbox.clone()));
            if let Some((slot, generation, outbox)) = least_loaded {
                state.slots[slot].load += 1;
                state.in_flight.insert(
                    id,
                    InFlight {
                        slot,
                        generation,
                        index,
                        reply: reply.take(),
                        _permit: permit.take().expect("taken once"),
                    },
                );
                break outbox;
            }
            if state.restarting == 0 {
                return Err(AsyncPoolError::NoWorkers {
                    message: "no worker is running (the last ones could not be restarted)".into(),
                });
            }
        }
        // Every worker is being replaced (they all died): wait for one.
        replaced.await;
    };
    // From here, dropping this future cancels the task in its worker.
    let guard = CancelOnDrop {
        inner: &inner,
        id,
        outbox: &outbox,
    };
    // A closed outbox means the sender thread is gone with its worker: the router fails the
    // task as crashed.
    let _ = outbox.send(ToWorker::Run {
        id,
        offset: code.offset,
        data: code.data,
        input,
    });
    let answer = answer.await;
    std::mem::forget(guard);
    match answer {
        Ok(result) => result,
        // The router and the sender thread always answer before they drop a sender; this is
        // only for safety.
        Err(_) => Err(AsyncPoolError::Crashed {
            index,
            message: "the worker's answer was lost".into(),
        }),
    }
}

/// Cancels an item's task in its worker when the item's future is dropped before the answer.
struct CancelOnDrop<'a> {
    inner: &'a Inner,
    id: u64,
    outbox: &'a std::sync::mpsc::Sender<ToWorker>,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        let still_running = match lock(&self.inner.state).in_flight.get_mut(&self.id) {
            Some(entry) => {
                entry.reply = None;
                true
            }
            None => false,
        };
        if still_running {
            // The permit stays taken until the worker answers (its router frees it). A worker
            // that is gone cannot answer; its router frees the permit instead.
            let _ = self.outbox.send(ToWorker::Cancel { id: self.id });
        }
    }
}

/// Sends the pool's messages to one worker, in order, waiting for room as long as
/// [`TELL_TIMEOUT`](crate::TELL_TIMEOUT) when its channel is full. A `Run` it cannot deliver
/// (the item too large, the worker taking nothing) is answered here: nothing of it ran.
fn send_to_worker(
    inner: &Weak<Inner>,
    worker: &Skprocess<AsyncWorker>,
    outbox: &std::sync::mpsc::Receiver<ToWorker>,
) {
    while let Ok(message) = outbox.recv() {
        let id = match &message {
            ToWorker::Run { id, .. } => Some(*id),
            ToWorker::Cancel { .. } => None,
        };
        let failure = match worker.tell(message) {
            Ok(()) => continue,
            // Gone: its router fails what was in flight.
            Err(TellError::Disconnected) => return,
            Err(TellError::Encode(message)) => Some((true, message)),
            Err(other) => Some((false, other.to_string())),
        };
        if let (Some(id), Some((encode, message)), Some(inner)) = (id, failure, inner.upgrade()) {
            let Some(entry) = finish(&inner, id) else {
                continue;
            };
            let index = entry.index;
            if let Some(reply) = entry.reply {
                let _ = reply.send(Err(if encode {
                    AsyncPoolError::Encode { index, message }
                } else {
                    AsyncPoolError::NotSent { index, message }
                }));
            }
        }
    }
}

/// Forgets task `id` (it was never sent) and returns its entry; dropping the entry frees its
/// permit.
fn finish(inner: &Inner, id: u64) -> Option<InFlight> {
    let mut state = lock(&inner.state);
    let entry = state.in_flight.remove(&id)?;
    state.slots[entry.slot].load -= 1;
    Some(entry)
}

/// Starts one worker process.
fn spawn_worker() -> Result<Arc<Skprocess<AsyncWorker>>, String> {
    let worker = Skprocess::new(AsyncWorker {});
    worker
        .start()
        .map_err(|e| format!("cannot start an async pool worker: {e}"))?;
    worker.leave_ctrl_c_to_owner();
    Ok(Arc::new(worker))
}

/// Puts `worker` in `slot` (a new generation) and starts its router and its sender thread.
fn install(inner: &Arc<Inner>, slot: usize, worker: Arc<Skprocess<AsyncWorker>>) {
    let (outbox, outgoing) = std::sync::mpsc::channel();
    let generation = {
        let mut state = lock(&inner.state);
        let place = &mut state.slots[slot];
        place.generation += 1;
        place.load = 0;
        place.worker = Some(Arc::clone(&worker));
        place.outbox = Some(outbox);
        place.started = std::time::Instant::now();
        place.generation
    };
    let weak = Arc::downgrade(inner);
    let routed = Arc::clone(&worker);
    let router = std::thread::Builder::new()
        .name("skprocess-async-router".into())
        .spawn(move || route(&weak, slot, generation, &routed));
    let weak = Arc::downgrade(inner);
    let sender = router.and_then(|_| {
        std::thread::Builder::new()
            .name("skprocess-async-sender".into())
            .spawn(move || send_to_worker(&weak, &worker, &outgoing))
    });
    if let Err(error) = sender {
        // Without both threads nothing would reach this worker or come back from it: stop it
        // (its router, if any, then fails what was sent and starts a replacement).
        let mut state = lock(&inner.state);
        let place = &mut state.slots[slot];
        if place.generation == generation {
            place.outbox = None;
            if let Some(worker) = place.worker.take() {
                worker.stop();
            }
        }
        drop(state);
        eprintln!("skprocess: cannot start a thread for an async pool worker: {error}");
    }
}

/// A worker that dies within this long of its start died "quickly"; a replacement waits
/// 50 ms, doubling with each quick death in a row.
const QUICK_DEATH: Duration = Duration::from_secs(2);
/// Quick deaths in a row after which a slot is left empty: a worker that cannot even start
/// would be restarted forever (calls that find no worker then fail with `NoWorkers`).
const MAX_QUICK_DEATHS: u32 = 5;

/// How long a router waits for a message before it checks that the pool still exists.
const ROUTER_POLL: Duration = Duration::from_millis(200);

/// Reads `worker`'s answers until it ends; then fails its tasks in flight and replaces it.
fn route(inner: &Weak<Inner>, slot: usize, generation: u64, worker: &Arc<Skprocess<AsyncWorker>>) {
    let why = loop {
        match worker.listen_timeout::<Done>(ROUTER_POLL) {
            Ok(Done { id, outcome }) => {
                let Some(inner) = inner.upgrade() else { return };
                answer(&inner, slot, generation, id, outcome);
            }
            Err(ListenError::Timeout) => {
                if inner.strong_count() == 0 {
                    // The pool is gone: stop this worker (dropping the handle then reaps it).
                    worker.stop();
                    return;
                }
            }
            Err(ListenError::Decode { message, .. }) => {
                // Not a message a worker sends: the worker is broken. Put it down.
                let _ = worker.kill();
                break format!("the worker sent a malformed answer ({message}) and was killed");
            }
            Err(_) => break ended(worker),
        }
    };
    let Some(inner) = inner.upgrade() else { return };
    let (failed, quick_deaths) = {
        let mut state = lock(&inner.state);
        let place = &mut state.slots[slot];
        let mut quick_deaths = 0;
        if place.generation == generation {
            place.worker = None;
            place.outbox = None;
            place.quick_deaths = if place.started.elapsed() < QUICK_DEATH {
                place.quick_deaths + 1
            } else {
                0
            };
            quick_deaths = place.quick_deaths;
        }
        state.restarting += 1;
        let ids: Vec<u64> = state
            .in_flight
            .iter()
            .filter(|(_, e)| e.slot == slot && e.generation == generation)
            .map(|(id, _)| *id)
            .collect();
        let failed: Vec<InFlight> = ids
            .iter()
            .filter_map(|id| state.in_flight.remove(id))
            .collect();
        (failed, quick_deaths)
    };
    for entry in failed {
        if let Some(reply) = entry.reply {
            let _ = reply.send(Err(AsyncPoolError::Crashed {
                index: entry.index,
                message: why.clone(),
            }));
        }
    }
    if quick_deaths < MAX_QUICK_DEATHS {
        // Not holding the pool while waiting: it may be dropped meanwhile.
        let weak = Arc::downgrade(&inner);
        drop(inner);
        if quick_deaths > 0 {
            std::thread::sleep(Duration::from_millis(50 << quick_deaths.min(6)));
        }
        let Some(inner) = weak.upgrade() else { return };
        match spawn_worker() {
            Ok(replacement) => install(&inner, slot, replacement),
            Err(message) => eprintln!("skprocess: {message}"),
        }
        lock(&inner.state).restarting -= 1;
        inner.replaced.notify_waiters();
    } else {
        eprintln!(
            "skprocess: an async pool worker died {quick_deaths} times in a row soon after it \
             started; its place stays empty"
        );
        lock(&inner.state).restarting -= 1;
        inner.replaced.notify_waiters();
    }
}

/// Why a worker ended, for the tasks it had in flight.
fn ended(worker: &Skprocess<AsyncWorker>) -> String {
    match worker.result_timeout(Duration::from_secs(5)) {
        Some(Err(error)) => format!("the worker process died: {error}"),
        Some(Ok(())) => "the worker process ended with tasks in flight".into(),
        None => "the worker process stopped answering".into(),
    }
}

/// Completes task `id` with the worker's answer (the first one; later ones are ignored).
fn answer(
    inner: &Inner,
    slot: usize,
    generation: u64,
    id: u64,
    outcome: Result<Vec<u8>, TaskFailure>,
) {
    let entry = {
        let mut state = lock(&inner.state);
        match state.in_flight.get(&id) {
            Some(entry) if entry.slot == slot && entry.generation == generation => {}
            // Answered already, or not this worker's task: ignore.
            _ => return,
        }
        let entry = state.in_flight.remove(&id).expect("checked above");
        state.slots[slot].load -= 1;
        entry
    };
    let index = entry.index;
    if let Some(reply) = entry.reply {
        let result = outcome.map_err(|failure| match failure {
            TaskFailure::Panicked(message) => AsyncPoolError::Panicked { index, message },
            TaskFailure::Decode(message) => AsyncPoolError::Decode { index, message },
            TaskFailure::Encode(message) => AsyncPoolError::Encode { index, message },
            TaskFailure::Cancelled => AsyncPoolError::Crashed {
                index,
                message: "the task was cancelled in its worker".into(),
            },
        });
        let _ = reply.send(result);
    }
    // The entry's permit is released here.
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Routers hold the worker handles; stopping the workers ends them (each router then
        // sees its worker gone, or the pool gone at its next poll, and drops the handle).
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        for slot in &state.slots {
            if let Some(worker) = &slot.worker {
                worker.stop();
            }
        }
    }
}
