//! Logs from children: `log` records and `tracing` events emitted in a child process or a pool
//! worker reach the parent's logger or subscriber (features `log` and `tracing`).
//!
//! ```text
//! parent, at spawn       LogLevels { log: log::max_level(), tracing: LevelFilter::current() }
//!                        travel in the Start message
//! child, before hooks    a forwarding logger (log) and subscriber (tracing) become the
//!                        child's globals, with those maximum levels; a facade the parent had
//!                        switched off gets no forwarder
//! child, any thread      each enabled record is formatted, cut to the budgets below, encoded
//!                        and sent at once as one Log frame on the child's socket
//! parent, reader thread  checks the frame (size, shape, level), then re-emits the record with
//!                        the facade it came from, adding the child's pid and process type
//! ```
//!
//! Records travel on the socket the child already shares with its parent, in the order each
//! thread emitted them, and a record is on its way before the `log!` call returns. So what a
//! child logged before it sent its result is read (and re-emitted) before that result. The
//! parent's reader handles one frame at a time and keeps nothing: memory in the parent is
//! bounded by one frame whatever the child does. A child that logs faster than the parent's
//! logger writes fills the socket's buffer and then blocks in its `log!` call until the parent
//! catches up; that back-pressure is deliberate (the alternative is an unbounded queue or
//! dropped records).

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::IpcError;
use crate::wire::{Conn, Kind};

#[cfg(feature = "log")]
mod log_records;
#[cfg(feature = "tracing")]
mod tracing_events;

/// The largest `Log` payload a parent accepts. A child cuts its records to the budgets below,
/// which keep every record under it; a larger frame is a broken child.
pub(crate) const LOG_FRAME_MAX: usize = 64 * 1024;

/// Budgets of one record, in bytes (longer text is cut at a character boundary and ends in
/// `…`). Together they stay under [`LOG_FRAME_MAX`] with room for the encoding's lengths.
const MAX_MESSAGE: usize = 16 * 1024;
const MAX_TARGET: usize = 256;
const MAX_PATH: usize = 1024;
const MAX_FIELDS: usize = 32;
const MAX_KEY: usize = 64;
const MAX_VALUE: usize = 1024;

const _: () = assert!(
    MAX_MESSAGE + MAX_TARGET + 2 * MAX_PATH + MAX_FIELDS * (MAX_KEY + MAX_VALUE + 16) + 512
        <= LOG_FRAME_MAX
);
const _: () = assert!(LOG_FRAME_MAX <= crate::wire::frame::MIN_FRAME_LIMIT as usize);

/// The parent's maximum levels at spawn time, one per facade: 0 is off, then 1 (error) to 5
/// (trace), the numbering of `log::LevelFilter`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LogLevels {
    pub(crate) log: u8,
    pub(crate) tracing: u8,
}

impl LogLevels {
    /// This process's levels now: what its children should forward. Off for a facade whose
    /// feature is not enabled.
    pub(crate) fn now() -> LogLevels {
        LogLevels {
            #[cfg(feature = "log")]
            log: log_records::level_now(),
            #[cfg(not(feature = "log"))]
            log: 0,
            #[cfg(feature = "tracing")]
            tracing: tracing_events::level_now(),
            #[cfg(not(feature = "tracing"))]
            tracing: 0,
        }
    }
}

/// Which facade a record came from; the parent re-emits it with the same one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Facade {
    Log,
    Tracing,
}

/// A record as it crosses: the payload of a `Log` frame.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct LogRecord {
    pub(crate) facade: Facade,
    /// 1 (error) to 5 (trace).
    pub(crate) level: u8,
    pub(crate) target: String,
    pub(crate) message: String,
    pub(crate) module_path: Option<String>,
    pub(crate) file: Option<String>,
    pub(crate) line: Option<u32>,
    /// `log` key-values or `tracing` fields other than the message, formatted.
    pub(crate) fields: Vec<(String, String)>,
}

/// Installs the forwarders in a child, before its start hooks: one per enabled facade whose
/// level in the parent was not off. A facade that already has a global logger or subscriber in
/// this process keeps it.
pub(crate) fn install(conn: &Arc<Conn>, levels: LogLevels) {
    #[cfg(feature = "log")]
    log_records::install(conn, levels.log);
    #[cfg(feature = "tracing")]
    tracing_events::install(conn, levels.tracing);
    #[cfg(not(any(feature = "log", feature = "tracing")))]
    let _ = (conn, levels);
}

/// Sends one record to the parent. A parent that is gone is not an error here: the record has
/// nowhere to go, and the child finds out through its own paths.
#[cfg_attr(not(any(feature = "log", feature = "tracing")), allow(dead_code))]
fn send(conn: &Conn, record: &LogRecord) {
    if let Ok(bytes) = crate::wire::encode(record) {
        debug_assert!(bytes.len() <= LOG_FRAME_MAX);
        let _ = conn.send(Kind::Log, &bytes);
    }
}

/// Where a record came from, as the parent knows it (never taken from the child's word).
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(any(feature = "log", feature = "tracing")), allow(dead_code))]
pub(crate) struct Source<'a> {
    /// The child's process id.
    pub(crate) pid: u32,
    /// Its registered process type name, or `"pool worker"`.
    pub(crate) process: &'a str,
}

/// What pool workers are called in the `process` field.
pub(crate) const POOL_WORKER: &str = "pool worker";

