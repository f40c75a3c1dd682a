//! [`Share`]: objects that every process can call, kept in one place.
//!
//! Put a value in a Share under a name; hand the Share (or a typed [`Shared`] handle) to
//! processes and pools; call the value's methods from any of them. The Share's coordinator, a
//! server thread in the process that created it, holds every object and runs every call, one
//! at a time per object, so concurrent updates never get lost.
//!
//! ```
//! use skprocess::share::{Share, ShareError, shared};
//! use skprocess::serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! #[serde(crate = "skprocess::serde")]
//! struct Counter {
//!     value: i64,
//! }
//!
//! #[shared]
//! impl Counter {
//!     fn increment(&mut self, amount: i64) -> i64 {
//!         self.value += amount;
//!         self.value
//!     }
//!
//!     fn value(&self) -> i64 {
//!         self.value
//!     }
//! }
//!
//! # fn main() -> Result<(), ShareError> {
//! let share = Share::new()?;
//! let counter = share.insert("counter", Counter { value: 0 })?;
//! assert_eq!(counter.increment(5)?, 5); // runs on the coordinator
//! // shared memory: atomic instructions from every process, no round trip
//! let hits = share.insert("hits", 0_i64)?;
//! hits.fetch_add(1)?;
//! assert_eq!(share.get::<Counter>("counter")?.value()?, 5);
//! assert_eq!(hits.load()?, 1);
//! # Ok(())
//! # }
//! ```
//!
//! # What can be shared
//!
//! - Types with a [`#[shared]`](macro@shared) impl block: their methods, called through the
//!   handle, run on the coordinator and return their value (or the user's error) to the
//!   caller. [`Sktimer`](crate::timing::Sktimer) is one.
//! - `i64`, `u64` and `f64` ([`Atomic`]: load, store, swap, add, compare-exchange) and `bool`
//!   ([`Flag`]: set, clear, and wait with a timeout), kept in shared memory: every process
//!   reads and writes them with atomic instructions, with no message at all.
//!
//! # Semantics
//!
//! - **One atomic application per call.** A call runs to the end on the coordinator, while
//!   holding its object's lock: shared for `&self` methods, exclusive for `&mut self`. Calls
//!   from one thread run in the order it made them. A slow method delays calls on its own
//!   object only.
//! - **At most once.** A call runs fully or not at all, and never twice. A client that dies
//!   mid-call leaves the call running to its end on the coordinator; the others go on.
//! - **Errors are typed.** A method's own `Result` comes back as it was returned (the outer
//!   `Result` is the Share's [`ShareError`]). A method that panics returns
//!   [`ShareError::Panicked`] and poisons its object: later calls get
//!   [`ShareError::Poisoned`] until the name is re-inserted or the Share cleared.
//! - **Nothing hangs.** [`Shared::within`] puts a deadline on calls ([`ShareError::Timeout`]
//!   says the outcome is unknown). After [`Share::stop`], or once the owner exits, every
//!   call fails at once. A method that calls back into its own Share gets
//!   [`ShareError::Reentrant`] instead of a deadlock.
//! - **Names.** Re-inserting a name replaces its value for every handle; the old value is
//!   gone for good. Re-inserting a counter or flag with a value of the same kind stores the
//!   new value in place.
//!
//! # Security
//!
//! Each Share has its own secret and listens on its own socket, which checks the peer's user
//! id and makes every client prove it knows the secret. The secret travels inside the
//! encoded Share, which skprocess only ever sends over its own authenticated connections:
//! encoding a Share with any other serializer fails.

mod atomics;
mod builtins;
mod client;
mod coordinator;
mod error;
#[cfg(feature = "__testing")]
pub(crate) mod fuzzing;
mod object;
mod protocol;

use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use self::builtins::{
    Barrier, BarrierProxy, Progress, ProgressProxy, Queue, QueueProxy, Semaphore, SemaphoreProxy,
    SharedList, SharedListProxy, SharedMap, SharedMapProxy, SharedResults, SharedResultsProxy,
    WaitError,
};
pub use self::error::ShareError;
#[doc(hidden)]
pub use self::object::{
    BuiltObject, SHARED_TYPES, SharedObject, SharedTypeEntry, build_object, encode_reply,
};
#[doc(inline)]
pub use skprocess_macros::shared;

use self::atomics::Region;
use self::client::{Failure, SocketTransport, Transport};
use self::coordinator::{InCall, State};
use self::error::Refusal;
use self::object::{Cell, DynObject, Wait};
use self::protocol::{Answer, AtomicKind, Expect, Op, Value};
use crate::lifecycle::Transferable;
use crate::sync::lock;
use crate::wire::auth::Secret;

// Handles are used from any thread.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Share>();
    send_sync::<Shared<crate::timing::Sktimer>>();
    send_sync::<Shared<i64>>();
    send_sync::<Shared<bool>>();
};

/// Where a Share lives and how to prove the right to call it: what an encoded Share carries.
#[derive(Clone)]
pub(crate) struct ShareId {
    /// The coordinator's abstract socket name.
    pub(crate) name: String,
    /// The Share's own secret.
    pub(crate) secret: Secret,
    /// Identifies the Share (and is bound into the handshake).
    pub(crate) token: [u8; 16],
    /// The owner's process id.
    pub(crate) owner: libc::pid_t,
}

