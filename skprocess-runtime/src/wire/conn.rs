//! One authenticated or authenticating connection: a local socket with a write lock.

use std::io::{self, BufReader, Write};
use std::sync::Mutex;
use std::time::Duration;

use interprocess::local_socket::prelude::*;
use interprocess::local_socket::{GenericNamespaced, ListenerOptions, Stream};

use super::frame::{Kind, encode_frame};
use crate::error::IpcError;

/// A connection. Reading happens on one thread (through [`Conn::reader`]); any thread may
/// [`send`](Conn::send), one whole frame at a time.
pub(crate) struct Conn {
    stream: Stream,
    write_lock: Mutex<()>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").finish_non_exhaustive()
    }
}

impl Conn {
    pub(crate) fn new(stream: Stream) -> Conn {
        Conn {
            stream,
            write_lock: Mutex::new(()),
        }
    }

    /// Connects to a listener by its namespaced name.
    pub(crate) fn connect(name: &str) -> io::Result<Conn> {
        let name = name.to_ns_name::<GenericNamespaced>()?;
        Ok(Conn::new(Stream::connect(name)?))
    }

    /// Sends one frame.
    pub(crate) fn send(&self, kind: Kind, payload: &[u8]) -> Result<(), IpcError> {
        let bytes = encode_frame(kind, payload)?;
        self.send_raw(&bytes)
    }

    /// Sends bytes that already form whole frames.
    pub(crate) fn send_raw(&self, bytes: &[u8]) -> Result<(), IpcError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        (&self.stream).write_all(bytes).map_err(|e| match e.kind() {
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => IpcError::Disconnected,
            _ => IpcError::Io(e),
        })
    }

    /// Sends one frame with a descriptor attached (SCM_RIGHTS).
    pub(crate) fn send_with_fd(
        &self,
        kind: Kind,
        payload: &[u8],
        fd: std::os::fd::BorrowedFd<'_>,
    ) -> Result<(), IpcError> {
        let bytes = encode_frame(kind, payload)?;
        let _guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        crate::sys::send_with_fd(self.socket_fd(), &bytes, fd).map_err(|e| match e.kind() {
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => IpcError::Disconnected,
            _ => IpcError::Io(e),
        })
    }

    /// Reads one frame of kind `kind` and the descriptor sent with it.
    pub(crate) fn recv_with_fd(&self, kind: Kind) -> Result<std::os::fd::OwnedFd, IpcError> {
        let mut header = [0u8; 5];
        let fd = crate::sys::recv_exact_with_fd(self.socket_fd(), &mut header).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                IpcError::Disconnected
            } else {
                IpcError::Io(e)
            }
        })?;
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

    fn socket_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        #[allow(irrefutable_let_patterns)] // one variant on Unix
        let Stream::UdSocket(stream) = &self.stream;
        stream.inner().as_fd()
    }

    /// The stream for unbuffered reads (the handshake reads exactly one frame at a time).
    pub(crate) fn raw_reader(&self) -> &Stream {
        &self.stream
    }

    /// A buffered reader for the session after the handshake.
    pub(crate) fn reader(&self) -> BufReader<&Stream> {
        BufReader::with_capacity(64 * 1024, &self.stream)
    }

    pub(crate) fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.set_recv_timeout(timeout)
    }

    pub(crate) fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.set_send_timeout(timeout)
    }

    /// Shuts both directions down, waking a reader blocked on this connection.
    pub(crate) fn shutdown(&self) {
        #[allow(irrefutable_let_patterns)] // one variant on Unix
        if let Stream::UdSocket(stream) = &self.stream {
            let _ = stream.inner().shutdown(std::net::Shutdown::Both);
        }
    }
}

/// A listener on a fresh, unguessable namespaced name.
pub(crate) fn listen(prefix: &str) -> io::Result<(interprocess::local_socket::Listener, String)> {
    let mut random = [0u8; 16];
    crate::sys::random_bytes(&mut random);
    let name = format!(
        "{prefix}.{}.{}",
        std::process::id(),
        super::auth::hex(&random)
    );
    let ns_name = name.clone().to_ns_name::<GenericNamespaced>()?;
    let listener = ListenerOptions::new().name(ns_name).create_sync()?;
    Ok((listener, name))
}
