//! PostgreSQL: the parameters shared by the sync `Postgres` (the `postgres` client, feature
//! `postgres`) and `AsyncPostgres` (feature `tokio-postgres`), and the sync connection type.
//! Both clients are built on `tokio-postgres`, whose configuration and error types they share.

use std::net::IpAddr;
use std::path::PathBuf;
#[cfg(feature = "postgres")]
use std::str::FromStr;
use std::time::Duration;

#[cfg(feature = "postgres")]
use ::postgres::{Client, Config, NoTls};
use ::tokio_postgres::config::{
    ChannelBinding, LoadBalanceHosts, SslMode, SslNegotiation, TargetSessionAttrs,
};
use ::tokio_postgres::error::SqlState;
use serde::{Deserialize, Serialize};

#[cfg(feature = "postgres")]
use super::Conn;
#[cfg(feature = "postgres")]
use super::Connector;
use super::{ConnectError, ConnectFailure, Secret};

/// A PostgreSQL connection that crosses processes as its parameters: dereferences to a
/// [`postgres::Client`].
///
/// ```no_run
/// use skprocess::reconnect::Postgres;
///
/// let mut db = Postgres::connect("host=127.0.0.1 user=app dbname=app password=s3cret")?;
/// let rows = db.query("SELECT 1", &[])?;
/// assert_eq!(rows.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Connections are made without TLS (loopback and private networks): a configuration that
/// requires TLS (`sslmode=require`) fails to connect rather than falling back. Connecting, from
/// the first packet to a session ready for queries, gives up after 10 seconds unless the
/// configuration sets `connect_timeout`.
#[cfg(feature = "postgres")]
pub type Postgres = Conn<PgParams>;

/// Where a PostgreSQL server is: the libpq-style settings without the password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PgParams {
    /// Hosts to try in order.
    pub hosts: Vec<PgHost>,
    /// Their ports (one for all, or one per host; empty: 5432).
    pub ports: Vec<u16>,
    /// The user.
    pub user: Option<String>,
    /// The database.
    pub dbname: Option<String>,
    /// Command-line options sent to the server.
    pub options: Option<String>,
    /// The application name the server shows.
    pub application_name: Option<String>,
    /// How long connecting may take, from the first packet to a session ready for queries
    /// (default: 10 s).
    pub connect_timeout: Option<Duration>,
    /// Host addresses, used instead of resolving `hosts` (libpq's `hostaddr`).
    pub hostaddrs: Vec<IpAddr>,
    /// Whether to use TLS. Connections are made without TLS, so `Require` fails to connect
    /// (it is never downgraded).
    pub ssl_mode: PgSslMode,
    /// Whether to ask for TLS directly, without the PostgreSQL negotiation.
    pub ssl_direct: bool,
    /// SCRAM channel binding.
    pub channel_binding: PgChannelBinding,
    /// Which kind of server a multi-host configuration accepts.
    pub target_session_attrs: PgSessionAttrs,
    /// Whether hosts are tried in a random order.
    pub load_balance_hosts: bool,
    /// TCP_USER_TIMEOUT on the socket.
    pub tcp_user_timeout: Option<Duration>,
    /// Whether TCP keepalives are on.
    pub keepalives: bool,
    /// Idle time before the first keepalive.
    pub keepalives_idle: Duration,
    /// Time between keepalives.
    pub keepalives_interval: Option<Duration>,
    /// Keepalives lost before the connection is dropped.
    pub keepalives_retries: Option<u32>,
}

/// libpq's `sslmode`, as far as the `postgres` and `tokio-postgres` clients know it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PgSslMode {
    /// No TLS.
    Disable,
    /// TLS if the server offers it (without a TLS connector: no TLS).
    Prefer,
    /// TLS or no connection (without a TLS connector: no connection).
    Require,
}

/// libpq's `channel_binding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PgChannelBinding {
    /// Never.
    Disable,
    /// When available.
    Prefer,
    /// Always, or no connection.
    Require,
}

/// libpq's `target_session_attrs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PgSessionAttrs {
    /// Any server.
    Any,
    /// A server that accepts writes.
    ReadWrite,
    /// A read-only server.
    ReadOnly,
}

