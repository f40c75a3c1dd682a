//! Where the NATS server is and how to prove who we are to it: URL, credentials and TLS, from
//! code or from the environment.

use std::path::PathBuf;
use std::time::Duration;

use super::error::RemoteError;

/// The environment variable that names the server (`nats://host:4222`, `tls://host:4222`).
pub const URL_ENV: &str = "SKPROCESS_NATS_URL";
/// With [`PASSWORD_ENV`]: user and password credentials.
pub const USER_ENV: &str = "SKPROCESS_NATS_USER";
/// With [`USER_ENV`]: user and password credentials.
pub const PASSWORD_ENV: &str = "SKPROCESS_NATS_PASSWORD";
/// An nkey seed (`SU...`): nkey credentials.
pub const NKEY_ENV: &str = "SKPROCESS_NATS_NKEY";
/// A PEM file of the certificate authority to trust; TLS is then required.
pub const CA_ENV: &str = "SKPROCESS_NATS_CA";
/// With [`CLIENT_KEY_ENV`]: a client certificate (PEM) for servers that verify clients.
pub const CLIENT_CERT_ENV: &str = "SKPROCESS_NATS_CLIENT_CERT";
/// With [`CLIENT_CERT_ENV`]: the client certificate's private key (PEM).
pub const CLIENT_KEY_ENV: &str = "SKPROCESS_NATS_CLIENT_KEY";
/// The pool's name (default `default`): pools and workers with the same name share streams.
pub const POOL_ENV: &str = "SKPROCESS_NATS_POOL";

/// How to reach a NATS server: its URL, credentials and TLS settings, and the name of the pool
/// (the streams a pool and its workers share). The `Debug` form shows no secret.
///
/// ```
/// use skprocess::nats::NatsOptions;
///
/// let options = NatsOptions::new("nats://127.0.0.1:4222")
///     .user_and_password("worker", "s3cret")
///     .pool("thumbnails");
/// assert!(!format!("{options:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
pub struct NatsOptions {
    url: String,
    user: Option<(String, String)>,
    nkey: Option<String>,
    ca: Option<PathBuf>,
    client_cert: Option<(PathBuf, PathBuf)>,
    pool: String,
    connect_timeout: Duration,
}

impl std::fmt::Debug for NatsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsOptions")
            .field("url", &self.url)
            .field("user", &self.user.as_ref().map(|(user, _)| user))
            .field("nkey", &self.nkey.as_ref().map(|_| "<secret>"))
            .field("ca", &self.ca)
            .field(
                "client_cert",
                &self.client_cert.as_ref().map(|(cert, _)| cert),
            )
            .field("pool", &self.pool)
            .finish()
    }
}

