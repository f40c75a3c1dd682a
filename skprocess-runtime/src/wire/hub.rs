//! The hub: one listener per parent process that every child connects back to.
//!
//! The hub is created on the first spawn and lives as long as the process. Each spawn registers
//! an [`Expectation`] under a fresh random token; the child proves it knows the session secret
//! (see [`auth`](super::auth)), names its token, and the hub hands the connection to whoever
//! waits on that token. Connections that fail the handshake are closed and forgotten; they never
//! reach a process handle.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use interprocess::local_socket::Listener;
use interprocess::local_socket::traits::Listener as _;

use super::Conn;
use super::auth::{self, Secret, TOKEN};
use crate::error::IpcError;

/// What runs on the hub's thread the moment a child is authenticated, before its connection is
/// handed over: a process handle sends its start frame from here, saving a thread hop.
pub(crate) type Greeter = Box<dyn FnOnce(&Arc<Conn>) + Send>;

struct Waiter {
    handover: mpsc::SyncSender<Arc<Conn>>,
    greeter: Option<Greeter>,
}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiter").finish_non_exhaustive()
    }
}

type Pending = Arc<Mutex<HashMap<[u8; TOKEN], Waiter>>>;

/// The process-wide hub.
#[derive(Debug)]
pub(crate) struct Hub {
    name: String,
    secret: Secret,
    pending: Pending,
}

static HUB: Mutex<Option<&'static Hub>> = Mutex::new(None);

/// The hub of this process, created on first use.
pub(crate) fn hub() -> Result<&'static Hub, IpcError> {
    let mut slot = HUB.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(hub) = *slot {
        return Ok(hub);
    }
    let (listener, name) = super::conn::listen("skprocess")?;
    let hub: &'static Hub = Box::leak(Box::new(Hub {
        name,
        secret: Secret::random(),
        pending: Arc::default(),
    }));
    let secret = hub.secret.clone();
    let pending = Arc::clone(&hub.pending);
    std::thread::Builder::new()
        .name("skprocess-hub".into())
        .spawn(move || accept_loop(listener, secret, pending))
        .map_err(IpcError::Io)?;
    *slot = Some(hub);
    Ok(hub)
}

/// The hub's name, if this process has one (for tests and diagnostics).
pub(crate) fn existing_hub_name() -> Option<String> {
    let slot = HUB.lock().unwrap_or_else(|e| e.into_inner());
    slot.map(|hub| hub.name.clone())
}

fn accept_loop(listener: Listener, secret: Secret, pending: Pending) {
    loop {
        let stream = match listener.accept() {
            Ok(stream) => stream,
            Err(_) => {
                // Out of descriptors or similar: back off rather than spin.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        // The handshake runs right here: a child answers within microseconds, and a thread per
        // connection would cost more than the handshake. A client that stalls holds up the
        // hub for at most `auth::ACCEPT_TIMEOUT`.
        handshake(Conn::new(stream), &secret, &pending);
    }
}

fn handshake(conn: Conn, secret: &Secret, pending: &Pending) {
    let is_expected = |token: &[u8; TOKEN]| {
        pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(token)
    };
    let Ok(token) = auth::server_handshake(&conn, secret, auth::ACCEPT_TIMEOUT, is_expected) else {
        return; // dropped: the connection closes, nothing else happens
    };
    let waiter = pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&token);
    if let Some(Waiter { handover, greeter }) = waiter {
        let conn = Arc::new(conn);
        if let Some(greet) = greeter {
            greet(&conn);
        }
        let _ = handover.send(conn);
    }
}

impl Hub {
    /// The name children connect to.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The session secret children must prove.
    pub(crate) fn secret(&self) -> &Secret {
        &self.secret
    }

    /// Registers a fresh token; the child that presents it is handed to the expectation, after
    /// `greeter` (if any) ran on it.
    pub(crate) fn expect(&'static self, greeter: Option<Greeter>) -> Expectation {
        let mut token = [0u8; TOKEN];
        crate::sys::random_bytes(&mut token);
        let (tx, rx) = mpsc::sync_channel(1);
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                token,
                Waiter {
                    handover: tx,
                    greeter,
                },
            );
        Expectation {
            hub: self,
            token,
            rx,
        }
    }
}

/// A registered token waiting for its child to connect. Dropping it unregisters the token.
#[derive(Debug)]
pub(crate) struct Expectation {
    hub: &'static Hub,
    token: [u8; TOKEN],
    rx: mpsc::Receiver<Arc<Conn>>,
}

impl Expectation {
    pub(crate) fn token(&self) -> &[u8; TOKEN] {
        &self.token
    }

    /// Waits up to `timeout` for the child's authenticated connection.
    pub(crate) fn wait(&self, timeout: Duration) -> Option<Arc<Conn>> {
        self.rx.recv_timeout(timeout).ok()
    }
}

impl Drop for Expectation {
    fn drop(&mut self) {
        self.hub
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.token);
    }
}

/// Connects to a hub as a client: the handshake, then the connection is ready for frames.
pub(crate) fn connect(name: &str, secret: &Secret, token: &[u8; TOKEN]) -> Result<Conn, IpcError> {
    let conn = Conn::connect(name)?;
    auth::client_handshake(&conn, secret, token)?;
    Ok(conn)
}
