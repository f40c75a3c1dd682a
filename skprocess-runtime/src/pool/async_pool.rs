//! `AsyncPool`: many async tasks at once in the calling task, at most `max_concurrent` in flight.
//!
//! This is the design notes' in-process mode: no worker processes, one event loop (the
//! caller's), so it suits I/O-bound work (requests, queries) whose futures mostly wait. The
//! futures are polled by the call's own future, so it runs on any executor; with the `tokio`
//! feature, [`AsyncPool::block_on`] runs a call from sync code.
//!
//! Items are turned into futures lazily, as slots free up: an endless iterator stays bounded
//! in memory. A deadline ([`AsyncPool::timeout`]) drops every future of the call when it
//! passes (cancellation at their next await point) and the call returns
//! [`AsyncPoolError::Timeout`]. A task that panics is caught: `map` returns
//! [`AsyncPoolError::Panicked`] naming the item (and drops the other futures); the streams
//! yield the error for that item and carry on.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use futures_util::future::{self, Either, FutureExt};
use futures_util::stream::{self, StreamExt};

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
    pub async fn map<T, F, Fut, I>(
        &self,
        f: F,
        items: I,
    ) -> Result<Vec<Fut::Output>, AsyncPoolError>
    where
        I: IntoIterator<Item = T>,
        F: FnMut(T) -> Fut,
        Fut: Future,
    {
        let work = async {
            let mut results = Vec::new();
            let mut tasks = std::pin::pin!(tasks(f, items).buffered(self.max_concurrent));
            while let Some(result) = tasks.next().await {
                results.push(result?);
            }
            Ok(results)
        };
        self.within(work).await
    }

    /// [`map`](Self::map) for functions of several arguments: each item is a tuple of them.
    pub async fn starmap<Args, F, I>(
        &self,
        mut f: F,
        items: I,
    ) -> Result<Vec<<F::Future as Future>::Output>, AsyncPoolError>
    where
        I: IntoIterator<Item = Args>,
        F: StarCall<Args>,
    {
        self.map(move |args| f.call(args), items).await
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
        Deadlined::new(tasks(f, items).buffered(self.max_concurrent), self.timeout)
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
            tasks(f, items).buffer_unordered(self.max_concurrent),
            self.timeout,
        )
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

    /// `work`, or `Timeout` once the deadline passes (dropping `work`).
    async fn within<R>(
        &self,
        work: impl Future<Output = Result<R, AsyncPoolError>>,
    ) -> Result<R, AsyncPoolError> {
        let Some(limit) = self.timeout else {
            return work.await;
        };
        let work = std::pin::pin!(work);
        let timer = std::pin::pin!(crate::timing::sleep_async(limit.as_secs_f64()));
        match future::select(work, timer).await {
            Either::Left((result, _)) => result,
            Either::Right(_) => Err(AsyncPoolError::Timeout { limit }),
        }
    }
}

/// The items' tasks, created lazily, each caught if it panics.
fn tasks<T, F, Fut, I>(
    mut f: F,
    items: I,
) -> impl Stream<Item = impl Future<Output = Result<Fut::Output, AsyncPoolError>>> + use<T, F, Fut, I>
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
            let future = made.map_err(|payload| panicked(index, &*payload))?;
            AssertUnwindSafe(future)
                .catch_unwind()
                .await
                .map_err(|payload| panicked(index, &*payload))
        }
    })
}

fn panicked(index: usize, payload: &(dyn std::any::Any + Send)) -> AsyncPoolError {
    AsyncPoolError::Panicked {
        index,
        message: crate::engine::panic_message(payload),
    }
}

/// A stream that ends with `Timeout` once its deadline passes, dropping the rest.
struct Deadlined<S> {
    inner: Option<Pin<Box<S>>>,
    timer: Option<Pin<Box<dyn Future<Output = f64> + Send + Sync>>>,
    limit: Duration,
}

impl<S> Deadlined<S> {
    fn new(inner: S, limit: Option<Duration>) -> Deadlined<S> {
        Deadlined {
            inner: Some(Box::pin(inner)),
            timer: limit.map(|limit| {
                Box::pin(crate::timing::sleep_async(limit.as_secs_f64()))
                    as Pin<Box<dyn Future<Output = f64> + Send + Sync>>
            }),
            limit: limit.unwrap_or_default(),
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
        if let Poll::Ready(item) = inner.as_mut().poll_next(cx) {
            if item.is_none() {
                this.inner = None;
                this.timer = None;
            }
            return Poll::Ready(item);
        }
        if let Some(timer) = this.timer.as_mut()
            && timer.as_mut().poll(cx).is_ready()
        {
            // Dropping the inner stream drops every future in flight.
            this.inner = None;
            this.timer = None;
            return Poll::Ready(Some(Err(AsyncPoolError::Timeout { limit: this.limit })));
        }
        Poll::Pending
    }
}

impl<S> fmt::Debug for Deadlined<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deadlined")
            .field("done", &self.inner.is_none())
            .field("limit", &self.limit)
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