impl NatsOptions {
    /// A server URL (`nats://host:port`, or `tls://host:port` to require TLS), no credentials,
    /// the pool named `default`.
    pub fn new(url: impl Into<String>) -> NatsOptions {
        NatsOptions {
            url: url.into(),
            user: None,
            nkey: None,
            ca: None,
            client_cert: None,
            pool: "default".to_owned(),
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// Reads the settings from the environment: the URL from `SKPROCESS_NATS_URL`, and the
    /// optional `SKPROCESS_NATS_USER` + `SKPROCESS_NATS_PASSWORD`, `SKPROCESS_NATS_NKEY`,
    /// `SKPROCESS_NATS_CA`, `SKPROCESS_NATS_CLIENT_CERT` + `SKPROCESS_NATS_CLIENT_KEY` and
    /// `SKPROCESS_NATS_POOL`.
    ///
    /// # Errors
    ///
    /// [`RemoteError::InvalidConfig`] when the URL is missing, or a user comes without a
    /// password (or a certificate without its key).
    pub fn from_env() -> Result<NatsOptions, RemoteError> {
        let url = var(URL_ENV).ok_or_else(|| {
            RemoteError::InvalidConfig(format!("{URL_ENV} is not set (the server's URL)"))
        })?;
        NatsOptions::new(url).with_env()
    }

    /// Takes credentials, TLS settings and the pool name from the environment (the variables
    /// of [`from_env`](NatsOptions::from_env) but the URL), over what is already set.
    pub(crate) fn with_env(mut self) -> Result<NatsOptions, RemoteError> {
        match (var(USER_ENV), var(PASSWORD_ENV)) {
            (Some(user), Some(password)) => self = self.user_and_password(user, password),
            (None, None) => {}
            _ => {
                return Err(RemoteError::InvalidConfig(format!(
                    "set both {USER_ENV} and {PASSWORD_ENV}, or neither"
                )));
            }
        }
        if let Some(seed) = var(NKEY_ENV) {
            self = self.nkey(seed);
        }
        if let Some(ca) = var(CA_ENV) {
            self = self.ca_file(ca);
        }
        match (var(CLIENT_CERT_ENV), var(CLIENT_KEY_ENV)) {
            (Some(cert), Some(key)) => self = self.client_certificate(cert, key),
            (None, None) => {}
            _ => {
                return Err(RemoteError::InvalidConfig(format!(
                    "set both {CLIENT_CERT_ENV} and {CLIENT_KEY_ENV}, or neither"
                )));
            }
        }
        if let Some(pool) = var(POOL_ENV) {
            self = self.pool(pool);
        }
        Ok(self)
    }

    /// Logs in with a user and a password.
    pub fn user_and_password(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> NatsOptions {
        self.user = Some((user.into(), password.into()));
        self
    }

    /// Logs in with an nkey: its seed (`SU...`), which signs the server's challenge.
    pub fn nkey(mut self, seed: impl Into<String>) -> NatsOptions {
        self.nkey = Some(seed.into());
        self
    }

    /// Trusts the certificate authority in this PEM file, and requires TLS.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> NatsOptions {
        self.ca = Some(path.into());
        self
    }

    /// Presents this client certificate (and its key, both PEM files) to a server that
    /// verifies clients.
    pub fn client_certificate(
        mut self,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> NatsOptions {
        self.client_cert = Some((cert.into(), key.into()));
        self
    }

    /// Names the pool: a pool and the workers serving it share streams by this name, so
    /// several programs can use one server (letters, digits, `_` and `-`; default `default`).
    pub fn pool(mut self, name: impl Into<String>) -> NatsOptions {
        self.pool = name.into();
        self
    }

    /// How long to try to connect before giving up (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> NatsOptions {
        self.connect_timeout = timeout;
        self
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The pool's name.
    pub fn pool_name(&self) -> &str {
        &self.pool
    }

    /// The multi-threaded runtime a client of these options runs on, with `threads` threads
    /// named `name`.
    pub(crate) fn runtime(
        &self,
        name: &str,
        threads: usize,
    ) -> Result<tokio::runtime::Runtime, RemoteError> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(name)
            .enable_all()
            .build()
            .map_err(|error| RemoteError::Connect {
                url: self.url.clone(),
                reason: format!("cannot start the client's runtime: {error}"),
            })
    }

    /// Connects, as `name`.
    pub(crate) async fn connect(&self, name: &str) -> Result<async_nats::Client, RemoteError> {
        if self.url.trim().is_empty() {
            return Err(RemoteError::InvalidConfig(
                "the server URL is empty".to_owned(),
            ));
        }
        let mut options = async_nats::ConnectOptions::new()
            .name(name)
            .connection_timeout(self.connect_timeout)
            .max_reconnects(None);
        if let Some((user, password)) = &self.user {
            options = options.user_and_password(user.clone(), password.clone());
        }
        if let Some(seed) = &self.nkey {
            options = options.nkey(seed.clone());
        }
        if let Some(ca) = &self.ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let Some((cert, key)) = &self.client_cert {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        if self.url.starts_with("tls://") {
            options = options.require_tls(true);
        }
        let connect = options.connect(self.url.as_str());
        match tokio::time::timeout(self.connect_timeout + Duration::from_secs(1), connect).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(error)) => Err(RemoteError::Connect {
                url: self.url.clone(),
                reason: crate::ErrorChain(&error).to_string(),
            }),
            Err(_) => Err(RemoteError::Connect {
                url: self.url.clone(),
                reason: format!(
                    "no answer within {}s",
                    crate::sync::fmt_secs(self.connect_timeout)
                ),
            }),
        }
    }
}

/// A non-empty environment variable.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}
