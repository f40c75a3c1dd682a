//! The coordinator: the owner's table of objects and values, and the server thread that other
//! processes call it through.
//!
//! Every object lives here, in the process that created the Share, and every call runs here:
//! on the caller's thread for the owner (the fast path), on the connection's own thread for
//! any other process. The table lock is held only to find an entry; a call holds only its
//! object's lock (shared for `&self` methods, exclusive for `&mut self`), so a slow method
//! delays only calls on the same object. A call that started is run to the end even if its
//! caller dies or the Share stops; its reply is then simply not delivered.

use std::cell::Cell as StdCell;
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use super::ShareId;
use super::atomics::{Region, SLOTS};
use super::error::{Refusal, ShareError};
use super::object::{DynObject, build_registered};
use super::protocol::{Answer, AtomicKind, Expect, Op, Reply, Value};
use crate::ring::Channel;
use crate::ring::spsc::RingError;
use crate::sync::lock;
use crate::wire::auth::{self, HANDSHAKE_TIMEOUT};
use crate::wire::frame::DEFAULT_FRAME_LIMIT;
use crate::wire::{Conn, Kind};

/// The most handshakes in progress at once on one Share.
const MAX_HANDSHAKES: usize = 64;

/// What a name holds.
#[derive(Clone)]
pub(crate) enum Entry {
    Object(Arc<dyn DynObject>),
    Atomic {
        kind: AtomicKind,
        slot: u32,
        generation: u64,
    },
}

impl Entry {
    fn type_name(&self) -> String {
        match self {
            Entry::Object(object) => object.type_name().to_owned(),
            Entry::Atomic { kind, .. } => kind.type_name().to_owned(),
        }
    }
}

#[derive(Default)]
struct Table {
    entries: HashMap<String, Entry>,
    /// The next slot never handed out (slots are not reused).
    next_slot: u32,
    next_generation: u64,
}

/// The coordinator's state, shared by the owner's handles and the server threads.
pub(crate) struct State {
    pub(crate) id: ShareId,
    pub(crate) region: Arc<Region>,
    region_fd: OwnedFd,
    table: Mutex<Table>,
    running: AtomicBool,
    server: Mutex<Option<Server>>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("name", &self.id.name)
            .field("running", &self.is_running())
            .finish_non_exhaustive()
    }
}

/// The listening side of a running Share.
struct Server {
    accept: JoinHandle<()>,
    connections: Arc<Mutex<HashMap<u64, Arc<Channel>>>>,
}

thread_local! {
    /// The token of the Share whose object method this thread is running, if any.
    static IN_CALL: StdCell<Option<[u8; 16]>> = const { StdCell::new(None) };
    /// The connection whose call this thread is running (its id and socket), if any: `None`
    /// for the owner's own calls.
    static CALLER: StdCell<Option<(u64, RawFd)>> = const { StdCell::new(None) };
}

/// Connection ids, unique in this process across all Shares (0 is the owner).
static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// Who is calling: 0 for the owner process, else the id of the connection whose call this
/// thread is running (for objects that keep something per client, such as a semaphore's
/// permits).
pub(crate) fn caller() -> u64 {
    CALLER.with(|cell| cell.get().map_or(0, |(id, _)| id))
}

/// Whether the caller is still there to receive the answer: always for the owner; for another
/// process, whether its connection is still open. A blocking call checks it before it takes
/// anything, so nothing is handed to a client that died while waiting.
pub(crate) fn caller_alive() -> bool {
    let Some((_, fd)) = CALLER.with(StdCell::get) else {
        return true;
    };
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: polls one descriptor that the calling connection thread keeps open, no wait.
    let ready = unsafe { libc::poll(&raw mut poll, 1, 0) };
    ready == 0 || poll.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) == 0
}

type GoneHook = std::sync::Weak<dyn Fn(u64) + Send + Sync>;

/// Objects to tell when a client's connection ends (a semaphore gives its permits back).
static GONE_HOOKS: Mutex<Vec<GoneHook>> = Mutex::new(Vec::new());

/// Registers `hook`, called with a connection id when that connection ends, for as long as
/// the hook lives.
pub(crate) fn on_client_gone(hook: &Arc<dyn Fn(u64) + Send + Sync>) {
    let mut hooks = lock(&GONE_HOOKS);
    hooks.retain(|weak| weak.strong_count() > 0);
    hooks.push(Arc::downgrade(hook));
}