/// The owners' coordinators in this process, by token, for Shares decoded here.
static LOCAL: Mutex<Vec<([u8; 16], Weak<State>)>> = Mutex::new(Vec::new());

/// This process's id, cached: the owner's fast path asks for it on every call. A fork clears
/// the cache in the child (a `pthread_atfork` handler), so a forked copy of the owner sees its
/// own pid, never the owner's.
fn this_pid() -> libc::pid_t {
    static PID: AtomicI32 = AtomicI32::new(0);
    static REGISTER: std::sync::Once = std::sync::Once::new();
    extern "C" fn forget_in_child() {
        PID.store(0, Ordering::Relaxed);
    }
    let pid = PID.load(Ordering::Relaxed);
    if pid != 0 {
        return pid;
    }
    REGISTER.call_once(|| {
        // SAFETY: registers a handler that only stores to an atomic (async-signal-safe).
        unsafe { libc::pthread_atfork(None, None, Some(forget_in_child)) };
    });
    // SAFETY: getpid always succeeds.
    let pid = unsafe { libc::getpid() };
    PID.store(pid, Ordering::Relaxed);
    pid
}

/// A set of named objects that every process it is handed to can call.
///
/// Create it in the process that should own the objects (usually the parent); clone it, put it
/// in `#[skprocess]` structs, pool items or `star()` tuples; the copies in other processes
/// connect to the owner on first use. Clones are cheap and all refer to the same Share.
///
/// The owner's Share stops when the last of its clones in the owner process is dropped (or
/// when the [`scope`](Share::scope) that created it ends); copies in other processes never
/// stop it. See the [module documentation](self) for the semantics.
#[derive(Clone)]
pub struct Share {
    inner: Arc<Inner>,
}

struct Inner {
    id: ShareId,
    /// The coordinator, in the owner process.
    local: Option<Arc<State>>,
    /// Whether this is the owner's own handle (its drop stops the Share).
    owns: bool,
    /// The connection, in any other process (or in a forked copy of the owner).
    remote: OnceLock<Arc<SocketTransport>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.owns
            && let Some(state) = &self.local
        {
            state.stop();
            lock(&LOCAL).retain(|(token, _)| *token != self.id.token);
        }
    }
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Share")
            .field("name", &self.inner.id.name)
            .field("owner", &self.inner.id.owner)
            .finish_non_exhaustive()
    }
}

impl Share {
    /// Creates a Share owned by this process and starts its coordinator.
    ///
    /// # Errors
    ///
    /// [`ShareError::Ipc`] if the coordinator's socket, thread or shared memory cannot be
    /// created.
    pub fn new() -> Result<Share, ShareError> {
        let share = Share::stopped()?;
        share.start()?;
        Ok(share)
    }

    /// Creates a Share owned by this process without starting it (Python's
    /// `Share(auto_start=False)`): every call fails with [`ShareError::Stopped`] until
    /// [`start`](Share::start).
    ///
    /// # Errors
    ///
    /// [`ShareError::Ipc`] if the shared memory cannot be created.
    pub fn stopped() -> Result<Share, ShareError> {
        let mut random = [0u8; 16];
        crate::sys::random_bytes(&mut random);
        let mut token = [0u8; 16];
        crate::sys::random_bytes(&mut token);
        let id = ShareId {
            name: format!(
                "skprocess-share.{}.{}",
                std::process::id(),
                crate::wire::auth::hex(&random)
            ),
            secret: Secret::random(),
            token,
            owner: this_pid(),
        };
        let state = Arc::new(State::new(id.clone()).map_err(io_error)?);
        lock(&LOCAL).push((token, Arc::downgrade(&state)));
        Ok(Share {
            inner: Arc::new(Inner {
                id,
                local: Some(state),
                owns: true,
                remote: OnceLock::new(),
            }),
        })
    }

