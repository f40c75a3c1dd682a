//! Connections that cross processes as their parameters and are opened again on the other side.
//!
//! A live database connection is a socket and a session: it cannot travel to another process.
//! What can travel is how to open it. A [`Conn<C>`] holds the parameters `C` (host, port, user,
//! database... never a password) and, in the process that opened it, the live connection. When
//! a `Conn` crosses to a child (as a field of a process, a pool item, part of a `star()` tuple
//! or an argument of a pool's initializer) only the parameters travel; on the other side the
//! connection is opened again:
//!
//! - eagerly, before the first lifecycle method, for the fields of a process struct marked
//!   [`#[autoreconnect(...)]`](macro@crate::autoreconnect), with the credentials the attribute
//!   gives (a literal, or `env("VAR")` read in the child when it connects);
//! - lazily, on first use, everywhere else, with the secret named by
//!   [`Conn::secret_from_env`] if any.
//!
//! The ready-made connection types are `Postgres` (feature `postgres`), `Redis` (feature
//! `redis`) and `Sqlite` (feature `rusqlite`), and for async processes `AsyncPostgres`
//! (feature `tokio-postgres`) and `AsyncRedis` (feature `redis-async`). Any other kind of
//! connection is a [`Connector`] implementation away.
//!
//! A `Conn` dereferences to the driver's own client, so it is used like one. A connection lost
//! during the run is rebuilt on demand: [`Conn::reconnect`], or [`Conn::call`] (reconnects
//! before sending when the connection is known to be gone) and [`Conn::idempotent`] (also
//! runs the operation once more after a connection lost mid-request, for operations that are
//! safe to repeat). Nothing is ever sent twice silently.
//!
//! # Async drivers
//!
//! `AsyncPostgres` (a `tokio_postgres::Client` behind an `Arc`) and `AsyncRedis` (a
//! `redis::aio::MultiplexedConnection`) cross processes exactly like their sync counterparts:
//! the same parameters (`PgParams`, `RedisParams`), never the secret. Their connections run
//! on the process's tokio runtime (the one async lifecycle methods run on), so they live as long
//! as the process, between sections and across runs.
//!
//! `#[autoreconnect]` opens them before the first lifecycle method, outside any runtime, by
//! blocking on the connect. Inside async code blocking is not allowed (it would stall the
//! runtime's thread; tokio panics on a nested `block_on`), so the sync forms refuse there with
//! [`ConnectFailure::InsideRuntime`] and the async forms take over: [`Conn::open_async`],
//! [`Conn::reconnect_async`], [`Conn::call_async`] and [`Conn::idempotent_async`], with the
//! same semantics as the sync ones. Their operations get a clone of the live client (an `Arc`,
//! a multiplexed handle), so their futures own what they use.

#[cfg(any(feature = "postgres", feature = "tokio-postgres"))]
mod pg;
#[cfg(feature = "tokio-postgres")]
mod pg_async;
#[cfg(feature = "redis-async")]
mod redis_async;
#[cfg(feature = "redis")]
mod redis_conn;
#[cfg(feature = "rusqlite")]
mod sqlite_conn;

/// The [`postgres`](https://docs.rs/postgres) driver crate, re-exported so that programs use
/// the same version as [`Postgres`] without depending on it themselves.
#[cfg(feature = "postgres")]
pub use ::postgres;
/// The [`redis`](https://docs.rs/redis) driver crate (for `redis::Commands` and friends),
/// re-exported so that programs use the same version as [`Redis`].
#[cfg(feature = "redis")]
pub use ::redis;
/// The [`rusqlite`](https://docs.rs/rusqlite) driver crate, re-exported so that programs use the
/// same version as [`Sqlite`].
#[cfg(feature = "rusqlite")]
pub use ::rusqlite;
/// The [`tokio-postgres`](https://docs.rs/tokio-postgres) driver crate, re-exported so that
/// programs use the same version as [`AsyncPostgres`] without depending on it themselves.
#[cfg(feature = "tokio-postgres")]
pub use ::tokio_postgres;

