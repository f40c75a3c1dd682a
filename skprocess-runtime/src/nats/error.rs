//! What can go wrong between a [`NatsPool`](super::NatsPool), the NATS server and the workers.

use std::time::Duration;

/// Why a call through the NATS backend could not be made, or was cut short. Each is the source of
/// a [`PoolError::Remote`](crate::pool::PoolError::Remote).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// The server could not be reached, refused the credentials, or failed the TLS handshake.
    #[error("cannot connect to the NATS server at {url}: {reason}")]
    Connect {
        /// The server's address, as given.
        url: String,
        /// What the client reported.
        reason: String,
    },
    /// The settings are not usable (a pool name that is not one NATS token, an empty URL, an
    /// environment variable that does not parse).
    #[error("invalid NATS settings: {0}")]
    InvalidConfig(String),
    /// A JetStream stream or consumer could not be created or read (JetStream not enabled on
    /// the server, or an account without the rights).
    #[error("cannot set up JetStream {what}: {reason}")]
    Setup {
        /// What was being set up.
        what: String,
        /// What the server answered.
        reason: String,
    },
    /// The task was not registered with [`remote_tasks!`](crate::remote_tasks) in this
    /// executable, so no worker could find it by name. Nothing was sent.
    #[error(
        "the task `{task}` is not registered: add it to `skprocess::remote_tasks!(...)`; nothing was sent"
    )]
    NotRegistered {
        /// The task's type name.
        task: &'static str,
    },
    /// No worker that took the call's chunks has the task under the name it was sent by: they
    /// were built from other code (another build of the program; the name carries a hash of the
    /// task's signature and of the build).
    #[error("the worker {worker} has no task named `{task}` (it was built from other code)")]
    UnknownTask {
        /// The name the task was sent by (its path and a hash of its signature).
        task: String,
        /// Which worker refused it (host name and process id).
        worker: String,
    },
    /// An item holds something that only means something on this machine (a Share, a pipe
    /// point, a shared-memory buffer). Nothing of the call was sent (for `imap`, nothing from
    /// this item on).
    #[error("item {index} holds {what}, which cannot cross to another host")]
    CannotCrossHosts {
        /// The item's position in the input.
        index: usize,
        /// What it holds.
        what: &'static str,
    },
    /// A chunk of items could not be published to the work stream (the server did not confirm
    /// it in time, or refused it).
    #[error("cannot publish to the work stream: {reason}")]
    Publish {
        /// What the client reported.
        reason: String,
    },
    /// A message on the call's results subject was not a result (it did not decode): the call
    /// cannot know what it missed, so it ends here.
    #[error("a message on the call's results subject is not a result: {reason}")]
    MalformedResult {
        /// Why it did not decode.
        reason: String,
    },
    /// A worker could not read a chunk of the call: it speaks another version of these
    /// messages (it was built with another version of skprocess), or the chunk was damaged.
    #[error("the worker {worker} could not read a chunk of the call: {reason}")]
    Unreadable {
        /// Which worker (host name and process id).
        worker: String,
        /// What it could not read.
        reason: String,
    },
    /// The connection to the server was lost and did not come back within the pool's
    /// [`server_timeout`](super::NatsPoolBuilder::server_timeout).
    #[error(
        "the NATS server has been unreachable for {}s ({completed} items completed)",
        crate::sync::fmt_secs(*waited)
    )]
    ServerGone {
        /// How long the call waited for the server.
        waited: Duration,
        /// How many items had completed.
        completed: usize,
    },
}
