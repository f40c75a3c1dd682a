//! The hub: one listener per parent process that every child connects back to.
//!
//! The hub is created on the first spawn and lives as long as the process. Each spawn registers
//! an [`Expectation`] under a fresh random token. A connection is checked twice before it
//! reaches anyone:
//!
//! 1. the peer's credentials (`SO_PEERCRED`): a process of another user is closed before a
//!    single byte is read;
//! 2. the challenge–response of [`auth`](super::auth), on a thread of its own with one
//!    deadline for the whole handshake, so that a client that trickles bytes holds up nothing
//!    but its own connection. At most [`MAX_HANDSHAKES`] run at once; beyond that, connections
//!    are closed at once.
//!
//! The authenticated connection is handed, untouched, to whoever waits on its token; the hub
//! never writes to it after the handshake. Connections that fail are closed and forgotten.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Conn;
use super::auth::{self, HANDSHAKE_TIMEOUT, Secret, TOKEN};
use crate::error::IpcError;
use crate::sync::lock;

/// The most handshakes in progress at once.
pub(crate) const MAX_HANDSHAKES: usize = 64;

type Pending = Arc<Mutex<HashMap<[u8; TOKEN], mpsc::SyncSender<Conn>>>>;

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
    let mut slot = lock(&HUB);
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
        .spawn(move || accept_loop(&listener, &secret, &pending))
        .map_err(IpcError::Io)?;
    *slot = Some(hub);
    Ok(hub)
}

/// The hub's name, if this process has one (for the project's tests).
#[cfg(feature = "__testing")]
pub(crate) fn existing_hub_name() -> Option<String> {
    lock(&HUB).map(|hub| hub.name.clone())
}

fn accept_loop(listener: &UnixListener, secret: &Secret, pending: &Pending) {
    let in_progress = Arc::new(AtomicUsize::new(0));
    let uid = crate::sys::effective_uid();
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of descriptors or similar: back off rather than spin.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        // Another user's process is closed before anything is read from it.
        if crate::sys::peer_uid(stream.as_fd()).ok() != Some(uid) {
            continue;
        }
        if in_progress.fetch_add(1, Ordering::AcqRel) >= MAX_HANDSHAKES {
            in_progress.fetch_sub(1, Ordering::AcqRel);
            continue;
        }
        let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        let (secret, pending, count) = (
            secret.clone(),
            Arc::clone(pending),
            Arc::clone(&in_progress),
        );
        let spawned = std::thread::Builder::new()
            .name("skprocess-auth".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                handshake(Conn::new(stream), &secret, &pending, deadline);
                count.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            in_progress.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

fn handshake(conn: Conn, secret: &Secret, pending: &Pending, deadline: Instant) {
    // The token is claimed (taken out of `pending`) when it is checked, before the client is
    // welcomed: of two clients presenting the same token at once, exactly one is welcomed, and
    // it is the one handed over. (Checking, then removing after the welcome, let both be
    // welcomed and one silently dropped.) The check comes after the client proved the session
    // secret, so only this session's own processes can claim a token.
    let mut handover = None;
    let claim = |token: &[u8; TOKEN]| {
        handover = lock(pending).remove(token);
        handover.is_some()
    };
    if auth::server_handshake(&conn, secret, deadline, claim).is_err() {
        // Dropped: the connection closes. A token claimed by a client that then failed stays
        // used: its waiter sees nothing arrive, as for a client that never came.
        return;
    }
    if let Some(handover) = handover {
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

    /// Registers a fresh token; the child that presents it is handed to the expectation.
    pub(crate) fn expect(&'static self) -> Expectation {
        let mut token = [0u8; TOKEN];
        crate::sys::random_bytes(&mut token);
        let (tx, rx) = mpsc::sync_channel(1);
        lock(&self.pending).insert(token, tx);
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
    rx: mpsc::Receiver<Conn>,
}

impl Expectation {
    pub(crate) fn token(&self) -> &[u8; TOKEN] {
        &self.token
    }

    /// Waits up to `timeout` for the child's authenticated connection.
    pub(crate) fn wait(&self, timeout: Duration) -> Option<Conn> {
        match self.rx.recv_timeout(timeout) {
            Ok(conn) => Some(conn),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            // The token was claimed by a client whose handshake then failed: nothing will come.
            // Waiting the whole slice keeps the caller's loop (which watches its own deadline
            // and the child) from spinning.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                std::thread::sleep(timeout);
                None
            }
        }
    }
}

impl Drop for Expectation {
    fn drop(&mut self) {
        lock(&self.hub.pending).remove(&self.token);
    }
}

/// Connects to a hub as a client: the handshake, then the connection is ready for frames.
pub(crate) fn connect(name: &str, secret: &Secret, token: &[u8; TOKEN]) -> Result<Conn, IpcError> {
    let conn = Conn::connect(name)?;
    auth::client_handshake(&conn, secret, token, Instant::now() + HANDSHAKE_TIMEOUT)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::protocol::Kind;

    /// Many clients present the same token at once: exactly one is welcomed, and that one is
    /// what the expectation receives (the others are refused, never welcomed then dropped).
    #[test]
    fn of_clients_racing_with_one_token_exactly_one_is_welcomed_and_handed_over() {
        let rounds: usize = std::env::var("SKPROCESS_STRESS_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(500)
            / 5;
        let hub = hub().expect("a hub");
        for _ in 0..rounds.max(20) {
            let expectation = hub.expect();
            let token = *expectation.token();
            let barrier = Arc::new(std::sync::Barrier::new(8));
            let clients: Vec<_> = (0..8)
                .map(|_| {
                    let (name, secret) = (hub.name().to_owned(), hub.secret().clone());
                    let barrier = Arc::clone(&barrier);
                    std::thread::spawn(move || {
                        barrier.wait();
                        connect(&name, &secret, &token)
                    })
                })
                .collect();
            let welcomed: Vec<Conn> = clients
                .into_iter()
                .filter_map(|c| c.join().expect("a client").ok())
                .collect();
            assert_eq!(welcomed.len(), 1, "clients welcomed with one token");
            let handed = expectation
                .wait(Duration::from_secs(30))
                .expect("the welcomed client is handed over");
            // The same connection: what one end writes, the other reads.
            welcomed[0].send(Kind::Status, b"ping").expect("sent");
            let frame = handed.read_one().expect("read").expect("a frame");
            assert_eq!(frame.payload, b"ping");
            assert!(expectation.wait(Duration::from_millis(20)).is_none());
        }
    }
}
