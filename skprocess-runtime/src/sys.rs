//! The few operating-system calls the runtime needs, each wrapped once with its safety argument.
//!
//! Linux is the supported platform: pidfds make signalling a child immune to pid reuse, memfd
//! carries the shared status page, and `PR_SET_PDEATHSIG` ties a child's life to its parent.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Fills `buf` with cryptographically secure random bytes.
pub(crate) fn random_bytes(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the operating system's random number generator failed");
}

/// Opens a pidfd for a child that has not been reaped yet.
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments; on success it returns a new fd we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Sends `signal` to the process behind `pidfd`. Never hits a recycled pid: once the process
/// is reaped, the call fails with `ESRCH`.
pub(crate) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    // SAFETY: plain syscall; a null siginfo is allowed and means "as kill(2)".
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Waits until `fd` is readable (for a pidfd: the process has exited), at most `timeout`.
/// Returns whether it became readable.
pub(crate) fn poll_readable(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
    loop {
        // SAFETY: one valid pollfd, count 1.
        let rc = unsafe { libc::poll(&mut pfd, 1, millis) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        return Ok(rc > 0);
    }
}

/// The conventional name of a signal number.
pub(crate) fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => "unknown signal",
    }
}

/// Installs `handler` for `signal`. The handler must be async-signal-safe.
pub(crate) fn set_signal_handler(signal: libc::c_int, handler: extern "C" fn(libc::c_int)) {
    // SAFETY: a zeroed sigaction is a valid starting point; the handler is async-signal-safe by
    // this function's contract; SA_RESTART keeps blocking calls from failing with EINTR.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signal, &action, std::ptr::null_mut());
    }
}

/// Restores the default action of `signal` and raises it in this process. Async-signal-safe
/// (only `signal` and `raise`), so a signal handler may call it.
pub(crate) fn reraise_default(signal: libc::c_int) {
    default_signal(signal);
    // SAFETY: raise is async-signal-safe and always sound.
    unsafe {
        libc::raise(signal);
    }
}

/// Restores the default action of `signal` in this process. Async-signal-safe.
pub(crate) fn default_signal(signal: libc::c_int) {
    // SAFETY: installing SIG_DFL is always sound.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
    }
}

/// Ignores `signal` in this process.
pub(crate) fn ignore_signal(signal: libc::c_int) {
    // SAFETY: installing SIG_IGN is always sound.
    unsafe {
        libc::signal(signal, libc::SIG_IGN);
    }
}

/// Waits while the 32-bit word at `word` holds `seen`, at most `timeout` (a wake-up, a
/// signal or a spurious return end it early: the caller checks again). The shared futex, not
/// the private one: the word may live in memory several processes map.
pub(crate) fn futex_wait(word: &std::sync::atomic::AtomicU32, seen: u32, timeout: Duration) {
    let timeout = timeout.min(Duration::from_secs(3600));
    let timeout = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: FUTEX_WAIT on an aligned u32 the reference keeps alive, with a relative timeout;
    // the kernel only reads the word.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            seen,
            &raw const timeout,
        );
    }
}

/// Wakes every waiter of the word at `word`, in any process.
pub(crate) fn futex_wake(word: &std::sync::atomic::AtomicU32) {
    // SAFETY: FUTEX_WAKE on an aligned u32 the reference keeps alive; nothing is written.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            std::ptr::null::<libc::timespec>(),
        );
    }
}

