//! Redis through the async [`redis`](::redis) multiplexed connection.

use std::future::Future;
use std::ops::Deref;

use ::redis::aio::MultiplexedConnection;
use ::redis::{AsyncConnectionConfig, RedisError};
use serde::{Deserialize, Serialize};

use super::redis_conn::{CONNECT_TIMEOUT, connect_error, is_lost};
use super::{AsyncConnector, Conn, ConnectError, ConnectFuture, Connector, RedisParams, Secret};

/// A Redis connection for async code that crosses processes as its parameters: dereferences to
/// a [`redis::aio::MultiplexedConnection`], so
/// `redis::AsyncCommands` methods and `query_async(&mut *conn)` work on it.
///
/// ```no_run
/// use skprocess::reconnect::AsyncRedis;
/// use skprocess::reconnect::redis::AsyncCommands;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let mut cache = AsyncRedis::connect_async("redis://:s3cret@127.0.0.1:6379/0").await?;
/// let _: () = cache.set("greeting", "hello").await?;
/// // Safe to repeat: after a lost connection, reconnects and reads once more.
/// let greeting: Option<String> = cache
///     .idempotent_async(|mut c| async move { c.get("greeting").await })
///     .await?;
/// # let _ = greeting;
/// # Ok(())
/// # }
/// # let _ = demo;
/// ```
///
/// Its parameters are the sync `Redis`'s ([`RedisParams`]). Connections are plain TCP or Unix
/// sockets (no TLS). Connecting, the first `PING` included, gives up after 10 seconds. As with
/// the sync connection, requests wait for their answer as long as it takes (no response timeout;
/// set one on the live connection with `set_response_timeout` if you want it).
///
/// The multiplexed connection is a handle to a background task that runs on the process's tokio
/// runtime, the one async lifecycle methods run on; clones share it, and it ends when the last
/// clone is dropped or the server closes the connection.
pub type AsyncRedis = Conn<AsyncRedisParams>;

/// The parameters of an [`AsyncRedis`]: the same [`RedisParams`] as the sync type (encoded the
/// same way), opened with the async connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AsyncRedisParams(pub RedisParams);

impl Deref for AsyncRedisParams {
    type Target = RedisParams;

    fn deref(&self) -> &RedisParams {
        &self.0
    }
}

impl From<RedisParams> for AsyncRedisParams {
    fn from(params: RedisParams) -> AsyncRedisParams {
        AsyncRedisParams(params)
    }
}

impl AsyncRedisParams {
    /// The connect, owning its connection info: a multiplexed connection (its background task
    /// spawned on the runtime that polls this future) that answered a `PING`.
    fn connect(
        &self,
        secret: Option<&Secret>,
    ) -> impl Future<Output = Result<MultiplexedConnection, ConnectError>> + Send + 'static {
        let had_secret = secret.is_some();
        let info = self.0.to_info(secret);
        async move {
            let fail = |error: RedisError| connect_error(&error, had_secret);
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(None);
            let mut live = ::redis::Client::open(info)
                .map_err(fail)?
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .map_err(fail)?;
            // Without a password, a server that wants one still accepts the connection and
            // refuses each command: one PING finds that out now, not at the first use.
            ::redis::cmd("PING")
                .query_async::<String>(&mut live)
                .await
                .map_err(fail)?;
            Ok(live)
        }
    }
}

impl Connector for AsyncRedisParams {
    type Live = MultiplexedConnection;
    type Error = RedisError;
    const KIND: &'static str = "redis";

    fn target(&self) -> String {
        self.0.describe()
    }

    /// Blocks on the connect (on the process's runtime), outside any runtime; inside one,
    /// refuses with [`ConnectFailure::InsideRuntime`](super::ConnectFailure::InsideRuntime) (use [`Conn::open_async`] there).
    fn open(&self, secret: Option<&Secret>) -> Result<MultiplexedConnection, ConnectError> {
        super::block_on_connect(CONNECT_TIMEOUT, self.connect(secret))
    }

    fn is_lost(error: &RedisError) -> bool {
        is_lost(error)
    }
}

impl AsyncConnector for AsyncRedisParams {
    fn open_async(&self, secret: Option<&Secret>) -> ConnectFuture<MultiplexedConnection> {
        super::connect_on_runtime(CONNECT_TIMEOUT, self.connect(secret))
    }
}

impl Conn<AsyncRedisParams> {
    /// Connects now, without blocking, to a `redis://[user][:password@]host[:port][/db]` (or
    /// `redis+unix://`) URL. The password stays in this process.
    ///
    /// # Errors
    ///
    /// When the URL does not parse or names TLS, or the connection cannot be opened.
    pub async fn connect_async(url: &str) -> Result<AsyncRedis, ConnectError> {
        let mut conn = Self::lazy(url)?;
        conn.open_async().await?;
        Ok(conn)
    }

    /// Connects now, blocking, from sync code (as the sync `Redis::connect` does).
    ///
    /// # Errors
    ///
    /// As for [`connect_async`](Conn::<AsyncRedisParams>::connect_async), and
    /// [`ConnectFailure::InsideRuntime`](super::ConnectFailure::InsideRuntime) when called inside an async runtime.
    pub fn connect(url: &str) -> Result<AsyncRedis, ConnectError> {
        let mut conn = Self::lazy(url)?;
        conn.open()?;
        Ok(conn)
    }

    /// Like [`connect_async`](Conn::<AsyncRedisParams>::connect_async), without connecting: the
    /// connection opens on first use.
    ///
    /// # Errors
    ///
    /// When the URL does not parse or names TLS.
    pub fn lazy(url: &str) -> Result<AsyncRedis, ConnectError> {
        let (params, secret) = super::redis_conn::params_from_url(url, AsyncRedisParams::KIND)?;
        let mut conn = Conn::new(AsyncRedisParams(params));
        conn.secret = secret;
        Ok(conn)
    }
}
