//! A pool of worker processes: `map`, `imap` and their unordered variants over tasks, with
//! `star()`, `fallible()`, `processes()` and the `timeout`, `background` and `asynced`
//! modifiers, composing as in the original.
//!
//! ```
//! use skprocess::pool::Pool;
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! fn main() -> Result<(), skprocess::pool::PoolError> {
//!     let pool = Pool::new(2)?;
//!     assert_eq!(pool.map(square, 1..=5)?, vec![1, 4, 9, 16, 25]);
//!     let words = pool.map(|s: String| s.len(), ["a".to_string(), "bcd".to_string()])?;
//!     assert_eq!(words, vec![1, 3]);
//!     Ok(())
//! }
//! ```
//!
//! Workers are started once, when the pool is built, and reused by every call. Each call cuts
//! its items into chunks; each worker holds two chunks at a time (the one it runs and the next),
//! so a worker never waits for the parent between chunks. Several threads (and several
//! concurrent calls) may share one pool.
//!
//! A task is a `fn` item or a closure that captures nothing: it travels to the worker as a
//! code address, checked to be zero-sized at compile time (see the book's "How it works" for
//! why this is safe). Data goes in the items.
//!
//! # Errors and crashes
//!
//! An item that panics (or, with [`fallible`](Pool::fallible), returns `Err`) fails the call
//! with that item's index and message; the pool stays usable. A worker that dies (abort,
//! segfault, SIGKILL, a panic inside an `extern "C"` function) is replaced: the item it was
//! running is reported as [`TaskError::Crashed`], and every other item it held goes to another
//! worker. No item is lost or delivered twice. (An item whose result had not yet been reported
//! when its worker died may run again.)
//!
//! # Deadlines
//!
//! [`Pool::timeout`] sets one deadline for the whole call, for every method. When it passes,
//! the call returns [`PoolError::Timeout`]; workers running one of its items are killed and
//! replaced, items of other calls they held are given to other workers, and items of the call
//! that had not started are dropped. `imap` with a deadline yields the results that arrived in
//! time, then the timeout error.

mod async_pool;
#[cfg(feature = "tokio")]
mod async_workers;
mod call;
mod chunks;
mod error;
mod iter;
pub(crate) mod progress;
mod scheduler;
mod submit;
mod task;
mod worker;

use std::sync::Arc;
use std::time::Duration;

pub use self::async_pool::{AsyncPool, AsyncPoolError, StarCall};
#[cfg(feature = "tokio")]
pub use self::async_workers::AsyncWorkerPool;
pub use self::call::{AsyncCall, BackgroundCall, PoolCall};
pub use self::error::{Payload, PoolError, TaskError};
pub use self::iter::PoolIter;
#[cfg(feature = "nats")]
pub(crate) use self::iter::Stopper;
pub use self::progress::Progress;
pub use self::submit::{AsCompleted, TaskFuture, TaskHandle, as_completed};
pub use self::task::{TaskFn, mode};

use self::call::CallOptions;
use self::mode::{Fallible, Plain, Processes, Star, Value};
#[cfg(feature = "__testing")]
use self::scheduler::decode_results;
use self::scheduler::{Shared, WorkerSettings};
use crate::lifecycle::Transferable;

/// A pool of worker processes. Cheap to clone (clones share the workers); the workers end when
/// the last clone is dropped, closed or terminated.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    workers: usize,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Nothing can be running on the pool (every call holds a clone): let the workers go.
        self.shared.shut_down(Duration::from_secs(1));
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("workers", &self.inner.workers)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Pool`]: `PoolBuilder::new().workers(4).build()?`.
#[derive(Debug, Default)]
pub struct PoolBuilder {
    workers: Option<usize>,
    frame_limit: Option<usize>,
    settings: WorkerSettings,
    /// An initializer that cannot travel (reported by `build`).
    refused: Option<PoolError>,
}

impl PoolBuilder {
    /// A builder with the default worker count (the number of CPUs).
    pub fn new() -> PoolBuilder {
        PoolBuilder::default()
    }

    /// Sets the number of worker processes (at least 1).
    pub fn workers(mut self, workers: usize) -> PoolBuilder {
        self.workers = Some(workers);
        self
    }

    /// Sets the largest message, in bytes, between the pool and a worker (default
    /// [`DEFAULT_FRAME_LIMIT`](crate::DEFAULT_FRAME_LIMIT), 1 GiB; at least 64 KiB). Chunks of
    /// items are cut to fit it; an item or a result that does not fit on its own is that
    /// item's [`TaskError::TooLarge`], and the call carries on with the others.
    pub fn frame_limit(mut self, bytes: usize) -> PoolBuilder {
        self.frame_limit = Some(bytes);
        self
    }

    /// Runs `init` once in each worker, before its first task, and keeps what it returns as
    /// the worker's state, which tasks reach through [`Pool::with_state`]: the place for a
    /// database connection, a loaded model, a cache. `init` is a `fn` item, a function pointer
    /// or a closure that captures nothing (like a task); it runs again in each worker that
    /// replaces one (after a crash, a deadline, or retirement).
    ///
    /// ```
    /// use skprocess::pool::{Pool, PoolError};
    ///
    /// struct Model {
    ///     weight: f64,
    /// }
    ///
    /// fn load() -> Model {
    ///     Model { weight: 2.5 } // read a file, connect to a database...
    /// }
    ///
    /// fn predict(model: &mut Model, x: f64) -> f64 {
    ///     model.weight * x
    /// }
    ///
    /// fn main() -> Result<(), PoolError> {
    ///     let pool = Pool::builder().workers(2).initializer(load).build()?;
    ///     assert_eq!(pool.with_state().map(predict, [1.0, 2.0])?, vec![2.5, 5.0]);
    ///     Ok(())
    /// }
    /// ```
    pub fn initializer<F, S>(mut self, init: F) -> PoolBuilder
    where
        F: Fn() -> S + Copy + Send + Sync + 'static,
        S: 'static,
    {
        task::assert_can_travel!(F);
        self.set_init(task::init_code(&init));
        self
    }

    /// Like [`initializer`](Self::initializer), for an initializer that may fail: an `Err`
    /// (or a panic) in any worker closes the pool with [`PoolError::Initializer`], naming it;
    /// [`build`](Self::build) returns that error when it happens in the first workers. No
    /// worker is started again (there is no endless respawn loop).
    pub fn try_initializer<F, S, E>(mut self, init: F) -> PoolBuilder
    where
        F: Fn() -> Result<S, E> + Copy + Send + Sync + 'static,
        S: 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    {
        task::assert_can_travel!(F);
        self.set_init(task::try_init_code(&init));
        self
    }

    fn set_init(&mut self, code: Result<task::InitCode, PoolError>) {
        match code {
            Ok(code) => self.settings.init = Some(code),
            Err(error) => self.refused = Some(error),
        }
    }

    /// Retires each worker after it ran `tasks` items (at least 1), and starts a fresh one in
    /// its place (Python's `maxtasksperchild`): for tasks that leak memory or other resources.
    /// No item is lost; chunks are cut so that no worker runs more than `tasks` items.
    pub fn max_tasks_per_worker(mut self, tasks: usize) -> PoolBuilder {
        self.settings.max_tasks = Some(tasks.max(1));
        self
    }

    /// Retires a worker when its resident memory exceeds `bytes` after a chunk of items (the
    /// worker checks between chunks, so one chunk may take it above the limit), and starts a
    /// fresh one in its place. No item is lost.
    pub fn max_worker_memory(mut self, bytes: u64) -> PoolBuilder {
        self.settings.max_memory = Some(bytes);
        self
    }

    /// Starts the workers and waits until they are all ready (with an initializer, until it
    /// ran in each of them).
    ///
    /// # Errors
    ///
    /// [`PoolError::Spawn`] if workers cannot be started (or the frame limit is out of range),
    /// [`PoolError::Initializer`] if the initializer failed in one of them,
    /// [`PoolError::TaskCapturesData`] or [`PoolError::TaskOutsideExecutable`] for an
    /// initializer that cannot travel.
    pub fn build(self) -> Result<Pool, PoolError> {
        if let Some(error) = self.refused {
            return Err(error);
        }
        let workers = self
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
            .max(1);
        let frame_limit = crate::config::check_frame_limit(
            self.frame_limit.unwrap_or(crate::DEFAULT_FRAME_LIMIT),
        )
        .map_err(|message| PoolError::Spawn(crate::ProcessError::InvalidConfig { message }))?;
        let shared = Shared::start(workers, frame_limit, self.settings)?;
        Ok(Pool {
            inner: Arc::new(Inner { shared, workers }),
        })
    }
}