/// A new memfd of `len` zero bytes (close-on-exec, sealable), named `name` in `/proc/*/maps`.
pub(crate) fn memfd(name: &std::ffi::CStr, len: usize) -> io::Result<OwnedFd> {
    // SAFETY: the name is a valid C string; flags are valid.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: valid fd and length.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// Adds `seals` (`F_SEAL_*`) to a memfd.
pub(crate) fn add_seals(fd: BorrowedFd<'_>, seals: i32) -> io::Result<()> {
    // SAFETY: fcntl on a valid descriptor with an integer argument.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A shared, zero-filled memory region of `len` bytes backed by a memfd, so that another
/// process can map the same pages.
pub(crate) struct SharedRegion {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the region is plain shared memory accessed only through atomics (see shm.rs).
unsafe impl Send for SharedRegion {}
// SAFETY: as above.
unsafe impl Sync for SharedRegion {}

impl SharedRegion {
    /// Creates a new region and the memfd that backs it (close-on-exec), sealed against
    /// shrinking and growing: a peer holding the descriptor cannot truncate the pages under a
    /// reader (which would be a SIGBUS).
    pub(crate) fn create(len: usize) -> io::Result<(SharedRegion, OwnedFd)> {
        let fd = memfd(c"skprocess-status", len)?;
        add_seals(
            fd.as_fd(),
            libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL,
        )?;
        let region = SharedRegion::map(fd.as_fd(), len)?;
        Ok((region, fd))
    }

    /// Maps an existing memfd (in the child). The descriptor comes from another process: it
    /// must be a file of at least `len` bytes that cannot shrink, else touching the mapping could
    /// end this process with SIGBUS.
    pub(crate) fn map(fd: BorrowedFd<'_>, len: usize) -> io::Result<SharedRegion> {
        // SAFETY: fstat writes into a zeroed stat we own; fcntl reads the seals of a valid fd.
        let (size, seals) = unsafe {
            let mut stat: libc::stat = std::mem::zeroed();
            if libc::fstat(fd.as_raw_fd(), &mut stat) != 0 {
                return Err(io::Error::last_os_error());
            }
            (stat.st_size, libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS))
        };
        if usize::try_from(size).map_or(true, |size| size < len)
            || seals < 0
            || seals & libc::F_SEAL_SHRINK == 0
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the shared memory sent by the peer is not a sealed file of {len} bytes \
                     (size {size}, seals {seals:#x})"
                ),
            ));
        }
        // SAFETY: a shared read/write mapping of a file we hold; the kernel checks the fd.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(SharedRegion {
            ptr: ptr.cast(),
            len,
        })
    }

    /// The start of the region (page aligned).
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// The region's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for SharedRegion {
    fn drop(&mut self) {
        // SAFETY: ptr/len come from a successful mmap and are unmapped once.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

/// Writes all of `bytes` to a socket with `MSG_NOSIGNAL`: a peer that is gone is an
/// `EPIPE` error, never a SIGPIPE that would end this process (the library installs no signal
/// handler in a parent, so it cannot rely on SIGPIPE being ignored).
pub(crate) fn send_all(socket: BorrowedFd<'_>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: writing from a valid slice to a descriptor we borrow.
        let n = unsafe {
            libc::send(
                socket.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        let n = usize::try_from(n).expect("send returned a non-negative count");
        bytes = &bytes[n..];
    }
    Ok(())
}

/// Writes all of several buffers, in order, to a socket with `MSG_NOSIGNAL` (one `sendmsg` per
/// round, so a large body is not copied to join it to its head).
pub(crate) fn send_all_vectored(socket: BorrowedFd<'_>, pieces: &[&[u8]]) -> io::Result<()> {
    let mut pieces: Vec<&[u8]> = pieces.iter().copied().filter(|p| !p.is_empty()).collect();
    let mut first = 0;
    while first < pieces.len() {
        let mut iov: Vec<libc::iovec> = pieces[first..]
            .iter()
            .map(|p| libc::iovec {
                iov_base: p.as_ptr().cast_mut().cast(),
                iov_len: p.len(),
            })
            .collect();
        // SAFETY: a zeroed msghdr is valid; the iovecs point into live slices for the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov.as_mut_ptr();
        msg.msg_iovlen = iov.len() as _;
        // SAFETY: msg is initialised above.
        let n = unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        let mut sent = usize::try_from(n).expect("non-negative");
        while first < pieces.len() && sent >= pieces[first].len() {
            sent -= pieces[first].len();
            first += 1;
        }
        if sent > 0 {
            pieces[first] = &pieces[first][sent..];
        }
    }
    Ok(())
}

/// The size of a control buffer that holds one descriptor.
fn one_fd_space() -> usize {
    let len = u32::try_from(size_of::<RawFd>()).expect("an fd is 4 bytes");
    // SAFETY: a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(len) };
    usize::try_from(space).expect("a small size")
}

/// Sends `bytes` on a Unix socket with one descriptor attached (SCM_RIGHTS). The whole of
/// `bytes` goes out with the descriptor attached to its first byte.
pub(crate) fn send_with_fd(
    socket: BorrowedFd<'_>,
    bytes: &[u8],
    fd: BorrowedFd<'_>,
) -> io::Result<()> {
    let raw = fd.as_raw_fd();
    let space = one_fd_space();
    let mut control = vec![0u8; space];
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr().cast_mut().cast(),
        iov_len: bytes.len(),
    };
    // SAFETY: a zeroed msghdr is valid; every pointer set below outlives the sendmsg call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: the control buffer is CMSG_SPACE(sizeof(int)) bytes, enough for one header and one
    // descriptor; CMSG_FIRSTHDR/CMSG_DATA point into it.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), raw);
    }
    let sent = loop {
        // SAFETY: msg is fully initialised above.
        let n = unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if n >= 0 {
            break usize::try_from(n).expect("non-negative");
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    };
    // The descriptor went with the first chunk; send any rest plainly.
    send_all(socket, &bytes[sent..])
}

/// Reads exactly `buf.len()` bytes from a Unix socket, collecting the one descriptor sent with
/// them (SCM_RIGHTS), if any. Received descriptors are close-on-exec. More than one descriptor,
/// or a truncated control message (`MSG_CTRUNC`: the kernel dropped descriptors), is an
/// `InvalidData` error; every descriptor received is closed then, none leaks.
pub(crate) fn recv_exact_with_fd(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
) -> io::Result<Option<OwnedFd>> {
    let space = one_fd_space();
    let mut received: Vec<OwnedFd> = Vec::new();
    let mut truncated = false;
    let mut filled = 0;
    while filled < buf.len() {
        let mut control = vec![0u8; space];
        let mut iov = libc::iovec {
            iov_base: buf[filled..].as_mut_ptr().cast(),
            iov_len: buf.len() - filled,
        };
        // SAFETY: zeroed msghdr; pointers valid for the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: msg is initialised; MSG_CMSG_CLOEXEC marks received descriptors close-on-exec.
        let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        filled += usize::try_from(n).expect("non-negative");
        truncated |= msg.msg_flags & libc::MSG_CTRUNC != 0;
        // SAFETY: `msg` was just filled by recvmsg, with `control` still alive.
        unsafe { take_rights(&msg, &mut received) };
    }
    if truncated || received.len() > 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "expected at most one descriptor, got {}{}",
                received.len(),
                if truncated {
                    " and a truncated control message"
                } else {
                    ""
                }
            ),
        ));
    }
    Ok(received.pop())
}

