//! The protocol between a parent and its children, in one place: the marker a child is started
//! with, the kinds of frame, and the layout of every message.
//!
//! ```text
//! child environment  SKPROCESS_CHILD = "2;<hub name>;<secret hex>;<token hex>;<parent pid>"
//!
//! handshake (see auth.rs)   Hello, Auth, Welcome          (frames of at most 256 bytes)
//! parent -> child           Status   (empty; carries the status page's memfd, SCM_RIGHTS)
//!                           Start    StartMessage { entry, identity, frame_limit, body,
//!                                                   log_levels }
//! child -> parent           Ready    (empty)  or  SetupFailed  SetupFailure
//! then, for a process:      Tell (both ways), Stop (parent -> child),
//!                           Result (timers, value) or Error (timers, ProcessError)
//! and for a pool worker:    Initialized (empty)  or  InitFailed (initializer name, Failure),
//!                           once its initializer ran (at once when it has none); then
//!                           Task      seq u64 | offset i64 | data i64 | count u32 | count × len u32
//!                                     | items
//!                           Results   seq u64 | first u32 | count u32 | nanos u64
//!                                     | count × Result<O, TaskError>
//!                           Skipped   seq u64
//! from either, any time     Log      LogRecord (at most LOG_FRAME_MAX bytes), child -> parent
//! after Ready:
//! ```
//!
//! `seq` numbers the chunks sent to one worker, 1, 2, 3, ... in the order it takes them; the
//! worker publishes the one it claims in its status page, and the parent takes a chunk back
//! by its `seq` (see [`StatusPage::revoke`](crate::shm::StatusPage::revoke)).
//!
//! Every child, standalone process or pool worker, starts the same way: it authenticates,
//! receives its status page and one `Start` message naming a registered entry, checks that it
//! runs the parent's executable, applies the frame limit, says `Ready` and runs the entry. Every
//! payload is checked as it is decoded: a wrong length, a count that does not match the bytes, a
//! value that does not decode is an [`IpcError`] or a per-item error, never a panic.

use serde::{Deserialize, Serialize};

use super::auth::{Secret, TOKEN, hex, unhex};
use super::frame::{FrameBuf, HEADER, check_len};
use crate::config::ProcessConfig;
use crate::error::IpcError;

/// The environment variable that marks a child process.
pub(crate) const MARKER_ENV: &str = "SKPROCESS_CHILD";

/// The kind byte of a frame.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    // handshake
    Hello = 1,
    Auth = 2,
    Welcome = 3,
    /// Carries the status page's descriptor (SCM_RIGHTS); empty payload.
    Status = 4,
    // start, parent -> child
    Start = 10,
    // both ways
    Tell = 11,
    // parent -> process child
    Stop = 12,
    // child -> parent
    Ready = 13,
    Result = 20,
    Error = 21,
    SetupFailed = 22,
    /// A log record or tracing event from the child (see [`crate::logs`]).
    Log = 23,
    // pool, parent -> worker
    Task = 30,
    // pool, worker -> parent
    Results = 31,
    Skipped = 32,
    /// The worker's initializer ran (or it has none): it takes tasks from now on.
    Initialized = 33,
    /// The worker's initializer failed: its name and the failure.
    InitFailed = 34,
    // share, coordinator -> client
    /// Carries the Share's shared-memory region (SCM_RIGHTS); empty payload.
    ShareRegion = 40,
    // share, client -> coordinator
    ShareCall = 41,
    // share, coordinator -> client
    ShareReply = 42,
    // a shared-memory channel's set-up, both ways
    /// Carries a ring's memfd or a doorbell eventfd (SCM_RIGHTS); empty payload.
    RingSetup = 60,
    /// Carries a buffer's memfd (SCM_RIGHTS) for the message that follows; empty payload.
    BufferFd = 61,
}

