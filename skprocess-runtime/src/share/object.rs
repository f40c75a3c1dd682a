//! Objects held by a coordinator: the trait `#[shared]` implements, the cell that holds one
//! object with its lock and poison state, and the registry that lets a process other than the
//! owner insert one.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, LockResult, Mutex, RwLock, TryLockError, TryLockResult};
use std::time::Instant;

use linkme::distributed_slice;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::Refusal;
use crate::lifecycle::Transferable;
use crate::sync::lock;

/// Implemented by `#[shared]` for the type of its impl block: the request enum and the
/// dispatch `match` the coordinator runs. Used by generated code; not an API.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be put in a Share",
    label = "missing `#[shared]` on an impl block of `{Self}`",
    note = "put `#[shared]` on the impl block whose methods other processes should call"
)]
pub trait SharedObject: Transferable + Sync {
    /// One variant per proxied method, holding its arguments.
    type Call: Serialize + DeserializeOwned;

    /// Whether the call needs `&mut self` (an exclusive lock on the object).
    fn __is_mut(call: &Self::Call) -> bool;

    /// The called method's name (for error messages).
    fn __method(call: &Self::Call) -> &'static str;

    /// Runs a `&self` call and encodes its return value. `Err` for a `&mut self` call (the
    /// coordinator never sends one here) or a return value that does not encode.
    fn __dispatch_ref(&self, call: Self::Call) -> Result<Vec<u8>, String>;

    /// Runs any call and encodes its return value.
    fn __dispatch_mut(&mut self, call: Self::Call) -> Result<Vec<u8>, String>;
}

/// Encodes a method's return value for the trip back (generated dispatch code calls it).
#[doc(hidden)]
pub fn encode_reply<R: Serialize>(value: &R) -> Result<Vec<u8>, String> {
    crate::wire::encode(value)
}

/// One object in a coordinator, of any type.
pub(crate) trait DynObject: Send + Sync + 'static {
    /// The Rust type name of the object (what `get::<T>` compares against).
    fn type_name(&self) -> &'static str;
    /// For the owner's fast path: the concrete [`Cell`].
    fn as_any(&self) -> &dyn Any;
    /// Runs an encoded call (from another process) and returns the encoded reply.
    fn call_encoded(&self, call: &[u8]) -> Result<Vec<u8>, Refusal>;
}

/// How a cell's lock is waited for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    Forever,
    Until(Instant),
}

/// One object, its reader–writer lock, and its poison state.
pub(crate) struct Cell<T> {
    value: RwLock<T>,
    poison: Mutex<Option<String>>,
}

impl<T: SharedObject> Cell<T> {
    pub(crate) fn new(value: T) -> Cell<T> {
        Cell {
            value: RwLock::new(value),
            poison: Mutex::new(None),
        }
    }