    /// Creates a Share, runs `body` with it, and stops it when `body` returns, even if clones
    /// of it are still around (Python's `with Share() as share:`).
    ///
    /// # Errors
    ///
    /// As for [`new`](Share::new); `body`'s own result is returned inside `Ok`.
    pub fn scope<R>(body: impl FnOnce(&Share) -> R) -> Result<R, ShareError> {
        let share = Share::new()?;
        // Stops even if `body` panics.
        struct StopOnDrop<'a>(&'a Share);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                let _ = self.0.stop();
            }
        }
        let _stop = StopOnDrop(&share);
        Ok(body(&share))
    }

    /// Starts (or restarts) the coordinator. The objects kept while it was stopped are all
    /// still there, and clients reconnect on their next call.
    ///
    /// # Errors
    ///
    /// [`ShareError::NotOwner`] outside the owner process; [`ShareError::Ipc`] if the socket
    /// cannot be bound.
    pub fn start(&self) -> Result<(), ShareError> {
        let state = self.owner_state("start")?;
        state.start().map_err(io_error)
    }

    /// Stops the coordinator: every call, from any process, fails with
    /// [`ShareError::Stopped`] until [`start`](Share::start); calls in flight are finished on
    /// the coordinator but their callers get [`ShareError::Interrupted`] at once. The objects
    /// are kept.
    ///
    /// # Errors
    ///
    /// [`ShareError::NotOwner`] outside the owner process.
    pub fn stop(&self) -> Result<(), ShareError> {
        self.owner_state("stop")?.stop();
        Ok(())
    }

    /// Whether the coordinator is running. In another process this asks the coordinator.
    pub fn is_running(&self) -> bool {
        match self.local() {
            Some(state) => state.is_running(),
            None => matches!(
                self.request(Op::Ping, "", "is_running", None),
                Ok(Answer::Done)
            ),
        }
    }

    /// Whether this handle is in the process that owns the Share (calls take the fast path,
    /// without a socket).
    pub fn is_owner(&self) -> bool {
        self.local().is_some()
    }

    /// Puts `value` in the Share under `name`, replacing whatever was there, and returns a
    /// handle to it. Any process can insert; a `#[shared]` type inserted from another process
    /// is sent to the owner.
    ///
    /// # Errors
    ///
    /// [`ShareError::Stopped`], [`ShareError::OwnerGone`], [`ShareError::Full`] (counters and
    /// flags), [`ShareError::Unregistered`] (a generic `#[shared]` type from another process),
    /// [`ShareError::Encode`].
    pub fn insert<T: Shareable>(&self, name: &str, value: T) -> Result<Shared<T>, ShareError> {
        let slot = match self.local() {
            Some(state) => match value.__into_stored().0 {
                Stored::Object(object) => {
                    state
                        .insert_object(name, object)
                        .map_err(|r| refusal(r, name, "insert", &T::__expect().0))?;
                    None
                }
                Stored::Atomic(kind, bits) => Some(
                    state
                        .insert_atomic(name, kind, bits)
                        .map_err(|r| refusal(r, name, "insert", &T::__expect().0))?,
                ),
            },
            None => {
                let value = value.__encode().map_err(ShareError::Encode)?.0;
                let op = Op::Insert {
                    name: name.to_owned(),
                    value,
                };
                match self.request(op, name, "insert", None)? {
                    Answer::Slot { slot, generation } => Some(checked_slot(slot, generation)?),
                    _ => None,
                }
            }
        };
        Ok(Shared::from_handle(Handle::new(self.clone(), name, slot)))
    }

    /// A handle to the value under `name`, which must be a `T`.
    ///
    /// # Errors
    ///
    /// [`ShareError::NotFound`], [`ShareError::WrongType`], [`ShareError::Stopped`],
    /// [`ShareError::OwnerGone`].
    pub fn get<T: Shareable>(&self, name: &str) -> Result<Shared<T>, ShareError> {
        let expect = T::__expect().0;
        let slot = match self.local() {
            Some(state) => match &expect {
                Expect::Object(type_name) => {
                    state
                        .object(name, type_name)
                        .map_err(|r| refusal(r, name, "get", &expect))?;
                    None
                }
                Expect::Atomic(kind) => Some(
                    state
                        .slot(name, *kind)
                        .map_err(|r| refusal(r, name, "get", &expect))?,
                ),
            },
            None => {
                let op = Op::Get {
                    name: name.to_owned(),
                    expect: expect.clone(),
                };
                match self.request(op, name, "get", None)? {
                    Answer::Slot { slot, generation } => Some(checked_slot(slot, generation)?),
                    _ => None,
                }
            }
        };
        Ok(Shared::from_handle(Handle::new(self.clone(), name, slot)))
    }

    /// Removes `name`; whether it was there. Handles to it get [`ShareError::NotFound`].
    ///
    /// # Errors
    ///
    /// [`ShareError::Stopped`], [`ShareError::OwnerGone`].
    pub fn remove(&self, name: &str) -> Result<bool, ShareError> {
        match self.local() {
            Some(state) => state
                .remove(name)
                .map_err(|r| r.into_error(name, "remove", "")),
            None => match self.request(
                Op::Remove {
                    name: name.to_owned(),
                },
                name,
                "remove",
                None,
            )? {
                Answer::Bool(found) => Ok(found),
                other => Err(unexpected(&other)),
            },
        }
    }

    /// Removes everything (and lifts every poison).
    ///
    /// # Errors
    ///
    /// [`ShareError::Stopped`], [`ShareError::OwnerGone`].
    pub fn clear(&self) -> Result<(), ShareError> {
        match self.local() {
            Some(state) => state.clear().map_err(|r| r.into_error("", "clear", "")),
            None => self.request(Op::Clear, "", "clear", None).map(drop),
        }
    }

    /// The names in the Share, sorted.
    ///
    /// # Errors
    ///
    /// [`ShareError::Stopped`], [`ShareError::OwnerGone`].
    pub fn names(&self) -> Result<Vec<String>, ShareError> {
        match self.local() {
            Some(state) => state.names().map_err(|r| r.into_error("", "names", "")),
            None => match self.request(Op::Names, "", "names", None)? {
                Answer::Names(names) => Ok(names),
                other => Err(unexpected(&other)),
            },
        }
    }

    /// Whether `name` is in the Share.
    ///
    /// # Errors
    ///
    /// As for [`names`](Share::names).
    pub fn contains(&self, name: &str) -> Result<bool, ShareError> {
        Ok(self.names()?.iter().any(|n| n == name))
    }

    /// The coordinator, when this process is the owner (never in a forked copy of it).
    fn local(&self) -> Option<&Arc<State>> {
        self.inner
            .local
            .as_ref()
            .filter(|_| this_pid() == self.inner.id.owner)
    }

    fn owner_state(&self, what: &'static str) -> Result<&Arc<State>, ShareError> {
        self.local().ok_or(ShareError::NotOwner(what))
    }

    fn transport(&self) -> &Arc<SocketTransport> {
        self.inner
            .remote
            .get_or_init(|| SocketTransport::for_share(&self.inner.id))
    }

    /// Sends a request to the coordinator of another process.
    fn request(
        &self,
        op: Op,
        name: &str,
        method: &str,
        deadline: Option<(Instant, Duration)>,
    ) -> Result<Answer, ShareError> {
        let expected = match &op {
            Op::Call { type_name, .. } => type_name.clone(),
            Op::Get {
                expect: Expect::Object(type_name),
                ..
            } => type_name.clone(),
            Op::Get {
                expect: Expect::Atomic(kind),
                ..
            } => kind.type_name().to_owned(),
            _ => String::new(),
        };
        match self.transport().request(&op, deadline.map(|(at, _)| at)) {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(refused)) => Err(refused.into_error(name, method, &expected)),
            Err(Failure::NotSent(error)) => Err(error),
            Err(Failure::Lost) => Err(ShareError::Interrupted {
                name: name.to_owned(),
                method: method.to_owned(),
            }),
            Err(Failure::Timeout) => Err(ShareError::Timeout {
                name: name.to_owned(),
                method: method.to_owned(),
                waited: deadline.map_or(Duration::ZERO, |(_, d)| d),
            }),
            Err(Failure::BadReply(message)) => Err(ShareError::Decode(message)),
        }
    }

    /// A copy that reaches the coordinator through its socket even in the owner process, with
    /// `secret` instead of the real one if given (for the project's tests).
    #[cfg(feature = "__testing")]
    pub(crate) fn remote_copy(&self, secret: Option<[u8; 32]>) -> Share {
        let mut id = self.inner.id.clone();
        if let Some(secret) = secret {
            id.secret = Secret(secret);
        }
        Share {
            inner: Arc::new(Inner {
                id,
                local: None,
                owns: false,
                remote: OnceLock::new(),
            }),
        }
    }

    /// The coordinator's socket name (for the project's tests).
    #[cfg(feature = "__testing")]
    pub(crate) fn socket_name(&self) -> &str {
        &self.inner.id.name
    }

    /// Where the shared-memory value `name` of kind `kind` lives now.
    fn slot(&self, name: &str, kind: AtomicKind) -> Result<(u32, u64), ShareError> {
        let expect = Expect::Atomic(kind);
        match self.local() {
            Some(state) => state
                .slot(name, kind)
                .map_err(|r| refusal(r, name, "get", &expect)),
            None => match self.request(
                Op::Get {
                    name: name.to_owned(),
                    expect,
                },
                name,
                "get",
                None,
            )? {
                Answer::Slot { slot, generation } => checked_slot(slot, generation),
                other => Err(unexpected(&other)),
            },
        }
    }

    /// The shared-memory region, mapped in this process.
    fn region(&self) -> Result<Arc<Region>, ShareError> {
        match &self.inner.local {
            // A forked copy still maps the owner's memory: it is shared, not copied.
            Some(state) => Ok(Arc::clone(&state.region)),
            None => self.transport().region(),
        }
    }
}

