//! What travels over NATS: subjects, stream names, and the messages between a pool and its
//! workers (encoded with the runtime's codec, decoded within the message's own length).

use serde::{Deserialize, Serialize};

use super::error::RemoteError;
use crate::pool::TaskError;

/// The durable consumer every worker pulls chunks from.
pub(crate) const CONSUMER: &str = "workers";
/// The durable consumer of suspects: single items whose holder vanished, which a worker takes
/// only when it holds nothing else, and runs alone.
pub(crate) const SUSPECTS: &str = "suspects";

/// The header naming the version of these messages, on every chunk and result.
pub(crate) const PROTOCOL_HEADER: &str = "Skp-Protocol";
/// This version.
pub(crate) const PROTOCOL: &str = "1";
/// On a result message with no payload: why a worker could not read the call's chunk.
pub(crate) const ERROR_HEADER: &str = "Skp-Error";
/// On such a message: which worker says so.
pub(crate) const WORKER_HEADER: &str = "Skp-Worker";

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

    /// Every subject of suspects (on the work stream).
    pub(crate) fn suspects_all(&self) -> String {
        format!("skp.{}.suspect.>", self.pool)
    }

    /// Where one call's suspects go.
    pub(crate) fn suspects(&self, client: &str, call: u64) -> String {
        format!("skp.{}.suspect.{client}.{call}", self.pool)
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

    /// Where a pool says that a call ended (core NATS: workers stop its chunks).
    pub(crate) fn cancel(&self) -> String {
        format!("skp.{}.cancel", self.pool)
    }

    /// Where a pool answers while it lives (core NATS request-reply): a worker asks before it
    /// runs a chunk, and drops the chunks of a pool nobody answers for.
    pub(crate) fn alive(&self, client: &str) -> String {
        format!("skp.{}.alive.{client}", self.pool)
    }

    /// The pool client and call a work or suspect subject names, if it is one of this pool's.
    pub(crate) fn parse_work(&self, subject: &str) -> Option<(String, u64)> {
        let rest = subject
            .strip_prefix(&format!("skp.{}.work.", self.pool))
            .or_else(|| subject.strip_prefix(&format!("skp.{}.suspect.", self.pool)))?;
        let (client, call) = rest.split_once('.')?;
        Some((client.to_owned(), call.parse().ok()?))
    }

    /// The call a results subject of `client` names.
    pub(crate) fn parse_results(&self, client: &str, subject: &str) -> Option<u64> {
        subject
            .strip_prefix(&format!("skp.{}.results.{client}.", self.pool))?
            .parse()
            .ok()
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
    /// The pool's delivery limit: an item whose process died this many times is `Poisoned`.
    pub(crate) max_deliver: u64,
    /// Deliveries its items had before this chunk was cut out of a bigger one.
    pub(crate) prior: u64,
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
