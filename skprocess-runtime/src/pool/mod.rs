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

mod error;
mod scheduler;
mod task;
mod worker;

use std::collections::{BTreeMap, VecDeque};
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use self::error::{Payload, PoolError, TaskError};
pub use self::task::{TaskFn, mode};

use self::mode::{Fallible, Plain, Processes, Star, Value};
use self::scheduler::{CallSink, Chunk, DEPTH, Delivery, Next, Shared, decode_results};
use crate::asyncs::{BackgroundHandle, ThreadFuture, spawn_blocking};
use crate::lifecycle::Transferable;
use crate::wire::protocol::task_payload_len;

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
#[derive(Debug, Clone, Default)]
pub struct PoolBuilder {
    workers: Option<usize>,
    frame_limit: Option<usize>,
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

    /// Starts the workers and waits until they are all ready.
    ///
    /// # Errors
    ///
    /// [`PoolError::Spawn`] if workers cannot be started (or the frame limit is out of range).
    pub fn build(self) -> Result<Pool, PoolError> {
        let workers = self
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
            .max(1);
        let frame_limit = crate::config::check_frame_limit(
            self.frame_limit.unwrap_or(crate::DEFAULT_FRAME_LIMIT),
        )
        .map_err(|message| PoolError::Spawn(crate::ProcessError::InvalidConfig { message }))?;
        let shared = Shared::start(workers, frame_limit)?;
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
        PoolCall {
            pool: self,
            timeout: None,
            _mode: PhantomData,
        }
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
        self.call().map(task, items)
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
        self.call().unordered_map(task, items)
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
        self.call().imap(task, items)
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
        self.call().unordered_imap(task, items)
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
}

/// A pool call with modifiers: argument mode `A` and return mode `K` (see [`mode`]), and an
/// optional deadline. Built by [`Pool::star`], [`Pool::fallible`], [`Pool::processes`] and
/// [`Pool::timeout`]; modifiers compose in any order:
/// `pool.star().timeout(d).background().map(add, pairs)`.
pub struct PoolCall<'p, A, K> {
    pool: &'p Pool,
    timeout: Option<Duration>,
    _mode: PhantomData<fn() -> (A, K)>,
}

impl<A, K> std::fmt::Debug for PoolCall<'_, A, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolCall")
            .field("pool", self.pool)
            .field("timeout", &self.timeout)
            .field("mode", &std::any::type_name::<(A, K)>())
            .finish()
    }
}

