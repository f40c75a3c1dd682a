//! Frames: `u32 length | u8 kind | payload`.

use std::io::{self, Read};

use crate::error::IpcError;

/// The largest frame accepted before the peer has authenticated.
pub(crate) const MAX_HANDSHAKE_FRAME: u32 = 256;

/// The largest frame accepted from an authenticated peer (1 GiB).
pub(crate) const MAX_FRAME: u32 = 1 << 30;

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
    // parent -> child
    Start = 10,
    Stop = 12,
    // both ways
    Tell = 11,
    // child -> parent
    Result = 20,
    Error = 21,
    SetupFailed = 22,
    // pool, parent -> worker
    Task = 30,
    // pool, worker -> parent
    TaskDone = 31,
    TaskSkipped = 32,
    /// A pool worker checked the executable's identity and is ready for tasks.
    Ready = 33,
}

impl Kind {
    fn from_u8(byte: u8) -> Option<Kind> {
        Some(match byte {
            1 => Kind::Hello,
            2 => Kind::Auth,
            3 => Kind::Welcome,
            4 => Kind::Status,
            10 => Kind::Start,
            11 => Kind::Tell,
            12 => Kind::Stop,
            20 => Kind::Result,
            21 => Kind::Error,
            22 => Kind::SetupFailed,
            30 => Kind::Task,
            31 => Kind::TaskDone,
            32 => Kind::TaskSkipped,
            33 => Kind::Ready,
            _ => return None,
        })
    }
}

/// One frame as read from the wire.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) kind: Kind,
    pub(crate) payload: Vec<u8>,
}

/// Builds the bytes of one frame.
pub(crate) fn encode_frame(kind: Kind, payload: &[u8]) -> Result<Vec<u8>, IpcError> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|len| *len <= MAX_FRAME)
        .ok_or(IpcError::FrameTooLarge {
            len: payload.len() as u64,
            max: u64::from(MAX_FRAME),
        })?;
    let mut bytes = Vec::with_capacity(5 + payload.len());
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes.push(kind as u8);
    bytes.extend_from_slice(payload);
    Ok(bytes)
}

/// Reads one frame. `Ok(None)` is a clean end of stream between frames; an end of stream in
/// the middle of a frame is an error.
pub(crate) fn read_frame(reader: &mut impl Read, max: u32) -> Result<Option<Frame>, IpcError> {
    let mut header = [0u8; 5];
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
    if len > max {
        return Err(IpcError::FrameTooLarge {
            len: u64::from(len),
            max: u64::from(max),
        });
    }
    let mut payload = vec![0u8; len as usize];
    match read_exact_or_eof(reader, &mut payload)? {
        ReadOutcome::Full => Ok(Some(Frame { kind, payload })),
        _ if len == 0 => Ok(Some(Frame { kind, payload })),
        _ => Err(IpcError::Malformed(format!(
            "stream ended inside a {kind:?} frame of {len} bytes"
        ))),
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
            Err(e) => return Err(IpcError::Io(e)),
        }
    }
    Ok(ReadOutcome::Full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let bytes = encode_frame(Kind::Tell, b"hello").unwrap();
        let frame = read_frame(&mut &bytes[..], MAX_FRAME).unwrap().unwrap();
        assert_eq!(frame.kind, Kind::Tell);
        assert_eq!(frame.payload, b"hello");
    }

    #[test]
    fn empty_payload() {
        let bytes = encode_frame(Kind::Stop, b"").unwrap();
        let frame = read_frame(&mut &bytes[..], MAX_FRAME).unwrap().unwrap();
        assert_eq!(frame.kind, Kind::Stop);
        assert!(frame.payload.is_empty());
    }

    #[test]
    fn clean_eof_is_none() {
        assert!(read_frame(&mut &b""[..], MAX_FRAME).unwrap().is_none());
    }

    #[test]
    fn truncated_header_is_malformed() {
        let err = read_frame(&mut &[1u8, 0][..], MAX_FRAME).unwrap_err();
        assert!(matches!(err, IpcError::Malformed(_)), "{err:?}");
    }

    #[test]
    fn truncated_payload_is_malformed() {
        let mut bytes = encode_frame(Kind::Tell, b"hello").unwrap();
        bytes.truncate(7);
        let err = read_frame(&mut &bytes[..], MAX_FRAME).unwrap_err();
        assert!(matches!(err, IpcError::Malformed(_)), "{err:?}");
    }

    #[test]
    fn unknown_kind_is_malformed() {
        let bytes = [0u8, 0, 0, 0, 0xEE];
        let err = read_frame(&mut &bytes[..], MAX_FRAME).unwrap_err();
        assert!(matches!(err, IpcError::Malformed(m) if m.contains("238")));
    }

    #[test]
    fn oversized_is_rejected_before_allocating() {
        let bytes = [0xFFu8, 0xFF, 0xFF, 0xFF, Kind::Tell as u8];
        let err = read_frame(&mut &bytes[..], MAX_FRAME).unwrap_err();
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
        let small = encode_frame(Kind::Auth, &[0u8; 300]).unwrap();
        let err = read_frame(&mut &small[..], MAX_HANDSHAKE_FRAME).unwrap_err();
        assert!(matches!(
            err,
            IpcError::FrameTooLarge { len: 300, max: 256 }
        ));
    }
}
