//! [`ShareError`]: every way a call on a [`Share`](super::Share) can fail, typed.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::IpcError;

/// Why a call on a [`Share`](super::Share) or on one of its objects failed.
///
/// Every variant says what is known about the call's outcome: most mean it did not run;
/// [`Timeout`](ShareError::Timeout) and [`Interrupted`](ShareError::Interrupted) mean nobody
/// can tell (the coordinator may have run it, and always runs a call it started to the end).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShareError {
    /// The Share is stopped: [`stop`](super::Share::stop) was called, it was created stopped,
    /// or every handle to it in the owner process was dropped. Nothing ran.
    #[error("the Share is stopped")]
    Stopped,
    /// The process that owns the Share is gone. Nothing ran.
    #[error("the process that owns the Share (pid {pid}) is gone")]
    OwnerGone {
        /// The owner's process id.
        pid: i32,
    },
    /// The connection to the coordinator broke while the call was in flight (the owner
    /// stopped the Share or exited). The call may or may not have run.
    #[error(
        "the connection to the Share broke during `{method}` on `{name}`: it may or may not have run"
    )]
    Interrupted {
        /// The object's name.
        name: String,
        /// The method, or the Share operation (`insert`, `get`, ...).
        method: String,
    },
    /// No answer before the call's deadline ([`Shared::within`](super::Shared::within)). The
    /// call may or may not have run, and may still run.
    #[error("no answer to `{method}` on `{name}` within {waited:?}: it may or may not have run")]
    Timeout {
        /// The object's name.
        name: String,
        /// The method.
        method: String,
        /// The deadline that passed.
        waited: Duration,
    },
    /// No object of that name is in the Share (never inserted, removed, or cleared).
    #[error("the Share holds nothing named `{name}`")]
    NotFound {
        /// The name asked for.
        name: String,
    },
    /// The name holds a value of another type.
    #[error("`{name}` in the Share holds a `{found}`, not a `{expected}`")]
    WrongType {
        /// The name asked for.
        name: String,
        /// The type the caller asked for.
        expected: String,
        /// The type the Share holds under that name.
        found: String,
    },
    /// This call's method panicked. The object is poisoned from now on: later calls on it get
    /// [`Poisoned`](ShareError::Poisoned) until it is re-inserted (or the Share cleared).
    #[error("`{method}` on `{name}` panicked: {message}")]
    Panicked {
        /// The object's name.
        name: String,
        /// The method.
        method: String,
        /// The panic message.
        message: String,
    },
    /// An earlier call on this object panicked, so its state may be half-updated. Nothing ran.
    #[error("`{name}` is poisoned: an earlier call panicked: {message}")]
    Poisoned {
        /// The object's name.
        name: String,
        /// The earlier panic's message.
        message: String,
    },
    /// A method of a shared object called back into its own Share, which would deadlock.
    /// Nothing ran.
    #[error(
        "a method of an object in this Share called back into the Share (`{name}`), which would deadlock"
    )]
    Reentrant {
        /// The name the nested call addressed.
        name: String,
    },
    /// The call was made on the owner's side but not by the owner: [`start`](super::Share::start)
    /// and [`stop`](super::Share::stop) belong to the process that created the Share.
    #[error("only the process that created the Share can {0} it")]
    NotOwner(&'static str),
    /// A value of this type cannot be inserted from a process other than the owner: its
    /// `#[shared]` impl is generic, so it has no registry entry.
    #[error(
        "`{type_name}` cannot be inserted from another process: generic `#[shared]` types can only be inserted by the owner"
    )]
    Unregistered {
        /// The type.
        type_name: String,
    },
    /// All shared-memory slots for counters and flags are in use.
    #[error("the Share's shared memory is full ({slots} counters and flags)")]
    Full {
        /// How many slots the Share has.
        slots: usize,
    },
    /// An argument, a value or a return value could not be encoded.
    #[error("cannot encode for the Share: {0}")]
    Encode(String),
    /// An answer or a value could not be decoded.
    #[error("cannot decode from the Share: {0}")]
    Decode(String),
    /// The connection to the coordinator failed (refused, authentication, I/O).
    #[error("cannot reach the Share")]
    Ipc(#[source] IpcError),
}

/// What the coordinator answers instead of a value; the client adds the name and method it
/// knows to make a [`ShareError`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Refusal {
    Stopped,
    NotFound,
    WrongType { found: String },
    Panicked { message: String },
    Poisoned { message: String },
    Unregistered { type_name: String },
    Full { slots: usize },
    Encode(String),
    Decode(String),
}

impl Refusal {
    /// The [`ShareError`] for this refusal of a call `method` on `name`, which asked for
    /// `expected`.
    pub(crate) fn into_error(self, name: &str, method: &str, expected: &str) -> ShareError {
        match self {
            Refusal::Stopped => ShareError::Stopped,
            Refusal::NotFound => ShareError::NotFound { name: name.into() },
            Refusal::WrongType { found } => ShareError::WrongType {
                name: name.into(),
                expected: expected.into(),
                found,
            },
            Refusal::Panicked { message } => ShareError::Panicked {
                name: name.into(),
                method: method.into(),
                message,
            },
            Refusal::Poisoned { message } => ShareError::Poisoned {
                name: name.into(),
                message,
            },
            Refusal::Unregistered { type_name } => ShareError::Unregistered { type_name },
            Refusal::Full { slots } => ShareError::Full { slots },
            Refusal::Encode(message) => ShareError::Encode(message),
            Refusal::Decode(message) => ShareError::Decode(message),
        }
    }
}
