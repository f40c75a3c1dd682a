//! Pool calls with modifiers, and their background and async forms.

use std::marker::PhantomData;
use std::time::Duration;

use super::chunks::run_collect;
use super::iter::PoolIter;
use super::mode::{Fallible, Plain, Processes, Star, StarState, State};
use super::progress::{Progress, ProgressFn};
use super::submit::{TaskHandle, submit};
use super::task::{TaskCode, assert_can_travel, task_code};
use super::{Pool, PoolError, TaskFn};
use crate::asyncs::{BackgroundHandle, ThreadFuture, spawn_blocking};
use crate::lifecycle::Transferable;

/// Where a call's task is, checked against the pool: a task that takes worker state must
/// take the state the pool's initializer builds.
fn code_for<T, A, K, I>(pool: &Pool, task: &T) -> Result<TaskCode, PoolError>
where
    T: TaskFn<A, K, I>,
    I: Transferable,
{
    if let Some(wanted) = T::state_type() {
        let built = pool
            .inner
            .shared
            .settings()
            .init
            .as_ref()
            .map(|init| init.state);
        if built != Some(wanted) {
            return Err(PoolError::WorkerState { wanted, built });
        }
    }
    task_code(task)
}

/// The argument modes, and what `star()` and `with_state()` make of each. Sealed.
pub trait StarMode: sealed::Sealed {
    /// The mode with tuple items unpacked.
    type Star;
    /// The mode with the worker's state as first argument.
    type WithState<S>;
}

mod sealed {
    pub trait Sealed {}
}

impl sealed::Sealed for Plain {}
impl StarMode for Plain {
    type Star = Star;
    type WithState<S> = State<S>;
}
impl sealed::Sealed for Star {}
impl StarMode for Star {
    type Star = Star;
    type WithState<S> = StarState<S>;
}
impl<S0> sealed::Sealed for State<S0> {}
impl<S0> StarMode for State<S0> {
    type Star = StarState<S0>;
    type WithState<S> = State<S>;
}
impl<S0> sealed::Sealed for StarState<S0> {}
impl<S0> StarMode for StarState<S0> {
    type Star = StarState<S0>;
    type WithState<S> = StarState<S>;
}

/// The settings of one call, whatever its form.
#[derive(Clone, Default)]
pub(crate) struct CallOptions {
    pub(crate) timeout: Option<Duration>,
    pub(crate) chunk_size: Option<usize>,
    pub(crate) progress: Option<ProgressFn>,
}

impl std::fmt::Debug for CallOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallOptions")
            .field("timeout", &self.timeout)
            .field("chunk_size", &self.chunk_size)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// A pool call with modifiers: argument mode `A` and return mode `K` (see
/// [`mode`](super::mode)), and optional settings (a deadline, a chunk size, a progress
/// callback). Built by [`Pool::star`], [`Pool::fallible`], [`Pool::processes`],
/// [`Pool::timeout`], [`Pool::chunk_size`] and [`Pool::progress`]; modifiers compose in any
/// order: `pool.star().timeout(d).chunk_size(64).background().map(add, pairs)`.
pub struct PoolCall<'p, A, K> {
    pool: &'p Pool,
    options: CallOptions,
    _mode: PhantomData<fn() -> (A, K)>,
}

impl<A, K> std::fmt::Debug for PoolCall<'_, A, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolCall")
            .field("pool", self.pool)
            .field("options", &self.options)
            .field("mode", &std::any::type_name::<(A, K)>())
            .finish()
    }
}

impl<'p, A, K> PoolCall<'p, A, K> {
    pub(super) fn new(pool: &'p Pool) -> PoolCall<'p, A, K> {
        PoolCall {
            pool,
            options: CallOptions::default(),
            _mode: PhantomData,
        }
    }

    fn with_mode<A2, K2>(self) -> PoolCall<'p, A2, K2> {
        PoolCall {
            pool: self.pool,
            options: self.options,
            _mode: PhantomData,
        }
    }

    /// Unpacks tuple items into the task's arguments (after the worker state, with
    /// [`with_state`](Self::with_state)).
    pub fn star(self) -> PoolCall<'p, A::Star, K>
    where
        A: StarMode,
    {
        self.with_mode()
    }