impl Kind {
    pub(crate) fn from_u8(byte: u8) -> Option<Kind> {
        Some(match byte {
            1 => Kind::Hello,
            2 => Kind::Auth,
            3 => Kind::Welcome,
            4 => Kind::Status,
            10 => Kind::Start,
            11 => Kind::Tell,
            12 => Kind::Stop,
            13 => Kind::Ready,
            20 => Kind::Result,
            21 => Kind::Error,
            22 => Kind::SetupFailed,
            23 => Kind::Log,
            30 => Kind::Task,
            31 => Kind::Results,
            32 => Kind::Skipped,
            33 => Kind::Initialized,
            34 => Kind::InitFailed,
            40 => Kind::ShareRegion,
            41 => Kind::ShareCall,
            42 => Kind::ShareReply,
            60 => Kind::RingSetup,
            61 => Kind::BufferFd,
            _ => return None,
        })
    }
}

/// What the marker variable carries: where the parent listens, the session secret, which child
/// this is, and the parent's pid.
pub(crate) struct Marker {
    pub(crate) hub: String,
    pub(crate) secret: Secret,
    pub(crate) token: [u8; TOKEN],
    pub(crate) parent: libc::pid_t,
}

impl std::fmt::Debug for Marker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Marker")
            .field("hub", &self.hub)
            .field("parent", &self.parent)
            .finish_non_exhaustive()
    }
}

impl Marker {
    const VERSION: &'static str = "2";

    pub(crate) fn parse(text: &str) -> Option<Marker> {
        let mut parts = text.split(';');
        if parts.next()? != Self::VERSION {
            return None;
        }
        let marker = Marker {
            hub: parts.next()?.to_owned(),
            secret: Secret::from_hex(parts.next()?)?,
            token: unhex(parts.next()?)?,
            parent: parts.next()?.parse().ok()?,
        };
        // A pid of 0 or below names no single process (`kill` would reach a group).
        (marker.parent > 0 && parts.next().is_none()).then_some(marker)
    }

    pub(crate) fn to_value(&self) -> String {
        format!(
            "{};{};{};{};{}",
            Self::VERSION,
            self.hub,
            self.secret.to_hex(),
            hex(&self.token),
            self.parent
        )
    }
}

/// The `Start` message: which registered entry to run, the parent's executable identity (the
/// child refuses to run if its own differs), the frame limit for the rest of the session, the
/// entry's own message, and the parent's log levels at spawn time (what the child forwards).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StartMessage {
    pub(crate) entry: String,
    #[serde(with = "super::codec::bytes")]
    pub(crate) identity: Vec<u8>,
    pub(crate) frame_limit: u32,
    #[serde(with = "super::codec::bytes")]
    pub(crate) body: Vec<u8>,
    pub(crate) log_levels: crate::logs::LogLevels,
}

/// A process entry's start body: its configuration and its encoded state.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ProcessStart {
    pub(crate) config: ProcessConfig,
    #[serde(with = "super::codec::bytes")]
    pub(crate) state: Vec<u8>,
    /// How many buffer descriptors the state holds: they follow the channel's set-up, one
    /// `BufferFd` frame each.
    pub(crate) descriptors: u32,
}

/// A pool worker's start body.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct WorkerStart {
    /// The pool's initializer, if it has one.
    pub(crate) init: Option<WorkerInit>,
    /// The worker retires after a chunk that leaves its resident memory above this many bytes.
    pub(crate) max_memory: Option<u64>,
}

/// Where a pool's initializer is (offsets from the anchor, as for a task), and its name.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WorkerInit {
    pub(crate) offset: i64,
    pub(crate) data: i64,
    pub(crate) name: String,
}

/// The fixed part of a `Task` frame.
const TASK_HEAD: usize = 8 + 8 + 8 + 4;

/// The payload bytes a `Task` frame of `count` items with `items` bytes of inputs takes.
pub(crate) fn task_payload_len(count: usize, items: usize) -> usize {
    TASK_HEAD + 4 * count + items
}

/// A `Task` frame: a chunk of items for a pool worker.
#[derive(Debug)]
pub(crate) struct TaskFrame<'a> {
    pub(crate) seq: u64,
    /// The trampoline's offset from the anchor.
    pub(crate) offset: i64,
    /// The task's own code offset when the task is a function pointer (0 for a `fn` item or a
    /// closure, whose type alone says which code runs).
    pub(crate) data: i64,
    pub(crate) lengths: Vec<u32>,
    pub(crate) items: &'a [u8],
}

