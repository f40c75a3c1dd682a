//! Pool errors: what went wrong with which item.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{ExitInfo, Failure, ProcessError};

/// Which way a value was to cross, for [`TaskError::TooLarge`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Payload {
    /// The item, on its way to a worker.
    Input,
    /// The item's result, on its way back.
    Output,
}

impl std::fmt::Display for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Payload::Input => "the item",
            Payload::Output => "the result",
        })
    }
}

/// How one item failed.
#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TaskError {
    /// The task panicked, or (with [`fallible`](crate::pool::Pool::fallible)) returned an
    /// error: the original message, and the panic location when it panicked.
    #[error(transparent)]
    Failed(Failure),
    /// A process task ([`processes`](crate::pool::Pool::processes)) ended with an error (its
    /// `__error__` handed one on, or it had no `__error__`); the error is the source.
    #[error("the process ended with an error")]
    Process(#[source] ProcessError),
    /// The item, or its result, is larger than the pool's frame limit
    /// ([`PoolBuilder::frame_limit`](crate::pool::PoolBuilder::frame_limit); for a NATS pool,
    /// what the server's `max_payload` leaves for one item), so it cannot cross. Nothing was
    /// sent; the other items are not affected.
    #[error("{what} takes {len} bytes, more than the frame limit of {limit} bytes")]
    TooLarge {
        /// Which way it was to go.
        what: Payload,
        /// Its encoded size.
        len: u64,
        /// The frame limit.
        limit: u64,
    },
    /// The item's input could not be encoded for the trip to a worker, or its output for the
    /// trip back.
    #[error("cannot encode: {0}")]
    Encode(String),
    /// The item's input or output did not decode on the other side.
    #[error("cannot decode: {0}")]
    Decode(String),
    /// The worker process died while running this item (it aborted, segfaulted, was killed, or
    /// panicked inside an `extern "C"` function). Items queued behind it were given to other
    /// workers, and the worker was replaced.
    #[error("worker process {pid} {exit} while running this item")]
    #[serde(skip)]
    Crashed {
        /// The dead worker's process id.
        pid: u32,
        /// How it ended.
        exit: ExitInfo,
    },
    /// (NATS backend) The item was delivered as many times as its pool allows
    /// ([`NatsPoolBuilder::max_deliver`](crate::nats::NatsPoolBuilder::max_deliver)), and each
    /// time the process running it died, or its host went away, before it had a result: an
    /// item that kills its workers. It is not delivered again.
    #[cfg(feature = "nats")]
    #[error("the item was delivered {deliveries} times and each time its worker died or vanished")]
    Poisoned {
        /// How many times it was delivered.
        deliveries: u64,
    },
}

impl TaskError {
    /// The original message of a task that returned an error or panicked.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            TaskError::Failed(failure) => Some(failure),
            _ => None,
        }
    }
}

/// Why a pool call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// An item failed; `index` is its position in the input. When several items fail, `map`
    /// reports the one with the lowest index. How it failed is the error's source (print the
    /// whole chain, for instance with [`ErrorChain`](crate::ErrorChain), to see the message).
    #[error("item {index} failed")]
    Task {
        /// The item's position in the input (from 0).
        index: usize,
        /// How it failed.
        #[source]
        error: TaskError,
    },
    /// The call's deadline passed (see [`Pool::timeout`](crate::pool::Pool::timeout)). Workers
    /// that were running its items were killed and replaced; the pool stays usable.
    #[error("pool call timed out after {}s ({completed} items completed)", crate::sync::fmt_secs(*timeout))]
    Timeout {
        /// The deadline of the call.
        timeout: Duration,
        /// How many items had completed in time.
        completed: usize,
    },
    /// The call was interrupted by Ctrl+C (with [`graceful_ctrl_c`](crate::graceful_ctrl_c)
    /// on): workers running its items were killed and replaced; the pool stays usable.
    #[error("pool call interrupted ({completed} items completed)")]
    Interrupted {
        /// How many items had completed.
        completed: usize,
    },
    /// The task's code lies in another loaded image than this library (it was compiled into
    /// a `dylib` or a plugin loaded at run time), so it cannot be found in a worker. Nothing
    /// was sent.
    #[error(
        "the task `{task}` is not in the executable's own code (a dylib or plugin?); pool tasks must be compiled into the executable"
    )]
    TaskOutsideExecutable {
        /// The task's type name.
        task: &'static str,
    },
    /// The task is a closure that captures a reference or a function pointer (a closure that
    /// captures anything else is refused at compile time). A task travels to a worker as a
    /// code address, so it cannot carry data: pass data in the items. Nothing was sent.
    #[error(
        "the task `{task}` captures data; pool tasks must be `fn` items, function pointers or closures that capture nothing (pass data in the items)"
    )]
    TaskCapturesData {
        /// The task's type name.
        task: &'static str,
    },
    /// The pool's initializer failed in a worker (it returned an error or panicked). The
    /// pool is closed: the calls in progress and every later call fail with this error, and no
    /// worker is started again (an initializer that fails once would most likely fail again).
    #[error("the pool's initializer `{initializer}` failed in a worker")]
    Initializer {
        /// The initializer's name.
        initializer: String,
        /// How it failed.
        #[source]
        error: Failure,
    },
    /// A task takes worker state of another type than the pool's initializer builds, or the
    /// pool has no initializer (see [`PoolBuilder::initializer`](crate::pool::PoolBuilder::initializer)).
    /// Nothing was sent.
    #[error("the task takes worker state of type `{wanted}`, but {}", match .built {
        Some(built) => format!("the pool's initializer builds a `{built}`"),
        None => "the pool has no initializer".to_owned(),
    })]
    WorkerState {
        /// The state type the task takes.
        wanted: &'static str,
        /// The state type the pool's initializer builds, if it has one.
        built: Option<&'static str>,
    },
    /// A worker process could not be started.
    #[error("cannot start a pool worker")]
    Spawn(#[source] ProcessError),
    /// The pool was closed or terminated.
    #[error("the pool is closed")]
    Closed,
    /// The task was cancelled ([`TaskHandle::cancel`](crate::pool::TaskHandle::cancel))
    /// before it finished.
    #[error("the task was cancelled")]
    Cancelled,
    /// (NATS backend) The call could not be made across hosts; see [`RemoteError`](crate::nats::RemoteError).
    #[cfg(feature = "nats")]
    #[error(transparent)]
    Remote(#[from] crate::nats::RemoteError),
}

impl PoolError {
    /// The index of the failed item, for [`PoolError::Task`].
    pub fn index(&self) -> Option<usize> {
        match self {
            PoolError::Task { index, .. } => Some(*index),
            _ => None,
        }
    }

    /// Whether this is a [`PoolError::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, PoolError::Timeout { .. })
    }
}
