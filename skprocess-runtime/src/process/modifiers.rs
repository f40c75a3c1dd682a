//! The modifiers of a process handle: deadlines, background threads and futures.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use super::Skprocess;
use super::io::IoShared;
use crate::asyncs::{BackgroundHandle, ThreadFuture, spawn_blocking};
use crate::error::{ListenError, ProcessError};
use crate::inbox::decode_message;
use crate::lifecycle::Lifecycle;
use crate::sync::deadline_in;

/// A call with a deadline: see [`Skprocess::timeout`].
pub struct Deadline<'a, P> {
    pub(super) handle: &'a Skprocess<P>,
    pub(super) timeout: Duration,
}

impl<P> std::fmt::Debug for Deadline<'_, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deadline")
            .field("handle", self.handle)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl<P> std::fmt::Debug for Background<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Background")
            .field("handle", &self.handle)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl<P> std::fmt::Debug for Asynced<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Asynced")
            .field("handle", &self.handle)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl<P: Lifecycle> Deadline<'_, P> {
    /// Starts the process and returns its result, or [`ProcessError::ResultTimeout`] when the
    /// deadline passes first (the process is then stopped, and killed after a grace period).
    pub fn run(self) -> Result<P::Output, ProcessError> {
        self.handle.start()?;
        self.handle.result_within(self.timeout)
    }
}

impl<P: Lifecycle> Deadline<'_, P> {
    /// The result, or [`ProcessError::ResultTimeout`] when the deadline passes first.
    pub fn result(self) -> Result<P::Output, ProcessError> {
        self.handle.result_within(self.timeout)
    }

    /// The same deadline, on a background thread.
    pub fn background(self) -> Background<P> {
        Background {
            handle: self.handle.clone_handle(),
            timeout: Some(self.timeout),
        }
    }

    /// The same deadline, as a future.
    pub fn asynced(self) -> Asynced<P> {
        Asynced {
            handle: self.handle.clone_handle(),
            timeout: Some(self.timeout),
        }
    }
}

/// Calls that run on a background thread: see [`Skprocess::background`].
pub struct Background<P> {
    pub(super) handle: Skprocess<P>,
    pub(super) timeout: Option<Duration>,
}

impl<P: Lifecycle> Background<P> {
    /// Adds a deadline (see [`Skprocess::timeout`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// [`Skprocess::result`] in the background.
    pub fn result(self) -> BackgroundHandle<Result<P::Output, ProcessError>> {
        let Background { handle, timeout } = self;
        BackgroundHandle::spawn("skprocess-background", move || match timeout {
            Some(timeout) => handle.result_within(timeout),
            None => handle.result(),
        })
    }

    /// [`Skprocess::wait`] in the background.
    pub fn wait(self) -> BackgroundHandle<Result<(), ProcessError>> {
        let handle = self.handle;
        BackgroundHandle::spawn("skprocess-background", move || handle.wait())
    }
}

impl<P: Lifecycle> Background<P> {
    /// [`Skprocess::run`] in the background: starts now, on the calling thread (so start errors
    /// surface in the handle), and waits on a background thread.
    pub fn run(self) -> BackgroundHandle<Result<P::Output, ProcessError>> {
        let started = self.handle.start();
        let Background { handle, timeout } = self;
        BackgroundHandle::spawn("skprocess-background", move || {
            started?;
            match timeout {
                Some(timeout) => handle.result_within(timeout),
                None => handle.result(),
            }
        })
    }
}

/// Calls that return futures: see [`Skprocess::asynced`]. The futures need no particular
/// executor; each one waits on a helper thread.
pub struct Asynced<P> {
    pub(super) handle: Skprocess<P>,
    pub(super) timeout: Option<Duration>,
}

impl<P: Lifecycle> Asynced<P> {
    /// Adds a deadline to `run` and `result` (see [`Skprocess::timeout`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// [`Skprocess::wait`] as a future.
    pub fn wait(self) -> impl Future<Output = Result<(), ProcessError>> + Send + 'static {
        let handle = self.handle;
        spawn_blocking("skprocess-async", move || handle.wait())
    }

    /// [`Skprocess::result`] as a future.
    pub fn result(self) -> ThreadFuture<Result<P::Output, ProcessError>> {
        let Asynced { handle, timeout } = self;
        spawn_blocking("skprocess-async", move || match timeout {
            Some(timeout) => handle.result_within(timeout),
            None => handle.result(),
        })
    }

    /// [`Skprocess::listen`] as a future. No thread waits for the message: the future is woken
    /// when it arrives. Dropping the future takes nothing from the queue.
    pub fn listen<T: DeserializeOwned>(self) -> ListenFuture<T> {
        ListenFuture::new(&self.handle, None)
    }

    /// [`Skprocess::listen_timeout`] as a future (the timeout never affects the process).
    pub fn listen_timeout<T: DeserializeOwned>(self, timeout: Duration) -> ListenFuture<T> {
        ListenFuture::new(&self.handle, deadline_in(timeout))
    }
}

