//! The worker side of a pool: a child that runs tasks until its parent hangs up.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use linkme::distributed_slice;
use serde::Serialize;

use super::error::{Payload, TaskError};
use super::task::{init_trampoline_at, trampoline_at};
use crate::error::{IpcError, ProcessError};
use crate::exit::code;
use crate::registry::{ChildSession, PROCESSES, ProcessEntry};
use crate::shm::Phase;
use crate::wire::protocol::{
    Kind, RESULTS_HEAD, ResultsHead, TaskFrame, WorkerStart, skipped_payload,
};
use crate::wire::{Conn, FrameBuf, decode};

/// The registered name of the pool worker entry.
pub(crate) const ENTRY_NAME: &str = "skprocess::pool-worker";

/// A worker sends the results it has once they hold this many bytes (or when its chunk ends),
/// so that a chunk's results never need a frame larger than this, and a slow chunk's first
/// results reach the caller early.
const FLUSH_BYTES: usize = 1 << 20;

/// The largest frame buffer a worker keeps between chunks; a larger one (a chunk of one huge
/// item) is let go once its chunk is done rather than held for the worker's life.
const KEEP_PAYLOAD: usize = 16 << 20;

#[distributed_slice(PROCESSES)]
static WORKER_ENTRY: ProcessEntry = ProcessEntry::with_entry(ENTRY_NAME, worker_entry);

fn worker_entry(session: ChildSession) -> i32 {
    let start = match decode::<WorkerStart>(&session.body) {
        Ok(start) => start,
        Err(message) => {
            return session.setup_failed(ProcessError::ChildSetup {
                message: format!("malformed pool worker start message: {message}"),
            });
        }
    };
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

    // The pool's initializer builds this worker's state before its first task; the parent
    // sends no task before it hears how that went.
    if let Some(init) = &start.init {
        // SAFETY: the offset comes from the authenticated parent, which runs this same
        // executable and computed it with `init_code`, which refuses code outside this image.
        let trampoline = unsafe { init_trampoline_at(init.offset) };
        match trampoline(init.data) {
            Ok(state) => STATE.with(|slot| *slot.borrow_mut() = Some(state)),
            Err(failure) => {
                if let Ok(bytes) = crate::wire::encode(&(&init.name, &failure)) {
                    let _ = conn.send(Kind::InitFailed, &bytes);
                }
                return code::OK;
            }
        }
    }
    let code = (|| {
        if conn.send(Kind::Initialized, &[]).is_err() {
            return code::OK;
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
        // One buffer for every frame: a large chunk's memory is reused by the next one.
        let mut buffer = Vec::new();
        loop {
            if buffer.len() > KEEP_PAYLOAD {
                buffer = Vec::new();
            }
            let read =
                crate::wire::frame::read_frame_reusing(&mut frames, conn.limit(), &mut buffer);
            let payload = match read {
                Ok(Some((Kind::Task, len))) => &buffer[..len],
                Ok(Some((Kind::BufferFd, _))) => {
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
            let task = match TaskFrame::decode(payload) {
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
            let data = task.data;
            let mut results = ResultWriter::new(&conn, task.seq);
            // The chunk's buffers, by the indices its items were encoded with.
            crate::buffer::providing(chunk_buffers, || {
                trampoline(task.items, &task.lengths, data, &mut results, &status);
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
            if let Some(limit) = start.max_memory
                && crate::sys::resident_bytes().is_some_and(|rss| rss > limit)
            {
                // Over its memory limit: retire between chunks. What it holds and has not started
                // goes back to the pool's queue, and the pool starts a fresh worker.
                return code::OK;
            }
        }
    })();
    // The state goes first, while this thread's other thread-locals still exist: a driver's
    // client in it may need them to drop (postgres's sync client enters its tokio runtime).
    drop(STATE.with(|slot| slot.borrow_mut().take()));
    code
}

thread_local! {
    /// The worker's state, built by the pool's initializer (tasks run on this thread).
    static STATE: std::cell::RefCell<Option<Box<dyn std::any::Any>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` with the worker's state. A task that takes a state of another type than the
/// initializer built, or runs in a worker without one (through a nested call), fails.
pub(crate) fn with_state<S: 'static, R>(f: impl FnOnce(&mut S) -> R) -> Result<R, TaskError> {
    STATE.with(|slot| {
        let Ok(mut slot) = slot.try_borrow_mut() else {
            return Err(TaskError::Failed(crate::error::Failure::msg(
                "the worker's state is in use by the task already",
            )));
        };
        match slot.as_mut().and_then(|state| state.downcast_mut::<S>()) {
            Some(state) => Ok(f(state)),
            None => Err(TaskError::Failed(crate::error::Failure::msg(format!(
                "this worker has no state of type `{}`: build the pool with an initializer \
                 that returns it (PoolBuilder::initializer)",
                std::any::type_name::<S>()
            )))),
        }
    })
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
    /// When the items of the results in `frame` began to run.
    since: std::time::Instant,
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
            since: std::time::Instant::now(),
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
        let now = std::time::Instant::now();
        let nanos = now.duration_since(self.since).as_nanos();
        self.since = now;
        ResultsHead {
            seq: self.seq,
            first: self.first,
            count: self.count,
            nanos: u64::try_from(nanos).unwrap_or(u64::MAX),
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
