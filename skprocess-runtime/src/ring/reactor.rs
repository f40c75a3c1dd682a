//! Wakes async receivers: one thread per process waits in `epoll` on the doorbells (eventfds)
//! and sockets of the channels that futures wait on, and wakes a future's waker when its
//! doorbell rings or its peer hangs up. No thread per future.
//!
//! A registration is one-shot: it holds duplicates of the two descriptors (so one channel may
//! be waited on by several futures), added with `EPOLLONESHOT`; the first event removes it and
//! wakes its waker. Dropping the [`Interest`] first removes it without a wake-up. Removing
//! means `EPOLL_CTL_DEL` before closing the duplicates: epoll forgets a descriptor only when
//! every descriptor of its open file is closed, and the channel keeps the originals.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::task::Waker;

use crate::sync::lock;

struct Reactor {
    epoll: OwnedFd,
    entries: Mutex<HashMap<u64, (Waker, [OwnedFd; 2])>>,
    next: AtomicU64,
}

/// A pending wake-up; dropping it cancels it.
#[derive(Debug)]
pub(crate) struct Interest {
    key: u64,
}

impl Drop for Interest {
    fn drop(&mut self) {
        if let Some(Ok(reactor)) = REACTOR.get()
            && let Some((_, fds)) = lock(&reactor.entries).remove(&self.key)
        {
            reactor.forget(&fds);
        }
    }
}

impl Reactor {
    /// Takes a registration's descriptors out of the epoll set (then they close).
    fn forget(&self, fds: &[OwnedFd; 2]) {
        for fd in fds {
            // SAFETY: valid descriptors; a null event is allowed for EPOLL_CTL_DEL.
            unsafe {
                libc::epoll_ctl(
                    self.epoll.as_raw_fd(),
                    libc::EPOLL_CTL_DEL,
                    fd.as_raw_fd(),
                    std::ptr::null_mut(),
                );
            }
        }
    }
}

static REACTOR: OnceLock<Result<Reactor, String>> = OnceLock::new();

fn reactor() -> io::Result<&'static Reactor> {
    let reactor = REACTOR.get_or_init(|| {
        // SAFETY: plain syscall; a new descriptor on success.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error().to_string());
        }
        let reactor = Reactor {
            // SAFETY: a fresh descriptor we own.
            epoll: unsafe { OwnedFd::from_raw_fd(fd) },
            entries: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
        };
        std::thread::Builder::new()
            .name("skprocess-reactor".into())
            .spawn(run)
            .map_err(|err| err.to_string())?;
        Ok(reactor)
    });
    reactor
        .as_ref()
        .map_err(|message| io::Error::other(message.clone()))
}

fn run() {
    let Ok(reactor) = reactor() else { return };
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
    loop {
        // SAFETY: a valid epoll descriptor and an array of 64 events.
        let n = unsafe { libc::epoll_wait(reactor.epoll.as_raw_fd(), events.as_mut_ptr(), 64, -1) };
        let Ok(n) = usize::try_from(n) else {
            continue; // EINTR
        };
        let wakers: Vec<Waker> = {
            let mut entries = lock(&reactor.entries);
            events[..n]
                .iter()
                .filter_map(|event| entries.remove(&{ event.u64 }))
                .map(|(waker, fds)| {
                    reactor.forget(&fds);
                    waker
                })
                .collect()
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}

fn duplicate(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: fcntl on a descriptor the caller holds open; a new descriptor on success.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(dup) })
}

/// Wakes `waker` once `doorbell` is readable or `socket` hangs up.
pub(crate) fn wake_on(doorbell: RawFd, socket: RawFd, waker: &Waker) -> io::Result<Interest> {
    let reactor = reactor()?;
    let key = reactor.next.fetch_add(1, Ordering::Relaxed);
    let fds = [duplicate(doorbell)?, duplicate(socket)?];
    let mut entries = lock(&reactor.entries);
    for (i, (fd, events)) in fds
        .iter()
        .zip([libc::EPOLLIN, libc::EPOLLRDHUP])
        .enumerate()
    {
        let mut event = libc::epoll_event {
            events: (events | libc::EPOLLONESHOT) as u32,
            u64: key,
        };
        // SAFETY: valid descriptors and a valid event.
        let rc = unsafe {
            libc::epoll_ctl(
                reactor.epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd.as_raw_fd(),
                &mut event,
            )
        };
        if rc != 0 {
            let err = io::Error::last_os_error();
            if i == 1 {
                reactor.forget(&fds);
            }
            return Err(err);
        }
    }
    entries.insert(key, (waker.clone(), fds));
    Ok(Interest { key })
}