fn io_error(err: std::io::Error) -> ShareError {
    ShareError::Ipc(crate::error::IpcError::Io(err))
}

fn refusal(refused: Refusal, name: &str, method: &str, expect: &Expect) -> ShareError {
    let expected = match expect {
        Expect::Object(type_name) => type_name.as_str(),
        Expect::Atomic(kind) => kind.type_name(),
    };
    refused.into_error(name, method, expected)
}

/// A slot named by the coordinator, checked: it comes from another process.
fn checked_slot(slot: u32, generation: u64) -> Result<(u32, u64), ShareError> {
    if slot == 0 || slot as usize >= atomics::SLOTS || generation >= 1 << 48 {
        Err(ShareError::Decode(format!(
            "the coordinator named slot {slot}, generation {generation}, which cannot exist"
        )))
    } else {
        Ok((slot, generation))
    }
}

fn unexpected(answer: &Answer) -> ShareError {
    ShareError::Decode(format!(
        "unexpected answer from the coordinator: {answer:?}"
    ))
}

// ----- serde: a Share crosses processes only over skprocess's own connections ----------------

#[derive(Serialize, Deserialize)]
#[serde(rename = "Share")]
struct EncodedShare {
    name: String,
    secret: [u8; 32],
    token: [u8; 16],
    owner: i32,
}