impl<'p, A, K> PoolCall<'p, A, K> {
    fn with_mode<A2, K2>(self) -> PoolCall<'p, A2, K2> {
        PoolCall {
            pool: self.pool,
            timeout: self.timeout,
            _mode: PhantomData,
        }
    }

    /// Unpacks tuple items into the task's arguments.
    pub fn star(self) -> PoolCall<'p, Star, K> {
        self.with_mode()
    }

    /// Tasks return `Result<T, E>`; an `Err` fails the item with its message.
    pub fn fallible(self) -> PoolCall<'p, A, Fallible> {
        self.with_mode()
    }

    /// Tasks build process values, whose lifecycles run in the workers.
    pub fn processes(self) -> PoolCall<'p, A, Processes> {
        self.with_mode()
    }

    /// One deadline for the whole call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Runs the call on a background thread: `map` and friends return a [`BackgroundHandle`]
    /// at once; its `result()` blocks. `imap` and `unordered_imap` collect their results.
    pub fn background(self) -> BackgroundCall<A, K> {
        BackgroundCall {
            pool: self.pool.clone(),
            timeout: self.timeout,
            _mode: PhantomData,
        }
    }

    /// Makes the call a future, usable from any executor. `imap` and `unordered_imap` collect
    /// their results.
    pub fn asynced(self) -> AsyncCall<A, K> {
        AsyncCall {
            pool: self.pool.clone(),
            timeout: self.timeout,
            _mode: PhantomData,
        }
    }

    /// Applies `task` to every item; results in input order.
    ///
    /// # Errors
    ///
    /// [`PoolError::Task`] for the failed item with the lowest index (every item runs),
    /// [`PoolError::Timeout`] when the deadline passes, [`PoolError::Closed`].
    pub fn map<T, I>(
        &self,
        task: T,
        items: impl IntoIterator<Item = I>,
    ) -> Result<Vec<T::Output>, PoolError>
    where
        T: TaskFn<A, K, I>,
        I: Transferable,
    {
        let _ = task; // zero-sized: only its type travels
        run_collect::<T, A, K, I>(self.pool, items.into_iter().collect(), self.timeout, true)
    }

    /// Like [`map`](PoolCall::map), results in the order they complete.
    pub fn unordered_map<T, I>(
        &self,
        task: T,
        items: impl IntoIterator<Item = I>,
    ) -> Result<Vec<T::Output>, PoolError>
    where
        T: TaskFn<A, K, I>,
        I: Transferable,
    {
        let _ = task;
        run_collect::<T, A, K, I>(self.pool, items.into_iter().collect(), self.timeout, false)
    }

    /// A lazy iterator of results, in input order. Items are taken from `items` only as
    /// results are consumed, with a bounded number in flight, so an endless iterator works in
    /// bounded memory. Each result is `Ok(value)` or `Err` for that item; a deadline ends the
    /// iteration with [`PoolError::Timeout`].
    pub fn imap<'a, T, I>(
        &self,
        task: T,
        items: impl IntoIterator<Item = I> + 'a,
    ) -> PoolIter<'a, T::Output>
    where
        T: TaskFn<A, K, I>,
        I: Transferable,
    {
        let _ = task;
        PoolIter::new::<T, A, K, I>(self.pool, items, self.timeout, true)
    }

    /// Like [`imap`](PoolCall::imap), results in the order they complete.
    pub fn unordered_imap<'a, T, I>(
        &self,
        task: T,
        items: impl IntoIterator<Item = I> + 'a,
    ) -> PoolIter<'a, T::Output>
    where
        T: TaskFn<A, K, I>,
        I: Transferable,
    {
        let _ = task;
        PoolIter::new::<T, A, K, I>(self.pool, items, self.timeout, false)
    }
}

/// A pool call that runs on a background thread; see [`PoolCall::background`].
pub struct BackgroundCall<A, K> {
    pool: Pool,
    timeout: Option<Duration>,
    _mode: PhantomData<fn() -> (A, K)>,
}

/// A pool call that returns a future; see [`PoolCall::asynced`].
pub struct AsyncCall<A, K> {
    pool: Pool,
    timeout: Option<Duration>,
    _mode: PhantomData<fn() -> (A, K)>,
}

macro_rules! deferred_call {
    ($name:ident, $wrap:path, $ret:ident, $label:literal) => {
        impl<A, K> std::fmt::Debug for $name<A, K> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("pool", &self.pool)
                    .field("timeout", &self.timeout)
                    .finish()
            }
        }

        impl<A: 'static, K: 'static> $name<A, K> {
            /// Adds a deadline for the whole call.
            pub fn timeout(mut self, timeout: Duration) -> Self {
                self.timeout = Some(timeout);
                self
            }

            fn with_mode<A2, K2>(self) -> $name<A2, K2> {
                $name {
                    pool: self.pool,
                    timeout: self.timeout,
                    _mode: PhantomData,
                }
            }

            /// Unpacks tuple items into the task's arguments (see [`Pool::star`]).
            pub fn star(self) -> $name<Star, K> {
                self.with_mode()
            }

            /// Tasks return `Result<T, E>` (see [`Pool::fallible`]).
            pub fn fallible(self) -> $name<A, Fallible> {
                self.with_mode()
            }

            /// Tasks build process values (see [`Pool::processes`]).
            pub fn processes(self) -> $name<A, Processes> {
                self.with_mode()
            }

            /// [`PoolCall::map`], deferred.
            pub fn map<T, I>(
                self,
                task: T,
                items: impl IntoIterator<Item = I>,
            ) -> $ret<Result<Vec<T::Output>, PoolError>>
            where
                T: TaskFn<A, K, I>,
                I: Transferable,
            {
                self.run(task, items, true)
            }

            /// [`PoolCall::unordered_map`], deferred.
            pub fn unordered_map<T, I>(
                self,
                task: T,
                items: impl IntoIterator<Item = I>,
            ) -> $ret<Result<Vec<T::Output>, PoolError>>
            where
                T: TaskFn<A, K, I>,
                I: Transferable,
            {
                self.run(task, items, false)
            }

            /// [`PoolCall::imap`], deferred: the results collected in input order.
            pub fn imap<T, I>(
                self,
                task: T,
                items: impl IntoIterator<Item = I>,
            ) -> $ret<Result<Vec<T::Output>, PoolError>>
            where
                T: TaskFn<A, K, I>,
                I: Transferable,
            {
                self.run(task, items, true)
            }

            /// [`PoolCall::unordered_imap`], deferred: the results collected in completion
            /// order.
            pub fn unordered_imap<T, I>(
                self,
                task: T,
                items: impl IntoIterator<Item = I>,
            ) -> $ret<Result<Vec<T::Output>, PoolError>>
            where
                T: TaskFn<A, K, I>,
                I: Transferable,
            {
                self.run(task, items, false)
            }

            fn run<T, I>(
                self,
                task: T,
                items: impl IntoIterator<Item = I>,
                ordered: bool,
            ) -> $ret<Result<Vec<T::Output>, PoolError>>
            where
                T: TaskFn<A, K, I>,
                I: Transferable,
            {
                let _ = task;
                let items: Vec<I> = items.into_iter().collect();
                let (pool, timeout) = (self.pool, self.timeout);
                $wrap($label, move || {
                    run_collect::<T, A, K, I>(&pool, items, timeout, ordered)
                })
            }
        }
    };
}