impl<'a> TaskFrame<'a> {
    /// The frame header and the fixed part of a `Task` frame whose `items_len` bytes of items
    /// follow (sent after it, without copying them). `FrameTooLarge` if the whole frame exceeds
    /// `limit`.
    pub(crate) fn head(
        seq: u64,
        offset: i64,
        data: i64,
        lengths: &[u32],
        items_len: usize,
        limit: u32,
    ) -> Result<Vec<u8>, IpcError> {
        let payload = check_len(task_payload_len(lengths.len(), items_len), limit)?;
        let count = u32::try_from(lengths.len()).map_err(|_| IpcError::FrameTooLarge {
            len: u64::from(payload),
            max: u64::from(limit),
        })?;
        let mut head = Vec::with_capacity(HEADER + TASK_HEAD + 4 * lengths.len());
        head.extend_from_slice(&payload.to_le_bytes());
        head.push(Kind::Task as u8);
        head.extend_from_slice(&seq.to_le_bytes());
        head.extend_from_slice(&offset.to_le_bytes());
        head.extend_from_slice(&data.to_le_bytes());
        head.extend_from_slice(&count.to_le_bytes());
        for len in lengths {
            head.extend_from_slice(&len.to_le_bytes());
        }
        Ok(head)
    }

    pub(crate) fn decode(payload: &'a [u8]) -> Result<TaskFrame<'a>, IpcError> {
        let bad = |what: &str| IpcError::Malformed(format!("task frame: {what}"));
        let seq = read_u64(payload, 0).ok_or_else(|| bad("too short"))?;
        let offset = read_u64(payload, 8).ok_or_else(|| bad("too short"))? as i64;
        let data = read_u64(payload, 16).ok_or_else(|| bad("too short"))? as i64;
        let count = read_u32(payload, 24).ok_or_else(|| bad("too short"))?;
        let count = usize::try_from(count).map_err(|_| bad("count"))?;
        let lengths_end = count
            .checked_mul(4)
            .and_then(|n| n.checked_add(TASK_HEAD))
            .filter(|end| *end <= payload.len())
            .ok_or_else(|| bad("the item count exceeds the frame"))?;
        let lengths: Vec<u32> = payload[TASK_HEAD..lengths_end]
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect();
        let items = &payload[lengths_end..];
        let total: u64 = lengths.iter().map(|&l| u64::from(l)).sum();
        if total != items.len() as u64 {
            return Err(bad("the item lengths do not add up to the bytes"));
        }
        Ok(TaskFrame {
            seq,
            offset,
            data,
            lengths,
            items,
        })
    }
}

/// The fixed part of a `Results` frame.
pub(crate) const RESULTS_HEAD: usize = 8 + 4 + 4 + 8;

/// The head of a `Results` frame: `count` results of the chunk numbered `seq`, from its item
/// `first`, which took the worker `nanos` nanoseconds to compute (the pool sizes the chunks of
/// `imap` by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResultsHead {
    pub(crate) seq: u64,
    pub(crate) first: u32,
    pub(crate) count: u32,
    pub(crate) nanos: u64,
}

impl ResultsHead {
    /// Starts a `Results` frame with room for the head; [`ResultsHead::write`] fills it in.
    pub(crate) fn start_frame() -> FrameBuf {
        let mut frame = FrameBuf::with_capacity(Kind::Results, 64 * 1024);
        frame.extend(&[0; RESULTS_HEAD]);
        frame
    }

    /// Writes the head into a frame started with [`ResultsHead::start_frame`].
    pub(crate) fn write(&self, frame: &mut FrameBuf) {
        let at = HEADER;
        let buf = frame.buf();
        buf[at..at + 8].copy_from_slice(&self.seq.to_le_bytes());
        buf[at + 8..at + 12].copy_from_slice(&self.first.to_le_bytes());
        buf[at + 12..at + 16].copy_from_slice(&self.count.to_le_bytes());
        buf[at + 16..at + 24].copy_from_slice(&self.nanos.to_le_bytes());
    }