impl Serialize for Share {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !crate::wire::codec::on_the_wire() {
            return Err(serde::ser::Error::custom(
                "a Share carries its secret and can only be sent to processes by skprocess \
                 (inside a process, a pool item or a tell), not encoded by another serializer",
            ));
        }
        crate::wire::codec::refuse_if_crossing_hosts::<S::Error>("a Share")?;
        let id = &self.inner.id;
        EncodedShare {
            name: id.name.clone(),
            secret: id.secret.0,
            token: id.token,
            owner: id.owner,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Share {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Share, D::Error> {
        let encoded = EncodedShare::deserialize(deserializer)?;
        let id = ShareId {
            name: encoded.name,
            secret: Secret(encoded.secret),
            token: encoded.token,
            owner: encoded.owner,
        };
        // Back in the owner process: use the coordinator directly, if it still exists.
        let local = (this_pid() == id.owner)
            .then(|| {
                lock(&LOCAL)
                    .iter()
                    .find(|(token, _)| *token == id.token)
                    .and_then(|(_, weak)| weak.upgrade())
            })
            .flatten();
        Ok(Share {
            inner: Arc::new(Inner {
                id,
                local,
                owns: false,
                remote: OnceLock::new(),
            }),
        })
    }
}

// ----- what can be shared --------------------------------------------------------------------

/// A value that can live in a [`Share`]: a type with a [`#[shared]`](macro@shared) impl
/// block, `i64`, `u64`, `f64` or `bool`.
///
/// The methods are used by [`Share`] and generated code; they are not an API.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be put in a Share",
    label = "this type has no `#[shared]` impl block",
    note = "put `#[shared]` on the impl block whose methods other processes should call; `i64`, `u64`, `f64` and `bool` are shared as they are"
)]
pub trait Shareable: Send + Sized + 'static {
    /// What a [`Shared<Self>`] dereferences to: the generated proxy of a `#[shared]` type,
    /// [`Atomic`] or [`Flag`].
    type Proxy: Proxy;

    #[doc(hidden)]
    fn __expect() -> ValueKind;

    #[doc(hidden)]
    fn __into_stored(self) -> StoredValue;

    #[doc(hidden)]
    fn __encode(&self) -> Result<EncodedValue, String>;
}

/// What a name is expected to hold. Not an API.
#[doc(hidden)]
#[derive(Debug)]
pub struct ValueKind(Expect);

/// A value on its way into the owner's table. Not an API.
#[doc(hidden)]
#[allow(missing_debug_implementations)]
pub struct StoredValue(Stored);

enum Stored {
    Object(Arc<dyn DynObject>),
    Atomic(AtomicKind, u64),
}

/// A value on its way to the owner from another process. Not an API.
#[doc(hidden)]
#[derive(Debug)]
pub struct EncodedValue(Value);

/// [`Shareable::__expect`] for a `#[shared]` type (generated code calls it).
#[doc(hidden)]
pub fn object_kind<T: SharedObject>() -> ValueKind {
    ValueKind(Expect::Object(std::any::type_name::<T>().to_owned()))
}

/// [`Shareable::__into_stored`] for a `#[shared]` type (generated code calls it).
#[doc(hidden)]
pub fn object_stored<T: SharedObject>(value: T) -> StoredValue {
    StoredValue(Stored::Object(Arc::new(Cell::new(value))))
}

/// [`Shareable::__encode`] for a `#[shared]` type (generated code calls it).
#[doc(hidden)]
pub fn object_encoded<T: SharedObject>(value: &T) -> Result<EncodedValue, String> {
    Ok(EncodedValue(Value::Object {
        type_name: std::any::type_name::<T>().to_owned(),
        bytes: crate::wire::encode(value)?,
    }))
}

/// The proxy a [`Shared`] handle dereferences to. Implemented by `#[shared]` and by
/// [`Atomic`] and [`Flag`]; the methods are not an API.
pub trait Proxy: Send + Sync + 'static {
    #[doc(hidden)]
    fn __from_handle(handle: Handle) -> Self;
    #[doc(hidden)]
    fn __handle(&self) -> &Handle;
}

/// A typed handle to a value in a [`Share`]: it dereferences to the value's proxy, whose
/// methods have the value's method names and return `Result<_, ShareError>`.
///
/// A handle names its value: after the name is re-inserted, the handle reaches the new value.
/// It can be cloned and handed to processes like the Share itself.
pub struct Shared<T: Shareable> {
    proxy: T::Proxy,
    _type: PhantomData<fn() -> T>,
}

impl<T: Shareable> Shared<T> {
    fn from_handle(handle: Handle) -> Shared<T> {
        Shared {
            proxy: T::Proxy::__from_handle(handle),
            _type: PhantomData,
        }
    }

    /// This handle with a deadline on every call made through it: a call without an answer
    /// by then fails with [`ShareError::Timeout`] (its outcome unknown).
    #[must_use]
    pub fn within(&self, deadline: Duration) -> Shared<T> {
        let mut handle = self.proxy.__handle().clone();
        handle.deadline = Some(deadline);
        Shared::from_handle(handle)
    }

    /// The Share this handle's value is in.
    pub fn share(&self) -> &Share {
        &self.proxy.__handle().share
    }

    /// The name of this handle's value.
    pub fn entry_name(&self) -> &str {
        &self.proxy.__handle().name
    }
}

impl<T: Shareable> Deref for Shared<T> {
    type Target = T::Proxy;

    fn deref(&self) -> &T::Proxy {
        &self.proxy
    }
}

impl<T: Shareable> Clone for Shared<T> {
    fn clone(&self) -> Shared<T> {
        Shared::from_handle(self.proxy.__handle().clone())
    }
}

