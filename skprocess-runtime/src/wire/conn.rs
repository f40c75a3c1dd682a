//! One connection between a parent and a child: a Unix socket in the abstract namespace, a
//! write lock (any thread may send, one whole frame at a time), and the session's frame limit.

use std::io::{self, BufReader};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::frame::{DEFAULT_FRAME_LIMIT, Frame, encode_frame, read_frame, read_frame_until};
use super::protocol::Kind;
use crate::error::IpcError;
use crate::sync::lock;

/// A connection. Reading happens on one thread at a time (through [`Conn::frames`]); any
/// thread may [`send`](Conn::send).
pub(crate) struct Conn {
    stream: UnixStream,
    write_lock: Mutex<()>,
    limit: AtomicU32,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("limit", &self.limit())
            .finish_non_exhaustive()
    }
}

/// Maps a socket write error: a peer that is gone is [`IpcError::Disconnected`], a send timeout
/// [`IpcError::Timeout`].
fn write_error(e: io::Error) -> IpcError {
    match e.kind() {
        io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::NotConnected => IpcError::Disconnected,
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => IpcError::Timeout,
        _ => IpcError::Io(e),
    }
}

impl Conn {
    pub(crate) fn new(stream: UnixStream) -> Conn {
        Conn {
            stream,
            write_lock: Mutex::new(()),
            limit: AtomicU32::new(DEFAULT_FRAME_LIMIT),
        }
    }

    /// Connects to a listener by its abstract name.
    pub(crate) fn connect(name: &str) -> io::Result<Conn> {
        let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
        Ok(Conn::new(UnixStream::connect_addr(&addr)?))
    }

    /// The largest payload this connection sends or accepts.
    pub(crate) fn limit(&self) -> u32 {
        self.limit.load(Ordering::Relaxed)
    }

    /// Sets the frame limit for the rest of the session.
    pub(crate) fn set_limit(&self, limit: u32) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// Sends one frame.
    pub(crate) fn send(&self, kind: Kind, payload: &[u8]) -> Result<(), IpcError> {
        let bytes = encode_frame(kind, payload, self.limit())?;
        self.send_frames(&bytes)
    }

    /// Sends bytes that already form whole frames (built within this connection's limit).
    pub(crate) fn send_frames(&self, bytes: &[u8]) -> Result<(), IpcError> {
        let _guard = lock(&self.write_lock);
        crate::sys::send_all(self.stream.as_fd(), bytes).map_err(write_error)
    }

    /// Sends one frame given in pieces (a head, then a body that is not copied).
    pub(crate) fn send_vectored(&self, pieces: &[&[u8]]) -> Result<(), IpcError> {
        let _guard = lock(&self.write_lock);
        crate::sys::send_all_vectored(self.stream.as_fd(), pieces).map_err(write_error)
    }

    /// Sends one frame with a descriptor attached (SCM_RIGHTS).
    pub(crate) fn send_with_fd(
        &self,
        kind: Kind,
        payload: &[u8],
        fd: BorrowedFd<'_>,
    ) -> Result<(), IpcError> {
        let bytes = encode_frame(kind, payload, self.limit())?;
        let _guard = lock(&self.write_lock);
        crate::sys::send_with_fd(self.stream.as_fd(), &bytes, fd).map_err(write_error)
    }

    /// Reads one empty frame of kind `kind` and the descriptor sent with it.
    pub(crate) fn recv_with_fd(&self, kind: Kind) -> Result<OwnedFd, IpcError> {
        let mut header = [0u8; super::frame::HEADER];
        let fd =
            crate::sys::recv_exact_with_fd(self.stream.as_fd(), &mut header).map_err(
                |e| match e.kind() {
                    io::ErrorKind::UnexpectedEof => IpcError::Disconnected,
                    io::ErrorKind::InvalidData => IpcError::Malformed(e.to_string()),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => IpcError::Timeout,
                    _ => IpcError::Io(e),
                },
            )?;
        if header[4] != kind as u8 || header[..4] != [0, 0, 0, 0] {
            return Err(IpcError::Malformed(format!(
                "expected an empty {kind:?} frame, got kind {} with {} bytes",
                header[4],
                u32::from_le_bytes([header[0], header[1], header[2], header[3]])
            )));
        }
        fd.ok_or_else(|| {
            IpcError::Malformed(format!("a {kind:?} frame came without its descriptor"))
        })
    }

    /// A buffered reader of this connection's frames, for the session after the handshake.
    pub(crate) fn frames(&self) -> Frames<'_> {
        Frames {
            conn: self,
            reader: BufReader::with_capacity(64 * 1024, &self.stream),
        }
    }

    /// Reads one frame of at most `max` bytes before `deadline`, unbuffered (so nothing after
    /// it is consumed).
    pub(crate) fn read_frame_until(
        &self,
        max: u32,
        deadline: Instant,
    ) -> Result<Option<Frame>, IpcError> {
        let mut stream = &self.stream;
        let result = read_frame_until(&mut stream, max, deadline, |stream, left| {
            stream.set_read_timeout(Some(left))
        });
        self.stream.set_read_timeout(None)?;
        result
    }

    /// Reads one frame, unbuffered, with this connection's limit (for the one frame read before
    /// a buffered reader takes over).
    pub(crate) fn read_one(&self) -> Result<Option<Frame>, IpcError> {
        read_frame(&mut &self.stream, self.limit())
    }

    /// The socket's descriptor (to poll it for a hang-up).
    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.stream)
    }

    pub(crate) fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(timeout)
    }

    pub(crate) fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.set_write_timeout(timeout)
    }

    /// Shuts both directions down, waking a reader blocked on this connection.
    pub(crate) fn shutdown(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// The frames of one connection, read through a buffer.
pub(crate) struct Frames<'a> {
    conn: &'a Conn,
    reader: BufReader<&'a UnixStream>,
}

impl std::fmt::Debug for Frames<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frames").field("conn", self.conn).finish()
    }
}

impl Frames<'_> {
    /// The next frame; `Ok(None)` at a clean end of stream.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame>, IpcError> {
        read_frame(&mut self.reader, self.conn.limit())
    }
}

/// A listener on a fresh, unguessable abstract name.
pub(crate) fn listen(prefix: &str) -> io::Result<(UnixListener, String)> {
    let mut random = [0u8; 16];
    crate::sys::random_bytes(&mut random);
    let name = format!(
        "{prefix}.{}.{}",
        std::process::id(),
        super::auth::hex(&random)
    );
    let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
    let listener = UnixListener::bind_addr(&addr)?;
    Ok((listener, name))
}
