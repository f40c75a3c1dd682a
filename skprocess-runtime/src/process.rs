//! The parent-side handle of a process: [`Skprocess`].

use std::future::Future;
use std::os::fd::{AsFd, OwnedFd};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::asyncs::{BackgroundHandle, ThreadFuture, spawn_blocking};
use crate::child::{ProcessStart, StartFrame};
use crate::config::ProcessConfig;
use crate::error::{ExitInfo, IpcError, ListenError, ProcessError, TellError};
use crate::inbox::{Inbox, decode_message};
use crate::lifecycle::{Lifecycle, ProcessTimers};
use crate::registry::Registered;
use crate::shm::StatusPage;
use crate::timing::Sktimer;
use crate::wire::frame::{MAX_FRAME, encode_frame, read_frame};
use crate::wire::hub::Expectation;
use crate::wire::{Conn, Frame, Kind, decode, encode};

/// After a `.timeout(..)` deadline, how long a stopped process may take to finish before it is
/// killed.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// A process: a value of a `#[skprocess]` type whose lifecycle runs in a child process.
///
/// ```no_run
/// use skprocess::prelude::*;
///
/// #[skprocess]
/// struct Counter {
///     target: usize,
///     count: usize,
/// }
///
/// #[skprocess]
/// impl Counter {
///     fn __config__(&self, config: &mut ProcessConfig) {
///         config.runs = Some(self.target);
///     }
///     fn __run__(&mut self) {
///         self.count += 1;
///     }
///     fn __result__(&mut self) -> usize {
///         self.count
///     }
/// }
///
/// fn main() -> Result<(), ProcessError> {
///     let process = Skprocess::new(Counter { target: 100, count: 0 });
///     process.start()?;
///     process.wait()?;
///     assert_eq!(process.result()?, 100);
///     Ok(())
/// }
/// ```
///
/// Every method takes `&self`, so a handle can be shared between threads. Dropping the last
/// handle of a running process kills the child and reaps it: no child outlives its handle.
pub struct Skprocess<P> {
    shared: Arc<Shared<P>>,
}

impl<P> std::fmt::Debug for Skprocess<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let child = self.shared.child.get();
        f.debug_struct("Skprocess")
            .field("type", &std::any::type_name::<P>())
            .field("pid", &child.map(|c| c.pid))
            .field("alive", &child.is_some_and(|c| !c.io.is_finished()))
            .finish()
    }
}

struct Shared<P> {
    pending: Mutex<Pending<P>>,
    child: OnceLock<ChildHandle>,
}

struct Pending<P> {
    process: Option<P>,
    config: ProcessConfig,
}

impl<P: Registered> Skprocess<P> {
    /// Wraps a process value; nothing runs until [`start`](Skprocess::start). The type's own
    /// configuration (attribute keys and `__config__`) is applied now.
    pub fn new(process: P) -> Skprocess<P> {
        let mut config = ProcessConfig::default();
        process.configure(&mut config);
        // Keep the registry entry linked (and check it is ours) before anything runs.
        std::hint::black_box(P::entry());
        Skprocess {
            shared: Arc::new(Shared {
                pending: Mutex::new(Pending {
                    process: Some(process),
                    config,
                }),
                child: OnceLock::new(),
            }),
        }
    }

    /// Starts the child process and returns at once.
    ///
    /// # Errors
    ///
    /// [`ProcessError::AlreadyStarted`] on a second call; [`ProcessError::InvalidConfig`],
    /// [`ProcessError::NotRegistered`], [`ProcessError::DuplicateName`] or
    /// [`ProcessError::Encode`] before anything is spawned; [`ProcessError::Spawn`] if the OS
    /// refuses; [`ProcessError::Ipc`] if the connection hub cannot be created.
    pub fn start(&self) -> Result<(), ProcessError> {
        let mut pending = lock(&self.shared.pending);
        if pending.process.is_none() {
            return Err(ProcessError::AlreadyStarted);
        }
        pending
            .config
            .validate()
            .map_err(|message| ProcessError::InvalidConfig { message })?;
        let entry = P::entry();
        let registered = crate::registry::lookup(entry.name())?;
        if !std::ptr::eq(registered, entry) {
            return Err(ProcessError::NotRegistered {
                name: entry.name().to_owned(),
            });
        }
        let process = pending.process.as_ref().expect("checked above");
        let state = encode(process).map_err(|message| ProcessError::Encode {
            what: format!("the process state (`{}`)", std::any::type_name::<P>()),
            message,
        })?;
        let start = StartFrame {
            entry: entry.name().to_owned(),
            body: encode(&ProcessStart {
                config: pending.config.clone(),
                state,
            })
            .map_err(|message| ProcessError::Encode {
                what: "the start message".into(),
                message,
            })?,
        };
        let start = encode_frame(
            Kind::Start,
            &encode(&start).map_err(|message| ProcessError::Encode {
                what: "the start message".into(),
                message,
            })?,
        )
        .map_err(ProcessError::Ipc)?;
        let child = ChildHandle::spawn(start)?;
        pending.process = None;
        let _ = self.shared.child.set(child);
        Ok(())
    }