/// A PostgreSQL host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PgHost {
    /// A host name or address.
    Tcp(String),
    /// The directory holding the server's Unix socket.
    Unix(PathBuf),
}

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The parameters of a configuration, `postgres::Config` or `tokio_postgres::Config` (which
/// have the same getters), and its password if it has one (kept apart).
macro_rules! params_of {
    ($config:expr) => {{
        let config = $config;
        let params = PgParams {
            hosts: config
                .get_hosts()
                .iter()
                .map(|host| match host {
                    ::tokio_postgres::config::Host::Tcp(name) => PgHost::Tcp(name.clone()),
                    ::tokio_postgres::config::Host::Unix(path) => PgHost::Unix(path.clone()),
                })
                .collect(),
            ports: config.get_ports().to_vec(),
            user: config.get_user().map(str::to_owned),
            dbname: config.get_dbname().map(str::to_owned),
            options: config.get_options().map(str::to_owned),
            application_name: config.get_application_name().map(str::to_owned),
            connect_timeout: config.get_connect_timeout().copied(),
            hostaddrs: config.get_hostaddrs().to_vec(),
            // A mode this version does not know is taken as the strictest: never a downgrade.
            ssl_mode: match config.get_ssl_mode() {
                SslMode::Disable => PgSslMode::Disable,
                SslMode::Prefer => PgSslMode::Prefer,
                _ => PgSslMode::Require,
            },
            ssl_direct: config.get_ssl_negotiation() != SslNegotiation::Postgres,
            channel_binding: match config.get_channel_binding() {
                ChannelBinding::Disable => PgChannelBinding::Disable,
                ChannelBinding::Prefer => PgChannelBinding::Prefer,
                _ => PgChannelBinding::Require,
            },
            target_session_attrs: match config.get_target_session_attrs() {
                TargetSessionAttrs::Any => PgSessionAttrs::Any,
                TargetSessionAttrs::ReadOnly => PgSessionAttrs::ReadOnly,
                _ => PgSessionAttrs::ReadWrite,
            },
            load_balance_hosts: config.get_load_balance_hosts() != LoadBalanceHosts::Disable,
            tcp_user_timeout: config.get_tcp_user_timeout().copied(),
            keepalives: config.get_keepalives(),
            keepalives_idle: config.get_keepalives_idle(),
            keepalives_interval: config.get_keepalives_interval(),
            keepalives_retries: config.get_keepalives_retries(),
        };
        let secret = config
            .get_password()
            .map(|p| Secret::new(String::from_utf8_lossy(p)));
        (params, secret)
    }};
}

impl PgParams {
    /// The parameters of a [`postgres::Config`], and its password if it
    /// has one (kept apart, never in the parameters).
    #[cfg(feature = "postgres")]
    pub fn from_config(config: &Config) -> (PgParams, Option<Secret>) {
        params_of!(config)
    }

    /// The parameters of a [`tokio_postgres::Config`], and its
    /// password if it has one (kept apart, never in the parameters).
    pub fn from_tokio_config(config: &::tokio_postgres::Config) -> (PgParams, Option<Secret>) {
        params_of!(config)
    }

    /// The driver's configuration, with `secret` as its password. The sync client's
    /// configuration is this one wrapped (`postgres::Config: From<tokio_postgres::Config>`), so
    /// both clients get every setting the same way.
    pub(super) fn to_tokio_config(&self, secret: Option<&Secret>) -> ::tokio_postgres::Config {
        let mut config = ::tokio_postgres::Config::new();
        for host in &self.hosts {
            match host {
                PgHost::Tcp(name) => config.host(name),
                PgHost::Unix(path) => config.host_path(path),
            };
        }
        for &port in &self.ports {
            config.port(port);
        }
        if let Some(user) = &self.user {
            config.user(user);
        }
        if let Some(dbname) = &self.dbname {
            config.dbname(dbname);
        }
        if let Some(options) = &self.options {
            config.options(options);
        }
        if let Some(name) = &self.application_name {
            config.application_name(name);
        }
        config.connect_timeout(self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT));
        for &addr in &self.hostaddrs {
            config.hostaddr(addr);
        }
        config.ssl_mode(match self.ssl_mode {
            PgSslMode::Disable => SslMode::Disable,
            PgSslMode::Prefer => SslMode::Prefer,
            PgSslMode::Require => SslMode::Require,
        });
        if self.ssl_direct {
            config.ssl_negotiation(SslNegotiation::Direct);
        }
        config.channel_binding(match self.channel_binding {
            PgChannelBinding::Disable => ChannelBinding::Disable,
            PgChannelBinding::Prefer => ChannelBinding::Prefer,
            PgChannelBinding::Require => ChannelBinding::Require,
        });
        config.target_session_attrs(match self.target_session_attrs {
            PgSessionAttrs::Any => TargetSessionAttrs::Any,
            PgSessionAttrs::ReadWrite => TargetSessionAttrs::ReadWrite,
            PgSessionAttrs::ReadOnly => TargetSessionAttrs::ReadOnly,
        });
        if self.load_balance_hosts {
            config.load_balance_hosts(LoadBalanceHosts::Random);
        }
        if let Some(timeout) = self.tcp_user_timeout {
            config.tcp_user_timeout(timeout);
        }
        config.keepalives(self.keepalives);
        config.keepalives_idle(self.keepalives_idle);
        if let Some(interval) = self.keepalives_interval {
            config.keepalives_interval(interval);
        }
        if let Some(retries) = self.keepalives_retries {
            config.keepalives_retries(retries);
        }
        if let Some(secret) = secret {
            config.password(secret.expose());
        }
        config
    }

    /// The connect deadline: from the first packet to a session ready for queries.
    pub(super) fn connect_limit(&self) -> Duration {
        self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT)
    }

    /// Where it connects, for messages: hosts, ports, database, user.
    pub(super) fn describe(&self) -> String {
        let hosts: Vec<String> = self
            .hosts
            .iter()
            .map(|h| match h {
                PgHost::Tcp(name) => name.clone(),
                PgHost::Unix(path) => path.display().to_string(),
            })
            .collect();
        let ports: Vec<String> = self.ports.iter().map(u16::to_string).collect();
        let mut out = hosts.join(",");
        if !ports.is_empty() {
            out.push(':');
            out.push_str(&ports.join(","));
        }
        if let Some(db) = &self.dbname {
            out.push('/');
            out.push_str(db);
        }
        if let Some(user) = &self.user {
            out.push_str(" as ");
            out.push_str(user);
        }
        out
    }
}

