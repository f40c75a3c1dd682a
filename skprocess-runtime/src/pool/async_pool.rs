//! `AsyncPool`: many async tasks at once in the calling task, at most `max_concurrent` in flight.
//!
//! This is the design notes' in-process mode: no worker processes, one event loop (the
//! caller's), so it suits I/O-bound work (requests, queries) whose futures mostly wait. The
//! futures are polled by the call's own future, so it runs on any executor; with the `tokio`
//! feature, [`AsyncPool::block_on`] runs a call from sync code.
//!
//! Items are turned into futures lazily, as slots free up: an endless iterator stays bounded
//! in memory. A deadline ([`AsyncPool::timeout`]) runs from the call (`map(..)`, `imap(..)`)
//! and drops every future of the call when it passes (cancellation at their next await point):
//! the call returns [`AsyncPoolError::Timeout`], and nothing finished after the deadline is
//! handed out. A task that panics is caught: `map` returns [`AsyncPoolError::Panicked`] naming
//! the item as soon as it happens (and drops the other futures); the streams yield the error
//! for that item and carry on.
//!
//! The tasks make progress while the call's future or stream is polled: a stream from `imap`
//! whose consumer awaits something else between items holds its tasks still meanwhile (their
//! deadline keeps running). Consume it promptly, use `map`, or give the stream a task of its
//! own.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::Stream;
use futures_util::future::FutureExt;
use futures_util::stream::{self, StreamExt};

use crate::timing::timer_thread::{Sleep, sleep_until};

/// How an [`AsyncPool`] call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AsyncPoolError {
    /// The call's deadline passed; its futures were dropped.
    #[error("the async pool call did not finish within {}s", crate::sync::fmt_secs(*limit))]
    Timeout {
        /// The deadline.
        limit: Duration,
    },
    /// The task of item `index` panicked.
    #[error("the task of item {index} panicked: {message}")]
    Panicked {
        /// The item's position in the input.
        index: usize,
        /// The panic's message.
        message: String,
    },
    /// The worker process running the task of item `index` died (or was cancelled under it)
    /// before the task finished (`AsyncPool::with_workers`). Every task in flight on that
    /// worker gets this error; none is run again (it may have had effects).
    #[error("the worker running the task of item {index} died: {message}")]
    Crashed {
        /// The item's position in the input.
        index: usize,
        /// How the worker ended.
        message: String,
    },
    /// The task of item `index` could not be handed to a worker process (its channel stayed
    /// full for [`TELL_TIMEOUT`](crate::TELL_TIMEOUT): the worker is paused or overloaded).
    /// Nothing of it ran.
    #[error("the task of item {index} could not be handed to a worker: {message}")]
    NotSent {
        /// The item's position in the input.
        index: usize,
        /// Why.
        message: String,
    },
    /// Item `index` (or its task's output) could not be encoded, or was larger than the
    /// frame limit (`AsyncPool::with_workers`).
    #[error("item {index} could not be encoded: {message}")]
    Encode {
        /// The item's position in the input.
        index: usize,
        /// Why.
        message: String,
    },
    /// Item `index` (or its task's output) did not decode on the other side.
    #[error("item {index} did not decode: {message}")]
    Decode {
        /// The item's position in the input.
        index: usize,
        /// Why.
        message: String,
    },
    /// The task cannot travel to a worker process (it captures data, or its code is outside
    /// the executable). Nothing was sent.
    #[error("{message}")]
    Refused {
        /// Why.
        message: String,
    },
    /// The call was interrupted by Ctrl+C (with [`graceful_ctrl_c`](crate::graceful_ctrl_c)
    /// on; `AsyncPool::with_workers`): its tasks were cancelled in their workers, which keep
    /// running; the pool stays usable.
    #[error("async pool call interrupted ({completed} items completed)")]
    Interrupted {
        /// How many items had completed.
        completed: usize,
    },
    /// No worker process could be started (or restarted).
    #[error("{message}")]
    NoWorkers {
        /// Why.
        message: String,
    },
}