/// Reads what is there (at most `buf.len()` bytes, at least one unless the stream ended) from a
/// Unix socket, appending the descriptors that came with those bytes (SCM_RIGHTS, close-on-exec)
/// to `fds`. A control message the kernel had to truncate (descriptors dropped) is an
/// `InvalidData` error; the descriptors that did arrive are kept in `fds` (and close with it).
pub(crate) fn recv_some_with_fds(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> io::Result<usize> {
    const MAX: usize = 32;
    let len = u32::try_from(MAX * size_of::<RawFd>()).expect("small");
    // SAFETY: a pure size computation.
    let space = usize::try_from(unsafe { libc::CMSG_SPACE(len) }).expect("small");
    let mut control = vec![0u8; space];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: zeroed msghdr; pointers valid for the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    let n = loop {
        // SAFETY: msg is initialised; MSG_CMSG_CLOEXEC marks received descriptors close-on-exec.
        let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break usize::try_from(n).expect("non-negative");
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    };
    // SAFETY: `msg` was just filled by recvmsg, with `control` still alive.
    unsafe { take_rights(&msg, fds) };
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the peer sent more descriptors at once than can be received",
        ));
    }
    Ok(n)
}

/// Takes ownership of the descriptors in the SCM_RIGHTS control messages of `msg`.
///
/// # Safety
///
/// `msg` was filled by a successful `recvmsg`, and its control buffer is still alive: each
/// SCM_RIGHTS message then holds (cmsg_len - CMSG_LEN(0)) / sizeof(int) descriptors that the
/// kernel installed for this process, and nothing else owns them.
unsafe fn take_rights(msg: &libc::msghdr, fds: &mut Vec<OwnedFd>) {
    // SAFETY: as the caller promises; the CMSG macros stay within the control buffer.
    unsafe {
        let header = libc::CMSG_LEN(0) as usize;
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let count = ((*cmsg).cmsg_len as usize).saturating_sub(header) / size_of::<RawFd>();
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
}

/// The user id of the process at the other end of a Unix socket (`SO_PEERCRED`).
pub(crate) fn peer_uid(socket: BorrowedFd<'_>) -> io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = libc::socklen_t::try_from(size_of::<libc::ucred>()).expect("small");
    // SAFETY: getsockopt writes at most `len` bytes into `cred`.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred.uid)
}

/// Whether a process with this pid exists (it may belong to another user).
pub(crate) fn pid_alive(pid: libc::pid_t) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// This process's effective user id.
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid always succeeds.
    unsafe { libc::geteuid() }
}

