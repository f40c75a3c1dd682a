//! The parent-side handle of a process: [`Skprocess`].

pub(crate) mod entry;
mod in_process;
mod io;
mod modifiers;

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use self::in_process::InProcess;
pub use self::modifiers::{Asynced, Background, Deadline, ListenFuture};

use self::io::ChildHandle;
pub(crate) use self::io::tell_error;
use crate::buffer::Outgoing;
use crate::config::ProcessConfig;
use crate::error::{ListenError, ProcessError, TellError};
use crate::inbox::decode_message;
use crate::lifecycle::{Lifecycle, ProcessTimers};
use crate::registry::{ProcessEntry, Registered};
use crate::sync::{deadline_in, lock};
use crate::timing::Sktimer;
use crate::wire::encode;
use crate::wire::protocol::ProcessStart;

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
    entry: &'static ProcessEntry,
    pending: Mutex<Pending<P>>,
    child: OnceLock<ChildHandle>,
}

struct Pending<P> {
    process: Option<P>,
    config: ProcessConfig,
}

impl<P: Lifecycle> Skprocess<P> {
    /// Wraps a process value; nothing runs until [`start`](Skprocess::start). The type's own
    /// configuration (attribute keys and `__config__`) is applied now.
    ///
    /// `P` must be registered: `#[skprocess]` registers non-generic types; an instantiation of
    /// a generic one needs [`register!`](crate::register) (in any crate of the program).
    pub fn new<M>(process: P) -> Skprocess<P>
    where
        P: Registered<M>,
    {
        let mut config = ProcessConfig::default();
        process.configure(&mut config);
        Skprocess {
            shared: Arc::new(Shared {
                // Referencing the entry keeps it linked in.
                entry: P::entry(),
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
    /// [`ProcessError::Encode`] (also for a state larger than the frame limit) before anything
    /// is spawned; [`ProcessError::Spawn`] if the OS refuses; [`ProcessError::Ipc`] if the
    /// connection hub cannot be created.
    pub fn start(&self) -> Result<(), ProcessError> {
        let mut pending = lock(&self.shared.pending);
        let process = pending
            .process
            .as_ref()
            .ok_or(ProcessError::AlreadyStarted)?;
        let Encoded {
            frame_limit,
            start,
            descriptors,
            outgoing,
        } = encode_start(self.shared.entry, process, &pending.config)?;
        // Nothing was spawned: the value's handovers stay usable.
        let child = ChildHandle::spawn(start, frame_limit, descriptors, self.shared.entry.name())
            .inspect_err(|_| outgoing.unsent())?;
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
    /// The I/O state of the child, once started.
    fn io(&self) -> Option<Arc<io::IoShared>> {
        self.shared.child.get().map(|child| Arc::clone(&child.io))
    }

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
        Ok(self.child()?.io.wait_finished(deadline_in(timeout)))
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

    /// Waits at most `timeout` for the process's outcome: `Some` holds it, as
    /// [`result`](Skprocess::result) gives it (and takes it); `None` when it has not been
    /// delivered yet. The wait never affects the process: it keeps running, and `result`
    /// or `result_timeout` can wait again. (`timeout(d).result()` is different: a deadline
    /// that stops the process.)
    ///
    /// "Not yet" is `None` rather than an error, because the process's own errors include
    /// timeouts of its own ([`ProcessError::Timeout`], [`ProcessError::ResultTimeout`] as
    /// handed on by `__error__`).
    pub fn result_timeout(&self, timeout: Duration) -> Option<Result<P::Output, ProcessError>> {
        let child = match self.child() {
            Ok(child) => child,
            Err(error) => return Some(Err(error)),
        };
        if !child.io.wait_outcome(deadline_in(timeout)) {
            return None;
        }
        Some(child.take_outcome::<P::Output>())
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
        child.io.wait_finished(deadline_in(Duration::from_secs(10)));
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
        let message = crate::wire::encode(&message).map_err(TellError::Encode)?;
        child.io.send_or_queue(message)
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
        self.listen_until(deadline_in(timeout))
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

    /// Leaves Ctrl+C (with [`graceful_ctrl_c`](crate::graceful_ctrl_c)) to the owner of this
    /// child, which interrupts it its own way (an async pool's worker: the pool cancels its
    /// tasks and keeps the worker).
    #[cfg(feature = "tokio")]
    pub(crate) fn leave_ctrl_c_to_owner(&self) {
        if let Some(child) = self.shared.child.get() {
            crate::signals::untrack(&child.status);
        }
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
    /// [`BackgroundHandle`](crate::BackgroundHandle) whose `result()` blocks.
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

    pub(crate) fn clone_handle(&self) -> Skprocess<P> {
        Skprocess {
            shared: Arc::clone(&self.shared),
        }
    }

    pub(crate) fn result_within(&self, timeout: Duration) -> Result<P::Output, ProcessError> {
        let child = self.child()?;
        if !child.io.wait_outcome(deadline_in(timeout)) {
            child.stop_then_kill(KILL_GRACE);
            return Err(ProcessError::ResultTimeout { timeout });
        }
        child.take_outcome::<P::Output>()
    }
}

/// A process value and its configuration, encoded as its child receives them.
struct Encoded {
    /// The session's frame limit.
    frame_limit: u32,
    /// The `Start` frame.
    start: Vec<u8>,
    /// The descriptors of the buffers in the value, in order.
    descriptors: Vec<OwnedFd>,
    /// The value's handovers, to be set back to unsent if nothing runs after all.
    outgoing: Outgoing,
}

/// Everything a start does before anything runs: checks the configuration and the
/// registration, and encodes the value into the `Start` frame (the handovers of a value that
/// fails to encode are set back to unsent).
fn encode_start<P: Lifecycle>(
    entry: &'static ProcessEntry,
    process: &P,
    config: &ProcessConfig,
) -> Result<Encoded, ProcessError> {
    let frame_limit = config
        .validate()
        .map_err(|message| ProcessError::InvalidConfig { message })?;
    let registered = crate::registry::lookup(entry.name())?;
    if !std::ptr::eq(registered, entry) {
        return Err(ProcessError::NotRegistered {
            name: entry.name().to_owned(),
        });
    }
    let (state, mut outgoing) = crate::buffer::collecting(|| encode(process));
    let descriptors = std::mem::take(&mut outgoing.fds);
    let state_error = |message| ProcessError::Encode {
        what: format!("the process state (`{}`)", std::any::type_name::<P>()),
        message,
    };
    let start = state
        .map_err(state_error)
        .and_then(|state| {
            encode(&ProcessStart {
                config: config.clone(),
                state,
                descriptors: u32::try_from(descriptors.len()).unwrap_or(u32::MAX),
            })
            .map_err(|message| ProcessError::Encode {
                what: "the start message".into(),
                message,
            })
        })
        .and_then(|body| {
            crate::launch::start_frame(entry.name(), body, frame_limit).map_err(|error| match error
            {
                ProcessError::Ipc(crate::IpcError::FrameTooLarge { len, max }) => {
                    state_error(format!(
                        "the start message of {len} bytes exceeds the frame limit of {max} \
                             bytes (`ProcessConfig::frame_limit`)"
                    ))
                }
                other => other,
            })
        })
        .inspect_err(|_| outgoing.unsent())?;
    Ok(Encoded {
        frame_limit,
        start,
        descriptors,
        outgoing,
    })
}

impl<P> Drop for Shared<P> {
    fn drop(&mut self) {
        if let Some(child) = self.child.get_mut() {
            child.shut_down();
        }
    }
}
