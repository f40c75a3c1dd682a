//! What crosses a Share's connection after the handshake.
//!
//! ```text
//! coordinator -> client   ShareRegion  (empty; carries the region's memfd, SCM_RIGHTS)
//! client -> coordinator   ShareCall    Op
//! coordinator -> client   ShareReply   Result<Answer, Refusal>
//! ```
//!
//! One request is in flight per connection; the reply to it is the next frame. A client that
//! gives up waiting (a deadline) closes the connection, so no late reply is ever read as the
//! answer to another request.

use serde::{Deserialize, Serialize};

use super::error::Refusal;

/// The kinds of value kept in shared memory.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum AtomicKind {
    I64,
    U64,
    F64,
    Bool,
}

impl AtomicKind {
    pub(crate) fn type_name(self) -> &'static str {
        match self {
            AtomicKind::I64 => "i64",
            AtomicKind::U64 => "u64",
            AtomicKind::F64 => "f64",
            AtomicKind::Bool => "bool",
        }
    }
}

/// What a name is expected to hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Expect {
    /// A `#[shared]` object of this type name.
    Object(String),
    /// A value in shared memory.
    Atomic(AtomicKind),
}

/// A value inserted from a client.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Value {
    Object {
        type_name: String,
        #[serde(with = "crate::wire::codec::bytes")]
        bytes: Vec<u8>,
    },
    Atomic {
        kind: AtomicKind,
        bits: u64,
    },
}

/// One request.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Op {
    /// A method call on an object: `call` is the encoded request enum of `type_name`.
    Call {
        name: String,
        type_name: String,
        #[serde(with = "crate::wire::codec::bytes")]
        call: Vec<u8>,
    },
    Insert {
        name: String,
        value: Value,
    },
    Get {
        name: String,
        expect: Expect,
    },
    Remove {
        name: String,
    },
    Clear,
    Names,
    Ping,
}

/// What a request gives back.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Answer {
    /// A method's encoded return value.
    Bytes(#[serde(with = "crate::wire::codec::bytes")] Vec<u8>),
    /// Where a shared-memory value lives.
    Slot {
        slot: u32,
        generation: u64,
    },
    Bool(bool),
    Names(Vec<String>),
    Done,
}

/// The reply to one request.
pub(crate) type Reply = Result<Answer, Refusal>;