deferred_call!(
    BackgroundCall,
    BackgroundHandle::spawn,
    BackgroundHandle,
    "skprocess-pool-background"
);
deferred_call!(
    AsyncCall,
    spawn_blocking,
    ThreadFuture,
    "skprocess-pool-async"
);

/// Decodes `count` results as the pool does (for the fuzz targets).
#[cfg(feature = "__testing")]
pub(crate) fn decode_results_for_fuzzing<O: serde::de::DeserializeOwned>(
    bytes: &[u8],
    count: usize,
) {
    decode_results::<O>(bytes, count, &mut |_, result| drop(result));
}

/// How many items of `total` go in one chunk of a `map`: a quarter of a fair share per worker,
/// so that faster workers can take more chunks.
fn chunk_size(total: usize, workers: usize) -> usize {
    total.div_ceil(workers * 4).max(1)
}

/// The most item bytes in one chunk (and never more than the frame limit allows): big items
/// travel in several chunks, so that they spread over the workers and no frame gets huge.
const CHUNK_BYTES: usize = 4 << 20;

/// The offset of task `T`, or the call's error if its code cannot travel.
fn offset_of<T, A, K, I>() -> Result<i64, PoolError>
where
    T: TaskFn<A, K, I>,
    I: Transferable,
{
    task::task_offset::<T, A, K, I>().ok_or(PoolError::TaskOutsideExecutable {
        task: std::any::type_name::<T>(),
    })
}

/// Encodes one item at the end of `bytes`. Returns its length, or its error (nothing appended):
/// it cannot be encoded, or it is too large for any frame of `limit` bytes.
fn encode_item<I: Transferable>(
    bytes: &mut Vec<u8>,
    item: &I,
    limit: u32,
) -> Result<u32, TaskError> {
    let mark = bytes.len();
    let encoded = crate::wire::codec::encode_into(bytes, item).map_err(TaskError::Encode);
    let len = bytes.len() - mark;
    let fits = task_payload_len(1, len) <= limit as usize;
    match encoded {
        Ok(()) if fits => Ok(u32::try_from(len).expect("below the frame limit")),
        Ok(()) => {
            bytes.truncate(mark);
            Err(TaskError::TooLarge {
                what: Payload::Input,
                len: len as u64,
                limit: u64::from(limit),
            })
        }
        Err(error) => Err(error),
    }
}