use std::any::TypeId;
use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[cfg(feature = "postgres")]
pub use self::pg::Postgres;
#[cfg(any(feature = "postgres", feature = "tokio-postgres"))]
pub use self::pg::{PgChannelBinding, PgHost, PgParams, PgSessionAttrs, PgSslMode};
#[cfg(feature = "tokio-postgres")]
pub use self::pg_async::{AsyncPgParams, AsyncPostgres};
#[cfg(feature = "redis-async")]
pub use self::redis_async::{AsyncRedis, AsyncRedisParams};
#[cfg(feature = "redis")]
pub use self::redis_conn::{Redis, RedisAddr, RedisParams};
#[cfg(feature = "rusqlite")]
pub use self::sqlite_conn::{Sqlite, SqliteParams};

/// A password or token. Never encoded, never printed: `Debug` shows `Secret(***)`, and it has
/// no `Serialize` implementation, so it cannot end up in the bytes sent to another process.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    /// The secret itself, to hand to a driver.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret::new(s)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret(s)
    }
}

/// One kind of connection: its parameters (the implementing type, which crosses processes) and
/// how to open a live connection from them.
///
/// The parameters must not hold secrets: everything in them is encoded and sent. The secret
/// comes as the argument of [`open`](Connector::open).
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use skprocess::reconnect::{Conn, ConnectError, Connector, Secret};
///
/// /// A line-based service at `addr`.
/// #[derive(Clone, Debug, Serialize, Deserialize)]
/// struct LineService {
///     addr: String,
/// }
///
/// impl Connector for LineService {
///     type Live = std::net::TcpStream;
///     type Error = std::io::Error;
///     const KIND: &'static str = "line-service";
///
///     fn target(&self) -> String {
///         self.addr.clone()
///     }
///
///     fn open(&self, _secret: Option<&Secret>) -> Result<Self::Live, ConnectError> {
///         std::net::TcpStream::connect(&self.addr).map_err(ConnectError::from_io)
///     }
///
///     fn is_lost(error: &std::io::Error) -> bool {
///         error.kind() != std::io::ErrorKind::InvalidInput
///     }
/// }
///
/// /// The type to use in fields and in `#[autoreconnect(LineConn = {...})]`.
/// type LineConn = Conn<LineService>;
///
/// let conn = LineConn::new(LineService { addr: "127.0.0.1:1".into() });
/// assert!(!conn.is_open());
/// ```
pub trait Connector: Serialize + DeserializeOwned + Send + 'static {
    /// The live connection (the driver's client).
    type Live: Send;
    /// The driver's error type, returned by operations on the live connection.
    type Error: std::error::Error + Send + Sync + 'static;
    /// A short name of this kind of connection, for messages: `"postgres"`, `"redis"`...
    const KIND: &'static str;

    /// Where it connects, for messages: host, port, database, user. No secret.
    fn target(&self) -> String;

    /// Opens a live connection, with `secret` when one was given.
    fn open(&self, secret: Option<&Secret>) -> Result<Self::Live, ConnectError>;

    /// Whether the live connection is known to be unusable (closed by the server, broken),
    /// without talking to the server. The default says it never is.
    fn is_closed(live: &Self::Live) -> bool {
        let _ = live;
        false
    }

    /// Whether an operation's error means that the connection was lost (as opposed to an
    /// error the server reported on a healthy connection).
    fn is_lost(error: &Self::Error) -> bool;
}

/// A connect in progress, as [`AsyncConnector::open_async`] returns it: it owns what it needs,
/// so it can be awaited anywhere, spawned, or dropped (which gives the connect up).
pub type ConnectFuture<L> = Pin<Box<dyn Future<Output = Result<L, ConnectError>> + Send + 'static>>;

