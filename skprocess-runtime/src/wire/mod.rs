//! The wire: framing, the codec, the protocol, authentication, and the hub that children
//! connect to.
//!
//! Every frame is `u32 length (little endian) | u8 kind | payload`, where `length` counts the
//! payload only. Frames are validated as they are read: an unknown kind, a length over the
//! limit or a payload of the wrong shape is an [`IpcError`], never a panic.
//!
//! [`IpcError`]: crate::IpcError

pub(crate) mod auth;
pub(crate) mod codec;
pub(crate) mod conn;
pub(crate) mod frame;
pub(crate) mod hub;
pub(crate) mod protocol;

pub(crate) use codec::{decode, encode};
pub(crate) use conn::Conn;
pub(crate) use frame::{Frame, FrameBuf};
pub(crate) use protocol::Kind;
