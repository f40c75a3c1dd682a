//! Framing: `u32 length (little endian) | u8 kind | payload`, where `length` counts the payload
//! only. Which kinds exist and what their payloads hold is the [protocol](super::protocol)'s
//! business; this file only cuts the byte stream into frames and enforces the frame limit.
//!
//! A reader never trusts a length prefix: it is checked against the limit before anything is
//! allocated, and the payload buffer grows with the bytes that actually arrive, so a peer that
//! announces a gigabyte and sends nothing costs nothing.

use std::io::{self, Read};
use std::time::Instant;

use super::protocol::Kind;
use crate::error::IpcError;

/// The size of a frame header.
pub(crate) const HEADER: usize = 5;

/// The largest frame accepted before the peer has authenticated.
pub(crate) const MAX_HANDSHAKE_FRAME: u32 = 256;

/// The frame limit when none is configured (1 GiB).
pub(crate) const DEFAULT_FRAME_LIMIT: u32 = 1 << 30;

/// The smallest frame limit that can be configured: every control message, and a result with
/// its timers' default windows, fits in it.
pub(crate) const MIN_FRAME_LIMIT: u32 = 64 * 1024;

/// How much of a payload is allocated before its bytes arrive.
const INITIAL_PAYLOAD: usize = 64 * 1024;

/// One frame as read from the wire.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) kind: Kind,
    pub(crate) payload: Vec<u8>,
}

/// A frame being built in place: the header is reserved up front and filled in by
/// [`finish`](FrameBuf::finish), so a payload is never copied to prepend it.
#[derive(Debug)]
pub(crate) struct FrameBuf {
    bytes: Vec<u8>,
}

impl FrameBuf {
    /// An empty frame of kind `kind` with room for `capacity` payload bytes.
    pub(crate) fn with_capacity(kind: Kind, capacity: usize) -> FrameBuf {
        let mut bytes = Vec::with_capacity(HEADER + capacity);
        bytes.extend_from_slice(&[0, 0, 0, 0, kind as u8]);
        FrameBuf { bytes }
    }

    /// An empty frame of kind `kind`.
    pub(crate) fn new(kind: Kind) -> FrameBuf {
        FrameBuf::with_capacity(kind, 0)
    }

    /// The payload so far, for appending to. Never touch the first [`HEADER`] bytes.
    pub(crate) fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// The payload's length so far.
    pub(crate) fn payload_len(&self) -> usize {
        self.bytes.len() - HEADER
    }

    /// Appends payload bytes.
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    /// Fills in the length and returns the frame's bytes, or `FrameTooLarge` if the payload is
    /// over `limit`.
    pub(crate) fn finish(mut self, limit: u32) -> Result<Vec<u8>, IpcError> {
        let len = check_len(self.payload_len(), limit)?;
        self.bytes[..4].copy_from_slice(&len.to_le_bytes());
        Ok(self.bytes)
    }
}

/// Checks a payload length against the frame limit.
pub(crate) fn check_len(len: usize, limit: u32) -> Result<u32, IpcError> {
    u32::try_from(len)
        .ok()
        .filter(|len| *len <= limit)
        .ok_or(IpcError::FrameTooLarge {
            len: u64::try_from(len).unwrap_or(u64::MAX),
            max: u64::from(limit),
        })
}

/// Builds the bytes of one frame.
pub(crate) fn encode_frame(kind: Kind, payload: &[u8], limit: u32) -> Result<Vec<u8>, IpcError> {
    let mut frame = FrameBuf::with_capacity(kind, payload.len());
    frame.extend(payload);
    frame.finish(limit)
}

/// Reads one frame of at most `limit` payload bytes. `Ok(None)` is a clean end of stream
/// between frames; an end of stream in the middle of a frame is an error.
pub(crate) fn read_frame(reader: &mut impl Read, limit: u32) -> Result<Option<Frame>, IpcError> {
    let Some((kind, len)) = read_header(reader, limit)? else {
        return Ok(None);
    };
    let mut payload = Vec::with_capacity(len.min(INITIAL_PAYLOAD));
    // `take` stops at the frame's end; the buffer grows only as bytes arrive.
    let read = reader
        .take(len as u64)
        .read_to_end(&mut payload)
        .map_err(map_read_error)?;
    if read == len {
        Ok(Some(Frame { kind, payload }))
    } else {
        Err(cut_short(kind, read, len))
    }
}

/// Reads one frame as [`read_frame`] does, into `buffer`, for a reader of many frames: returns
/// the kind and the payload's length, and the payload is `buffer[..len]`. The buffer's bytes stay
/// initialized from one frame to the next, so a stream of large frames neither allocates nor
/// clears memory for each (`read_to_end` zeroes the room it reads into, every time). The buffer
/// still grows only with the bytes that arrive: to at most twice them, from 64 KiB.
pub(crate) fn read_frame_reusing(
    reader: &mut impl Read,
    limit: u32,
    buffer: &mut Vec<u8>,
) -> Result<Option<(Kind, usize)>, IpcError> {
    let Some((kind, len)) = read_header(reader, limit)? else {
        return Ok(None);
    };
    let mut filled = 0;
    while filled < len {
        if filled == buffer.len() {
            let room = (2 * filled).max(INITIAL_PAYLOAD).min(len);
            buffer.resize(room, 0);
        }
        let end = len.min(buffer.len());
        match reader.read(&mut buffer[filled..end]) {
            Ok(0) => return Err(cut_short(kind, filled, len)),
            Ok(read) => filled += read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(map_read_error(e)),
        }
    }
    Ok(Some((kind, len)))
}