/// A [`Connector`] that can also open without blocking, for async code: what
/// [`Conn::open_async`], [`Conn::reconnect_async`], [`Conn::call_async`] and
/// [`Conn::idempotent_async`] need.
///
/// [`Connector::open`] still exists for such a connector: `#[autoreconnect]` opens fields with
/// it before the first lifecycle method, outside any runtime. Inside an async runtime it should
/// refuse with [`ConnectFailure::InsideRuntime`] rather than block (the ready-made async types
/// do).
pub trait AsyncConnector: Connector {
    /// Opens a live connection without blocking, with `secret` when one was given. The future
    /// must not borrow `self` or `secret`: take what it needs before it starts.
    fn open_async(&self, secret: Option<&Secret>) -> ConnectFuture<Self::Live>;
}

/// Why a connection could not be opened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ConnectFailure {
    /// The server refused the credentials (a wrong password or user).
    Auth,
    /// The server wanted a secret and none was given: none in `#[autoreconnect(...)]` for this
    /// field or type, and no [`Conn::secret_from_env`].
    NoSecret,
    /// The credentials name an environment variable that is not set (or not UTF-8) in the
    /// process that connects.
    MissingEnv {
        /// The variable.
        var: String,
    },
    /// The server could not be reached (refused, unreachable, timed out).
    Unreachable,
    /// A connection of an async driver was opened with a blocking call (`open`, `call`,
    /// `Deref`...) from inside an async runtime, where blocking would stall the runtime's
    /// thread. Nothing was attempted: use [`Conn::open_async`] (or [`Conn::call_async`],
    /// [`Conn::idempotent_async`]) in async code.
    InsideRuntime,
    /// Any other failure (bad parameters, an error reported by the server).
    Other,
}

impl fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectFailure::Auth => f.write_str("the server refused the credentials"),
            ConnectFailure::NoSecret => f.write_str(
                "the server wants a password and none was given (give one in \
                 #[autoreconnect(...)], or name an environment variable with secret_from_env)",
            ),
            ConnectFailure::MissingEnv { var } => {
                write!(
                    f,
                    "the environment variable `{var}` holding the secret is not set"
                )
            }
            ConnectFailure::Unreachable => f.write_str("the server could not be reached"),
            ConnectFailure::InsideRuntime => f.write_str(
                "a blocking open inside an async runtime (use `open_async().await`, \
                 `call_async` or `idempotent_async` in async code)",
            ),
            ConnectFailure::Other => f.write_str("the connection failed"),
        }
    }
}

/// A connection could not be opened: which one, where to, why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct ConnectError {
    kind: String,
    field: Option<String>,
    target: String,
    failure: ConnectFailure,
    message: String,
}

impl ConnectError {
    /// A failure of `failure`'s kind, with the driver's message. [`Conn`] adds the connection's
    /// kind, target and field.
    pub fn new(failure: ConnectFailure, message: impl Into<String>) -> ConnectError {
        ConnectError {
            kind: String::new(),
            field: None,
            target: String::new(),
            failure,
            message: message.into(),
        }
    }

    /// An I/O error while connecting: [`ConnectFailure::Unreachable`] for refused, reset,
    /// unreachable and timed-out connections, [`ConnectFailure::Other`] otherwise.
    pub fn from_io(error: std::io::Error) -> ConnectError {
        use std::io::ErrorKind::*;
        let failure = match error.kind() {
            ConnectionRefused | ConnectionReset | ConnectionAborted | NotConnected
            | AddrNotAvailable | TimedOut | HostUnreachable | NetworkUnreachable => {
                ConnectFailure::Unreachable
            }
            _ => ConnectFailure::Other,
        };
        ConnectError::new(failure, error.to_string())
    }

    /// The kind of connection (`"postgres"`, `"redis"`...).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The process struct's field being connected, when the connection was opened by
    /// `#[autoreconnect]`.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// Where it was connecting to (no secret).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Why it failed.
    pub fn failure(&self) -> &ConnectFailure {
        &self.failure
    }

    /// The driver's message.
    pub fn message(&self) -> &str {
        &self.message
    }