/// Encodes items into chunks of at most `per_chunk` items and [`CHUNK_BYTES`] (or what the
/// frame limit allows), handing each chunk to `emit` as soon as it is full (so workers start on
/// the first chunk while the rest are encoded). Items that cannot be sent are returned as
/// failures.
fn encode_chunks<I: Transferable>(
    sink: &Arc<CallSink>,
    offset: i64,
    items: Vec<I>,
    per_chunk: usize,
    limit: u32,
    emit: &mut dyn FnMut(Chunk) -> Result<(), PoolError>,
) -> Result<Vec<(usize, TaskError)>, PoolError> {
    let max_bytes = CHUNK_BYTES.min(limit as usize);
    let mut failures = Vec::new();
    let mut lengths: Vec<u32> = Vec::new();
    let mut bytes = Vec::new();
    let mut first = 0;
    // The descriptors of the buffers in the chunk being filled share its indices.
    let mut collector = Some(crate::buffer::Collector::begin());
    let mut flush = |lengths: &mut Vec<u32>,
                     bytes: &mut Vec<u8>,
                     first: usize,
                     collector: &mut Option<crate::buffer::Collector>| {
        // Finish this chunk's collection before the next one begins (they nest on the thread).
        let fds = collector
            .take()
            .map(|done| done.finish().fds)
            .unwrap_or_default();
        *collector = Some(crate::buffer::Collector::begin());
        if lengths.is_empty() {
            return Ok(());
        }
        emit(Chunk::new(
            Arc::clone(sink),
            offset,
            first,
            std::mem::take(lengths),
            std::mem::take(bytes),
            fds,
        ))
    };
    // The last item's length and the largest chunk so far: items of a call tend to be alike.
    let (mut last, mut largest) = (0usize, 0usize);
    for (index, item) in items.into_iter().enumerate() {
        // When one more item like the last would not fit, the chunk goes now: this item is then
        // encoded once, into the next chunk, rather than encoded, found too large and encoded
        // again. A new chunk's buffer starts as large as the largest so far (within the chunk
        // size), so that large items are not copied again each time it grows.
        if !lengths.is_empty()
            && task_payload_len(lengths.len() + 1, bytes.len() + last) > max_bytes
        {
            flush(&mut lengths, &mut bytes, first, &mut collector)?;
        }
        if bytes.is_empty() {
            bytes.reserve(largest.min(max_bytes));
        }
        let mark = bytes.len();
        match encode_item(&mut bytes, &item, limit) {
            Ok(len) => {
                let len = if !lengths.is_empty()
                    && task_payload_len(lengths.len() + 1, bytes.len()) > max_bytes
                {
                    // The new item does not fit with the others: they go first, and it is
                    // encoded again for the next chunk (its buffers' indices are that chunk's).
                    bytes.truncate(mark);
                    flush(&mut lengths, &mut bytes, first, &mut collector)?;
                    match encode_item(&mut bytes, &item, limit) {
                        Ok(len) => len,
                        Err(error) => {
                            failures.push((index, error));
                            continue;
                        }
                    }
                } else {
                    len
                };
                if lengths.is_empty() {
                    first = index;
                }
                (last, largest) = (len as usize, largest.max(bytes.len()));
                lengths.push(len);
                if lengths.len() == per_chunk {
                    flush(&mut lengths, &mut bytes, first, &mut collector)?;
                }
            }
            Err(error) => {
                flush(&mut lengths, &mut bytes, first, &mut collector)?;
                failures.push((index, error));
            }
        }
    }
    flush(&mut lengths, &mut bytes, first, &mut collector)?;
    drop(collector);
    Ok(failures)
}