fn client_gone(id: u64) {
    let hooks: Vec<_> = lock(&GONE_HOOKS)
        .iter()
        .filter_map(std::sync::Weak::upgrade)
        .collect();
    for hook in hooks {
        hook(id);
    }
}

/// Marks this thread as running a method of an object of Share `token` until dropped.
pub(crate) struct InCall(Option<[u8; 16]>);

impl InCall {
    pub(crate) fn enter(token: [u8; 16]) -> InCall {
        InCall(IN_CALL.with(|cell| cell.replace(Some(token))))
    }

    /// Whether this thread is inside a method of an object of Share `token`.
    pub(crate) fn inside(token: &[u8; 16]) -> bool {
        IN_CALL.with(|cell| cell.get().as_ref() == Some(token))
    }
}

impl Drop for InCall {
    fn drop(&mut self) {
        IN_CALL.with(|cell| cell.set(self.0));
    }
}

impl State {
    pub(crate) fn new(id: ShareId) -> io::Result<State> {
        let (region, region_fd) = Region::create()?;
        Ok(State {
            id,
            region: Arc::new(region),
            region_fd,
            table: Mutex::new(Table {
                next_slot: 1,
                next_generation: 1,
                ..Table::default()
            }),
            running: AtomicBool::new(false),
            server: Mutex::new(None),
        })
    }

    pub(crate) fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    fn check_running(&self) -> Result<(), Refusal> {
        if self.is_running() {
            Ok(())
        } else {
            Err(Refusal::Stopped)
        }
    }

    /// Starts listening (again) under the Share's name. Idempotent.
    pub(crate) fn start(self: &Arc<State>) -> io::Result<()> {
        let mut server = lock(&self.server);
        if server.is_some() {
            return Ok(());
        }
        let addr = SocketAddr::from_abstract_name(self.id.name.as_bytes())?;
        let listener = UnixListener::bind_addr(&addr)?;
        let connections = Arc::new(Mutex::new(HashMap::new()));
        self.running.store(true, Ordering::Release);
        self.region.set_running(true);
        let state = Arc::clone(self);
        let conns = Arc::clone(&connections);
        let accept = std::thread::Builder::new()
            .name("skprocess-share".into())
            .spawn(move || accept_loop(&listener, &state, &conns));
        match accept {
            Ok(accept) => {
                *server = Some(Server {
                    accept,
                    connections,
                });
                Ok(())
            }
            Err(err) => {
                self.running.store(false, Ordering::Release);
                self.region.set_running(false);
                Err(err)
            }
        }
    }

    /// Stops listening and cuts every client's connection; the table stays. Idempotent.
    pub(crate) fn stop(&self) {
        let mut server = lock(&self.server);
        self.running.store(false, Ordering::Release);
        self.region.set_running(false);
        let Some(Server {
            accept,
            connections,
        }) = server.take()
        else {
            return;
        };
        // Wake the accept loop: it sees `running` false and leaves, closing the listener.
        let _ = SocketAddr::from_abstract_name(self.id.name.as_bytes())
            .and_then(|addr| UnixStream::connect_addr(&addr));
        let _ = accept.join();
        for channel in lock(&connections).values() {
            channel.close();
        }
    }

    /// The entry under `name`, checked against what the caller expects.
    fn entry(&self, name: &str, expect: &Expect) -> Result<Entry, Refusal> {
        match expect {
            Expect::Object(type_name) => self.object(name, type_name).map(Entry::Object),
            Expect::Atomic(kind) => {
                self.slot(name, *kind)
                    .map(|(slot, generation)| Entry::Atomic {
                        kind: *kind,
                        slot,
                        generation,
                    })
            }
        }
    }

    /// The object under `name`, which must be a `type_name` (the owner's fast path: one
    /// lookup, no allocation).
    pub(crate) fn object(
        &self,
        name: &str,
        type_name: &str,
    ) -> Result<Arc<dyn DynObject>, Refusal> {
        self.check_running()?;
        let table = lock(&self.table);
        match table.entries.get(name) {
            Some(Entry::Object(object)) if object.type_name() == type_name => {
                Ok(Arc::clone(object))
            }
            Some(other) => Err(Refusal::WrongType {
                found: other.type_name(),
            }),
            None => Err(Refusal::NotFound),
        }
    }