    fn about<C: Connector>(mut self, params: &C, field: Option<&str>) -> ConnectError {
        C::KIND.clone_into(&mut self.kind);
        self.target = params.target();
        if let Some(field) = field {
            self.field = Some(field.to_owned());
        }
        self
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot connect ")?;
        if let Some(field) = &self.field {
            write!(f, "field `{field}` ")?;
        }
        write!(f, "({} {}): {}", self.kind, self.target, self.failure)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// How an operation through [`Conn::call`] or [`Conn::idempotent`] failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError<E> {
    /// The connection had to be (re)opened before the operation was sent, and could not be.
    /// Nothing was sent.
    #[error(transparent)]
    Connect(ConnectError),
    /// The connection was lost during the operation: the request may or may not have reached
    /// the server. The next call opens a new connection first. ([`Conn::idempotent`] returns
    /// this only when the second attempt lost its connection too.)
    #[error("connection lost during the operation (it may or may not have run): {0}")]
    Lost(E),
    /// The operation failed on a healthy connection (the server's answer, a bad query...).
    #[error(transparent)]
    Failed(E),
}

impl<E> CallError<E> {
    /// Whether the connection was lost mid-operation.
    pub fn is_lost(&self) -> bool {
        matches!(self, CallError::Lost(_))
    }
}

/// A connection that crosses processes as its parameters.
///
/// In the process that opened it, it holds the live connection (the driver's client, reached
/// through `Deref`/`DerefMut` or [`open`](Conn::open)). Encoded, it is only its parameters and
/// the name of the environment variable holding its secret, if any: never the secret, never
/// the socket. Decoded, it is not connected; it opens on first use (or before the first
/// lifecycle method, in a process struct with [`#[autoreconnect]`](macro@crate::autoreconnect)).
///
/// Using it through `Deref` when it cannot connect panics with the [`ConnectError`]'s message
/// (in a lifecycle method, that is a failure of the section, like any panic there). Use
/// [`open`](Conn::open), [`call`](Conn::call) or [`idempotent`](Conn::idempotent) for a typed
/// error instead.
///
/// `Clone` copies the parameters and the secret, not the live connection: the clone opens its
/// own.
pub struct Conn<C: Connector> {
    params: C,
    secret: Option<Secret>,
    secret_env: Option<String>,
    live: OnceLock<C::Live>,
}

impl<C: Connector> Conn<C> {
    /// A connection to open later, with `params`.
    pub fn new(params: C) -> Conn<C> {
        Conn {
            params,
            secret: None,
            secret_env: None,
            live: OnceLock::new(),
        }
    }

    /// Sets the secret to connect with, in this process only (it never crosses).
    pub fn with_secret(mut self, secret: impl Into<Secret>) -> Conn<C> {
        self.secret = Some(secret.into());
        self
    }

    /// Names an environment variable holding the secret, read by whichever process connects
    /// (when no secret was set there). The name crosses processes; the value never does.
    pub fn secret_from_env(mut self, var: impl Into<String>) -> Conn<C> {
        self.secret_env = Some(var.into());
        self
    }

    /// Sets or replaces the secret for the next connection, in this process only.
    pub fn set_secret(&mut self, secret: Option<Secret>) {
        self.secret = secret;
    }

    /// The parameters.
    pub fn params(&self) -> &C {
        &self.params
    }

    /// Whether a live connection is held and not known to be closed.
    pub fn is_open(&self) -> bool {
        self.live.get().is_some_and(|live| !C::is_closed(live))
    }

    /// The live connection, opened first if there is none or it is known to be closed.
    pub fn open(&mut self) -> Result<&mut C::Live, ConnectError> {
        self.open_as(None)
    }

    /// Drops the live connection (if any) and opens a new one.
    pub fn reconnect(&mut self) -> Result<&mut C::Live, ConnectError> {
        self.close();
        self.open()
    }

    /// Drops the live connection, if any. The next use opens a new one.
    pub fn close(&mut self) {
        self.live.take();
    }

