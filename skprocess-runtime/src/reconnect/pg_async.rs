//! PostgreSQL through the async [`tokio-postgres`](::tokio_postgres) client.

use std::future::Future;
use std::ops::Deref;
use std::str::FromStr;
use std::sync::Arc;

use ::tokio_postgres::{Client, Config, NoTls};
use serde::{Deserialize, Serialize};

use super::pg::{connect_error, is_lost};
use super::{
    AsyncConnector, Conn, ConnectError, ConnectFailure, ConnectFuture, Connector, PgParams, Secret,
};

/// A PostgreSQL connection for async code that crosses processes as its parameters:
/// dereferences to an `Arc` of a [`tokio_postgres::Client`], so the
/// client's methods are called on it directly (`db.query(..).await`).
///
/// ```no_run
/// use skprocess::reconnect::AsyncPostgres;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let mut db = AsyncPostgres::connect_async("host=127.0.0.1 user=app dbname=app password=s3cret")
///     .await?;
/// let rows = db.query("SELECT 1", &[]).await?;
/// assert_eq!(rows.len(), 1);
/// // Through `call_async`, a connection known to be closed is opened again first.
/// let one: i32 = db
///     .call_async(|client| async move { client.query_one("SELECT 1", &[]).await })
///     .await?
///     .get(0);
/// # let _ = one;
/// # Ok(())
/// # }
/// # let _ = demo;
/// ```
///
/// Its parameters are the sync `Postgres`'s ([`PgParams`]), so every setting crosses the same
/// way, and so do its limits: connections are made without TLS, and a configuration that
/// requires TLS (`sslmode=require`) fails to connect rather than falling back; connecting, from
/// the first packet to a session ready for queries, gives up after 10 seconds unless the
/// configuration sets `connect_timeout`.
///
/// The connection's background task (it reads and writes the socket for the client) runs on the
/// process's tokio runtime, the one async lifecycle methods run on, until the client is dropped
/// or the server closes the connection. The client is behind an `Arc` so that
/// [`call_async`](Conn::call_async) can hand a clone to a future that owns it; a transaction,
/// which needs `&mut Client`, is `Arc::get_mut` on the live client while no clone is held (or
/// `BEGIN`/`COMMIT` through `batch_execute`).
pub type AsyncPostgres = Conn<AsyncPgParams>;

/// The parameters of an [`AsyncPostgres`]: the same [`PgParams`] as the sync type (encoded the
/// same way), opened with the async client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AsyncPgParams(pub PgParams);

impl Deref for AsyncPgParams {
    type Target = PgParams;

    fn deref(&self) -> &PgParams {
        &self.0
    }
}

impl From<PgParams> for AsyncPgParams {
    fn from(params: PgParams) -> AsyncPgParams {
        AsyncPgParams(params)
    }
}

impl AsyncPgParams {
    /// The connect, owning its configuration: a session, and its background task spawned on
    /// the runtime that polls this future.
    fn connect(
        &self,
        secret: Option<&Secret>,
    ) -> impl Future<Output = Result<Arc<Client>, ConnectError>> + Send + 'static {
        let config = self.0.to_tokio_config(secret);
        let had_secret = secret.is_some();
        async move {
            let (client, connection) = config
                .connect(NoTls)
                .await
                .map_err(|error| connect_error(&error, had_secret))?;
            // Ends when the client is dropped or the connection closes; the client reports
            // that at its next request (and `is_closed` says so before).
            tokio::spawn(async move {
                let _ = connection.await;
            });
            Ok(Arc::new(client))
        }
    }
}

impl Connector for AsyncPgParams {
    type Live = Arc<Client>;
    type Error = ::tokio_postgres::Error;
    const KIND: &'static str = "postgres";

    fn target(&self) -> String {
        self.0.describe()
    }

    /// Blocks on the connect (on the process's runtime), outside any runtime; inside one,
    /// refuses with [`ConnectFailure::InsideRuntime`] (use [`Conn::open_async`] there).
    fn open(&self, secret: Option<&Secret>) -> Result<Arc<Client>, ConnectError> {
        super::block_on_connect(self.0.connect_limit(), self.connect(secret))
    }

    fn is_closed(live: &Arc<Client>) -> bool {
        live.is_closed()
    }

    fn is_lost(error: &::tokio_postgres::Error) -> bool {
        is_lost(error)
    }
}

impl AsyncConnector for AsyncPgParams {
    fn open_async(&self, secret: Option<&Secret>) -> ConnectFuture<Arc<Client>> {
        super::connect_on_runtime(self.0.connect_limit(), self.connect(secret))
    }
}

impl Conn<AsyncPgParams> {
    /// Connects now, without blocking, from a libpq-style string (`host=.. port=.. user=..
    /// dbname=.. password=..`) or a `postgresql://` URL. The password stays in this process.
    ///
    /// # Errors
    ///
    /// When the configuration does not parse or the connection cannot be opened.
    pub async fn connect_async(config: &str) -> Result<AsyncPostgres, ConnectError> {
        let mut conn = Self::lazy(config)?;
        conn.open_async().await?;
        Ok(conn)
    }

    /// Connects now, blocking, from sync code (as the sync `Postgres::connect` does): a parent
    /// that hands the connection to async processes, say.
    ///
    /// # Errors
    ///
    /// When the configuration does not parse or the connection cannot be opened, and
    /// [`ConnectFailure::InsideRuntime`] when called inside an async runtime (use
    /// [`connect_async`](Conn::<AsyncPgParams>::connect_async) there).
    pub fn connect(config: &str) -> Result<AsyncPostgres, ConnectError> {
        let mut conn = Self::lazy(config)?;
        conn.open()?;
        Ok(conn)
    }

    /// Like [`connect_async`](Conn::<AsyncPgParams>::connect_async), without connecting: the
    /// connection opens on first use.
    ///
    /// # Errors
    ///
    /// When the configuration does not parse.
    pub fn lazy(config: &str) -> Result<AsyncPostgres, ConnectError> {
        let config = Config::from_str(config).map_err(|e| {
            let mut error = ConnectError::new(ConnectFailure::Other, e.to_string());
            AsyncPgParams::KIND.clone_into(&mut error.kind);
            "(a configuration that does not parse)".clone_into(&mut error.target);
            error
        })?;
        Ok(Self::from_config(&config))
    }

    /// From a [`tokio_postgres::Config`], without connecting. Its
    /// password, if any, stays in this process.
    pub fn from_config(config: &Config) -> AsyncPostgres {
        let (params, secret) = PgParams::from_tokio_config(config);
        let mut conn = Conn::new(AsyncPgParams(params));
        conn.secret = secret;
        conn
    }
}