/// Reads a frame header: the kind and the payload's length, checked against `limit`.
fn read_header(reader: &mut impl Read, limit: u32) -> Result<Option<(Kind, usize)>, IpcError> {
    let mut header = [0u8; HEADER];
    match read_exact_or_eof(reader, &mut header)? {
        ReadOutcome::Eof => return Ok(None),
        ReadOutcome::Partial => {
            return Err(IpcError::Malformed(
                "stream ended inside a frame header".into(),
            ));
        }
        ReadOutcome::Full => {}
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let kind = Kind::from_u8(header[4])
        .ok_or_else(|| IpcError::Malformed(format!("unknown frame kind {}", header[4])))?;
    if len > limit {
        return Err(IpcError::FrameTooLarge {
            len: u64::from(len),
            max: u64::from(limit),
        });
    }
    let len = usize::try_from(len).expect("u32 fits in usize on supported platforms");
    Ok(Some((kind, len)))
}

/// Builds the error for a stream that ended inside a frame's payload.
fn cut_short(kind: Kind, read: usize, len: usize) -> IpcError {
    IpcError::Malformed(format!(
        "stream ended inside a {kind:?} frame: {read} of {len} bytes"
    ))
}

/// Reads one frame before `deadline` from a stream whose read timeout this function sets on
/// each read (`set_timeout`), so that a peer trickling one byte at a time cannot stretch the
/// whole beyond the deadline.
pub(crate) fn read_frame_until<R: Read>(
    reader: &mut R,
    limit: u32,
    deadline: Instant,
    set_timeout: impl Fn(&R, std::time::Duration) -> io::Result<()>,
) -> Result<Option<Frame>, IpcError> {
    struct Deadlined<'a, R: Read, F> {
        inner: &'a mut R,
        deadline: Instant,
        set_timeout: F,
    }
    impl<R: Read, F: Fn(&R, std::time::Duration) -> io::Result<()>> Read for Deadlined<'_, R, F> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            (self.set_timeout)(self.inner, left)?;
            self.inner.read(buf)
        }
    }
    read_frame(
        &mut Deadlined {
            inner: reader,
            deadline,
            set_timeout,
        },
        limit,
    )
}

fn map_read_error(e: io::Error) -> IpcError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => IpcError::Timeout,
        _ => IpcError::Io(e),
    }
}

enum ReadOutcome {
    Full,
    Partial,
    Eof,
}