/// Handles a `Log` frame from a child: re-emits it in this process. `Err` for a frame that is
/// too large or does not hold a record (the caller treats the child as broken).
pub(crate) fn receive(payload: &[u8], source: Source<'_>) -> Result<(), IpcError> {
    let record = decode_record(payload)?;
    match record.facade {
        #[cfg(feature = "log")]
        Facade::Log => log_records::emit(&record, source),
        #[cfg(feature = "tracing")]
        Facade::Tracing => tracing_events::emit(&record, source),
        // The child runs this same executable, so it forwards nothing this build cannot
        // re-emit; a record of a facade that is not built in has nowhere to go.
        #[allow(unreachable_patterns)]
        _ => {
            let _ = source;
        }
    }
    Ok(())
}

/// Checks and decodes a `Log` payload.
pub(crate) fn decode_record(payload: &[u8]) -> Result<LogRecord, IpcError> {
    if payload.len() > LOG_FRAME_MAX {
        return Err(IpcError::Malformed(format!(
            "a log record of {} bytes (at most {LOG_FRAME_MAX})",
            payload.len()
        )));
    }
    let record: LogRecord = crate::wire::decode(payload)
        .map_err(|message| IpcError::Malformed(format!("a log record: {message}")))?;
    if !(1..=5).contains(&record.level) {
        return Err(IpcError::Malformed(format!(
            "a log record with level {}",
            record.level
        )));
    }
    if record.fields.len() > MAX_FIELDS {
        return Err(IpcError::Malformed(format!(
            "a log record with {} fields (at most {MAX_FIELDS})",
            record.fields.len()
        )));
    }
    Ok(record)
}

/// Text written through `fmt` up to a budget: what is past it is cut (at a character
/// boundary, marked with `…`), and formatting stops there instead of producing the rest.
#[cfg_attr(not(any(feature = "log", feature = "tracing")), allow(dead_code))]
struct Bounded {
    text: String,
    max: usize,
    cut: bool,
}

#[cfg_attr(not(any(feature = "log", feature = "tracing")), allow(dead_code))]
impl Bounded {
    fn format(max: usize, write: impl FnOnce(&mut Bounded) -> fmt::Result) -> String {
        let mut bounded = Bounded {
            text: String::new(),
            max,
            cut: false,
        };
        // An error only says that the budget ran out (or that a Display impl failed, which
        // leaves what it wrote so far).
        let _ = write(&mut bounded);
        bounded.text
    }
}

impl fmt::Write for Bounded {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.cut {
            return Err(fmt::Error);
        }
        let room = self.max - self.text.len();
        if s.len() <= room {
            self.text.push_str(s);
            return Ok(());
        }
        let end = floor_char_boundary(s, room);
        self.text.push_str(&s[..end]);
        self.text.push('…');
        self.cut = true;
        Err(fmt::Error)
    }
}

/// `s` cut to at most `max` bytes (plus the `…` that marks a cut).
#[cfg_attr(not(any(feature = "log", feature = "tracing")), allow(dead_code))]
fn clip(s: &str, max: usize) -> String {
    Bounded::format(max, |w| fmt::Write::write_str(w, s))
}

fn floor_char_boundary(s: &str, at: usize) -> usize {
    (0..=at.min(s.len()))
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(level: u8, fields: usize) -> LogRecord {
        LogRecord {
            facade: Facade::Log,
            level,
            target: "t".into(),
            message: "m".into(),
            module_path: None,
            file: Some("f.rs".into()),
            line: Some(3),
            fields: (0..fields).map(|i| (i.to_string(), "v".into())).collect(),
        }
    }

    #[test]
    fn records_round_trip_and_bad_ones_are_refused() {
        let bytes = crate::wire::encode(&record(3, 2)).unwrap();
        let back = decode_record(&bytes).unwrap();
        assert_eq!((back.level, back.fields.len()), (3, 2));
        for bad in [record(0, 0), record(6, 0), record(1, MAX_FIELDS + 1)] {
            let bytes = crate::wire::encode(&bad).unwrap();
            assert!(matches!(decode_record(&bytes), Err(IpcError::Malformed(_))));
        }
        assert!(decode_record(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_record(&vec![0; LOG_FRAME_MAX + 1]).is_err());
        // Garbage never panics.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..300 {
            let garbage: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let _ = decode_record(&garbage);
        }
    }

    #[test]
    fn text_is_cut_at_a_character_boundary() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("ééé", 3), "é…"); // é is two bytes
        let long = Bounded::format(4, |w| {
            for _ in 0..1000 {
                fmt::Write::write_str(w, "xy")?;
            }
            Ok(())
        });
        assert_eq!(long, "xyxy…");
    }

    #[test]
    fn the_largest_record_fits_its_frame() {
        let huge = "é".repeat(LOG_FRAME_MAX);
        let record = LogRecord {
            facade: Facade::Tracing,
            level: 5,
            target: clip(&huge, MAX_TARGET),
            message: clip(&huge, MAX_MESSAGE),
            module_path: Some(clip(&huge, MAX_PATH)),
            file: Some(clip(&huge, MAX_PATH)),
            line: Some(u32::MAX),
            fields: (0..MAX_FIELDS)
                .map(|_| (clip(&huge, MAX_KEY), clip(&huge, MAX_VALUE)))
                .collect(),
        };
        let bytes = crate::wire::encode(&record).unwrap();
        assert!(bytes.len() <= LOG_FRAME_MAX, "{}", bytes.len());
        assert!(decode_record(&bytes).is_ok());
    }
}