/// The base address of the loaded image (executable or shared library) that contains
/// `address`, or `None` if no loaded image contains it.
pub(crate) fn image_base(address: usize) -> Option<usize> {
    // SAFETY: a zeroed Dl_info is valid; dladdr only reads the address and fills the struct.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr accepts any address value.
    let found = unsafe { libc::dladdr(address as *const libc::c_void, &mut info) };
    (found != 0 && !info.dli_fbase.is_null()).then_some(info.dli_fbase as usize)
}

/// How many threads this process has (from `/proc/self/task`), or `None` if unknown.
pub(crate) fn thread_count() -> Option<usize> {
    std::fs::read_dir("/proc/self/task")
        .ok()
        .map(|entries| entries.count())
}

/// A pipe whose both ends are close-on-exec: `(read end, write end)`.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned these descriptors to us.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Asks the kernel for SIGTERM when the thread that spawned this process exits (the parent's
/// long-lived spawner thread: in effect, when the parent process dies). Returns whether the
/// parent is still `expected_parent` afterwards: if it died before the request took effect, the
/// signal will never come.
pub(crate) fn die_with_parent(expected_parent: libc::pid_t) -> bool {
    // SAFETY: prctl with PR_SET_PDEATHSIG and a signal number.
    let set = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) } == 0;
    // SAFETY: getppid always succeeds.
    set && unsafe { libc::getppid() } == expected_parent
}

/// Ends this process at once, without running destructors or flushing anything.
pub(crate) fn hard_exit(code: i32) -> ! {
    // SAFETY: _exit never returns and is always sound to call.
    unsafe { libc::_exit(code) }
}