    /// Runs `op` on the live connection. If the connection is known to be gone before `op`
    /// runs, it is opened again first (nothing was sent yet, so this is always safe). If it is
    /// lost during `op`, the error is [`CallError::Lost`] and `op` is **not** run again (it may
    /// have reached the server); the next call reconnects first.
    pub fn call<T>(
        &mut self,
        op: impl FnOnce(&mut C::Live) -> Result<T, C::Error>,
    ) -> Result<T, CallError<C::Error>> {
        let live = self.open().map_err(CallError::Connect)?;
        match op(live) {
            Ok(value) => Ok(value),
            Err(error) if C::is_lost(&error) => {
                self.close();
                Err(CallError::Lost(error))
            }
            Err(error) => Err(CallError::Failed(error)),
        }
    }

    /// [`call`](Conn::call) for an operation that is safe to run twice (a read, an upsert, a
    /// `SET`): when the connection is lost during `op`, reconnects and runs it once more.
    pub fn idempotent<T>(
        &mut self,
        mut op: impl FnMut(&mut C::Live) -> Result<T, C::Error>,
    ) -> Result<T, CallError<C::Error>> {
        match self.call(&mut op) {
            Err(CallError::Lost(_)) => self.call(op),
            other => other,
        }
    }

    /// Opens if needed; `field` names the struct field in errors.
    fn open_as(&mut self, field: Option<&str>) -> Result<&mut C::Live, ConnectError> {
        if self.live.get().is_some_and(C::is_closed) {
            self.live.take();
        }
        if self.live.get().is_none() {
            let live = self.connect_now(field)?;
            let _ = self.live.set(live);
        }
        Ok(self.live.get_mut().expect("set just above"))
    }

    fn connect_now(&self, field: Option<&str>) -> Result<C::Live, ConnectError> {
        let secret = self.secret_for(field)?;
        self.params
            .open(secret.as_ref())
            .map_err(|e| e.about(&self.params, field))
    }

    /// The secret to connect with: the one set in this process, else the one its environment
    /// variable holds, else none.
    fn secret_for(&self, field: Option<&str>) -> Result<Option<Secret>, ConnectError> {
        match (&self.secret, &self.secret_env) {
            (Some(secret), _) => Ok(Some(secret.clone())),
            (None, Some(var)) => read_env_secret(var)
                .map(Some)
                .map_err(|e| e.about(&self.params, field)),
            (None, None) => Ok(None),
        }
    }

    fn live_or_panic(&self) -> &C::Live {
        if let Some(live) = self.live.get() {
            return live;
        }
        match self.connect_now(None) {
            Ok(live) => self.live.get_or_init(|| live),
            Err(error) => panic!("{error}"),
        }
    }
}

/// The async forms, for connections whose parameters are an [`AsyncConnector`]: the same
/// semantics as [`open`](Conn::open), [`reconnect`](Conn::reconnect), [`call`](Conn::call) and
/// [`idempotent`](Conn::idempotent), without blocking the thread.
impl<C: AsyncConnector> Conn<C> {
    /// The live connection, opened first (without blocking) if there is none or it is known to
    /// be closed.
    ///
    /// # Errors
    ///
    /// When the connection cannot be opened, as for [`open`](Conn::open).
    pub async fn open_async(&mut self) -> Result<&mut C::Live, ConnectError> {
        if self.live.get().is_some_and(C::is_closed) {
            self.live.take();
        }
        if self.live.get().is_none() {
            let secret = self.secret_for(None)?;
            let live = self
                .params
                .open_async(secret.as_ref())
                .await
                .map_err(|e| e.about(&self.params, None))?;
            let _ = self.live.set(live);
        }
        Ok(self.live.get_mut().expect("set just above"))
    }

    /// Drops the live connection (if any) and opens a new one, without blocking.
    ///
    /// # Errors
    ///
    /// When the connection cannot be opened, as for [`open`](Conn::open).
    pub async fn reconnect_async(&mut self) -> Result<&mut C::Live, ConnectError> {
        self.close();
        self.open_async().await
    }