/// Runs async tasks over items, at most `max_concurrent` at a time, in the calling task.
///
/// ```
/// use skprocess::pool::AsyncPool;
///
/// async fn double(x: u64) -> u64 {
///     skprocess::timing::sleep_async(0.001).await; // a request, say
///     x * 2
/// }
///
/// let pool = AsyncPool::new(50);
/// let doubled = futures::executor::block_on(pool.map(double, 0..200)).unwrap();
/// assert_eq!(doubled, (0..200).map(|x| x * 2).collect::<Vec<_>>());
/// ```
#[derive(Clone, Debug)]
pub struct AsyncPool {
    max_concurrent: usize,
    timeout: Option<Duration>,
}

impl AsyncPool {
    /// A pool running at most `max_concurrent` tasks at once (at least 1).
    pub fn new(max_concurrent: usize) -> AsyncPool {
        AsyncPool {
            max_concurrent: max_concurrent.max(1),
            timeout: None,
        }
    }

    /// The bound on tasks in flight.
    pub fn max_concurrent(&self) -> usize {
        self.max_concurrent
    }

    /// The same pool, with a deadline on each call: past it, the call's futures are dropped
    /// and it returns (or its stream yields) [`AsyncPoolError::Timeout`].
    pub fn timeout(&self, limit: Duration) -> AsyncPool {
        AsyncPool {
            timeout: Some(limit),
            ..self.clone()
        }
    }

    /// Runs `f(item)` for every item, and returns the results in the items' order.
    ///
    /// The future borrows nothing from the pool: it can be spawned.
    pub fn map<T, F, Fut, I>(
        &self,
        f: F,
        items: I,
    ) -> impl Future<Output = Result<Vec<Fut::Output>, AsyncPoolError>> + use<T, F, Fut, I>
    where
        I: IntoIterator<Item = T>,
        F: FnMut(T) -> Fut,
        Fut: Future,
    {
        // Finished in any order (each with its index), under the call's deadline, which starts
        // now.
        let mut done = Deadlined::new(
            tasks(f, items)
                .map(|task| task.map(|(index, result)| result.map(|value| (index, value))))
                .buffer_unordered(self.max_concurrent),
            self.timeout,
        );
        async move { in_order(&mut done).await }
    }

    /// [`map`](Self::map) for functions of several arguments: each item is a tuple of them.
    pub fn starmap<Args, F, I>(
        &self,
        mut f: F,
        items: I,
    ) -> impl Future<Output = Result<Vec<<F::Future as Future>::Output>, AsyncPoolError>> + use<Args, F, I>
    where
        I: IntoIterator<Item = Args>,
        F: StarCall<Args>,
    {
        self.map(move |args| f.call(args), items)
    }

    /// Runs `f(item)` for every item and yields the results in the items' order, each as soon
    /// as it and those before it are done. At most `max_concurrent` tasks are in flight, and
    /// results wait in order only within that window.
    pub fn imap<T, F, Fut, I>(
        &self,
        f: F,
        items: I,
    ) -> impl Stream<Item = Result<Fut::Output, AsyncPoolError>> + use<T, F, Fut, I>
    where
        I: IntoIterator<Item = T>,
        F: FnMut(T) -> Fut,
        Fut: Future,
    {
        Deadlined::new(
            tasks(f, items)
                .map(|task| task.map(|(_, result)| result))
                .buffered(self.max_concurrent),
            self.timeout,
        )
    }

    /// Like [`imap`](Self::imap), yielding each result as soon as it is done, whatever its
    /// place.
    pub fn unordered_imap<T, F, Fut, I>(
        &self,
        f: F,
        items: I,
    ) -> impl Stream<Item = Result<Fut::Output, AsyncPoolError>> + use<T, F, Fut, I>
    where
        I: IntoIterator<Item = T>,
        F: FnMut(T) -> Fut,
        Fut: Future,
    {
        Deadlined::new(
            tasks(f, items)
                .map(|task| task.map(|(_, result)| result))
                .buffer_unordered(self.max_concurrent),
            self.timeout,
        )
    }