/// This process's resident memory in bytes (from `/proc/self/statm`), if it can be read.
pub(crate) fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    /// Sends `bytes` with every descriptor of `fds` attached.
    fn send_fds(socket: BorrowedFd<'_>, bytes: &[u8], fds: &[RawFd]) {
        let data_len = u32::try_from(std::mem::size_of_val(fds)).unwrap();
        // SAFETY: a pure size computation.
        let space = unsafe { libc::CMSG_SPACE(data_len) } as usize;
        let mut control = vec![0u8; space];
        let mut iov = libc::iovec {
            iov_base: bytes.as_ptr().cast_mut().cast(),
            iov_len: bytes.len(),
        };
        // SAFETY: as in `send_with_fd`, with room for every descriptor.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = space as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(data_len) as _;
            let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
            for (i, fd) in fds.iter().enumerate() {
                std::ptr::write_unaligned(data.add(i), *fd);
            }
            assert!(libc::sendmsg(socket.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) >= 0);
        }
    }

    fn open_fds() -> usize {
        std::fs::read_dir("/proc/self/fd").unwrap().count()
    }

    #[test]
    fn one_descriptor_is_received_and_extra_ones_are_an_error_that_leaks_nothing() {
        let (a, b) = UnixStream::pair().unwrap();
        let (r, w) = pipe().unwrap();
        send_with_fd(a.as_fd(), b"hello", r.as_fd()).unwrap();
        let mut buf = [0u8; 5];
        let fd = recv_exact_with_fd(b.as_fd(), &mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        assert!(fd.is_some());
        drop(fd);

        // Two (or three) descriptors where one is expected: an error, none kept open. Other
        // tests open descriptors concurrently, so compare generously: three leaked descriptors
        // per round would show after ten rounds.
        let before = open_fds();
        for round in 0..10 {
            let fds = if round % 2 == 0 {
                vec![r.as_raw_fd(), w.as_raw_fd()]
            } else {
                vec![r.as_raw_fd(), w.as_raw_fd(), r.as_raw_fd()]
            };
            send_fds(a.as_fd(), b"hello", &fds);
            let err = recv_exact_with_fd(b.as_fd(), &mut buf).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        }
        assert!(open_fds() < before + 10, "descriptors leaked");
    }

    #[test]
    fn writes_to_a_closed_peer_are_errors_not_sigpipe() {
        // The default SIGPIPE action would end this test process.
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        let err = send_all(a.as_fd(), b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        let err = send_all_vectored(a.as_fd(), &[b"x", b"y"]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn vectored_writes_arrive_whole_and_in_order() {
        use std::io::Read;
        let (a, mut b) = UnixStream::pair().unwrap();
        let big = vec![3u8; 1 << 20];
        let writer = std::thread::spawn(move || {
            send_all_vectored(a.as_fd(), &[b"head", &big, b"", b"tail"])
        });
        let mut got = Vec::new();
        b.read_to_end(&mut got).unwrap();
        writer.join().unwrap().unwrap();
        assert_eq!(got.len(), 8 + (1 << 20));
        assert!(got.starts_with(b"head") && got.ends_with(b"tail"));
    }

    #[test]
    fn this_process_counts_its_threads() {
        assert!(thread_count().unwrap() >= 1);
    }

    /// A memfd of `len` bytes, sealed against shrinking or not.
    fn memfd(len: usize, sealed: bool) -> OwnedFd {
        // SAFETY: as in SharedRegion::create.
        unsafe {
            let fd = libc::memfd_create(c"t".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING);
            assert!(fd >= 0);
            let fd = OwnedFd::from_raw_fd(fd);
            assert_eq!(libc::ftruncate(fd.as_raw_fd(), len as libc::off_t), 0);
            if sealed {
                assert_eq!(
                    libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_SHRINK),
                    0
                );
            }
            fd
        }
    }

    #[test]
    fn a_mapping_is_refused_unless_the_peer_file_is_sealed_and_large_enough() {
        assert!(SharedRegion::map(memfd(8192, true).as_fd(), 8192).is_ok());
        // Unsealed: the peer could shrink it under us (SIGBUS).
        assert!(SharedRegion::map(memfd(8192, false).as_fd(), 8192).is_err());
        // Too small: touching the end would be a SIGBUS.
        assert!(SharedRegion::map(memfd(4096, true).as_fd(), 8192).is_err());
        // What create() makes maps again, and cannot be shrunk.
        let (_region, fd) = SharedRegion::create(8192).unwrap();
        assert!(SharedRegion::map(fd.as_fd(), 8192).is_ok());
        // SAFETY: ftruncate on our own memfd.
        assert_ne!(unsafe { libc::ftruncate(fd.as_raw_fd(), 0) }, 0);
    }
}