    /// Reads the head of a `Results` payload; the encoded results follow it.
    pub(crate) fn decode(payload: &[u8]) -> Result<ResultsHead, IpcError> {
        let bad = || IpcError::Malformed("results frame: too short".into());
        Ok(ResultsHead {
            seq: read_u64(payload, 0).ok_or_else(bad)?,
            first: read_u32(payload, 8).ok_or_else(bad)?,
            count: read_u32(payload, 12).ok_or_else(bad)?,
            nanos: read_u64(payload, 16).ok_or_else(bad)?,
        })
    }
}

/// A `Skipped` payload: the chunk a worker skipped because the parent revoked it.
pub(crate) fn skipped_payload(seq: u64) -> [u8; 8] {
    seq.to_le_bytes()
}

/// Reads a `Skipped` payload.
pub(crate) fn decode_skipped(payload: &[u8]) -> Result<u64, IpcError> {
    if payload.len() != 8 {
        return Err(IpcError::Malformed("skipped frame: wrong length".into()));
    }
    Ok(read_u64(payload, 0).expect("8 bytes"))
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_reject_garbage() {
        let marker = Marker {
            hub: "skprocess.1.abc".into(),
            secret: Secret::random(),
            token: [7; TOKEN],
            parent: 42,
        };
        let back = Marker::parse(&marker.to_value()).unwrap();
        assert_eq!(
            (back.hub.as_str(), back.token, back.parent),
            ("skprocess.1.abc", [7; TOKEN], 42)
        );
        assert_eq!(back.secret.0, marker.secret.0);
        for bad in [
            "",
            "1;a;b;c;d",
            "2;hub",
            &format!("{};extra", marker.to_value()),
            &marker.to_value().replace(";42", ";0"),
            &marker.to_value().replace(";42", ";-1"),
        ] {
            assert!(Marker::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn task_frames_round_trip_and_reject_bad_lengths() {
        let mut frame = TaskFrame::head(7, -42, 99, &[2, 3], 5, u32::MAX).unwrap();
        frame.extend_from_slice(b"abcde");
        let read = super::super::frame::read_frame(&mut &frame[..], u32::MAX)
            .unwrap()
            .unwrap();
        assert_eq!(read.kind, Kind::Task);
        let payload = &read.payload[..];
        let task = TaskFrame::decode(payload).unwrap();
        assert_eq!((task.seq, task.offset, task.data), (7, -42, 99));
        assert_eq!(task.lengths, vec![2, 3]);
        assert_eq!(task.items, b"abcde");
        assert!(TaskFrame::decode(&payload[..payload.len() - 1]).is_err());
        assert!(TaskFrame::decode(&payload[..10]).is_err());
        let mut huge = payload.to_vec();
        huge[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(TaskFrame::decode(&huge).is_err());
    }

    #[test]
    fn results_heads_round_trip() {
        let mut frame = ResultsHead::start_frame();
        frame.extend(b"xyz");
        let head = ResultsHead {
            seq: 9,
            first: 2,
            count: 1,
            nanos: 1234,
        };
        head.write(&mut frame);
        let bytes = frame.finish(u32::MAX).unwrap();
        let payload = &bytes[HEADER..];
        assert_eq!(ResultsHead::decode(payload).unwrap(), head);
        assert_eq!(&payload[RESULTS_HEAD..], b"xyz");
        assert!(ResultsHead::decode(&payload[..5]).is_err());
    }

    #[test]
    fn task_frames_over_the_limit_are_refused() {
        assert!(matches!(
            TaskFrame::head(1, 0, 0, &[10], 70_000, 65_536),
            Err(IpcError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn every_kind_byte_maps_back() {
        for byte in 0..=255u8 {
            if let Some(kind) = Kind::from_u8(byte) {
                assert_eq!(kind as u8, byte);
            }
        }
        assert!(decode_skipped(&[1, 2]).is_err());
        assert_eq!(decode_skipped(&skipped_payload(5)).unwrap(), 5);
    }
}