    /// A pool of `workers` worker processes (at least 1), each running many tasks at once on
    /// its own tokio runtime, at most `max_concurrent` tasks in flight across all of them: for
    /// async work that also needs CPU, or isolation from the caller (see
    /// [`AsyncWorkerPool`](super::AsyncWorkerPool)). Starts the worker processes and returns; the first tasks wait for
    /// a worker that is still starting.
    ///
    /// # Errors
    ///
    /// [`AsyncPoolError::NoWorkers`] when a worker process cannot be started.
    #[cfg(feature = "tokio")]
    pub fn with_workers(
        workers: usize,
        max_concurrent: usize,
    ) -> Result<super::AsyncWorkerPool, AsyncPoolError> {
        super::AsyncWorkerPool::start(workers, max_concurrent)
    }

    /// Runs `future` to completion from sync code, on a new single-threaded tokio runtime with
    /// its I/O and timers enabled: the design notes' context form,
    /// `pool.block_on(pool.map(fetch, urls))`.
    ///
    /// # Panics
    ///
    /// If called from inside a tokio runtime (use `.await` there), or if the runtime cannot be
    /// built.
    #[cfg(feature = "tokio")]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("cannot build a tokio runtime")
            .block_on(future)
    }
}

/// Puts the results of a call, finished in any order with their indices, back in the items'
/// order; the first error (a panic, a crash, the deadline) ends the call.
pub(super) async fn in_order<S, R>(done: &mut S) -> Result<Vec<R>, AsyncPoolError>
where
    S: Stream<Item = Result<(usize, R), AsyncPoolError>> + Unpin,
{
    let mut results: Vec<Option<R>> = Vec::new();
    while let Some(result) = done.next().await {
        let (index, value) = result?;
        if results.len() <= index {
            results.resize_with(index + 1, || None);
        }
        results[index] = Some(value);
    }
    Ok(results
        .into_iter()
        .map(|r| r.expect("every item's result arrived"))
        .collect())
}

/// The items' tasks, created lazily, each caught if it panics.
fn tasks<T, F, Fut, I>(
    mut f: F,
    items: I,
) -> impl Stream<Item = impl Future<Output = (usize, Result<Fut::Output, AsyncPoolError>)>>
+ use<T, F, Fut, I>
where
    I: IntoIterator<Item = T>,
    F: FnMut(T) -> Fut,
    Fut: Future,
{
    stream::iter(items.into_iter().enumerate()).map(move |(index, item)| {
        // Creating the future runs user code too (the body of a plain `fn` up to its
        // first await is not, but a closure's may be).
        let made = std::panic::catch_unwind(AssertUnwindSafe(|| f(item)));
        async move {
            let result = match made {
                Ok(future) => AssertUnwindSafe(future)
                    .catch_unwind()
                    .await
                    .map_err(|payload| panicked(index, &*payload)),
                Err(payload) => Err(panicked(index, &*payload)),
            };
            (index, result)
        }
    })
}

fn panicked(index: usize, payload: &(dyn std::any::Any + Send)) -> AsyncPoolError {
    AsyncPoolError::Panicked {
        index,
        message: crate::engine::panic_message(payload),
    }
}

/// A call's deadline: fixed when the call is made; the timer only wakes the task at it.
#[derive(Debug)]
struct Deadline {
    at: Instant,
    limit: Duration,
    timer: Sleep,
}

impl Deadline {
    fn starting_now(limit: Option<Duration>) -> Option<Deadline> {
        let limit = limit?;
        // A deadline past what `Instant` holds is, in practice, never.
        let at = Instant::now().checked_add(limit)?;
        Some(Deadline {
            at,
            limit,
            timer: sleep_until(at),
        })
    }

    fn has_passed(&self) -> bool {
        Instant::now() >= self.at
    }

