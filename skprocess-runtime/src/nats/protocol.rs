//! What travels over NATS: subjects, stream names, and the messages between a pool and its
//! workers (encoded with the runtime's codec, decoded within the message's own length).

use serde::{Deserialize, Serialize};

use super::error::RemoteError;
use crate::pool::TaskError;

/// The durable consumer every worker pulls from.
pub(crate) const CONSUMER: &str = "workers";

/// The subjects and streams of one named pool.
#[derive(Clone, Debug)]
pub(crate) struct Names {
    pool: String,
}

impl Names {
    /// Checks that `pool` is one NATS token that can also be part of a stream name.
    pub(crate) fn new(pool: &str) -> Result<Names, RemoteError> {
        let valid = !pool.is_empty()
            && pool.len() <= 64
            && pool
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if valid {
            Ok(Names {
                pool: pool.to_owned(),
            })
        } else {
            Err(RemoteError::InvalidConfig(format!(
                "the pool name {pool:?} must be 1 to 64 letters, digits, `_` or `-`"
            )))
        }
    }

    /// The pool's name.
    pub(crate) fn pool(&self) -> &str {
        &self.pool
    }

    /// The work-queue stream of the pool's chunks of items.
    pub(crate) fn work_stream(&self) -> String {
        format!("SKP_{}_WORK", self.pool)
    }

    /// The stream of results.
    pub(crate) fn results_stream(&self) -> String {
        format!("SKP_{}_RESULTS", self.pool)
    }

    /// Every subject of the work stream.
    pub(crate) fn work_all(&self) -> String {
        format!("skp.{}.work.>", self.pool)
    }

    /// Where one call's chunks go.
    pub(crate) fn work(&self, client: &str, call: u64) -> String {
        format!("skp.{}.work.{client}.{call}", self.pool)
    }

    /// Every subject of the results stream.
    pub(crate) fn results_all(&self) -> String {
        format!("skp.{}.results.>", self.pool)
    }

    /// Every result for one client (one `NatsPool`).
    pub(crate) fn results_of(&self, client: &str) -> String {
        format!("skp.{}.results.{client}.>", self.pool)
    }

    /// Where one call's results go.
    pub(crate) fn results(&self, client: &str, call: u64) -> String {
        format!("skp.{}.results.{client}.{call}", self.pool)
    }

    /// Where a pool says that a call ended (core NATS: workers skip its chunks).
    pub(crate) fn cancel(&self) -> String {
        format!("skp.{}.cancel", self.pool)
    }

    /// The advisory JetStream sends when a chunk was delivered `max_deliver` times.
    pub(crate) fn max_deliveries_advisory(&self) -> String {
        format!(
            "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.{CONSUMER}",
            self.work_stream()
        )
    }
}

/// A chunk of consecutive items of one call, for one worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WorkChunk {
    /// The pool client that made the call (results go to its subject).
    pub(crate) client: String,
    /// The call, unique within its client.
    pub(crate) call: u64,
    /// The task's registered name.
    pub(crate) task: String,
    /// The index of the first item in the call's input.
    pub(crate) first: u64,
    /// Each item, encoded on its own (as the task's argument tuple).
    pub(crate) items: Vec<Vec<u8>>,
    /// How long the call had left when the chunk was published (the worker counts it from
    /// when it receives the chunk, so it never stops an item early).
    pub(crate) timeout_ms: Option<u64>,
}

/// Results of items of one call, from one worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ResultChunk {
    /// The call.
    pub(crate) call: u64,
    /// The worker (host name and process id).
    pub(crate) worker: String,
    /// Each settled item: its index in the call's input, and how it ended.
    pub(crate) outcomes: Vec<(u64, Outcome)>,
}

/// How one item ended, as a worker reports it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Outcome {
    /// The task's output, encoded.
    Value(Vec<u8>),
    /// The item failed (panic, `Err`, a process's error, too large, undecodable).
    Failed(TaskError),
    /// Every delivery of the item ended with its process dead.
    Poisoned {
        /// How many times it was delivered.
        deliveries: u64,
    },
    /// The worker has no task by this name.
    Refused,
}

/// A call that ended: workers drop what they still hold of it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Cancel {
    /// The pool client.
    pub(crate) client: String,
    /// The call.
    pub(crate) call: u64,
}

/// The part of JetStream's max-deliveries advisory the pool reads.
#[derive(Debug, Deserialize)]
pub(crate) struct MaxDeliveries {
    /// The stream sequence of the chunk.
    pub(crate) stream_seq: u64,
    /// How many times it was delivered.
    pub(crate) deliveries: u64,
}
