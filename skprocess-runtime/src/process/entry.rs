//! The child side of a process: decode the start body, run the engine, report the outcome.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use serde::Serialize;

use crate::engine::{Engine, Outcome};
use crate::error::{IpcError, ProcessError};
use crate::exit::code;
use crate::inbox::{Endpoint, Mailbox};
use crate::lifecycle::{ChildLink, Lifecycle, ProcessTimers};
use crate::registry::ChildSession;
use crate::ring::Channel;
use crate::shm::StatusPage;
use crate::wire::protocol::ProcessStart;
use crate::wire::{Conn, Frame, Kind, decode, encode};

/// The child-side entry point of a process type `T`.
pub(crate) fn run_process<T: Lifecycle>(session: ChildSession) -> i32 {
    let start = match decode_start_body(&session.body) {
        Ok(start) => start,
        Err(error) => return session.setup_failed(error),
    };
    // The parent offers the tell/listen channel right after the Start frame, then sends the
    // descriptors of the buffers in the process value.
    let received = Channel::accept(Arc::clone(&session.conn), session.conn.limit(), false)
        .and_then(|channel| {
            let fds = (0..start.descriptors)
                .map(|_| session.conn.recv_with_fd(Kind::BufferFd))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((channel, fds))
        });
    let (channel, fds) = match received {
        Ok((channel, fds)) => (Arc::new(channel), fds),
        Err(error) => {
            return session.setup_failed(ProcessError::ChildSetup {
                message: format!("cannot set up the message channel: {error}"),
            });
        }
    };
    // Everything the parent sends before the child's own frames has been read: from here on a
    // reader thread watches for a stop request or the parent's end, also while the start hooks
    // run (one that hangs must not outlive the parent).
    spawn_reader(Arc::clone(&session.conn), Arc::clone(&session.status));
    // User code starts here: the state's `Deserialize` may be the user's too.
    if let Err(error) = session.before_user_code() {
        return session.setup_failed(error);
    }
    let state: T = match decode_state(&start.state, fds) {
        Ok(state) => state,
        Err(error) => return session.setup_failed(error),
    };
    let ChildSession { conn, status, .. } = session;
    let inbox = Mailbox::pending();
    inbox.open(Endpoint::Ring(channel));
    let link = Arc::new(ChildLink::new(Some(Arc::clone(&conn)), inbox, status));
    let (outcome, timers) = Engine::new(state, start.config, link).run();
    send_outcome(|kind, bytes| conn.send(kind, bytes), outcome, timers);
    code::OK
}

/// Decodes a process entry's start body (the configuration and the encoded state).
pub(crate) fn decode_start_body(body: &[u8]) -> Result<ProcessStart, ProcessError> {
    decode(body).map_err(|message| ProcessError::ChildSetup {
        message: format!("malformed process start message: {message}"),
    })
}

/// Decodes the process value, handing its buffers the descriptors that came with it.
pub(crate) fn decode_state<T: Lifecycle>(
    state: &[u8],
    fds: Vec<OwnedFd>,
) -> Result<T, ProcessError> {
    crate::buffer::providing(fds, || decode(state)).map_err(|message| ProcessError::Decode {
        what: format!("the state of `{}`", std::any::type_name::<T>()),
        message,
    })
}

/// Reads the parent's frames (stop requests, to the status page; messages travel on the
/// channel). When the parent goes away, stops the process and exits hard if it has not finished
/// within [`PARENT_GONE_GRACE`](crate::exit::PARENT_GONE_GRACE).
fn spawn_reader(conn: Arc<Conn>, status: Arc<StatusPage>) {
    let spawned = std::thread::Builder::new()
        .name("skprocess-child-io".into())
        .spawn(move || {
            let mut frames = conn.frames();
            loop {
                match frames.next_frame() {
                    Ok(Some(Frame {
                        kind: Kind::Stop, ..
                    })) => status.request_stop(),
                    Ok(Some(_)) => {} // nothing else is meant for a process child
                    Ok(None) | Err(_) => break,
                }
            }
            crate::exit::parent_gone(&status);
        });
    drop(spawned);
}

/// Sends the outcome of a lifecycle to the parent with `send` (which writes one frame, or fails
/// with [`IpcError::FrameTooLarge`] over the frame limit). A result that cannot be encoded, or
/// that is larger than the frame limit, becomes an error the parent receives instead; an error
/// whose frame (with the timers) is too large goes without the timers.
pub(crate) fn send_outcome<O: Serialize>(
    mut send: impl FnMut(Kind, &[u8]) -> Result<(), IpcError>,
    outcome: Outcome<O>,
    timers: ProcessTimers,
) {
    let error = match outcome {
        Outcome::Value(value) => match send_encoded(&mut send, Kind::Result, &(&timers, &value)) {
            Ok(()) | Err(Unsent::Gone) => return,
            Err(Unsent::Refused(message)) => ProcessError::Encode {
                what: format!("the result (`{}`)", std::any::type_name::<O>()),
                message,
            },
        },
        Outcome::Error(error) => error,
    };
    match send_encoded(&mut send, Kind::Error, &(&timers, &error)) {
        Ok(()) | Err(Unsent::Gone) => {}
        Err(Unsent::Refused(message)) => {
            let bare = ProcessTimers::default();
            if let Err(Unsent::Refused(_)) = send_encoded(&mut send, Kind::Error, &(&bare, &error))
            {
                // The error's own text may be what is too large: send its start only.
                let mut text = error.to_string();
                if text.len() > FALLBACK_TEXT {
                    let cut = (0..=FALLBACK_TEXT)
                        .rev()
                        .find(|&i| text.is_char_boundary(i))
                        .unwrap_or(0);
                    text.truncate(cut);
                    text.push_str(" […]");
                }
                let fallback = ProcessError::ChildSetup {
                    message: format!("{text} (and the error could not be sent: {message})"),
                };
                let _ = send_encoded(&mut send, Kind::Error, &(&bare, &fallback));
            }
        }
    }
}

/// How much of an error's text the fallback outcome keeps when the error itself is over the
/// frame limit (the smallest frame limit is 64 KiB).
const FALLBACK_TEXT: usize = 4096;

/// Why an outcome frame was not sent.
enum Unsent {
    /// The parent is gone: nobody to tell.
    Gone,
    /// It cannot be encoded, or it is over the frame limit (the message says which).
    Refused(String),
}

fn send_encoded<T: Serialize>(
    send: &mut impl FnMut(Kind, &[u8]) -> Result<(), IpcError>,
    kind: Kind,
    value: &T,
) -> Result<(), Unsent> {
    let bytes = encode(value).map_err(Unsent::Refused)?;
    match send(kind, &bytes) {
        Ok(()) => Ok(()),
        Err(IpcError::FrameTooLarge { len, max }) => Err(Unsent::Refused(format!(
            "its {len} bytes exceed the frame limit of {max} bytes (`ProcessConfig::frame_limit`)"
        ))),
        Err(_) => Err(Unsent::Gone),
    }
}
