//! The same pool across hosts, on NATS JetStream (feature `nats`).
//!
//! A [`NatsPool`] makes the calls of a local [`Pool`](crate::pool::Pool) (`map`,
//! `unordered_map`, `imap`, `unordered_imap`, `star()`, `fallible()`, `processes()`,
//! `timeout`, `progress`), and its items run on worker hosts: this same executable, started on
//! any machine that reaches the server, with `SKPROCESS_NATS_WORKER` naming the server.
//!
//! ```no_run
//! use skprocess::nats::{NatsOptions, NatsPool};
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! // Tasks travel by name: register them once, at module level.
//! skprocess::remote_tasks!(square);
//!
//! fn main() -> Result<(), skprocess::pool::PoolError> {
//!     // On each worker host: SKPROCESS_NATS_WORKER=nats://10.0.0.1:4222 ./this-program
//!     let pool = NatsPool::connect(NatsOptions::new("nats://10.0.0.1:4222"))?;
//!     assert_eq!(pool.map(square, 1..=4)?, vec![1, 4, 9, 16]);
//!     Ok(())
//! }
//! ```
//!
//! # How it runs
//!
//! - A call cuts its items into chunks and publishes each as a message on the pool's
//!   work-queue stream (`SKP_<pool>_WORK`). Workers pull chunks from a durable consumer with
//!   explicit acknowledgement (a second one holds *suspects*, below), and run the items on a
//!   local pool of processes: an item that crashes takes down a local process, which is
//!   replaced, never the worker.
//! - A worker stores a chunk's results in the results stream (`SKP_<pool>_RESULTS`), on a
//!   subject of the calling pool's own, and only then acknowledges the chunk.
//! - While a chunk runs, its worker sends JetStream a sign of life every quarter of a second.
//!   A worker host that dies or is cut off stops doing so, and after `ack_wait` the chunk is
//!   delivered to another worker: no item is lost. Items may therefore run more than once
//!   (at-least-once); the pool reports each item once, the first result that arrives.
//! - An item whose process dies at every delivery fails, after `max_deliver` deliveries, with
//!   [`TaskError::Poisoned`](crate::pool::TaskError::Poisoned), naming the item by its index.
//!   The other items of its chunk are not blamed: an item whose local process died goes back
//!   alone, and the items of a chunk whose host vanished go back one by one, to be run alone on
//!   a host (so an item that takes its whole host down fails alone).
//! - When a call ends early (a deadline, an error, a dropped `imap`), its chunks not yet taken
//!   are removed and workers stop what they run of it. A worker drops the chunks of a pool
//!   that is gone (it asks the pool before it runs them).
//! - A lost server is waited for, up to
//!   [`server_timeout`](NatsPoolBuilder::server_timeout); then the call fails with
//!   [`RemoteError::ServerGone`]. A server that comes back is used again, and one that lost its
//!   store gets the pool's streams made again; but the chunks it lost are lost, and the calls
//!   that had them in flight wait until their `timeout` (give calls one when the server's
//!   store is not persistent).
//! - With no worker serving the pool, a call waits for one (give it a `timeout`).
//!
//! # What cannot cross hosts
//!
//! Tasks travel by registered name ([`remote_tasks!`](crate::remote_tasks)), never by address:
//! the name is the function's path and a hash of its signature and of the executable's build,
//! and a worker built from other code refuses it with [`RemoteError::UnknownTask`] (so deploy
//! the same build to every host; a new build can serve a pool of another name while the old
//! one drains). An unregistered task is
//! [`RemoteError::NotRegistered`], and an item holding a [`Share`](crate::share::Share), a pipe
//! point or a shared-memory [`Buffer`](crate::buffer::Buffer) is
//! [`RemoteError::CannotCrossHosts`], both before anything is sent. Worker state
//! (`with_state`), `submit`, `background` and `asynced` are local-pool features that
//! `NatsPool` does not have.
//!
//! # Credentials and TLS
//!
//! [`NatsOptions`] takes a user and password, an nkey seed, a CA file (TLS required) and a
//! client certificate, in code or from the environment (`SKPROCESS_NATS_USER`,
//! `SKPROCESS_NATS_PASSWORD`, `SKPROCESS_NATS_NKEY`, `SKPROCESS_NATS_CA`, ...), which is how
//! workers get theirs.

mod connect;
mod error;
mod pool;
mod protocol;
mod registry;
mod streams;
mod worker;

pub use self::connect::{
    CA_ENV, CLIENT_CERT_ENV, CLIENT_KEY_ENV, NKEY_ENV, NatsOptions, PASSWORD_ENV, POOL_ENV,
    URL_ENV, USER_ENV,
};
pub use self::error::RemoteError;
pub use self::pool::{NatsCall, NatsIter, NatsPool, NatsPoolBuilder, RemoteArgs};
pub use self::registry::RemoteKind;
pub use self::worker::{NatsWorker, PROCESSES_ENV, WORKER_ENV};

pub(crate) use self::worker::serve_if_asked;

#[doc(hidden)]
pub mod __private {
    //! What `remote_tasks!` expands to.
    pub use super::registry::{
        NotFallible, NotProcesses, NotValue, Probe, REMOTE_TASKS, Registrar, RemoteTasks,
        Signature, ViaFallible, ViaProcesses, ViaValue,
    };
}