fn read_exact_or_eof(reader: &mut impl Read, buf: &mut [u8]) -> Result<ReadOutcome, IpcError> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => {
                return Ok(if filled == 0 {
                    ReadOutcome::Eof
                } else {
                    ReadOutcome::Partial
                });
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A reset by a peer that died is an end of stream, not a malfunction.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset && filled == 0 => {
                return Ok(ReadOutcome::Eof);
            }
            Err(e) => return Err(map_read_error(e)),
        }
    }
    Ok(ReadOutcome::Full)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: u32 = DEFAULT_FRAME_LIMIT;

    #[test]
    fn round_trip() {
        let bytes = encode_frame(Kind::Tell, b"hello", LIMIT).unwrap();
        let frame = read_frame(&mut &bytes[..], LIMIT).unwrap().unwrap();
        assert_eq!(frame.kind, Kind::Tell);
        assert_eq!(frame.payload, b"hello");
    }

    #[test]
    fn frames_built_in_place_match() {
        let mut buf = FrameBuf::new(Kind::Tell);
        buf.extend(b"hel");
        buf.buf().extend_from_slice(b"lo");
        assert_eq!(buf.payload_len(), 5);
        assert_eq!(
            buf.finish(LIMIT).unwrap(),
            encode_frame(Kind::Tell, b"hello", LIMIT).unwrap()
        );
    }

    #[test]
    fn empty_payload() {
        let bytes = encode_frame(Kind::Stop, b"", LIMIT).unwrap();
        let frame = read_frame(&mut &bytes[..], LIMIT).unwrap().unwrap();
        assert_eq!(frame.kind, Kind::Stop);
        assert!(frame.payload.is_empty());
    }

    #[test]
    fn clean_eof_is_none() {
        assert!(read_frame(&mut &b""[..], LIMIT).unwrap().is_none());
    }

    #[test]
    fn truncated_header_is_malformed() {
        let err = read_frame(&mut &[1u8, 0][..], LIMIT).unwrap_err();
        assert!(matches!(err, IpcError::Malformed(_)), "{err:?}");
    }

    #[test]
    fn truncated_payload_is_malformed() {
        let mut bytes = encode_frame(Kind::Tell, b"hello", LIMIT).unwrap();
        bytes.truncate(7);
        let err = read_frame(&mut &bytes[..], LIMIT).unwrap_err();
        assert!(matches!(err, IpcError::Malformed(_)), "{err:?}");
    }

    #[test]
    fn unknown_kind_is_malformed() {
        let bytes = [0u8, 0, 0, 0, 0xEE];
        let err = read_frame(&mut &bytes[..], LIMIT).unwrap_err();
        assert!(matches!(err, IpcError::Malformed(m) if m.contains("238")));
    }

    #[test]
    fn over_the_limit_is_refused_on_both_sides() {
        let bytes = [0xFFu8, 0xFF, 0xFF, 0xFF, Kind::Tell as u8];
        let err = read_frame(&mut &bytes[..], LIMIT).unwrap_err();
        assert!(
            matches!(
                err,
                IpcError::FrameTooLarge {
                    len: 0xFFFF_FFFF,
                    ..
                }
            ),
            "{err:?}"
        );
        let small = encode_frame(Kind::Auth, &[0u8; 300], LIMIT).unwrap();
        let err = read_frame(&mut &small[..], MAX_HANDSHAKE_FRAME).unwrap_err();
        assert!(matches!(
            err,
            IpcError::FrameTooLarge { len: 300, max: 256 }
        ));
        let err = encode_frame(Kind::Tell, &[0u8; 300], 256).unwrap_err();
        assert!(matches!(
            err,
            IpcError::FrameTooLarge { len: 300, max: 256 }
        ));
    }

    #[test]
    fn frames_read_into_one_buffer_each_see_their_own_payload() {
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut stream = encode_frame(Kind::Task, &big, LIMIT).unwrap();
        stream.extend(encode_frame(Kind::Tell, b"small", LIMIT).unwrap());
        stream.extend(encode_frame(Kind::Stop, b"", LIMIT).unwrap());
        stream.extend(encode_frame(Kind::Task, &big[..70_000], LIMIT).unwrap());
        let mut reader = &stream[..];
        let mut buffer = Vec::new();
        let mut next = || read_frame_reusing(&mut reader, LIMIT, &mut buffer).unwrap();
        assert_eq!(next(), Some((Kind::Task, big.len())));
        assert_eq!(next(), Some((Kind::Tell, 5)));
        assert_eq!(next(), Some((Kind::Stop, 0)));
        assert_eq!(next(), Some((Kind::Task, 70_000)));
        assert_eq!(next(), None);
        // The last payload is in place, whatever the earlier frames left after it.
        assert_eq!(buffer[..70_000], big[..70_000]);
        let mut reader = &stream[..];
        read_frame_reusing(&mut reader, LIMIT, &mut buffer).unwrap();
        assert_eq!(buffer[..big.len()], big[..]);
        read_frame_reusing(&mut reader, LIMIT, &mut buffer).unwrap();
        assert_eq!(&buffer[..5], b"small");
        assert_eq!(buffer.len(), big.len(), "the buffer is reused, not shrunk");
    }

    #[test]
    fn a_reused_buffer_grows_only_with_what_arrives() {
        // Announces 1 GiB, sends 100,000 bytes: the buffer holds at most twice that.
        let mut bytes = (1u32 << 30).to_le_bytes().to_vec();
        bytes.push(Kind::Task as u8);
        bytes.extend_from_slice(&[7; 100_000]);
        let mut buffer = Vec::new();
        let err = read_frame_reusing(&mut &bytes[..], LIMIT, &mut buffer).unwrap_err();
        assert!(
            matches!(err, IpcError::Malformed(ref m) if m.contains("100000 of 1073741824")),
            "{err:?}"
        );
        assert!(buffer.len() <= 200_000, "{}", buffer.len());
        // Over the limit and cut-short headers are refused as by `read_frame`.
        let over = [0xFFu8, 0xFF, 0xFF, 0xFF, Kind::Task as u8];
        assert!(matches!(
            read_frame_reusing(&mut &over[..], LIMIT, &mut buffer),
            Err(IpcError::FrameTooLarge { .. })
        ));
        assert!(matches!(
            read_frame_reusing(&mut &[1u8, 0][..], LIMIT, &mut buffer),
            Err(IpcError::Malformed(_))
        ));
        assert_eq!(
            read_frame_reusing(&mut &[][..], LIMIT, &mut buffer).unwrap(),
            None
        );
    }

    #[test]
    fn a_lying_length_prefix_allocates_only_what_arrives() {
        // Announces 1 GiB, sends 3 bytes.
        let mut bytes = (1u32 << 30).to_le_bytes().to_vec();
        bytes.push(Kind::Tell as u8);
        bytes.extend_from_slice(b"abc");
        let err = read_frame(&mut &bytes[..], LIMIT).unwrap_err();
        assert!(
            matches!(err, IpcError::Malformed(ref m) if m.contains("3 of")),
            "{err:?}"
        );
    }
}