    /// Where the shared-memory value under `name` lives.
    pub(crate) fn slot(&self, name: &str, kind: AtomicKind) -> Result<(u32, u64), Refusal> {
        self.check_running()?;
        let table = lock(&self.table);
        match table.entries.get(name) {
            Some(Entry::Atomic {
                kind: found,
                slot,
                generation,
            }) if *found == kind => Ok((*slot, *generation)),
            Some(other) => Err(Refusal::WrongType {
                found: other.type_name(),
            }),
            None => Err(Refusal::NotFound),
        }
    }

    /// Puts an object under `name`, replacing whatever was there.
    pub(crate) fn insert_object(
        &self,
        name: &str,
        object: Arc<dyn DynObject>,
    ) -> Result<(), Refusal> {
        self.check_running()?;
        let old = lock(&self.table)
            .entries
            .insert(name.to_owned(), Entry::Object(object));
        self.retire(old);
        Ok(())
    }

    /// Puts a shared-memory value under `name`. A value of the same kind already there is
    /// overwritten in place (its handles stay valid); anything else is replaced.
    pub(crate) fn insert_atomic(
        &self,
        name: &str,
        kind: AtomicKind,
        bits: u64,
    ) -> Result<(u32, u64), Refusal> {
        self.check_running()?;
        let mut table = lock(&self.table);
        if let Some(Entry::Atomic {
            kind: old_kind,
            slot,
            generation,
        }) = table.entries.get(name)
            && *old_kind == kind
        {
            self.region.store(*slot, bits);
            return Ok((*slot, *generation));
        }
        if table.next_slot as usize >= SLOTS {
            return Err(Refusal::Full { slots: SLOTS - 1 });
        }
        let (slot, generation) = (table.next_slot, table.next_generation);
        table.next_slot += 1;
        table.next_generation += 1;
        self.region.occupy(slot, generation, bits);
        let old = table.entries.insert(
            name.to_owned(),
            Entry::Atomic {
                kind,
                slot,
                generation,
            },
        );
        drop(table);
        self.retire(old);
        Ok((slot, generation))
    }

    /// Removes `name`; whether it was there.
    pub(crate) fn remove(&self, name: &str) -> Result<bool, Refusal> {
        self.check_running()?;
        let old = lock(&self.table).entries.remove(name);
        let found = old.is_some();
        self.retire(old);
        Ok(found)
    }

    /// Removes everything.
    pub(crate) fn clear(&self) -> Result<(), Refusal> {
        self.check_running()?;
        let old = std::mem::take(&mut lock(&self.table).entries);
        for entry in old.into_values() {
            self.retire(Some(entry));
        }
        Ok(())
    }

    pub(crate) fn names(&self) -> Result<Vec<String>, Refusal> {
        self.check_running()?;
        let mut names: Vec<String> = lock(&self.table).entries.keys().cloned().collect();
        names.sort();
        Ok(names)
    }

    /// Ends a replaced or removed entry: a shared-memory slot is vacated for good (an object
    /// is dropped with its last reference, after any call still running on it).
    fn retire(&self, entry: Option<Entry>) {
        if let Some(Entry::Atomic { slot, .. }) = entry {
            self.region.vacate(slot);
        }
    }

    /// Marks the coordinator running without listening (the fuzz target serves requests
    /// directly).
    #[cfg(feature = "__testing")]
    pub(crate) fn run_without_socket(&self) {
        self.running.store(true, Ordering::Release);
        self.region.set_running(true);
    }

    /// Answers one request from another process.
    pub(crate) fn serve(&self, op: Op) -> Reply {
        match op {
            Op::Call {
                name,
                type_name,
                call,
            } => {
                let object = self.object(&name, &type_name)?;
                let _in_call = InCall::enter(self.id.token);
                object.call_encoded(&call).map(Answer::Bytes)
            }
            Op::Insert { name, value } => match value {
                Value::Object { type_name, bytes } => {
                    let object = build_registered(&type_name, &bytes)?;
                    self.insert_object(&name, object).map(|()| Answer::Done)
                }
                Value::Atomic { kind, bits } => self
                    .insert_atomic(&name, kind, bits)
                    .map(|(slot, generation)| Answer::Slot { slot, generation }),
            },
            Op::Get { name, expect } => match self.entry(&name, &expect)? {
                Entry::Object(_) => Ok(Answer::Done),
                Entry::Atomic {
                    slot, generation, ..
                } => Ok(Answer::Slot { slot, generation }),
            },
            Op::Remove { name } => self.remove(&name).map(Answer::Bool),
            Op::Clear => self.clear().map(|()| Answer::Done),
            Op::Names => self.names().map(Answer::Names),
            Op::Ping => self.check_running().map(|()| Answer::Done),
        }
    }
}

