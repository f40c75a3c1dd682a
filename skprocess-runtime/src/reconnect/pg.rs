//! PostgreSQL through the sync [`postgres`](::postgres) client.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use ::postgres::error::SqlState;
use ::postgres::{Client, Config, NoTls};
use serde::{Deserialize, Serialize};

use super::{Conn, ConnectError, ConnectFailure, Connector, Secret};

/// A PostgreSQL connection that crosses processes as its parameters: dereferences to a
/// [`postgres::Client`](::postgres::Client).
///
/// ```no_run
/// use skprocess::reconnect::Postgres;
///
/// let mut db = Postgres::connect("host=127.0.0.1 user=app dbname=app password=s3cret")?;
/// let rows = db.query("SELECT 1", &[])?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Connections are made without TLS (loopback and private networks); the connect timeout is
/// 10 seconds unless the configuration sets one.
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
    /// How long connecting may take.
    pub connect_timeout: Option<Duration>,
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

impl PgParams {
    /// The parameters of a [`postgres::Config`](::postgres::Config), and its password if it
    /// has one (kept apart, never in the parameters).
    pub fn from_config(config: &Config) -> (PgParams, Option<Secret>) {
        let params = PgParams {
            hosts: config
                .get_hosts()
                .iter()
                .map(|host| match host {
                    ::postgres::config::Host::Tcp(name) => PgHost::Tcp(name.clone()),
                    ::postgres::config::Host::Unix(path) => PgHost::Unix(path.clone()),
                })
                .collect(),
            ports: config.get_ports().to_vec(),
            user: config.get_user().map(str::to_owned),
            dbname: config.get_dbname().map(str::to_owned),
            options: config.get_options().map(str::to_owned),
            application_name: config.get_application_name().map(str::to_owned),
            connect_timeout: config.get_connect_timeout().copied(),
        };
        let secret = config
            .get_password()
            .map(|p| Secret::new(String::from_utf8_lossy(p)));
        (params, secret)
    }

    fn to_config(&self, secret: Option<&Secret>) -> Config {
        let mut config = Config::new();
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
        if let Some(secret) = secret {
            config.password(secret.expose());
        }
        config
    }
}

impl Connector for PgParams {
    type Live = Client;
    type Error = ::postgres::Error;
    const KIND: &'static str = "postgres";

    fn target(&self) -> String {
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

    fn open(&self, secret: Option<&Secret>) -> Result<Client, ConnectError> {
        self.to_config(secret).connect(NoTls).map_err(|error| {
            ConnectError::new(classify(&error, secret.is_some()), error_chain(&error))
        })
    }

    fn is_closed(live: &Client) -> bool {
        live.is_closed()
    }

    fn is_lost(error: &::postgres::Error) -> bool {
        if error.is_closed() {
            return true;
        }
        if let Some(code) = error.code() {
            return [
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
            ]
            .contains(code);
        }
        io_source(error).is_some()
    }
}

fn io_source(error: &::postgres::Error) -> Option<&std::io::Error> {
    std::error::Error::source(error).and_then(|s| s.downcast_ref::<std::io::Error>())
}

fn classify(error: &::postgres::Error, had_secret: bool) -> ConnectFailure {
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

fn error_chain(error: &::postgres::Error) -> String {
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
            ConnectError::new(ConnectFailure::Other, e.to_string())
                .about::<PgParams>(&PgParams::from_config(&Config::new()).0, None)
        })?;
        Ok(Self::from_config(&config))
    }

    /// From a [`postgres::Config`](::postgres::Config), without connecting. Its password, if
    /// any, stays in this process.
    pub fn from_config(config: &Config) -> Postgres {
        let (params, secret) = PgParams::from_config(config);
        let mut conn = Conn::new(params);
        conn.secret = secret;
        conn
    }
}
