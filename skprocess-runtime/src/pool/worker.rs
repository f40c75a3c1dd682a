//! The worker side of a pool: a child that runs tasks until its parent hangs up.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use linkme::distributed_slice;
use serde::Serialize;

use super::error::{Payload, TaskError};
use super::task::trampoline_at;
use crate::error::{IpcError, ProcessError};
use crate::exit::code;
use crate::registry::{ChildSession, PROCESSES, ProcessEntry};
use crate::shm::Phase;
use crate::wire::protocol::{
    Kind, RESULTS_HEAD, ResultsHead, TaskFrame, WorkerStart, skipped_payload,
};
use crate::wire::{Conn, Frame, FrameBuf, decode};

/// The registered name of the pool worker entry.
pub(crate) const ENTRY_NAME: &str = "skprocess::pool-worker";

/// A worker sends the results it has once they hold this many bytes (or when its chunk ends),
/// so that a chunk's results never need a frame larger than this, and a slow chunk's first
/// results reach the caller early.
const FLUSH_BYTES: usize = 1 << 20;

#[distributed_slice(PROCESSES)]
static WORKER_ENTRY: ProcessEntry = ProcessEntry::with_entry(ENTRY_NAME, worker_entry);

fn worker_entry(session: ChildSession) -> i32 {
    if let Err(message) = decode::<WorkerStart>(&session.body) {
        return session.setup_failed(ProcessError::ChildSetup {
            message: format!("malformed pool worker start message: {message}"),
        });
    }
    let ChildSession { conn, status, .. } = &session;
    let (conn, status) = (Arc::clone(conn), Arc::clone(status));
    // Ctrl+C is for the parent: it dies, and its workers follow (below), or it handles it and
    // ends the calls in progress itself. SIGTERM, from the kernel when the parent dies or from
    // anyone else, ends the worker at once with its default action (the session installed a
    // graceful handler, which is for processes, not workers), so that the pool reports the
    // item the worker was running as killed by SIGTERM.
    crate::sys::ignore_signal(libc::SIGINT);
    crate::sys::default_signal(libc::SIGTERM);
    if status.stop_requested() {
        // A SIGTERM (or SIGINT) came before the line above: act on it as if it came after.
        crate::sys::reraise_default(libc::SIGTERM);
    }
    // Before the first task. A hook that fails ends this worker; the pool reports the failure
    // to its calls instead of starting another worker that would fail the same way.
    if let Err(error) = session.before_user_code() {
        return session.setup_failed(error);
    }

    // The parent's frames, read with the descriptors that come with them: a chunk's buffers
    // arrive as `BufferFd` frames just before its `Task` frame.
    let mut frames = std::io::BufReader::with_capacity(
        64 * 1024,
        FdReader {
            conn: &conn,
            fds: Vec::new(),
        },
    );
    let mut buffers: Vec<std::os::fd::OwnedFd> = Vec::new();
    loop {
        let payload = match crate::wire::frame::read_frame(&mut frames, conn.limit()) {
            Ok(Some(Frame {
                kind: Kind::Task,
                payload,
            })) => payload,
            Ok(Some(Frame {
                kind: Kind::BufferFd,
                ..
            })) => {
                // Descriptors arrive in the order their frames were sent.
                let reader = frames.get_mut();
                if reader.fds.is_empty() {
                    return ChildSession::report_setup_failure(
                        &conn,
                        ProcessError::Ipc(IpcError::Malformed(
                            "a BufferFd frame came without its descriptor".into(),
                        )),
                    );
                }
                buffers.push(reader.fds.remove(0));
                continue;
            }
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return code::OK, // the pool closed (or is gone)
        };
        // The descriptors sent for this chunk, whether it runs or is skipped.
        let chunk_buffers = std::mem::take(&mut buffers);
        let task = match TaskFrame::decode(&payload) {
            Ok(task) => task,
            Err(error) => {
                return ChildSession::report_setup_failure(&conn, ProcessError::Ipc(error));
            }
        };
        status.set_current_run(0);
        if !status.claim(task.seq) {
            // The parent took this chunk back before it started (to give it to an idle worker,
            // or because its call was cancelled): say so, and run nothing.
            if conn
                .send(Kind::Skipped, &skipped_payload(task.seq))
                .is_err()
            {
                return code::OK;
            }
            continue;
        }
        status.set_phase(Phase::Running);
        // SAFETY: the offset comes from the authenticated parent, which runs this same
        // executable (checked before `Ready`) and computed it with `task_offset`, which
        // refuses code outside this image.
        let trampoline = unsafe { trampoline_at(task.offset) };
        let mut results = ResultWriter::new(&conn, task.seq);
        // The chunk's buffers, by the indices its items were encoded with.
        crate::buffer::providing(chunk_buffers, || {
            trampoline(task.items, &task.lengths, &mut results, &status);
        });
        // Past the last item: a death from here on is not the fault of any item.
        status.set_current_run(task.lengths.len());
        if results.finish().is_err() {
            return code::OK;
        }
        status.set_phase(Phase::Done);
        if crate::engine::abandoned_a_thread() {
            // A timed-out section's thread is still running in this process: retire, so that it
            // cannot disturb later items. The pool starts a fresh worker.
            return code::OK;
        }
    }
}