    /// Whether it has passed; if not, the task is woken when it does.
    fn passed(&mut self, cx: &mut Context<'_>) -> bool {
        self.has_passed() || Pin::new(&mut self.timer).poll(cx).is_ready()
    }

    fn error(&self) -> AsyncPoolError {
        AsyncPoolError::Timeout { limit: self.limit }
    }
}

/// A stream that ends with `Timeout` once its deadline passes, dropping the rest: nothing that
/// finished after the deadline is handed out.
pub(super) struct Deadlined<S> {
    inner: Option<Pin<Box<S>>>,
    deadline: Option<Deadline>,
}

impl<S> Deadlined<S> {
    pub(super) fn new(inner: S, limit: Option<Duration>) -> Deadlined<S> {
        Deadlined {
            inner: Some(Box::pin(inner)),
            deadline: Deadline::starting_now(limit),
        }
    }
}

impl<S, R> Stream for Deadlined<S>
where
    S: Stream<Item = Result<R, AsyncPoolError>>,
{
    type Item = Result<R, AsyncPoolError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if let Some(deadline) = &this.deadline
            && deadline.has_passed()
        {
            // Dropping the inner stream drops every future in flight.
            this.inner = None;
            return Poll::Ready(Some(Err(deadline.error())));
        }
        if let Poll::Ready(item) = inner.as_mut().poll_next(cx) {
            if item.is_none() {
                this.inner = None;
                this.deadline = None;
            }
            return Poll::Ready(item);
        }
        if let Some(deadline) = this.deadline.as_mut()
            && deadline.passed(cx)
        {
            this.inner = None;
            return Poll::Ready(Some(Err(deadline.error())));
        }
        Poll::Pending
    }
}

impl<S> fmt::Debug for Deadlined<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deadlined")
            .field("done", &self.inner.is_none())
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// A function of several arguments called with a tuple of them: what
/// [`AsyncPool::starmap`] takes. Implemented for `FnMut(A, B, ...) -> impl Future` up to eight
/// arguments.
pub trait StarCall<Args> {
    /// The future the call returns.
    type Future: Future;
    /// Calls the function with the tuple's elements as its arguments.
    fn call(&mut self, args: Args) -> Self::Future;
}

/// What lets a [`StarCall`] travel to a worker process as code (`AsyncPool::with_workers`):
/// implemented only here, for functions and closures, so that no type of a user's can pose as
/// one (the worker would read it from memory it never wrote).
#[cfg(feature = "tokio")]
pub(super) mod sealed {
    /// The name of the function pointer type of the signature: a task that is not zero-sized
    /// travels only if its type has exactly this name.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot travel to a worker process as an async task",
        label = "expected an `async fn` item or a closure that captures nothing",
        note = "a task travels to a worker as code, so only functions and closures can be tasks; pass data in the items"
    )]
    pub trait StarPointer<Args> {
        /// That name.
        fn pointer_type() -> &'static str;
    }
}

macro_rules! star_call {
    ($($arg:ident)+) => {
        impl<F, Fut, $($arg,)+> StarCall<($($arg,)+)> for F
        where
            F: FnMut($($arg),+) -> Fut,
            Fut: Future,
        {
            type Future = Fut;

            #[allow(non_snake_case)]
            fn call(&mut self, ($($arg,)+): ($($arg,)+)) -> Fut {
                self($($arg),+)
            }
        }

        #[cfg(feature = "tokio")]
        impl<F, Fut, $($arg,)+> sealed::StarPointer<($($arg,)+)> for F
        where
            F: FnMut($($arg),+) -> Fut,
            Fut: Future,
        {
            fn pointer_type() -> &'static str {
                std::any::type_name::<fn($($arg),+) -> Fut>()
            }
        }
    };
}

star_call!(A);
star_call!(A B);
star_call!(A B C);
star_call!(A B C D);
star_call!(A B C D E);
star_call!(A B C D E G);
star_call!(A B C D E G H);
star_call!(A B C D E G H J);
