//! The worker side of a pool: a child that runs tasks until its parent hangs up.

use std::time::Duration;

use linkme::distributed_slice;
use serde::{Deserialize, Serialize};

use super::task::{executable_identity, trampoline_at};
use crate::child::{ChildSession, exit_code, setup_failed};
use crate::error::ProcessError;
use crate::registry::{PROCESSES, ProcessEntry};
use crate::shm::Phase;
use crate::wire::frame::{MAX_FRAME, read_frame};
use crate::wire::{Frame, Kind, decode};

/// The registered name of the pool worker entry.
pub(crate) const ENTRY_NAME: &str = "skprocess::pool-worker";

#[distributed_slice(PROCESSES)]
static WORKER_ENTRY: ProcessEntry = ProcessEntry::with_entry(ENTRY_NAME, worker_entry);

/// The worker's start message.
#[derive(Serialize, Deserialize)]
pub(crate) struct WorkerStart {
    /// The parent's executable identity; the worker refuses to run if its own differs.
    pub(crate) identity: Vec<u8>,
}

/// A task frame: `chunk id u64 | trampoline offset i64 | count u32 | count × length u32 |
/// items`, all little endian.
pub(crate) struct TaskFrame<'a> {
    pub(crate) chunk: u64,
    pub(crate) offset: i64,
    pub(crate) lengths: Vec<u32>,
    pub(crate) items: &'a [u8],
}

impl<'a> TaskFrame<'a> {
    pub(crate) fn encode(chunk: u64, offset: i64, lengths: &[u32], items: &[u8]) -> Vec<u8> {
        let mut payload = Vec::with_capacity(20 + 4 * lengths.len() + items.len());
        payload.extend_from_slice(&chunk.to_le_bytes());
        payload.extend_from_slice(&offset.to_le_bytes());
        payload.extend_from_slice(&(lengths.len() as u32).to_le_bytes());
        for len in lengths {
            payload.extend_from_slice(&len.to_le_bytes());
        }
        payload.extend_from_slice(items);
        payload
    }

    pub(crate) fn decode(payload: &'a [u8]) -> Option<TaskFrame<'a>> {
        let chunk = u64::from_le_bytes(payload.get(0..8)?.try_into().ok()?);
        let offset = i64::from_le_bytes(payload.get(8..16)?.try_into().ok()?);
        let count = u32::from_le_bytes(payload.get(16..20)?.try_into().ok()?) as usize;
        let lengths_end = 20usize.checked_add(count.checked_mul(4)?)?;
        let lengths = payload
            .get(20..lengths_end)?
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect::<Vec<_>>();
        let items = payload.get(lengths_end..)?;
        let total: u64 = lengths.iter().map(|&l| u64::from(l)).sum();
        (total == items.len() as u64).then_some(TaskFrame {
            chunk,
            offset,
            lengths,
            items,
        })
    }
}

fn worker_entry(session: ChildSession) -> i32 {
    let ChildSession { conn, status, body } = session;
    let start: WorkerStart = match decode(&body) {
        Ok(start) => start,
        Err(message) => {
            return setup_failed(
                &conn,
                ProcessError::ChildSetup {
                    message: format!("malformed pool worker start message: {message}"),
                },
            );
        }
    };
    if start.identity != executable_identity() {
        return setup_failed(
            &conn,
            ProcessError::ChildSetup {
                message: "the worker runs a different executable than the pool (their build \
                          ids differ); refusing to run tasks"
                    .into(),
            },
        );
    }
    if conn.send(Kind::Ready, &[]).is_err() {
        return exit_code::OK;
    }
    // Ctrl+C is for the parent: it dies, and its workers follow (below). SIGTERM, from the
    // kernel when the parent dies or from anyone else, ends the worker at once.
    // SAFETY: installing SIG_IGN is always sound.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    let watch = std::sync::Arc::clone(&status);
    let _ = std::thread::Builder::new()
        .name("skprocess-worker-watch".into())
        .spawn(move || {
            while !watch.stop_requested() {
                std::thread::sleep(Duration::from_millis(50));
            }
            crate::sys::hard_exit(exit_code::PARENT_GONE);
        });

    let mut reader = conn.reader();
    let mut out = Vec::new();
    loop {
        let payload = match read_frame(&mut reader, MAX_FRAME) {
            Ok(Some(Frame {
                kind: Kind::Task,
                payload,
            })) => payload,
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return exit_code::OK, // the pool closed (or is gone)
        };
        let Some(task) = TaskFrame::decode(&payload) else {
            return setup_failed(
                &conn,
                ProcessError::ChildSetup {
                    message: "malformed task frame".into(),
                },
            );
        };
        status.set_current_run(0);
        status.set_phase(Phase::Running);
        status.set_task(task.chunk);
        out.clear();
        out.extend_from_slice(&task.chunk.to_le_bytes());
        if status.skip_task() == task.chunk {
            // The parent took this chunk back before it started (its call was cancelled, or an
            // idle worker took it over): say so, and run nothing.
            status.set_phase(Phase::Done);
            if conn.send(Kind::TaskSkipped, &out).is_err() {
                return exit_code::OK;
            }
            continue;
        }
        // SAFETY: the offset comes from the authenticated parent, which runs this same
        // executable (checked above), and was computed by `task_offset`.
        let trampoline = unsafe { trampoline_at(task.offset) };
        trampoline(task.items, &task.lengths, &mut out, &status);
        // Past the last item: a death from here on is not the fault of any item.
        status.set_current_run(task.lengths.len());
        if conn.send(Kind::TaskDone, &out).is_err() {
            return exit_code::OK;
        }
        status.set_phase(Phase::Done);
        if crate::engine::abandoned_a_thread() {
            // A timed-out section's thread is still running in this process: retire, so that it
            // cannot disturb later items. The pool starts a fresh worker.
            return exit_code::OK;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_frames_round_trip_and_reject_bad_lengths() {
        let bytes = TaskFrame::encode(7, -42, &[2, 3], b"abcde");
        let frame = TaskFrame::decode(&bytes).unwrap();
        assert_eq!((frame.chunk, frame.offset), (7, -42));
        assert_eq!(frame.lengths, vec![2, 3]);
        assert_eq!(frame.items, b"abcde");
        assert!(TaskFrame::decode(&bytes[..bytes.len() - 1]).is_none());
        assert!(TaskFrame::decode(&bytes[..10]).is_none());
        let mut huge = bytes.clone();
        huge[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(TaskFrame::decode(&huge).is_none());
    }
}