    /// Starts the process, waits for it, and returns its result.
    ///
    /// # Errors
    ///
    /// Those of [`start`](Skprocess::start) and [`result`](Skprocess::result).
    pub fn run(&self) -> Result<P::Output, ProcessError> {
        self.start()?;
        self.result()
    }
}

impl<P: Lifecycle> Skprocess<P> {
    fn child(&self) -> Result<&ChildHandle, ProcessError> {
        self.shared.child.get().ok_or(ProcessError::NotStarted)
    }

    /// The configuration the process will run (or runs) with.
    pub fn config(&self) -> ProcessConfig {
        lock(&self.shared.pending).config.clone()
    }

    /// Overrides the process's configuration before it starts.
    ///
    /// # Errors
    ///
    /// [`ProcessError::AlreadyStarted`] once the process was started.
    pub fn configure(&self, f: impl FnOnce(&mut ProcessConfig)) -> Result<(), ProcessError> {
        let mut pending = lock(&self.shared.pending);
        if pending.process.is_none() {
            return Err(ProcessError::AlreadyStarted);
        }
        f(&mut pending.config);
        Ok(())
    }

    /// Waits until the child process has ended (whatever its outcome).
    ///
    /// # Errors
    ///
    /// [`ProcessError::NotStarted`].
    pub fn wait(&self) -> Result<(), ProcessError> {
        self.child()?.io.wait_finished(None);
        Ok(())
    }

    /// Waits at most `timeout` for the child to end; returns whether it has. The timeout never
    /// affects the process.
    ///
    /// # Errors
    ///
    /// [`ProcessError::NotStarted`].
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, ProcessError> {
        let deadline = Instant::now().checked_add(timeout);
        Ok(self.child()?.io.wait_finished(deadline))
    }

    /// Waits for the process's outcome and takes it: the value of `__result__`, or the value
    /// `__error__` returned, or the error. It returns as soon as the child delivered it (the
    /// child then exits on its own; [`wait`](Skprocess::wait) waits for that), or when the
    /// child ended without delivering anything.
    ///
    /// # Errors
    ///
    /// The process's own error ([`ProcessError::Section`], [`ProcessError::Timeout`], ... as
    /// handed on by `__error__`), [`ProcessError::Crashed`] if the child died without a result,
    /// [`ProcessError::Killed`] after [`kill`](Skprocess::kill), [`ProcessError::Decode`] if
    /// the result does not decode, [`ProcessError::ResultTaken`] on a second call.
    pub fn result(&self) -> Result<P::Output, ProcessError> {
        let child = self.child()?;
        child.io.wait_outcome(None);
        child.take_outcome::<P::Output>()
    }

    /// Asks the process to stop: it finishes its current section, skips the rest of the
    /// iteration, then runs `__onfinish__` and `__result__`. Returns at once. A no-op before
    /// `start` and after the end.
    pub fn stop(&self) {
        if let Some(child) = self.shared.child.get() {
            child.status.request_stop();
        }
    }

    /// Kills the child at once (SIGKILL) and reaps it. Its result is then
    /// [`ProcessError::Killed`] (unless it had already delivered one).
    ///
    /// # Errors
    ///
    /// [`ProcessError::NotStarted`].
    pub fn kill(&self) -> Result<(), ProcessError> {
        let child = self.child()?;
        child.kill();
        child
            .io
            .wait_finished(Instant::now().checked_add(Duration::from_secs(10)));
        Ok(())
    }