/// Runs a whole call and collects its results (`map`, `unordered_map`, and the deferred forms).
fn run_collect<T, A, K, I>(
    pool: &Pool,
    items: Vec<I>,
    timeout: Option<Duration>,
    ordered: bool,
) -> Result<Vec<T::Output>, PoolError>
where
    T: TaskFn<A, K, I>,
    I: Transferable,
{
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let shared = &pool.inner.shared;
    let total = items.len();
    let sink = Arc::new(CallSink::default());
    let offset = offset_of::<T, A, K, I>()?;
    // A process task may leave a timed-out section's thread behind, after which its worker
    // retires: one item per chunk, so that it retires right after that item.
    let per_chunk = if T::ONE_PER_CHUNK {
        1
    } else {
        chunk_size(total, pool.workers())
    };
    let limit = shared.frame_limit();
    let submitted = encode_chunks(&sink, offset, items, per_chunk, limit, &mut |chunk| {
        shared.submit(vec![chunk])
    });
    let failures = match submitted {
        Ok(failures) => failures,
        Err(error) => {
            shared.cancel(&sink, true);
            return Err(error);
        }
    };

    // Values go straight to their place; errors (rare) to a list of their own, so that the
    // large error type does not inflate every slot.
    let mut slots: Vec<Option<T::Output>> = Vec::new();
    let mut arrived: Vec<T::Output> = Vec::new();
    let mut errors: Vec<(usize, TaskError)> = failures;
    if ordered {
        slots.resize_with(total, || None);
    }
    let mut remaining = total - errors.len();
    let mut completed = 0;
    while remaining > 0 {
        match sink.next(deadline) {
            Next::Delivery(Delivery::Done {
                first_index,
                count,
                bytes,
                start,
            }) => {
                decode_results::<T::Output>(
                    &bytes[start..],
                    count,
                    &mut |i, result| match result {
                        Ok(value) if ordered => slots[first_index + i] = Some(value),
                        Ok(value) => arrived.push(value),
                        Err(error) => errors.push((first_index + i, error)),
                    },
                );
                remaining -= count;
                completed += count;
            }
            Next::Delivery(Delivery::Crashed { index, pid, exit }) => {
                errors.push((index, TaskError::Crashed { pid, exit }));
                remaining -= 1;
                completed += 1;
            }
            Next::TimedOut => {
                shared.cancel(&sink, true);
                return Err(PoolError::Timeout {
                    timeout: timeout.unwrap_or_default(),
                    completed,
                });
            }
            Next::Interrupted => return Err(PoolError::Interrupted { completed }),
            Next::Failed(error) => {
                shared.cancel(&sink, false);
                return Err(error);
            }
        }
    }
    // The failed item with the lowest index, if any, is the call's error.
    if let Some(position) = errors
        .iter()
        .enumerate()
        .min_by_key(|(_, (index, _))| *index)
        .map(|(position, _)| position)
    {
        let (index, error) = errors.swap_remove(position);
        return Err(PoolError::Task { index, error });
    }
    if ordered {
        Ok(slots
            .into_iter()
            .map(|slot| slot.expect("every item has a result"))
            .collect())
    } else {
        Ok(arrived)
    }
}

/// Takes the next item from the input and encodes it: its index, and its length and bytes (or
/// why it cannot be encoded).
type Feed<'a> = dyn FnMut() -> Option<(usize, Result<EncodedItem, TaskError>)> + 'a;

/// One encoded item: its length, its bytes and the descriptors of the buffers in it.
type EncodedItem = (u32, Vec<u8>, Vec<std::os::fd::OwnedFd>);

/// Lazy results of `imap` or `unordered_imap`. Each item is `Ok(value)` or the item's error;
/// after a deadline or a pool failure, one `Err` and then the end. Dropping the iterator early
/// cancels what it had in flight.
pub struct PoolIter<'a, O> {
    pool: Pool,
    sink: Arc<CallSink>,
    feed: Box<Feed<'a>>,
    /// The task's offset, or its type name if its code cannot travel (the iteration then ends
    /// with that error at once).
    offset: Result<i64, &'static str>,
    ordered: bool,
    window: usize,
    in_flight: usize,
    exhausted: bool,
    finished: bool,
    next_index: usize,
    buffered: BTreeMap<usize, Result<O, TaskError>>,
    ready: VecDeque<(usize, Result<O, TaskError>)>,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    completed: usize,
}

impl<O> std::fmt::Debug for PoolIter<'_, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolIter")
            .field("ordered", &self.ordered)
            .field("in_flight", &self.in_flight)
            .field("completed", &self.completed)
            .finish_non_exhaustive()
    }
}