    /// Runs `op` on a clone of the live connection (an `Arc` of the client, a multiplexed
    /// handle: the future `op` returns owns what it uses). If the connection is known to be
    /// gone before `op` runs, it is opened again first (nothing was sent yet, so this is always
    /// safe). If it is lost during `op`, the error is [`CallError::Lost`] and `op` is **not**
    /// run again (it may have reached the server); the next call reconnects first.
    ///
    /// The examples are on `AsyncPostgres` and `AsyncRedis` (features `tokio-postgres` and
    /// `redis-async`).
    ///
    /// # Errors
    ///
    /// [`CallError::Connect`] when the connection had to be opened and could not be (nothing
    /// was sent), [`CallError::Lost`] when it was lost during `op`, [`CallError::Failed`] for
    /// any other error of `op`.
    pub async fn call_async<T, F, Fut>(&mut self, op: F) -> Result<T, CallError<C::Error>>
    where
        C::Live: Clone,
        F: FnOnce(C::Live) -> Fut,
        Fut: Future<Output = Result<T, C::Error>>,
    {
        let live = self.open_async().await.map_err(CallError::Connect)?.clone();
        match op(live).await {
            Ok(value) => Ok(value),
            Err(error) if C::is_lost(&error) => {
                self.close();
                Err(CallError::Lost(error))
            }
            Err(error) => Err(CallError::Failed(error)),
        }
    }

    /// [`call_async`](Conn::call_async) for an operation that is safe to run twice (a read, an
    /// upsert, a `SET`): when the connection is lost during `op`, reconnects and runs it once
    /// more.
    ///
    /// # Errors
    ///
    /// As for [`call_async`](Conn::call_async); [`CallError::Lost`] only when the second
    /// attempt lost its connection too.
    pub async fn idempotent_async<T, F, Fut>(&mut self, mut op: F) -> Result<T, CallError<C::Error>>
    where
        C::Live: Clone,
        F: FnMut(C::Live) -> Fut,
        Fut: Future<Output = Result<T, C::Error>>,
    {
        match self.call_async(&mut op).await {
            Err(CallError::Lost(_)) => self.call_async(op).await,
            other => other,
        }
    }
}

/// Runs `connect` on the process's tokio runtime (the one async lifecycle methods run on), as a
/// future any executor can await: the driver's sockets and background task then belong to that
/// runtime and live as long as the process, whichever runtime (or none) asked. One deadline,
/// `limit`, covers the whole connect; past it the error is [`ConnectFailure::Unreachable`].
/// Dropping the future gives the connect up.
#[cfg(any(feature = "tokio-postgres", feature = "redis-async"))]
fn connect_on_runtime<L: Send + 'static>(
    limit: std::time::Duration,
    connect: impl Future<Output = Result<L, ConnectError>> + Send + 'static,
) -> ConnectFuture<L> {
    /// Aborts the connect when its awaiting future is dropped.
    struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);
    impl<T> Drop for AbortOnDrop<T> {
        fn drop(&mut self) {
            self.0.abort();
        }
    }

    Box::pin(async move {
        let runtime = crate::async_hooks::try_runtime().map_err(|message| {
            ConnectError::new(
                ConnectFailure::Other,
                format!("cannot start the tokio runtime: {message}"),
            )
        })?;
        let mut task = AbortOnDrop(runtime.spawn(async move {
            // Inside the runtime: the timer needs its context.
            match tokio::time::timeout(limit, connect).await {
                Ok(result) => result,
                Err(_elapsed) => Err(no_session_within(limit)),
            }
        }));
        match (&mut task.0).await {
            Ok(result) => result,
            Err(_) => Err(ConnectError::new(
                ConnectFailure::Other,
                "the driver panicked while connecting",
            )),
        }
    })
}

/// The sync form of [`connect_on_runtime`], for [`Connector::open`] of an async driver: blocks
/// on the connect, or refuses with [`ConnectFailure::InsideRuntime`] when called inside an
/// async runtime (where blocking would stall the runtime, and `block_on` panics).
#[cfg(any(feature = "tokio-postgres", feature = "redis-async"))]
fn block_on_connect<L: Send + 'static>(
    limit: std::time::Duration,
    connect: impl Future<Output = Result<L, ConnectError>> + Send + 'static,
) -> Result<L, ConnectError> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(ConnectError::new(
            ConnectFailure::InsideRuntime,
            String::new(),
        ));
    }
    let runtime = crate::async_hooks::try_runtime().map_err(|message| {
        ConnectError::new(
            ConnectFailure::Other,
            format!("cannot start the tokio runtime: {message}"),
        )
    })?;
    runtime.block_on(connect_on_runtime(limit, connect))
}