impl<T: Shareable> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.entry_name())
            .field("type", &std::any::type_name::<T>())
            .finish_non_exhaustive()
    }
}

impl<T: Shareable> Serialize for Shared<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.proxy.__handle().serialize(serializer)
    }
}

impl<'de, T: Shareable> Deserialize<'de> for Shared<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Shared<T>, D::Error> {
        Ok(Shared::from_handle(Handle::deserialize(deserializer)?))
    }
}

/// The untyped inside of a [`Shared`] handle, used by generated proxies. Not an API.
#[doc(hidden)]
pub struct Handle {
    share: Share,
    name: Arc<str>,
    deadline: Option<Duration>,
    /// For a shared-memory value: where it was last found ([`pack`]ed slot and generation;
    /// 0: not yet looked up). Looked up again by name when the value there is gone.
    slot: AtomicU64,
    region: OnceLock<Arc<Region>>,
}

impl Clone for Handle {
    fn clone(&self) -> Handle {
        Handle {
            share: self.share.clone(),
            name: Arc::clone(&self.name),
            deadline: self.deadline,
            slot: AtomicU64::new(self.slot.load(Ordering::Relaxed)),
            region: self.region.clone(),
        }
    }
}

/// A slot (below 2^16) and a generation (below 2^48) in one word.
fn pack((slot, generation): (u32, u64)) -> u64 {
    debug_assert!((slot as usize) < atomics::SLOTS && generation < 1 << 48);
    generation << 16 | u64::from(slot)
}

fn unpack(packed: u64) -> Option<(u32, u64)> {
    (packed != 0).then_some(((packed & 0xffff) as u32, packed >> 16))
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("name", &self.name)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename = "Shared")]
struct EncodedHandle {
    share: Share,
    name: String,
    deadline: Option<Duration>,
    slot: Option<(u32, u64)>,
}

impl Serialize for Handle {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        EncodedHandle {
            share: self.share.clone(),
            name: self.name.to_string(),
            deadline: self.deadline,
            slot: unpack(self.slot.load(Ordering::Relaxed)),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Handle {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Handle, D::Error> {
        let encoded = EncodedHandle::deserialize(deserializer)?;
        // Bytes from another process: a slot that cannot exist is refused (found by fuzzing).
        if let Some((slot, generation)) = encoded.slot
            && (slot == 0 || slot as usize >= atomics::SLOTS || generation >= 1 << 48)
        {
            return Err(serde::de::Error::custom(format_args!(
                "a Share handle names slot {slot}, generation {generation}, which cannot exist"
            )));
        }
        let mut handle = Handle::new(encoded.share, &encoded.name, encoded.slot);
        handle.deadline = encoded.deadline;
        Ok(handle)
    }
}

impl Handle {
    fn new(share: Share, name: &str, slot: Option<(u32, u64)>) -> Handle {
        Handle {
            share,
            name: Arc::from(name),
            deadline: None,
            slot: AtomicU64::new(slot.map_or(0, pack)),
            region: OnceLock::new(),
        }
    }

    fn deadline(&self) -> Option<(Instant, Duration)> {
        self.deadline
            .and_then(|d| crate::sync::deadline_in(d).map(|at| (at, d)))
    }

    fn timeout(&self, method: &str) -> ShareError {
        ShareError::Timeout {
            name: self.name.to_string(),
            method: method.to_owned(),
            waited: self.deadline.unwrap_or_default(),
        }
    }

    /// Calls a `&self` method: on the owner's object directly, or through the coordinator.
    /// Used by generated proxies.
    pub fn __invoke_ref<T, A, R>(
        &self,
        method: &'static str,
        args: A,
        local: impl FnOnce(&T, A) -> R,
        remote: impl FnOnce(A) -> T::Call,
    ) -> Result<R, ShareError>
    where
        T: SharedObject,
        R: Transferable,
    {
        self.invoke::<T, A, R>(
            method,
            args,
            |cell, wait, args| cell.with_ref(wait, |value| local(value, args)),
            remote,
        )
    }

    /// Calls a `&mut self` method. Used by generated proxies.
    pub fn __invoke_mut<T, A, R>(
        &self,
        method: &'static str,
        args: A,
        local: impl FnOnce(&mut T, A) -> R,
        remote: impl FnOnce(A) -> T::Call,
    ) -> Result<R, ShareError>
    where
        T: SharedObject,
        R: Transferable,
    {
        self.invoke::<T, A, R>(
            method,
            args,
            |cell, wait, args| cell.with_mut(wait, |value| local(value, args)),
            remote,
        )
    }