    fn check_poison(&self) -> Result<(), Refusal> {
        match &*lock(&self.poison) {
            Some(message) => Err(Refusal::Poisoned {
                message: message.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Runs `f` on the value under the read lock, catching a panic (which poisons the cell).
    /// `None` when `wait` ran out before the lock was free.
    pub(crate) fn with_ref<R>(
        &self,
        wait: Wait,
        f: impl FnOnce(&T) -> R,
    ) -> Option<Result<R, Refusal>> {
        self.locked(
            wait,
            || self.value.read(),
            || self.value.try_read(),
            |guard| f(guard),
        )
    }

    /// Runs `f` on the value under the write lock, catching a panic (which poisons the cell).
    pub(crate) fn with_mut<R>(
        &self,
        wait: Wait,
        f: impl FnOnce(&mut T) -> R,
    ) -> Option<Result<R, Refusal>> {
        self.locked(
            wait,
            || self.value.write(),
            || self.value.try_write(),
            |guard| f(guard),
        )
    }

    /// Takes a guard (blocking, or by attempts until the deadline), checks the poison before
    /// and under the lock, and runs `f` on the guard.
    fn locked<G, R>(
        &self,
        wait: Wait,
        block: impl FnOnce() -> LockResult<G>,
        mut attempt: impl FnMut() -> TryLockResult<G>,
        f: impl FnOnce(&mut G) -> R,
    ) -> Option<Result<R, Refusal>> {
        if let Err(refusal) = self.check_poison() {
            return Some(Err(refusal));
        }
        let mut guard = match wait {
            Wait::Forever => block().unwrap_or_else(|e| e.into_inner()),
            Wait::Until(deadline) => poll_lock(deadline, || match attempt() {
                Ok(guard) => Some(guard),
                Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            })?,
        };
        // A panic between the first check and here poisoned the cell: check again under the lock.
        if let Err(refusal) = self.check_poison() {
            return Some(Err(refusal));
        }
        Some(self.guarded(|| f(&mut guard)))
    }

    fn guarded<R>(&self, f: impl FnOnce() -> R) -> Result<R, Refusal> {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(value) => Ok(value),
            Err(payload) => {
                let message = crate::engine::panic_message(&*payload);
                *lock(&self.poison) = Some(message.clone());
                Err(Refusal::Panicked { message })
            }
        }
    }
}

/// Tries `attempt` with a growing pause between tries until it succeeds or `deadline` passes
/// (std's locks have no timed wait; only calls with a deadline come here).
fn poll_lock<G>(deadline: Instant, mut attempt: impl FnMut() -> Option<G>) -> Option<G> {
    let mut pause = std::time::Duration::from_micros(20);
    loop {
        if let Some(guard) = attempt() {
            return Some(guard);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(std::time::Duration::from_millis(5));
    }
}

impl<T: SharedObject> DynObject for Cell<T> {
    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn call_encoded(&self, call: &[u8]) -> Result<Vec<u8>, Refusal> {
        let call: T::Call = crate::wire::decode(call).map_err(Refusal::Decode)?;
        let reply = if T::__is_mut(&call) {
            self.with_mut(Wait::Forever, |value| value.__dispatch_mut(call))
        } else {
            self.with_ref(Wait::Forever, |value| value.__dispatch_ref(call))
        };
        reply
            .expect("waiting forever always gets the lock")?
            .map_err(Refusal::Encode)
    }
}

/// What a [`SharedTypeEntry`] builds: an `Arc<dyn DynObject>`, type-erased (the trait is private).
#[doc(hidden)]
pub type BuiltObject = Arc<dyn Any + Send + Sync>;

/// A `#[shared]` type that other processes may insert, found by its type name. `#[shared]`
/// adds one for every type without generic parameters. Used by generated code; not an API.
#[doc(hidden)]
#[derive(Debug)]
pub struct SharedTypeEntry {
    /// `std::any::type_name` of the type.
    pub type_name: fn() -> &'static str,
    /// Decodes a value of the type into a fresh object.
    pub build: fn(&[u8]) -> Result<BuiltObject, String>,
}

/// Every registered `#[shared]` type of the executable.
#[doc(hidden)]
#[distributed_slice]
pub static SHARED_TYPES: [SharedTypeEntry];

/// The `build` of a [`SharedTypeEntry`] for `T` (generated code names it).
#[doc(hidden)]
pub fn build_object<T: SharedObject>(bytes: &[u8]) -> Result<BuiltObject, String> {
    let value: T = crate::wire::decode(bytes)?;
    let object: Arc<dyn DynObject> = Arc::new(Cell::new(value));
    Ok(Arc::new(object))
}

/// Builds an object of the registered type `type_name` from its encoding.
pub(crate) fn build_registered(
    type_name: &str,
    bytes: &[u8],
) -> Result<Arc<dyn DynObject>, Refusal> {
    let entry = SHARED_TYPES
        .iter()
        .find(|entry| (entry.type_name)() == type_name)
        .ok_or_else(|| Refusal::Unregistered {
            type_name: type_name.to_owned(),
        })?;
    let built = (entry.build)(bytes).map_err(Refusal::Decode)?;
    let object = built
        .downcast_ref::<Arc<dyn DynObject>>()
        .expect("build_object returns an Arc<dyn DynObject>");
    Ok(Arc::clone(object))
}