#[cfg(feature = "postgres")]
impl Connector for PgParams {
    type Live = Client;
    type Error = ::postgres::Error;
    const KIND: &'static str = "postgres";

    fn target(&self) -> String {
        self.describe()
    }

    fn open(&self, secret: Option<&Secret>) -> Result<Client, ConnectError> {
        // The client's own connect timeout covers the socket only, not the start-up and
        // authentication that follow: a server that accepts and never answers would hold this
        // forever. So the whole connect runs on a helper thread, with one deadline.
        let config = Config::from(self.to_tokio_config(secret));
        let had_secret = secret.is_some();
        super::within(self.connect_limit(), move || {
            config
                .connect(NoTls)
                .map_err(|error| connect_error(&error, had_secret))
        })
    }

    fn is_closed(live: &Client) -> bool {
        live.is_closed()
    }

    fn is_lost(error: &::postgres::Error) -> bool {
        is_lost(error)
    }
}

/// Whether an error of either client means that the connection was lost.
pub(super) fn is_lost(error: &::tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    if let Some(code) = error.code() {
        // Class 08 (connection exceptions), the server shutting down or not yet up, and the
        // session ended by one of the server's idle timeouts.
        return code.code().starts_with("08")
            || [
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
                SqlState::IDLE_SESSION_TIMEOUT,
                SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
            ]
            .contains(code);
    }
    io_source(error).is_some()
}

/// A failed connect of either client as a [`ConnectError`].
pub(super) fn connect_error(error: &::tokio_postgres::Error, had_secret: bool) -> ConnectError {
    ConnectError::new(classify(error, had_secret), error_chain(error))
}

fn io_source(error: &::tokio_postgres::Error) -> Option<&std::io::Error> {
    std::error::Error::source(error).and_then(|s| s.downcast_ref::<std::io::Error>())
}

fn classify(error: &::tokio_postgres::Error, had_secret: bool) -> ConnectFailure {
    if let Some(code) = error.code() {
        if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            return ConnectFailure::Auth;
        }
        if *code == SqlState::CANNOT_CONNECT_NOW {
            return ConnectFailure::Unreachable;
        }
        return ConnectFailure::Other;
    }
    if io_source(error).is_some() || error.to_string().starts_with("timeout") {
        return ConnectFailure::Unreachable;
    }
    // The client refuses before sending anything when the server asks for a password it was
    // not given ("invalid configuration: password missing").
    if !had_secret && error_chain(error).contains("password missing") {
        return ConnectFailure::NoSecret;
    }
    ConnectFailure::Other
}

fn error_chain(error: &::tokio_postgres::Error) -> String {
    let mut out = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(feature = "postgres")]
impl Conn<PgParams> {
    /// Connects now, from a libpq-style string (`host=.. port=.. user=.. dbname=..
    /// password=..`) or a `postgresql://` URL. The password stays in this process.
    pub fn connect(config: &str) -> Result<Postgres, ConnectError> {
        let mut conn = Self::lazy(config)?;
        conn.open()?;
        Ok(conn)
    }

    /// Like [`connect`](Conn::<PgParams>::connect), without connecting: the connection opens
    /// on first use.
    pub fn lazy(config: &str) -> Result<Postgres, ConnectError> {
        let config = Config::from_str(config).map_err(|e| {
            let mut error = ConnectError::new(ConnectFailure::Other, e.to_string());
            PgParams::KIND.clone_into(&mut error.kind);
            "(a configuration that does not parse)".clone_into(&mut error.target);
            error
        })?;
        Ok(Self::from_config(&config))
    }

    /// From a [`postgres::Config`], without connecting. Its password, if
    /// any, stays in this process.
    pub fn from_config(config: &Config) -> Postgres {
        let (params, secret) = PgParams::from_config(config);
        let mut conn = Conn::new(params);
        conn.secret = secret;
        conn
    }
}