    fn invoke<T, A, R>(
        &self,
        method: &'static str,
        args: A,
        run: impl FnOnce(&Cell<T>, Wait, A) -> Option<Result<R, Refusal>>,
        remote: impl FnOnce(A) -> T::Call,
    ) -> Result<R, ShareError>
    where
        T: SharedObject,
        R: Transferable,
    {
        let type_name = std::any::type_name::<T>();
        let deadline = self.deadline();
        if let Some(state) = self.share.local() {
            let token = self.share.inner.id.token;
            if InCall::inside(&token) {
                return Err(ShareError::Reentrant {
                    name: self.name.to_string(),
                });
            }
            let refused = |r: Refusal| r.into_error(&self.name, method, type_name);
            let object = state.object(&self.name, type_name).map_err(refused)?;
            // Two types can share a name (fn-local types of one module): the type id decides.
            let Some(cell) = object.as_any().downcast_ref::<Cell<T>>() else {
                return Err(ShareError::WrongType {
                    name: self.name.to_string(),
                    expected: type_name.to_owned(),
                    found: format!("{} (another type of that name)", object.type_name()),
                });
            };
            let wait = deadline.map_or(Wait::Forever, |(at, _)| Wait::Until(at));
            let _in_call = InCall::enter(token);
            return match run(cell, wait, args) {
                Some(result) => result.map_err(refused),
                None => Err(self.timeout(method)),
            };
        }
        let call = crate::wire::encode(&remote(args)).map_err(ShareError::Encode)?;
        let op = Op::Call {
            name: self.name.to_string(),
            type_name: type_name.to_owned(),
            call,
        };
        match self.share.request(op, &self.name, method, deadline)? {
            Answer::Bytes(bytes) => crate::wire::decode::<R>(&bytes).map_err(ShareError::Decode),
            other => Err(unexpected(&other)),
        }
    }

    /// The value word of a shared-memory value of kind `kind`.
    fn word(&self, kind: AtomicKind) -> Result<&AtomicU64, ShareError> {
        let region = match self.region.get() {
            Some(region) => region,
            None => {
                let region = self.share.region()?;
                self.region.get_or_init(|| region)
            }
        };
        if !region.running() {
            return Err(
                if this_pid() == self.share.inner.id.owner
                    || crate::sys::pid_alive(self.share.inner.id.owner)
                {
                    ShareError::Stopped
                } else {
                    ShareError::OwnerGone {
                        pid: self.share.inner.id.owner,
                    }
                },
            );
        }
        if let Some(word) =
            unpack(self.slot.load(Ordering::Relaxed)).and_then(|(s, g)| region.value(s, g))
        {
            return Ok(word);
        }
        // Never looked up, or the value there was removed or replaced: find the name again.
        let found = self.share.slot(&self.name, kind)?;
        self.slot.store(pack(found), Ordering::Relaxed);
        region
            .value(found.0, found.1)
            .ok_or_else(|| ShareError::NotFound {
                name: self.name.to_string(),
            })
    }
}

// ----- counters and flags in shared memory ---------------------------------------------------

mod sealed {
    pub trait Sealed {}
    impl Sealed for i64 {}
    impl Sealed for u64 {}
    impl Sealed for f64 {}
}

/// A number kept in shared memory: `i64`, `u64` or `f64`.
pub trait AtomicValue: sealed::Sealed + Copy + Send + Sync + 'static {
    #[doc(hidden)]
    const KIND: ValueKindTag;
    #[doc(hidden)]
    fn to_bits(self) -> u64;
    #[doc(hidden)]
    fn from_bits(bits: u64) -> Self;
    #[doc(hidden)]
    fn add(self, other: Self) -> Self;
}

/// The kind of an [`AtomicValue`]. Not an API.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct ValueKindTag(AtomicKind);

impl AtomicValue for i64 {
    const KIND: ValueKindTag = ValueKindTag(AtomicKind::I64);
    fn to_bits(self) -> u64 {
        self as u64
    }
    fn from_bits(bits: u64) -> i64 {
        bits as i64
    }
    fn add(self, other: i64) -> i64 {
        self.wrapping_add(other)
    }
}

impl AtomicValue for u64 {
    const KIND: ValueKindTag = ValueKindTag(AtomicKind::U64);
    fn to_bits(self) -> u64 {
        self
    }
    fn from_bits(bits: u64) -> u64 {
        bits
    }
    fn add(self, other: u64) -> u64 {
        self.wrapping_add(other)
    }
}

impl AtomicValue for f64 {
    const KIND: ValueKindTag = ValueKindTag(AtomicKind::F64);
    fn to_bits(self) -> u64 {
        f64::to_bits(self)
    }
    fn from_bits(bits: u64) -> f64 {
        f64::from_bits(bits)
    }
    fn add(self, other: f64) -> f64 {
        self + other
    }
}

macro_rules! atomic_shareable {
    ($($ty:ty),*) => {$(
        impl Shareable for $ty {
            type Proxy = Atomic<$ty>;

            fn __expect() -> ValueKind {
                ValueKind(Expect::Atomic(<$ty as AtomicValue>::KIND.0))
            }

            fn __into_stored(self) -> StoredValue {
                StoredValue(Stored::Atomic(<$ty as AtomicValue>::KIND.0, AtomicValue::to_bits(self)))
            }

            fn __encode(&self) -> Result<EncodedValue, String> {
                Ok(EncodedValue(Value::Atomic {
                    kind: <$ty as AtomicValue>::KIND.0,
                    bits: AtomicValue::to_bits(*self),
                }))
            }
        }
    )*};
}

atomic_shareable!(i64, u64, f64);

/// The proxy of an `i64`, `u64` or `f64` in a [`Share`]: atomic operations on shared memory,
/// from any process, without a message. Integers wrap around on overflow.
pub struct Atomic<V: AtomicValue> {
    handle: Handle,
    _value: PhantomData<fn() -> V>,
}

impl<V: AtomicValue> std::fmt::Debug for Atomic<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Atomic")
            .field("name", &self.handle.name)
            .finish()
    }
}