impl<'a, O: Transferable> PoolIter<'a, O> {
    fn new<T, A, K, I>(
        pool: &Pool,
        items: impl IntoIterator<Item = I> + 'a,
        timeout: Option<Duration>,
        ordered: bool,
    ) -> PoolIter<'a, O>
    where
        T: TaskFn<A, K, I, Output = O>,
        I: Transferable,
    {
        let mut items = items.into_iter().enumerate();
        let limit = pool.inner.shared.frame_limit();
        let feed = move || {
            let (index, item) = items.next()?;
            let mut bytes = Vec::new();
            let (encoded, outgoing) =
                crate::buffer::collecting(|| encode_item(&mut bytes, &item, limit));
            Some((index, encoded.map(|len| (len, bytes, outgoing.fds))))
        };
        PoolIter {
            pool: pool.clone(),
            sink: Arc::new(CallSink::default()),
            feed: Box::new(feed),
            offset: task::task_offset::<T, A, K, I>().ok_or(std::any::type_name::<T>()),
            ordered,
            window: pool.workers() * DEPTH * 2,
            in_flight: 0,
            exhausted: false,
            finished: false,
            next_index: 0,
            buffered: BTreeMap::new(),
            ready: VecDeque::new(),
            timeout,
            deadline: timeout.and_then(|t| Instant::now().checked_add(t)),
            completed: 0,
        }
    }

    fn push(&mut self, index: usize, result: Result<O, TaskError>) {
        if self.ordered {
            self.buffered.insert(index, result);
        } else {
            self.ready.push_back((index, result));
        }
    }

    fn top_up(&mut self) -> Result<(), PoolError> {
        let offset = self
            .offset
            .map_err(|task| PoolError::TaskOutsideExecutable { task })?;
        // Results waiting behind a slow item count against the window too, so that memory stays
        // bounded whatever order results arrive in.
        while self.in_flight + self.buffered.len() < self.window && !self.exhausted {
            match (self.feed)() {
                None => self.exhausted = true,
                Some((index, Err(error))) => self.push(index, Err(error)),
                Some((index, Ok((len, bytes, fds)))) => {
                    let chunk =
                        Chunk::new(Arc::clone(&self.sink), offset, index, vec![len], bytes, fds);
                    self.pool.inner.shared.submit(vec![chunk])?;
                    self.in_flight += 1;
                }
            }
        }
        Ok(())
    }

    fn take_ready(&mut self) -> Option<(usize, Result<O, TaskError>)> {
        if self.ordered {
            let result = self.buffered.remove(&self.next_index)?;
            self.next_index += 1;
            Some((self.next_index - 1, result))
        } else {
            self.ready.pop_front()
        }
    }

    fn end(&mut self, error: PoolError) -> Option<Result<O, PoolError>> {
        self.finished = true;
        Some(Err(error))
    }
}

impl<O: Transferable> Iterator for PoolIter<'_, O> {
    type Item = Result<O, PoolError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        loop {
            if let Err(error) = self.top_up() {
                return self.end(error);
            }
            if let Some((index, result)) = self.take_ready() {
                return Some(result.map_err(|error| PoolError::Task { index, error }));
            }
            if self.in_flight == 0 && self.exhausted {
                self.finished = true;
                return None;
            }
            match self.sink.next(self.deadline) {
                Next::Delivery(Delivery::Done {
                    first_index,
                    count,
                    bytes,
                    start,
                }) => {
                    decode_results::<O>(&bytes[start..], count, &mut |i, result| {
                        self.push(first_index + i, result);
                    });
                    self.in_flight -= count;
                    self.completed += count;
                }
                Next::Delivery(Delivery::Crashed { index, pid, exit }) => {
                    self.push(index, Err(TaskError::Crashed { pid, exit }));
                    self.in_flight -= 1;
                    self.completed += 1;
                }
                Next::TimedOut => {
                    self.pool.inner.shared.cancel(&self.sink, true);
                    let error = PoolError::Timeout {
                        timeout: self.timeout.unwrap_or_default(),
                        completed: self.completed,
                    };
                    return self.end(error);
                }
                Next::Interrupted => {
                    let completed = self.completed;
                    return self.end(PoolError::Interrupted { completed });
                }
                Next::Failed(error) => return self.end(error),
            }
        }
    }
}

impl<O> Drop for PoolIter<'_, O> {
    fn drop(&mut self) {
        if !self.finished || self.in_flight > 0 {
            self.pool.inner.shared.cancel(&self.sink, false);
        }
    }
}