    /// Tasks take the worker's state as their first argument (see [`Pool::with_state`]).
    pub fn with_state<S>(self) -> PoolCall<'p, A::WithState<S>, K>
    where
        A: StarMode,
    {
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

    /// One deadline for the whole call (see the [module docs](super#deadlines)).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = Some(timeout);
        self
    }

    /// Sends items to the workers `size` at a time (at least 1), for every method.
    ///
    /// Without it, `map` and `unordered_map` cut the input into about four chunks per worker,
    /// and `imap` and `unordered_imap` size their chunks to how long items take (see
    /// [`PoolIter`]). Chunks are also bounded by bytes (a few MiB, and the frame limit), and
    /// process tasks ([`processes`](Self::processes)) always go one per chunk.
    pub fn chunk_size(mut self, size: usize) -> Self {
        self.options.chunk_size = Some(size.max(1));
        self
    }

    /// Reports the call's progress to `callback`: once when the call begins, and each time
    /// results arrive. The callback runs on the thread that drives the call (the caller's,
    /// or the background thread of [`background`](Self::background) and
    /// [`asynced`](Self::asynced)), so it may block only as long as the call may wait.
    pub fn progress(mut self, callback: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        self.options.progress = Some(std::sync::Arc::new(callback));
        self
    }

    /// Shows the call's progress as a bar on the terminal (stderr), with the count of items,
    /// their rate and the time left; a spinner when the total is not known.
    #[cfg(feature = "indicatif")]
    pub fn progress_bar(mut self) -> Self {
        self.options.progress = Some(super::progress::bar());
        self
    }

    /// Runs the call on a background thread: `map` and friends return a [`BackgroundHandle`]
    /// at once; its `result()` blocks. `imap` and `unordered_imap` collect their results.
    pub fn background(self) -> BackgroundCall<A, K> {
        BackgroundCall {
            pool: self.pool.clone(),
            options: self.options,
            _mode: PhantomData,
        }
    }

    /// Makes the call a future, usable from any executor. `imap` and `unordered_imap` collect
    /// their results.
    pub fn asynced(self) -> AsyncCall<A, K> {
        AsyncCall {
            pool: self.pool.clone(),
            options: self.options,
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
        assert_can_travel!(T);
        self.collect(task, items, true)
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
        assert_can_travel!(T);
        self.collect(task, items, false)
    }

    /// `map` or `unordered_map`, once the task's type was checked.
    pub(super) fn collect<T, I>(
        &self,
        task: T,
        items: impl IntoIterator<Item = I>,
        ordered: bool,
    ) -> Result<Vec<T::Output>, PoolError>
    where
        T: TaskFn<A, K, I>,
        I: Transferable,
    {
        let code = code_for(self.pool, &task);
        run_collect::<T, A, K, I>(
            self.pool,
            code,
            items.into_iter().collect(),
            &self.options,
            ordered,
        )
    }

    /// A lazy iterator of results, in input order. Items are taken from `items` only as
    /// results are consumed, with a bounded number in flight, so an endless iterator works in
    /// bounded memory. Each result is `Ok(value)` or `Err` for that item; a deadline ends the
    /// iteration with [`PoolError::Timeout`]. Chunks adapt to how long items take (see
    /// [`PoolIter`]).
    pub fn imap<'a, T, I>(
        &self,
        task: T,
        items: impl IntoIterator<Item = I> + 'a,
    ) -> PoolIter<'a, T::Output>
    where
        T: TaskFn<A, K, I>,
        I: Transferable,
    {
        assert_can_travel!(T);
        self.iter(task, items, true)
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
        assert_can_travel!(T);
        self.iter(task, items, false)
    }

