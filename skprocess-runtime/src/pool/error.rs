//! Pool errors: what went wrong with which item.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{ExitInfo, Failure, ProcessError};

/// How one item failed.
#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TaskError {
    /// The task panicked, or (with [`fallible`](crate::pool::Pool::fallible)) returned an
    /// error: the original message, and the panic location when it panicked.
    #[error("{0}")]
    Failed(Failure),
    /// A process task ([`processes`](crate::pool::Pool::processes)) ended with an error (its
    /// `__error__` handed one on, or it had no `__error__`).
    #[error("{0}")]
    Process(ProcessError),
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
    /// reports the one with the lowest index.
    #[error("item {index} failed: {error}")]
    Task {
        /// The item's position in the input (from 0).
        index: usize,
        /// How it failed.
        error: TaskError,
    },
    /// The call's deadline passed (see [`Pool::timeout`](crate::pool::Pool::timeout)). Workers
    /// that were running its items were killed and replaced; the pool stays usable.
    #[error("pool call timed out after {}s ({completed} items completed)", fmt_secs(*timeout))]
    Timeout {
        /// The deadline of the call.
        timeout: Duration,
        /// How many items had completed in time.
        completed: usize,
    },
    /// A worker process could not be started.
    #[error("cannot start a pool worker")]
    Spawn(#[source] ProcessError),
    /// The pool was closed or terminated.
    #[error("the pool is closed")]
    Closed,
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

fn fmt_secs(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs.fract() == 0.0 {
        format!("{secs:.1}")
    } else {
        format!("{secs}")
    }
}