impl<V: AtomicValue> Proxy for Atomic<V> {
    fn __from_handle(handle: Handle) -> Self {
        Atomic {
            handle,
            _value: PhantomData,
        }
    }
    fn __handle(&self) -> &Handle {
        &self.handle
    }
}

/// # Errors
///
/// Every operation fails with [`ShareError::Stopped`] while the Share is stopped,
/// [`ShareError::OwnerGone`] once its owner has exited, and [`ShareError::NotFound`] after the
/// name was removed or replaced by a value of another kind.
impl<V: AtomicValue> Atomic<V> {
    /// The current value.
    pub fn load(&self) -> Result<V, ShareError> {
        Ok(V::from_bits(
            self.handle.word(V::KIND.0)?.load(Ordering::Acquire),
        ))
    }

    /// Sets the value.
    pub fn store(&self, value: V) -> Result<(), ShareError> {
        self.handle
            .word(V::KIND.0)?
            .store(value.to_bits(), Ordering::Release);
        Ok(())
    }

    /// Sets the value and returns the previous one.
    pub fn swap(&self, value: V) -> Result<V, ShareError> {
        Ok(V::from_bits(
            self.handle
                .word(V::KIND.0)?
                .swap(value.to_bits(), Ordering::AcqRel),
        ))
    }

    /// Adds `delta` and returns the previous value.
    pub fn fetch_add(&self, delta: V) -> Result<V, ShareError> {
        let word = self.handle.word(V::KIND.0)?;
        if let Some(delta) = V::KIND.int_delta(delta) {
            return Ok(V::from_bits(word.fetch_add(delta, Ordering::AcqRel)));
        }
        let previous = word
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |bits| {
                Some(V::from_bits(bits).add(delta).to_bits())
            })
            .expect("the update always succeeds");
        Ok(V::from_bits(previous))
    }

    /// Sets the value to `new` if it is `current` (bit for bit); returns the previous value,
    /// `Ok` if it was `current`.
    pub fn compare_exchange(&self, current: V, new: V) -> Result<Result<V, V>, ShareError> {
        Ok(self
            .handle
            .word(V::KIND.0)?
            .compare_exchange(
                current.to_bits(),
                new.to_bits(),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .map(V::from_bits)
            .map_err(V::from_bits))
    }
}

impl ValueKindTag {
    /// For integers, `delta` as the bits to add with a plain `fetch_add` (wrapping addition of
    /// two's complement bits is the same for `i64` and `u64`).
    fn int_delta<V: AtomicValue>(self, delta: V) -> Option<u64> {
        match self.0 {
            AtomicKind::I64 | AtomicKind::U64 => Some(delta.to_bits()),
            _ => None,
        }
    }
}

impl Shareable for bool {
    type Proxy = Flag;

    fn __expect() -> ValueKind {
        ValueKind(Expect::Atomic(AtomicKind::Bool))
    }

    fn __into_stored(self) -> StoredValue {
        StoredValue(Stored::Atomic(AtomicKind::Bool, u64::from(self)))
    }

    fn __encode(&self) -> Result<EncodedValue, String> {
        Ok(EncodedValue(Value::Atomic {
            kind: AtomicKind::Bool,
            bits: u64::from(*self),
        }))
    }
}

/// The proxy of a `bool` in a [`Share`]: a flag in shared memory that any process can set,
/// clear, read, and wait for (Python's `Event`).
///
/// Errors are those of [`Atomic`].
pub struct Flag {
    handle: Handle,
}

impl std::fmt::Debug for Flag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flag")
            .field("name", &self.handle.name)
            .finish()
    }
}

impl Proxy for Flag {
    fn __from_handle(handle: Handle) -> Self {
        Flag { handle }
    }
    fn __handle(&self) -> &Handle {
        &self.handle
    }
}

impl Flag {
    /// Whether the flag is set.
    pub fn is_set(&self) -> Result<bool, ShareError> {
        Ok(self.handle.word(AtomicKind::Bool)?.load(Ordering::Acquire) != 0)
    }

    /// Sets the flag and wakes every process waiting for it.
    pub fn set(&self) -> Result<(), ShareError> {
        self.store(true)
    }

    /// Clears the flag.
    pub fn clear(&self) -> Result<(), ShareError> {
        self.store(false)
    }

    /// Sets or clears the flag (waking waiters when set).
    pub fn store(&self, value: bool) -> Result<(), ShareError> {
        let word = self.handle.word(AtomicKind::Bool)?;
        word.store(u64::from(value), Ordering::Release);
        if value {
            atomics::wake_all(word);
        }
        Ok(())
    }

    /// Waits until the flag is set, at most `timeout`; whether it is set.
    pub fn wait(&self, timeout: Duration) -> Result<bool, ShareError> {
        let deadline = Instant::now() + timeout;
        loop {
            let word = self.handle.word(AtomicKind::Bool)?;
            if word.load(Ordering::Acquire) != 0 {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            // Wake up now and then to notice a stop or a removal.
            let nap = deadline.min(Instant::now() + Duration::from_millis(100));
            atomics::wait_changed(word, 0, nap);
        }
    }
}
