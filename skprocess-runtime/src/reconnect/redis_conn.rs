//! Redis through the sync [`redis`](::redis) connection.

use std::path::PathBuf;
use std::time::Duration;

use ::redis::{
    ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo, RedisConnectionInfo, RedisError,
};
use serde::{Deserialize, Serialize};

use super::{Conn, ConnectError, ConnectFailure, Connector, Secret};

/// A Redis connection that crosses processes as its parameters: dereferences to a
/// [`redis::Connection`], so `redis::Commands` methods and
/// `query(&mut *conn)` work on it.
///
/// ```no_run
/// use redis::Commands;
/// use skprocess::reconnect::Redis;
///
/// let mut cache = Redis::connect("redis://:s3cret@127.0.0.1:6379/0")?;
/// let _: () = cache.set("greeting", "hello")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Connections are plain TCP or Unix sockets (no TLS). Connecting, the first `PING` included,
/// gives up after 10 seconds.
pub type Redis = Conn<RedisParams>;

/// Where a Redis server is, without the password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedisParams {
    /// The server's address.
    pub addr: RedisAddr,
    /// The database number.
    pub db: i64,
    /// The ACL user, if not the default one.
    pub username: Option<String>,
}

/// A Redis server's address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RedisAddr {
    /// Host and port.
    Tcp(String, u16),
    /// A Unix socket.
    Unix(PathBuf),
}

pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl RedisParams {
    /// The parameters of a [`redis::ConnectionInfo`], and its
    /// password if it has one (kept apart). TLS addresses are refused.
    pub fn from_info(info: &ConnectionInfo) -> Result<(RedisParams, Option<Secret>), ConnectError> {
        let addr = match info.addr() {
            ConnectionAddr::Tcp(host, port) => RedisAddr::Tcp(host.clone(), *port),
            ConnectionAddr::Unix(path) => RedisAddr::Unix(path.clone()),
            other => {
                return Err(ConnectError::new(
                    ConnectFailure::Other,
                    format!("TLS connections are not supported ({other})"),
                ));
            }
        };
        let settings = info.redis_settings();
        Ok((
            RedisParams {
                addr,
                db: settings.db(),
                username: settings.username().map(str::to_owned),
            },
            settings.password().map(Secret::new),
        ))
    }

    /// The driver's connection info, with `secret` as the password.
    pub(super) fn to_info(&self, secret: Option<&Secret>) -> ConnectionInfo {
        let addr = match &self.addr {
            RedisAddr::Tcp(host, port) => ConnectionAddr::Tcp(host.clone(), *port),
            RedisAddr::Unix(path) => ConnectionAddr::Unix(path.clone()),
        };
        let mut settings = RedisConnectionInfo::default().set_db(self.db);
        if let Some(user) = &self.username {
            settings = settings.set_username(user);
        }
        if let Some(secret) = secret {
            settings = settings.set_password(secret.expose());
        }
        addr.into_connection_info()
            .expect("an address is always a valid connection info")
            .set_redis_settings(settings)
    }

    /// Where it connects, for messages: address, database, user.
    pub(super) fn describe(&self) -> String {
        let mut out = match &self.addr {
            RedisAddr::Tcp(host, port) => format!("{host}:{port}"),
            RedisAddr::Unix(path) => path.display().to_string(),
        };
        out.push_str(&format!("/{}", self.db));
        if let Some(user) = &self.username {
            out.push_str(" as ");
            out.push_str(user);
        }
        out
    }
}

impl Connector for RedisParams {
    type Live = ::redis::Connection;
    type Error = RedisError;
    const KIND: &'static str = "redis";

    fn target(&self) -> String {
        self.describe()
    }

    fn open(&self, secret: Option<&Secret>) -> Result<::redis::Connection, ConnectError> {
        let had_secret = secret.is_some();
        let fail = move |error: RedisError| connect_error(&error, had_secret);
        let info = self.to_info(secret);
        // One deadline for the whole connect, the PING included: a server that accepts and
        // never answers must not hold this forever.
        super::within(CONNECT_TIMEOUT, move || {
            let mut live = ::redis::Client::open(info)
                .map_err(fail)?
                .get_connection_with_timeout(CONNECT_TIMEOUT)
                .map_err(fail)?;
            // Without a password, a server that wants one still accepts the connection and
            // refuses each command: one PING finds that out now, not at the first use.
            ::redis::cmd("PING")
                .query::<String>(&mut live)
                .map_err(fail)?;
            Ok(live)
        })
    }

    fn is_closed(live: &::redis::Connection) -> bool {
        !::redis::ConnectionLike::is_open(live)
    }

    fn is_lost(error: &RedisError) -> bool {
        is_lost(error)
    }
}

/// A failed connect of either connection as a [`ConnectError`].
pub(super) fn connect_error(error: &RedisError, had_secret: bool) -> ConnectError {
    let auth = error.kind() == ErrorKind::AuthenticationFailed
        || matches!(error.code(), Some("NOAUTH" | "WRONGPASS"));
    let failure = match error.kind() {
        _ if auth && !had_secret => ConnectFailure::NoSecret,
        _ if auth => ConnectFailure::Auth,
        _ if error.is_connection_refusal() || error.is_timeout() || error.is_io_error() => {
            ConnectFailure::Unreachable
        }
        _ => ConnectFailure::Other,
    };
    ConnectError::new(failure, error.to_string())
}

/// Whether an error of either connection means that the connection was lost.
pub(super) fn is_lost(error: &RedisError) -> bool {
    error.is_connection_dropped() || error.is_io_error() || error.is_connection_refusal()
}

/// The parameters and the password of a `redis://` URL, for a connection of kind `kind`
/// (errors name it).
pub(super) fn params_from_url(
    url: &str,
    kind: &str,
) -> Result<(RedisParams, Option<Secret>), ConnectError> {
    let unparsed = |mut error: ConnectError| {
        kind.clone_into(&mut error.kind);
        "(a URL that does not parse)".clone_into(&mut error.target);
        error
    };
    let info = url
        .into_connection_info()
        .map_err(|e| unparsed(ConnectError::new(ConnectFailure::Other, e.to_string())))?;
    RedisParams::from_info(&info).map_err(unparsed)
}

impl Conn<RedisParams> {
    /// Connects now, to a `redis://[user][:password@]host[:port][/db]` (or `redis+unix://`)
    /// URL. The password stays in this process.
    pub fn connect(url: &str) -> Result<Redis, ConnectError> {
        let mut conn = Self::lazy(url)?;
        conn.open()?;
        Ok(conn)
    }

    /// Like [`connect`](Conn::<RedisParams>::connect), without connecting: the connection opens
    /// on first use.
    pub fn lazy(url: &str) -> Result<Redis, ConnectError> {
        let (params, secret) = params_from_url(url, RedisParams::KIND)?;
        let mut conn = Conn::new(params);
        conn.secret = secret;
        Ok(conn)
    }
}