impl Pool {
    /// Starts a pool of `workers` processes (at least 1) and waits until they are ready.
    ///
    /// # Errors
    ///
    /// [`PoolError::Spawn`] if workers cannot be started.
    pub fn new(workers: usize) -> Result<Pool, PoolError> {
        PoolBuilder::new().workers(workers).build()
    }

    /// A builder, for the default worker count or other settings.
    pub fn builder() -> PoolBuilder {
        PoolBuilder::new()
    }

    /// The number of worker processes.
    pub fn workers(&self) -> usize {
        self.inner.workers
    }

    /// The plain call: `f(item)`, the return value is the result.
    fn call(&self) -> PoolCall<'_, Plain, Value> {
        PoolCall::new(self)
    }

    /// Unpacks tuple items into the task's arguments: `pool.star().map(add, [(1, 2), (3, 4)])`.
    pub fn star(&self) -> PoolCall<'_, Star, Value> {
        self.call().star()
    }

    /// Tasks return `Result<T, E>`; an `Err` fails the item with its message.
    pub fn fallible(&self) -> PoolCall<'_, Plain, Fallible> {
        self.call().fallible()
    }

    /// Tasks build a process value (`DataTransformer::new`); its whole lifecycle runs in the
    /// worker, and the item's result is what the process delivers (`__result__`'s value, or
    /// `__error__`'s), as for a standalone process.
    pub fn processes(&self) -> PoolCall<'_, Plain, Processes> {
        self.call().processes()
    }

    /// One deadline for the whole call (see the [module docs](self#deadlines)).
    pub fn timeout(&self, timeout: Duration) -> PoolCall<'_, Plain, Value> {
        self.call().timeout(timeout)
    }

    /// Tasks take the worker's state (built by the pool's
    /// [`initializer`](PoolBuilder::initializer)) as their first argument:
    /// `pool.with_state().map(predict, inputs)` runs `predict(&mut state, item)`.
    pub fn with_state<S>(&self) -> PoolCall<'_, mode::State<S>, Value> {
        self.call().with_state()
    }

    /// Sends items to the workers `size` at a time; see [`PoolCall::chunk_size`].
    pub fn chunk_size(&self, size: usize) -> PoolCall<'_, Plain, Value> {
        self.call().chunk_size(size)
    }

    /// Reports the call's progress to `callback`; see [`PoolCall::progress`].
    pub fn progress(
        &self,
        callback: impl Fn(Progress) + Send + Sync + 'static,
    ) -> PoolCall<'_, Plain, Value> {
        self.call().progress(callback)
    }

    /// Shows the call's progress as a terminal progress bar; see [`PoolCall::progress_bar`].
    #[cfg(feature = "indicatif")]
    pub fn progress_bar(&self) -> PoolCall<'_, Plain, Value> {
        self.call().progress_bar()
    }

    /// Runs the call on a background thread; see [`PoolCall::background`].
    pub fn background(&self) -> BackgroundCall<Plain, Value> {
        self.call().background()
    }

    /// Makes the call a future; see [`PoolCall::asynced`].
    pub fn asynced(&self) -> AsyncCall<Plain, Value> {
        self.call().asynced()
    }

    /// Applies `task` to every item; results in input order.
    ///
    /// # Errors
    ///
    /// [`PoolError::Task`] for the failed item with the lowest index (after every item ran),
    /// [`PoolError::Closed`] on a closed pool.
    pub fn map<T, I>(
        &self,
        task: T,
        items: impl IntoIterator<Item = I>,
    ) -> Result<Vec<T::Output>, PoolError>
    where
        T: TaskFn<Plain, Value, I>,
        I: Transferable,
    {
        task::assert_can_travel!(T);
        self.call().collect(task, items, true)
    }

    /// Like [`map`](Pool::map), results in the order they complete.
    pub fn unordered_map<T, I>(
        &self,
        task: T,
        items: impl IntoIterator<Item = I>,
    ) -> Result<Vec<T::Output>, PoolError>
    where
        T: TaskFn<Plain, Value, I>,
        I: Transferable,
    {
        task::assert_can_travel!(T);
        self.call().collect(task, items, false)
    }

    /// A lazy iterator of results in input order; see [`PoolCall::imap`].
    pub fn imap<'a, T, I>(
        &self,
        task: T,
        items: impl IntoIterator<Item = I> + 'a,
    ) -> PoolIter<'a, T::Output>
    where
        T: TaskFn<Plain, Value, I>,
        I: Transferable,
    {
        task::assert_can_travel!(T);
        self.call().iter(task, items, true)
    }

    /// A lazy iterator of results in completion order; see [`PoolCall::unordered_imap`].
    pub fn unordered_imap<'a, T, I>(
        &self,
        task: T,
        items: impl IntoIterator<Item = I> + 'a,
    ) -> PoolIter<'a, T::Output>
    where
        T: TaskFn<Plain, Value, I>,
        I: Transferable,
    {
        task::assert_can_travel!(T);
        self.call().iter(task, items, false)
    }

    /// The process ids of the live workers (a worker that died and is being replaced is not
    /// listed).
    pub fn pids(&self) -> Vec<u32> {
        self.inner.shared.pids()
    }

    /// Waits for every call in progress, then ends the workers and reaps them. Later calls
    /// fail with [`PoolError::Closed`].
    pub fn close(&self) {
        self.inner.shared.wait_idle();
        self.inner.shared.shut_down(Duration::from_secs(5));
    }

    /// Kills the workers now. Calls in progress fail with [`PoolError::Closed`].
    pub fn terminate(&self) {
        self.inner.shared.shut_down(Duration::ZERO);
    }

    /// Submits `task(item)` and returns its [`TaskHandle`] at once (see
    /// [`PoolCall::submit`]): `pool.submit(square, 7).result()?`.
    pub fn submit<T, I>(&self, task: T, item: I) -> TaskHandle<T::Output>
    where
        T: TaskFn<Plain, Value, I>,
        I: Transferable,
    {
        task::assert_can_travel!(T);
        self.call().submit_checked(task, item)
    }
}

/// Decodes `count` results as the pool does (for the fuzz targets).
#[cfg(feature = "__testing")]
pub(crate) fn decode_results_for_fuzzing<O: serde::de::DeserializeOwned>(
    bytes: &[u8],
    count: usize,
) {
    decode_results::<O>(bytes, count, &mut |_, result| drop(result));
}