    /// `imap` or `unordered_imap`, once the task's type was checked.
    pub(super) fn iter<'a, T, I>(
        &self,
        task: T,
        items: impl IntoIterator<Item = I> + 'a,
        ordered: bool,
    ) -> PoolIter<'a, T::Output>
    where
        T: TaskFn<A, K, I>,
        I: Transferable,
    {
        let code = code_for(self.pool, &task);
        PoolIter::new::<T, A, K, I>(self.pool, code, items, &self.options, ordered)
    }

    /// Submits one task on one item and returns its [`TaskHandle`] at once, without waiting:
    /// `pool.star().submit(add, (1, 2))`. The task goes on the queue every call shares, so it
    /// runs on the next free worker. With [`timeout`](Self::timeout), the deadline is the
    /// task's own, from now: when it passes before the task finished, the worker running it
    /// is killed and replaced (whether or not anyone waits on the handle), and the result is
    /// [`PoolError::Timeout`]. A chunk size and a progress callback do not apply to a single
    /// task (use [`as_completed`](super::as_completed) to follow many).
    ///
    /// Errors (a task that cannot be sent, an item that cannot be encoded, a closed pool) are
    /// in the handle: its [`result`](TaskHandle::result) returns them.
    pub fn submit<T, I>(&self, task: T, item: I) -> TaskHandle<T::Output>
    where
        T: TaskFn<A, K, I>,
        I: Transferable,
    {
        assert_can_travel!(T);
        self.submit_checked(task, item)
    }

    /// `submit`, once the task's type was checked.
    pub(super) fn submit_checked<T, I>(&self, task: T, item: I) -> TaskHandle<T::Output>
    where
        T: TaskFn<A, K, I>,
        I: Transferable,
    {
        let code = code_for(self.pool, &task);
        submit::<T, A, K, I>(self.pool, code, item, &self.options)
    }
}

/// A pool call that runs on a background thread; see [`PoolCall::background`].
pub struct BackgroundCall<A, K> {
    pool: Pool,
    options: CallOptions,
    _mode: PhantomData<fn() -> (A, K)>,
}

/// A pool call that returns a future; see [`PoolCall::asynced`].
pub struct AsyncCall<A, K> {
    pool: Pool,
    options: CallOptions,
    _mode: PhantomData<fn() -> (A, K)>,
}

macro_rules! deferred_call {
    ($name:ident, $wrap:path, $ret:ident, $label:literal) => {
        impl<A, K> std::fmt::Debug for $name<A, K> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("pool", &self.pool)
                    .field("options", &self.options)
                    .finish()
            }
        }

        impl<A: 'static, K: 'static> $name<A, K> {
            /// Adds a deadline for the whole call.
            pub fn timeout(mut self, timeout: Duration) -> Self {
                self.options.timeout = Some(timeout);
                self
            }

            /// Sends items `size` at a time (see [`PoolCall::chunk_size`]).
            pub fn chunk_size(mut self, size: usize) -> Self {
                self.options.chunk_size = Some(size.max(1));
                self
            }

            /// Reports progress to `callback` (see [`PoolCall::progress`]); it runs on the
            /// call's background thread.
            pub fn progress(mut self, callback: impl Fn(Progress) + Send + Sync + 'static) -> Self {
                self.options.progress = Some(std::sync::Arc::new(callback));
                self
            }

            /// Shows a progress bar on the terminal (see [`PoolCall::progress_bar`]).
            #[cfg(feature = "indicatif")]
            pub fn progress_bar(mut self) -> Self {
                self.options.progress = Some(super::progress::bar());
                self
            }

            fn with_mode<A2, K2>(self) -> $name<A2, K2> {
                $name {
                    pool: self.pool,
                    options: self.options,
                    _mode: PhantomData,
                }
            }

            /// Unpacks tuple items into the task's arguments (see [`Pool::star`]).
            pub fn star(self) -> $name<A::Star, K>
            where
                A: StarMode,
            {
                self.with_mode()
            }

            /// Tasks take the worker's state first (see [`Pool::with_state`]).
            pub fn with_state<S: 'static>(self) -> $name<A::WithState<S>, K>
            where
                A: StarMode,
            {
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
                assert_can_travel!(T);
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
                assert_can_travel!(T);
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
                assert_can_travel!(T);
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
                assert_can_travel!(T);
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
                let code = code_for(&self.pool, &task);
                let items: Vec<I> = items.into_iter().collect();
                let (pool, options) = (self.pool, self.options);
                $wrap($label, move || {
                    run_collect::<T, A, K, I>(&pool, code, items, &options, ordered)
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