/// The next message, as a future: from a child ([`Asynced::listen`]) or, inside an `async`
/// lifecycle method, from the parent ([`Context::listen_async`](crate::Context::listen_async)).
/// No thread waits: the future is woken when the message arrives. Dropping it takes nothing
/// from the queue.
#[must_use = "futures do nothing unless polled"]
pub struct ListenFuture<T> {
    source: Option<Source>,
    interest: Option<crate::ring::reactor::Interest>,
    armed: bool,
    timer: Option<crate::timing::timer_thread::Sleep>,
    _message: std::marker::PhantomData<fn() -> T>,
}

/// Whose mailbox a [`ListenFuture`] reads.
enum Source {
    /// The parent's handle: the child's messages.
    Parent(Arc<IoShared>),
    /// A child's context: the parent's messages, unless the section was abandoned.
    Child {
        link: Arc<crate::lifecycle::ChildLink>,
        abandoned: Arc<std::sync::atomic::AtomicBool>,
    },
}

impl Source {
    fn inbox(&self) -> &crate::inbox::Mailbox {
        match self {
            Source::Parent(io) => &io.inbox,
            Source::Child { link, .. } => &link.inbox,
        }
    }

    /// Whether the section this future belongs to was abandoned after its timeout: it must
    /// not take messages meant for the rest of the process.
    fn abandoned(&self) -> bool {
        match self {
            Source::Parent(_) => false,
            Source::Child { abandoned, .. } => abandoned.load(std::sync::atomic::Ordering::Acquire),
        }
    }
}

impl<T> std::fmt::Debug for ListenFuture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenFuture")
            .field("started", &self.source.is_some())
            .field("timed", &self.timer.is_some())
            .finish()
    }
}

impl<T> ListenFuture<T> {
    fn new<P: Lifecycle>(handle: &Skprocess<P>, deadline: Option<Instant>) -> Self {
        Self::with_source(handle.io().map(Source::Parent), deadline)
    }

    /// The parent's next message, for a child's context.
    pub(crate) fn for_child(cx: &crate::Context, deadline: Option<Instant>) -> Self {
        let (link, abandoned) = cx.listen_parts();
        Self::with_source(Some(Source::Child { link, abandoned }), deadline)
    }

    fn with_source(source: Option<Source>, deadline: Option<Instant>) -> Self {
        ListenFuture {
            source,
            interest: None,
            armed: false,
            timer: deadline.map(crate::timing::timer_thread::sleep_until),
            _message: std::marker::PhantomData,
        }
    }
}

impl<T: DeserializeOwned> Future for ListenFuture<T> {
    type Output = Result<T, ListenError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        let this = &mut *self;
        let Some(source) = &this.source else {
            return Poll::Ready(Err(ListenError::NotStarted));
        };
        if source.abandoned() {
            return Poll::Ready(Err(ListenError::Disconnected));
        }
        match source
            .inbox()
            .poll_recv(cx.waker(), &mut this.interest, &mut this.armed)
        {
            Poll::Ready(Ok(bytes)) if source.abandoned() => {
                source.inbox().unreceive(bytes);
                return Poll::Ready(Err(ListenError::Disconnected));
            }
            Poll::Ready(Ok(bytes)) => return Poll::Ready(decode_message(bytes)),
            Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
            Poll::Pending => {}
        }
        match self.timer.as_mut() {
            Some(timer) => match std::pin::Pin::new(timer).poll(cx) {
                Poll::Ready(_) => Poll::Ready(Err(ListenError::Timeout)),
                Poll::Pending => Poll::Pending,
            },
            None => Poll::Pending,
        }
    }
}

impl<T> Drop for ListenFuture<T> {
    fn drop(&mut self) {
        self.interest = None;
        if self.armed
            && let Some(source) = &self.source
        {
            source.inbox().disarm();
        }
    }
}

impl<P: Lifecycle> Asynced<P> {
    /// [`Skprocess::run`] as a future. The process starts when this is called.
    pub fn run(self) -> ThreadFuture<Result<P::Output, ProcessError>> {
        let started = self.handle.start();
        let Asynced { handle, timeout } = self;
        spawn_blocking("skprocess-async", move || {
            started?;
            match timeout {
                Some(timeout) => handle.result_within(timeout),
                None => handle.result(),
            }
        })
    }
}