fn accept_loop(
    listener: &UnixListener,
    state: &Arc<State>,
    connections: &Arc<Mutex<HashMap<u64, Arc<Channel>>>>,
) {
    let uid = crate::sys::effective_uid();
    let in_progress = Arc::new(AtomicUsize::new(0));
    let mut next_id = 0u64;
    loop {
        let accepted = listener.accept();
        if !state.is_running() {
            return; // stop() woke us; the listener closes as we return
        }
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(_) => {
                std::thread::sleep(std::time::Duration::from_millis(10));
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
        next_id += 1;
        let id = next_id;
        let (state, connections, count) = (
            Arc::clone(state),
            Arc::clone(connections),
            Arc::clone(&in_progress),
        );
        let spawned = std::thread::Builder::new()
            .name("skprocess-share-conn".into())
            .spawn(move || {
                let conn = Conn::new(stream);
                let ready = greet(&conn, &state)
                    .and_then(|()| Channel::accept(Arc::new(conn), DEFAULT_FRAME_LIMIT, true));
                count.fetch_sub(1, Ordering::AcqRel);
                let Ok(channel) = ready else {
                    return;
                };
                let channel = Arc::new(channel);
                lock(&connections).insert(id, Arc::clone(&channel));
                // stop() may have swept the connections just before this one was added.
                if state.is_running() {
                    serve_connection(&channel, &state);
                }
                lock(&connections).remove(&id);
            });
        if spawned.is_err() {
            in_progress.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// The handshake on the Share's own secret, then the region's descriptor.
fn greet(conn: &Conn, state: &State) -> Result<(), crate::error::IpcError> {
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    auth::server_handshake(conn, &state.id.secret, deadline, |token| {
        *token == state.id.token
    })?;
    conn.send_with_fd(Kind::ShareRegion, &[], state.region_fd.as_fd())
}

fn serve_connection(channel: &Channel, state: &State) {
    let id = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
    CALLER.with(|cell| cell.set(Some((id, channel.socket_fd()))));
    serve_requests(channel, state);
    CALLER.with(|cell| cell.set(None));
    client_gone(id);
}

/// How long a reply waits for room in a client's ring (a client that sends requests without
/// reading its replies) before the connection is dropped.
const REPLY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

fn serve_requests(channel: &Channel, state: &State) {
    // Any error ends the connection: the client sees it closed.
    while let Ok(payload) = channel.recv(None) {
        let reply: Reply = match crate::wire::decode::<Op>(&payload) {
            Ok(op) => state.serve(op),
            Err(message) => Err(Refusal::Decode(message)),
        };
        let bytes = crate::wire::encode(&reply).unwrap_or_else(|message| {
            crate::wire::encode(&Err::<Answer, _>(Refusal::Encode(message))).unwrap_or_default()
        });
        let deadline = Instant::now().checked_add(REPLY_TIMEOUT);
        let sent = match channel.send(&bytes, deadline) {
            Err(RingError::TooLarge { len, max }) => {
                let refusal: Reply = Err(Refusal::Encode(format!(
                    "the reply of {len} bytes exceeds the frame limit of {max} bytes"
                )));
                channel.send(&crate::wire::encode(&refusal).unwrap_or_default(), deadline)
            }
            other => other,
        };
        if sent.is_err() {
            return;
        }
    }
}

/// The error for a client that cannot reach `id`'s coordinator: stopped, or its owner is gone.
pub(crate) fn unreachable_error(id: &ShareId) -> ShareError {
    if crate::sys::pid_alive(id.owner) {
        ShareError::Stopped
    } else {
        ShareError::OwnerGone { pid: id.owner }
    }
}