    /// Sends a message to the child, which receives it with
    /// [`Context::listen`](crate::Context::listen). Messages sent before the child has
    /// connected are queued and delivered in order.
    ///
    /// # Errors
    ///
    /// [`TellError::Encode`] if the value cannot be encoded (nothing is sent),
    /// [`TellError::Disconnected`] once the child is gone, [`TellError::NotStarted`].
    pub fn tell<T: Serialize>(&self, message: T) -> Result<(), TellError> {
        let child = self.shared.child.get().ok_or(TellError::NotStarted)?;
        let bytes = encode(&message).map_err(TellError::Encode)?;
        let frame =
            encode_frame(Kind::Tell, &bytes).map_err(|e| TellError::Encode(e.to_string()))?;
        child.io.send_or_queue(frame)
    }

    /// Waits for the child's next message (sent with [`Context::tell`](crate::Context::tell)).
    /// Messages the child sent before it ended stay readable after it ended.
    ///
    /// # Errors
    ///
    /// [`ListenError::Disconnected`] once the child is gone and nothing is queued,
    /// [`ListenError::Decode`] (holding the bytes) if the message is not a `T`,
    /// [`ListenError::NotStarted`].
    pub fn listen<T: DeserializeOwned>(&self) -> Result<T, ListenError> {
        self.listen_until(None)
    }

    /// Like [`listen`](Skprocess::listen), giving up after `timeout` with
    /// [`ListenError::Timeout`] (distinct from any message). The timeout never affects the
    /// process.
    pub fn listen_timeout<T: DeserializeOwned>(&self, timeout: Duration) -> Result<T, ListenError> {
        self.listen_until(Instant::now().checked_add(timeout))
    }

    /// Takes a queued message without waiting ([`ListenError::Timeout`] when none is queued).
    pub fn try_listen<T: DeserializeOwned>(&self) -> Result<T, ListenError> {
        self.listen_until(Some(Instant::now()))
    }

    fn listen_until<T: DeserializeOwned>(
        &self,
        deadline: Option<Instant>,
    ) -> Result<T, ListenError> {
        let child = self.shared.child.get().ok_or(ListenError::NotStarted)?;
        decode_message(child.io.inbox.recv(deadline)?)
    }

    /// Whether the child process is running (started and not yet ended).
    pub fn is_alive(&self) -> bool {
        self.shared
            .child
            .get()
            .is_some_and(|child| !child.io.is_finished())
    }

    /// The child's process id, once started.
    pub fn pid(&self) -> Option<u32> {
        self.shared.child.get().map(|child| child.pid)
    }

    /// The number of iterations the child has completed: read from memory the two processes
    /// share, so it is current while the process runs and costs the child nothing.
    pub fn current_run(&self) -> usize {
        self.shared
            .child
            .get()
            .map_or(0, |child| child.status.current_run())
    }

    /// The timers of every section, filled in the child and delivered with its outcome. Empty
    /// until then (and after a crash).
    pub fn timers(&self) -> ProcessTimers {
        self.shared
            .child
            .get()
            .and_then(|child| child.io.timers())
            .unwrap_or_default()
    }

    /// The timer of whole iterations (`timers().full_run`).
    pub fn process_timer(&self) -> Sktimer {
        self.timers().full_run
    }

    /// A deadline on [`run`](Deadline::run) and [`result`](Deadline::result): when it passes,
    /// the call returns [`ProcessError::ResultTimeout`], the process is asked to stop, and it is
    /// killed if it has not ended [`KILL_GRACE`] later.
    pub fn timeout(&self, timeout: Duration) -> Deadline<'_, P> {
        Deadline {
            handle: self,
            timeout,
        }
    }

    /// Runs the next call on a background thread: `process.background().run()` returns a
    /// [`BackgroundHandle`] whose `result()` blocks.
    pub fn background(&self) -> Background<P> {
        Background {
            handle: self.clone_handle(),
            timeout: None,
        }
    }

    /// Makes the next call a future, usable from any executor:
    /// `process.asynced().wait().await`.
    pub fn asynced(&self) -> Asynced<P> {
        Asynced {
            handle: self.clone_handle(),
            timeout: None,
        }
    }

    fn clone_handle(&self) -> Skprocess<P> {
        Skprocess {
            shared: Arc::clone(&self.shared),
        }
    }

    fn result_within(&self, timeout: Duration) -> Result<P::Output, ProcessError> {
        let child = self.child()?;
        if !child.io.wait_outcome(Instant::now().checked_add(timeout)) {
            child.stop_then_kill(KILL_GRACE);
            return Err(ProcessError::ResultTimeout { timeout });
        }
        child.take_outcome::<P::Output>()
    }
}