/// A connect that found no session within its deadline.
fn no_session_within(limit: std::time::Duration) -> ConnectError {
    ConnectError::new(
        ConnectFailure::Unreachable,
        format!(
            "no session within {}s (the server took the connection but did not finish \
             the start-up)",
            limit.as_secs_f64()
        ),
    )
}

/// Runs `connect` on a helper thread and waits at most `limit` for it: drivers bound the
/// socket's connect, not always the hand-shake after it. Past the limit, the error is
/// [`ConnectFailure::Unreachable`]; the thread is left to end when its socket does (it holds
/// nothing of the caller's).
#[cfg_attr(not(any(feature = "postgres", feature = "redis")), allow(dead_code))]
fn within<L: Send + 'static>(
    limit: std::time::Duration,
    connect: impl FnOnce() -> Result<L, ConnectError> + Send + 'static,
) -> Result<L, ConnectError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("skprocess-connect".to_owned())
        .spawn(move || {
            let _ = tx.send(connect());
        });
    if let Err(error) = spawned {
        return Err(ConnectError::new(
            ConnectFailure::Other,
            format!("cannot start a thread to connect: {error}"),
        ));
    }
    match rx.recv_timeout(limit) {
        Ok(result) => result,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(no_session_within(limit)),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(ConnectError::new(
            ConnectFailure::Other,
            "the driver panicked while connecting",
        )),
    }
}

fn read_env_secret(var: &str) -> Result<Secret, ConnectError> {
    std::env::var(var).map(Secret).map_err(|_| {
        ConnectError::new(
            ConnectFailure::MissingEnv {
                var: var.to_owned(),
            },
            String::new(),
        )
    })
}

impl<C: Connector> Deref for Conn<C> {
    type Target = C::Live;

    /// The live connection, opened first if needed; panics if it cannot be opened.
    fn deref(&self) -> &C::Live {
        self.live_or_panic()
    }
}

impl<C: Connector> DerefMut for Conn<C> {
    /// The live connection, opened first if needed; panics if it cannot be opened.
    fn deref_mut(&mut self) -> &mut C::Live {
        match self.open() {
            Ok(live) => live,
            Err(error) => panic!("{error}"),
        }
    }
}

impl<C: Connector + Clone> Clone for Conn<C> {
    fn clone(&self) -> Conn<C> {
        Conn {
            params: self.params.clone(),
            secret: self.secret.clone(),
            secret_env: self.secret_env.clone(),
            live: OnceLock::new(),
        }
    }
}

impl<C: Connector + fmt::Debug> fmt::Debug for Conn<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("kind", &C::KIND)
            .field("params", &self.params)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("secret_env", &self.secret_env)
            .field("open", &self.is_open())
            .finish()
    }
}

/// What crosses: the parameters and the secret's variable name.
#[derive(Serialize)]
#[serde(rename = "Conn")]
struct WireRef<'a, C> {
    params: &'a C,
    secret_env: &'a Option<String>,
}

#[derive(Deserialize)]
#[serde(rename = "Conn")]
struct WireOwned<C> {
    params: C,
    secret_env: Option<String>,
}

impl<C: Connector> Serialize for Conn<C> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WireRef {
            params: &self.params,
            secret_env: &self.secret_env,
        }
        .serialize(serializer)
    }
}

impl<'de, C: Connector> Deserialize<'de> for Conn<C> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireOwned::<C>::deserialize(deserializer)?;
        Ok(Conn {
            params: wire.params,
            secret: None,
            secret_env: wire.secret_env,
            live: OnceLock::new(),
        })
    }
}

// ---- what `#[autoreconnect]` expands to ----