/// The worker's connection as a byte stream that keeps the descriptors arriving with the bytes.
struct FdReader<'a> {
    conn: &'a Conn,
    fds: Vec<std::os::fd::OwnedFd>,
}

impl std::io::Read for FdReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // SAFETY: the socket lives as long as `conn`.
        let socket = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.conn.raw_fd()) };
        crate::sys::recv_some_with_fds(socket, buf, &mut self.fds)
    }
}

/// Collects a chunk's results and sends them in `Results` frames of at most [`FLUSH_BYTES`]
/// (and never over the frame limit): a result too large for any frame becomes that item's
/// [`TaskError::TooLarge`].
#[derive(Debug)]
pub(crate) struct ResultWriter<'a> {
    conn: &'a Conn,
    seq: u64,
    frame: FrameBuf,
    /// The position in the chunk of the first result in `frame`.
    first: u32,
    count: u32,
    /// Set once a send failed: the connection is gone, later results go nowhere.
    failed: Option<IpcError>,
}

impl<'a> ResultWriter<'a> {
    pub(crate) fn new(conn: &'a Conn, seq: u64) -> ResultWriter<'a> {
        ResultWriter {
            conn,
            seq,
            frame: ResultsHead::start_frame(),
            first: 0,
            count: 0,
            failed: None,
        }
    }

    /// Appends one item's outcome. An output that cannot be encoded (its `Serialize` fails or
    /// panics) becomes [`TaskError::Encode`]; one too large for a frame, [`TaskError::TooLarge`].
    pub(crate) fn push<O: Serialize>(&mut self, outcome: &Result<O, TaskError>) {
        let limit = self.conn.limit();
        let mark = self.frame.buf().len();
        let encoded = panic::catch_unwind(AssertUnwindSafe(|| {
            crate::wire::codec::encode_into(self.frame.buf(), outcome)
        }))
        .unwrap_or_else(|payload| {
            Err(format!(
                "the value's Serialize implementation panicked: {}",
                crate::engine::panic_message(&*payload)
            ))
        });
        let len = self.frame.buf().len() - mark;
        let fallback = match encoded {
            Err(message) => Some(TaskError::Encode(message)),
            Ok(()) if RESULTS_HEAD + len > limit as usize => Some(TaskError::TooLarge {
                what: Payload::Output,
                len: len as u64,
                limit: u64::from(limit),
            }),
            Ok(()) => None,
        };
        if let Some(error) = fallback {
            self.frame.buf().truncate(mark);
            crate::wire::codec::encode_into(self.frame.buf(), &Err::<O, TaskError>(error))
                .expect("a TaskError always encodes");
        }
        // Too much for this frame with the new result: send the earlier ones first.
        let payload = self.frame.payload_len();
        if self.count > 0 && payload > FLUSH_BYTES.min(limit as usize) {
            let tail = self.frame.buf().split_off(mark);
            self.flush();
            self.frame.buf().extend_from_slice(&tail);
        }
        self.count += 1;
        if self.frame.payload_len() >= FLUSH_BYTES {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.count == 0 {
            return;
        }
        let mut frame = std::mem::replace(&mut self.frame, ResultsHead::start_frame());
        ResultsHead {
            seq: self.seq,
            first: self.first,
            count: self.count,
        }
        .write(&mut frame);
        self.first += self.count;
        self.count = 0;
        if self.failed.is_none() {
            let sent = frame
                .finish(self.conn.limit())
                .and_then(|bytes| self.conn.send_frames(&bytes));
            self.failed = sent.err();
        }
    }

    /// Sends what is left. `Err` if any send failed (the parent is gone).
    pub(crate) fn finish(mut self) -> Result<(), IpcError> {
        self.flush();
        match self.failed {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}
