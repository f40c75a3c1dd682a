//! The client side of a Share: how a process other than the owner reaches the coordinator.
//!
//! Calls go through the [`Transport`] seam. The transport is a shared-memory channel (two
//! rings, see `ring/`) per connection, set up over the Share's authenticated local socket,
//! which then only tells each side when the other is gone. The calling thread writes its
//! request into the ring and reads the reply itself: no helper thread on this side. One
//! process keeps a few connections per Share, shared by every handle on that Share (found by
//! the Share's token): a call takes an idle one or opens another, and gives it back when it
//! has its reply. So a thread's calls reach the coordinator in the order it made them, and a
//! slow call on one thread holds up no other thread. A connection that broke is dropped; the
//! next call opens a fresh one.

use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use super::ShareId;
use super::atomics::Region;
use super::coordinator::unreachable_error;
use super::error::ShareError;
use super::protocol::{Op, Reply};
use crate::error::IpcError;
use crate::ring::Channel;
use crate::ring::spsc::RingError;
use crate::sync::lock;
use crate::wire::auth::{self, HANDSHAKE_TIMEOUT};
use crate::wire::frame::DEFAULT_FRAME_LIMIT;
use crate::wire::{Conn, Kind};

/// Why a request got no reply.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The request never reached the coordinator (stopped, owner gone, refused).
    NotSent(ShareError),
    /// The connection broke after the request was sent: it may or may not have run.
    Lost,
    /// The deadline passed: it may or may not have run.
    Timeout,
    /// The reply did not decode.
    BadReply(String),
}

/// How requests reach a coordinator from another process.
pub(crate) trait Transport: Send + Sync + std::fmt::Debug {
    /// Sends one request and waits for its reply, until `deadline` if there is one.
    fn request(&self, op: &Op, deadline: Option<Instant>) -> Result<Reply, Failure>;

    /// The Share's shared-memory region, mapped in this process.
    fn region(&self) -> Result<Arc<Region>, ShareError>;
}

/// A live connection.
type Link = Channel;

/// The shared-memory transport (named for the socket it starts from).
pub(crate) struct SocketTransport {
    id: ShareId,
    /// Idle connections.
    idle: Mutex<Vec<Link>>,
    region: Mutex<Option<Arc<Region>>>,
}

/// Idle connections kept per Share and process; more may be open while calls run.
const MAX_IDLE: usize = 8;

impl std::fmt::Debug for SocketTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketTransport")
            .field("name", &self.id.name)
            .finish_non_exhaustive()
    }
}

/// This process's transports, by Share token (and secret: a copy with another secret, which
/// can only be refused, must not take over the connections of the real one).
static TRANSPORTS: Mutex<Vec<Weak<SocketTransport>>> = Mutex::new(Vec::new());

impl SocketTransport {
    /// The transport for `id` in this process, shared by every handle on that Share.
    pub(crate) fn for_share(id: &ShareId) -> Arc<SocketTransport> {
        let mut all = lock(&TRANSPORTS);
        all.retain(|weak| weak.strong_count() > 0);
        if let Some(found) = all.iter().filter_map(Weak::upgrade).find(|transport| {
            transport.id.token == id.token && transport.id.secret.0 == id.secret.0
        }) {
            return found;
        }
        let transport = Arc::new(SocketTransport {
            id: id.clone(),
            idle: Mutex::new(Vec::new()),
            region: Mutex::new(None),
        });
        all.push(Arc::downgrade(&transport));
        transport
    }

    /// Keeps a connection for the next call (up to [`MAX_IDLE`]; beyond, it closes).
    fn give_back(&self, link: Link) {
        let mut idle = lock(&self.idle);
        if idle.len() < MAX_IDLE {
            idle.push(link);
        }
    }

    /// Connects, authenticates and maps the region (once per process).
    fn connect(&self) -> Result<Link, ShareError> {
        let conn = Conn::connect(&self.id.name).map_err(|_| unreachable_error(&self.id))?;
        let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        auth::client_handshake(&conn, &self.id.secret, &self.id.token, deadline).map_err(
            |err| match err {
                // The coordinator went away during the handshake.
                IpcError::Disconnected | IpcError::Io(_) => unreachable_error(&self.id),
                other => ShareError::Ipc(other),
            },
        )?;
        let fd = conn
            .recv_with_fd(Kind::ShareRegion)
            .map_err(|err| match err {
                IpcError::Disconnected => unreachable_error(&self.id),
                other => ShareError::Ipc(other),
            })?;
        {
            let mut region = lock(&self.region);
            if region.is_none() {
                let mapped = Region::open(std::os::fd::AsFd::as_fd(&fd))
                    .map_err(|err| ShareError::Ipc(IpcError::Io(err)))?;
                *region = Some(Arc::new(mapped));
            }
        }
        Channel::offer(Arc::new(conn), DEFAULT_FRAME_LIMIT, true).map_err(|err| match err {
            IpcError::Disconnected => unreachable_error(&self.id),
            other => ShareError::Ipc(other),
        })
    }
}

impl Transport for SocketTransport {
    fn request(&self, op: &Op, deadline: Option<Instant>) -> Result<Reply, Failure> {
        let payload = crate::wire::encode(op)
            .map_err(|message| Failure::NotSent(ShareError::Encode(message)))?;
        // An idle link may be left from before a stop/start of the Share: the coordinator
        // closed it, so the request is refused at once and never left; drop it and try the
        // next, or a fresh one.
        let link = loop {
            let (link, fresh) = match lock(&self.idle).pop() {
                Some(link) => (link, false),
                None => (self.connect().map_err(Failure::NotSent)?, true),
            };
            match link.send(&payload, deadline) {
                Ok(()) => break link,
                Err(RingError::TooLarge { len, max }) => {
                    self.give_back(link);
                    return Err(Failure::NotSent(ShareError::Encode(format!(
                        "the request of {len} bytes exceeds the frame limit of {max} bytes"
                    ))));
                }
                // The coordinator did not take a large request before the deadline: it was
                // withdrawn (the ring says so), but the caller's deadline has passed.
                Err(RingError::Full { .. } | RingError::Timeout) => return Err(Failure::Timeout),
                Err(_) if !fresh => {}
                Err(_) => return Err(Failure::NotSent(unreachable_error(&self.id))),
            }
        };
        let reply = match link.recv(deadline) {
            Ok(reply) => reply,
            // The link may get the late reply: it is closed (dropped) and never used again.
            Err(RingError::Timeout) => return Err(Failure::Timeout),
            Err(RingError::Corrupt(message)) => return Err(Failure::BadReply(message)),
            Err(RingError::TooLarge { len, max }) => {
                return Err(Failure::BadReply(format!(
                    "a reply of {len} bytes exceeds the limit of {max} bytes"
                )));
            }
            Err(RingError::Closed | RingError::Full { .. }) => return Err(Failure::Lost),
        };
        self.give_back(link);
        crate::wire::decode::<Reply>(&reply).map_err(Failure::BadReply)
    }

    fn region(&self) -> Result<Arc<Region>, ShareError> {
        if let Some(region) = lock(&self.region).as_ref() {
            return Ok(Arc::clone(region));
        }
        // Connecting maps the region; the connection is kept for the next call.
        let link = self.connect()?;
        self.give_back(link);
        Ok(Arc::clone(
            lock(&self.region)
                .as_ref()
                .expect("connect maps the region"),
        ))
    }
}