/// Where a credential in `#[autoreconnect(...)]` comes from.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub enum SecretSource {
    /// Written in the attribute.
    Literal(&'static str),
    /// `env("VAR")`: read when connecting.
    Env(&'static str),
}

/// One credential of `#[autoreconnect(...)]`: for connections of the type whose id `ty`
/// returns, in `field` (`None`: `"*"`, every field of that type without its own).
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct Credential {
    ty: fn() -> TypeId,
    field: Option<&'static str>,
    source: SecretSource,
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Literal(_) => f.write_str("Literal(***)"),
            SecretSource::Env(var) => f.debug_tuple("Env").field(var).finish(),
        }
    }
}

impl Credential {
    #[doc(hidden)]
    pub const fn new(
        ty: fn() -> TypeId,
        field: Option<&'static str>,
        source: SecretSource,
    ) -> Credential {
        Credential { ty, field, source }
    }
}

/// A field type that `#[autoreconnect]` can open: every [`Conn`].
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a connection type that #[autoreconnect] can rebuild",
    label = "not a connection type",
    note = "connection types are `Postgres`, `Redis`, `Sqlite`, `AsyncPostgres` and `AsyncRedis` from `skprocess::reconnect` (features `postgres`, `redis`, `rusqlite`, `tokio-postgres`, `redis-async`), or `Conn<P>` for your own `P: Connector`"
)]
pub trait ConnectionField: 'static {
    /// Opens the field with the credentials that apply to it.
    fn connect_field(
        &mut self,
        field: &'static str,
        credentials: &[Credential],
    ) -> Result<(), ConnectError>;
}

impl<C: Connector> ConnectionField for Conn<C> {
    fn connect_field(
        &mut self,
        field: &'static str,
        credentials: &[Credential],
    ) -> Result<(), ConnectError> {
        let ty = TypeId::of::<Self>();
        let mine = |c: &&Credential| (c.ty)() == ty;
        let chosen = credentials
            .iter()
            .filter(mine)
            .find(|c| c.field == Some(field))
            .or_else(|| credentials.iter().filter(mine).find(|c| c.field.is_none()));
        if let Some(credential) = chosen {
            let secret = match credential.source {
                SecretSource::Literal(secret) => Secret::new(secret),
                SecretSource::Env(var) => {
                    read_env_secret(var).map_err(|e| e.about(&self.params, Some(field)))?
                }
            };
            self.secret = Some(secret);
        }
        self.live.take();
        self.open_as(Some(field)).map(drop)
    }
}

/// Checks, where the attribute names a type, that it is a connection type.
#[doc(hidden)]
pub const fn assert_connection<T: ConnectionField>() {}

/// Finds out, by autoref, whether a field's type is a connection type: `(&Probe::of(&x)).get()`
/// is `Some(opener)` for a [`ConnectionField`] and `None` for anything else.
#[doc(hidden)]
#[derive(Debug)]
pub struct Probe<T>(std::marker::PhantomData<T>);

impl<T> Probe<T> {
    #[doc(hidden)]
    pub fn of(_: &T) -> Probe<T> {
        Probe(std::marker::PhantomData)
    }
}

/// The opener of a field: its `connect_field`.
#[doc(hidden)]
pub type FieldOpener<T> = fn(&mut T, &'static str, &[Credential]) -> Result<(), ConnectError>;

/// Chosen for connection types (needs no autoref).
#[doc(hidden)]
pub trait ProbeConnection {
    /// The field's type.
    type Field;
    /// `Some(opener)`.
    fn get(&self) -> Option<FieldOpener<Self::Field>>;
}

impl<T: ConnectionField> ProbeConnection for Probe<T> {
    type Field = T;
    fn get(&self) -> Option<FieldOpener<T>> {
        Some(T::connect_field)
    }
}

/// Chosen for every other type (one autoref further).
#[doc(hidden)]
pub trait ProbeOther {
    /// The field's type.
    type Field;
    /// `None`.
    fn get(&self) -> Option<FieldOpener<Self::Field>>;
}

impl<T> ProbeOther for &Probe<T> {
    type Field = T;
    fn get(&self) -> Option<FieldOpener<T>> {
        None
    }
}