/// A call with a deadline: see [`Skprocess::timeout`].
pub struct Deadline<'a, P> {
    handle: &'a Skprocess<P>,
    timeout: Duration,
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

impl<P: Registered> Deadline<'_, P> {
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
    handle: Skprocess<P>,
    timeout: Option<Duration>,
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

impl<P: Registered> Background<P> {
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
    handle: Skprocess<P>,
    timeout: Option<Duration>,
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
        ListenFuture::new(&self.handle, Instant::now().checked_add(timeout))
    }
}

/// The next message from a child, as a future: see [`Asynced::listen`].
#[must_use = "futures do nothing unless polled"]
pub struct ListenFuture<T> {
    io: Option<Arc<IoShared>>,
    timer: Option<crate::timing::timer_thread::Sleep>,
    _message: std::marker::PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for ListenFuture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenFuture")
            .field("started", &self.io.is_some())
            .field("timed", &self.timer.is_some())
            .finish()
    }
}

impl<T> ListenFuture<T> {
    fn new<P>(handle: &Skprocess<P>, deadline: Option<Instant>) -> Self {
        ListenFuture {
            io: handle.shared.child.get().map(|child| Arc::clone(&child.io)),
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
        let Some(io) = &self.io else {
            return Poll::Ready(Err(ListenError::NotStarted));
        };
        match io.inbox.poll_recv(cx.waker()) {
            Some(Ok(bytes)) => return Poll::Ready(decode_message(bytes)),
            Some(Err(error)) => return Poll::Ready(Err(error)),
            None => {}
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

impl<P: Registered> Asynced<P> {
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

impl<P> Drop for Shared<P> {
    fn drop(&mut self) {
        if let Some(child) = self.child.get_mut() {
            child.shut_down();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// The non-generic part: one running child and its I/O thread.

/// One started child.
pub(crate) struct ChildHandle {
    pid: u32,
    status: Arc<StatusPage>,
    io: Arc<IoShared>,
    thread: Option<JoinHandle<()>>,
}

/// State shared between a handle and its child's I/O thread.
pub(crate) struct IoShared {
    pidfd: OwnedFd,
    conn: Arc<Mutex<ConnSlot>>,
    inbox: Inbox,
    done: Mutex<Done>,
    done_cond: Condvar,
    killed: AtomicBool,
}

enum ConnSlot {
    /// Not connected yet: the status page's descriptor, then frames to send, once connected.
    Connecting(OwnedFd, Vec<Vec<u8>>),
    Connected(Arc<Conn>),
    Closed,
}

#[derive(Default)]
struct Done {
    finished: bool,
    delivered: Option<Delivered>,
    timers: Option<ProcessTimers>,
    exit: Option<ExitInfo>,
    taken: bool,
}

enum Delivered {
    /// The encoded result value (after the timers).
    Value(Vec<u8>),
    Error(ProcessError),
}

impl ChildHandle {
    fn spawn(start_frame: Vec<u8>) -> Result<ChildHandle, ProcessError> {
        let (status, status_fd) = StatusPage::create().map_err(ProcessError::Spawn)?;
        let status = Arc::new(status);
        let conn_slot = Arc::new(Mutex::new(ConnSlot::Connecting(
            status_fd,
            vec![start_frame],
        )));
        let greeter_slot = Arc::clone(&conn_slot);
        let greeter: crate::wire::hub::Greeter =
            // A failed send shows up as the reader's end of stream; nothing to do here.
            Box::new(move |conn: &Arc<Conn>| drop(connect_slot(&greeter_slot, conn)));
        let launched = crate::launch::launch(Some(greeter))?;
        let pid = launched.pid;
        let io = Arc::new(IoShared {
            pidfd: launched.pidfd,
            conn: conn_slot,
            inbox: Inbox::default(),
            done: Mutex::new(Done::default()),
            done_cond: Condvar::new(),
            killed: AtomicBool::new(false),
        });
        let thread_io = Arc::clone(&io);
        let (child, expectation) = (launched.child, launched.expectation);
        let thread = std::thread::Builder::new()
            .name(format!("skprocess-io-{pid}"))
            .spawn(move || io_main(&thread_io, expectation, child));
        let thread = match thread {
            Ok(thread) => thread,
            Err(e) => {
                io.signal(libc::SIGKILL);
                return Err(ProcessError::Spawn(e));
            }
        };
        Ok(ChildHandle {
            pid,
            status,
            io,
            thread: Some(thread),
        })
    }

    fn kill(&self) {
        self.io.killed.store(true, Ordering::Release);
        self.io.signal(libc::SIGKILL);
    }

    /// Asks the child to stop; a watcher kills it if it has not ended after `grace`.
    fn stop_then_kill(&self, grace: Duration) {
        self.status.request_stop();
        let io = Arc::clone(&self.io);
        let _ = std::thread::Builder::new()
            .name("skprocess-grace".into())
            .spawn(move || {
                if !io.wait_finished(Instant::now().checked_add(grace)) {
                    io.killed.store(true, Ordering::Release);
                    io.signal(libc::SIGKILL);
                }
            });
    }

    fn take_outcome<O: DeserializeOwned>(&self) -> Result<O, ProcessError> {
        let mut done = lock(&self.io.done);
        if done.taken {
            return Err(ProcessError::ResultTaken);
        }
        done.taken = true;
        match done.delivered.take() {
            Some(Delivered::Value(bytes)) => {
                decode(&bytes).map_err(|message| ProcessError::Decode {
                    what: format!("the result (`{}`)", std::any::type_name::<O>()),
                    message,
                })
            }
            Some(Delivered::Error(error)) => Err(error),
            None if self.io.killed.load(Ordering::Acquire) => {
                Err(ProcessError::Killed { pid: self.pid })
            }
            None => Err(ProcessError::Crashed {
                pid: self.pid,
                exit: done.exit.clone().unwrap_or(ExitInfo::Unknown),
                current_run: self.status.current_run(),
            }),
        }
    }

    /// Called when the last handle goes: a child that is still running is killed (after a short
    /// wait if it already delivered its outcome and is merely exiting), and reaped.
    fn shut_down(&mut self) {
        if !self.io.is_finished() {
            let delivered = lock(&self.io.done).delivered.is_some();
            if !delivered
                || !self
                    .io
                    .wait_finished(Instant::now().checked_add(Duration::from_secs(1)))
            {
                self.kill();
            }
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl IoShared {
    fn signal(&self, signal: i32) {
        let _ = crate::sys::pidfd_send_signal(self.pidfd.as_fd(), signal);
    }

    fn is_finished(&self) -> bool {
        lock(&self.done).finished
    }

    /// Waits until the child ended and was reaped, or `deadline` passes. Returns whether it
    /// ended.
    fn wait_finished(&self, deadline: Option<Instant>) -> bool {
        self.wait_until(deadline, |done| done.finished)
    }

    /// Waits until the child delivered its outcome or ended, or `deadline` passes. Returns
    /// whether one of the two happened.
    fn wait_outcome(&self, deadline: Option<Instant>) -> bool {
        self.wait_until(deadline, |done| {
            done.finished || done.delivered.is_some() || done.taken
        })
    }

    /// Waits on the completion state until `ready` holds or `deadline` passes.
    fn wait_until(&self, deadline: Option<Instant>, ready: impl Fn(&Done) -> bool) -> bool {
        let mut done = lock(&self.done);
        while !ready(&done) {
            match deadline {
                None => done = self.done_cond.wait(done).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    done = self
                        .done_cond
                        .wait_timeout(done, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        true
    }

    fn timers(&self) -> Option<ProcessTimers> {
        lock(&self.done).timers.clone()
    }

    fn send_or_queue(&self, frame: Vec<u8>) -> Result<(), TellError> {
        let mut slot = lock(&self.conn);
        match &mut *slot {
            ConnSlot::Connecting(_, queue) => {
                queue.push(frame);
                Ok(())
            }
            ConnSlot::Connected(conn) => {
                let conn = Arc::clone(conn);
                drop(slot);
                conn.send_raw(&frame).map_err(|_| TellError::Disconnected)
            }
            ConnSlot::Closed => Err(TellError::Disconnected),
        }
    }

    fn deliver(&self, delivered: Delivered, timers: Option<ProcessTimers>) {
        let mut done = lock(&self.done);
        if done.delivered.is_none() && !done.taken {
            done.delivered = Some(delivered);
            done.timers = timers;
            drop(done);
            self.done_cond.notify_all();
        }
    }
}

/// The I/O thread of one child: waits for it to connect, sends the start frame and any queued
/// messages, reads its frames until it hangs up, then reaps it.
fn io_main(io: &IoShared, expectation: Expectation, child: Child) {
    match crate::launch::await_connection(&io.pidfd, &expectation) {
        Ok(conn) => {
            drop(expectation);
            // Normally the hub's greeter already sent the start frame and queued messages.
            let connected = connect_slot(&io.conn, &conn);
            match connected {
                Ok(()) => read_frames(io, &conn),
                Err(e) => io.deliver(Delivered::Error(ProcessError::Ipc(e)), None),
            }
            *lock(&io.conn) = ConnSlot::Closed;
            conn.shutdown();
        }
        Err(failure) => {
            *lock(&io.conn) = ConnSlot::Closed;
            if let Some(error) = failure.into_error() {
                io.deliver(Delivered::Error(error), None);
            }
        }
    }
    io.inbox.close();
    // The child hung up or died; it should be gone at once. Never wait forever on it.
    let exit =
        crate::launch::reap(child, &io.pidfd, Duration::from_secs(5)).map(ExitInfo::from_status);
    let mut done = lock(&io.done);
    done.exit = exit;
    done.finished = true;
    drop(done);
    io.done_cond.notify_all();
}

/// Marks the connection as up: sends the frames queued while the child was starting (the start
/// frame first), in order, under the slot's lock so that no `tell` can overtake them. Runs once
/// (on the hub's thread, right after authentication); later calls do nothing.
fn connect_slot(slot: &Mutex<ConnSlot>, conn: &Arc<Conn>) -> Result<(), IpcError> {
    let mut slot = lock(slot);
    let ConnSlot::Connecting(..) = &*slot else {
        return Ok(());
    };
    let ConnSlot::Connecting(status_fd, queued) =
        std::mem::replace(&mut *slot, ConnSlot::Connected(Arc::clone(conn)))
    else {
        unreachable!("checked above");
    };
    conn.send_with_fd(Kind::Status, &[], status_fd.as_fd())?;
    queued.iter().try_for_each(|frame| conn.send_raw(frame))
}

fn read_frames(io: &IoShared, conn: &Conn) {
    let mut reader = conn.reader();
    loop {
        let frame = match read_frame(&mut reader, MAX_FRAME) {
            Ok(Some(frame)) => frame,
            Ok(None) => return,
            Err(error) => {
                // A child that sends garbage is broken: report it and put it down.
                if !io.killed.load(Ordering::Acquire) {
                    io.deliver(Delivered::Error(ProcessError::Ipc(error)), None);
                    io.signal(libc::SIGKILL);
                }
                return;
            }
        };
        match frame {
            Frame {
                kind: Kind::Tell,
                payload,
            } => io.inbox.push(payload),
            Frame {
                kind: Kind::Result,
                payload,
            } => match decode_prefix::<ProcessTimers>(&payload) {
                Ok((timers, used)) => {
                    io.deliver(Delivered::Value(payload[used..].to_vec()), Some(timers))
                }
                Err(message) => io.deliver(
                    Delivered::Error(ProcessError::Decode {
                        what: "the result's timers".into(),
                        message,
                    }),
                    None,
                ),
            },
            Frame {
                kind: Kind::Error,
                payload,
            } => match decode::<(ProcessTimers, ProcessError)>(&payload) {
                Ok((timers, error)) => io.deliver(Delivered::Error(error), Some(timers)),
                Err(message) => io.deliver(
                    Delivered::Error(ProcessError::Decode {
                        what: "the child's error".into(),
                        message,
                    }),
                    None,
                ),
            },
            Frame {
                kind: Kind::SetupFailed,
                payload,
            } => {
                let message = decode::<String>(&payload)
                    .unwrap_or_else(|_| "the child could not start its work".into());
                io.deliver(Delivered::Error(ProcessError::ChildSetup { message }), None);
            }
            Frame { kind, .. } => {
                io.deliver(
                    Delivered::Error(ProcessError::Ipc(IpcError::Malformed(format!(
                        "unexpected {kind:?} frame from a process child"
                    )))),
                    None,
                );
                io.signal(libc::SIGKILL);
                return;
            }
        }
    }
}

/// Decodes a value at the start of `bytes`, returning it and how many bytes it took.
fn decode_prefix<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, usize), String> {
    crate::wire::codec::decode_prefix(bytes)
}
