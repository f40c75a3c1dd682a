//! [`InProcess`]: a process type's whole lifecycle on a thread of this process, for unit tests.
//!
//! Everything that decides a process's outcome runs as it does for a child: the value and its
//! configuration are encoded into the same `Start` frame and decoded from it, the same
//! [`Engine`] runs the lifecycle, and the outcome is encoded into the same `Result` or `Error`
//! frame, checked against the frame limit, and decoded as the handle of a child decodes it.
//! Only the transport differs: `tell` and `listen` go through in-memory queues
//! ([`memory`](crate::inbox::memory)) instead of a shared-memory ring, and there is no socket,
//! no child and no exit status.

use std::os::fd::OwnedFd;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::entry::{decode_start_body, decode_state, send_outcome};
use super::io::Delivered;
use super::{Encoded, Pending, encode_start, tell_error};
use crate::config::ProcessConfig;
use crate::engine::Engine;
use crate::error::{ExitInfo, IpcError, ListenError, ProcessError, TellError};
use crate::exit::code;
use crate::inbox::memory::{self, MemoryEnd};
use crate::inbox::{Endpoint, Mailbox, decode_message};
use crate::lifecycle::{ChildLink, Lifecycle, ProcessTimers};
use crate::registry::{ProcessEntry, Registered, report_setup_failure_with};
use crate::shm::StatusPage;
use crate::sync::{deadline_in, lock, wait_until};
use crate::timing::Sktimer;
use crate::wire::frame::{check_len, read_frame};
use crate::wire::protocol::{Kind, StartMessage};
use crate::wire::{Frame, decode, encode};

/// A process whose whole lifecycle runs on a thread of the current process: a unit-test
/// double of [`Skprocess`](crate::Skprocess) that returns exactly what `Skprocess::run()`
/// would.
///
/// Lives, section timeouts, `runs` and `join_in`, `stop`, the timers, `__error__`'s value as the
/// result and every typed [`ProcessError`] behave as they do in a child, because the same
/// engine runs them. `tell` and `listen` go through an in-memory channel, in order and with the
/// same [`TellError`] and [`ListenError`] outcomes. Nothing is spawned, so the lifecycle methods
/// run under your debugger's breakpoints, and `cargo test` captures what they print.
///
/// ```
/// use skprocess::prelude::*;
///
/// #[skprocess(runs = 3)]
/// struct Doubler {
///     seen: Vec<u32>,
/// }
///
/// #[skprocess]
/// impl Doubler {
///     fn __run__(&mut self, cx: &mut Context) -> Result<(), ListenError> {
///         let n: u32 = cx.listen()?;
///         self.seen.push(n);
///         let _ = cx.tell(n * 2);
///         Ok(())
///     }
///
///     fn __result__(&mut self) -> Vec<u32> {
///         self.seen.clone()
///     }
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let process = InProcess::new(Doubler { seen: Vec::new() });
/// process.start()?;
/// for n in [1, 2, 3] {
///     process.tell(n)?;
///     assert_eq!(process.listen::<u32>()?, n * 2);
/// }
/// assert_eq!(process.result()?, vec![1, 2, 3]);
/// assert_eq!(process.timers().run.num_times(), 3);
/// # Ok(())
/// # }
/// ```
///
/// # What is the same as in a child
///
/// - **The value crosses the codec.** `start` encodes the value exactly as
///   [`Skprocess::start`](crate::Skprocess::start) does and the engine thread decodes it, so
///   the lifecycle runs on a copy made by serde, not on the value you passed: a field that
///   `#[serde(skip)]` leaves out starts at its default, a value over the frame limit is
///   [`ProcessError::Encode`], and a state that does not decode is
///   [`ProcessError::ChildSetup`], as in production. This is deliberate: a test that passes
///   here must not pass only because nothing was serialized.
/// - **Messages cross the codec.** `tell` (both ways) encodes, `listen` decodes, and the frame
///   limit applies, so a message type that could not cross between processes fails here the
///   same way ([`TellError::Encode`], [`ListenError::Decode`]). A tell waits for room as long
///   as a child's would ([`TELL_TIMEOUT`](crate::TELL_TIMEOUT)) when 256 KiB are queued
///   unread.
/// - **The outcome crosses the codec.** The result, or the error with its timers, is encoded
///   into the frame a child would send and decoded from it: a result that cannot be encoded or
///   is over the frame limit becomes the same [`ProcessError::Encode`], and an error arrives as
///   its serialized form.
/// - **Panics are failures.** A lifecycle method that panics fails its section
///   ([`ProcessError::Section`] with the panic's message and location), exactly as in a child;
///   the test does not abort. (With `panic = "abort"` a panic ends the whole test binary, as it
///   ends a child.)
///
/// # What differs
///
/// - **There is no process**, so there is no `kill` and no `pid`. A lifecycle that does not
///   stop cannot be put down: [`stop`](InProcess::stop) asks it to, as it asks a child, but a
///   section that never returns keeps its thread. Bound your waits with
///   [`wait_timeout`](InProcess::wait_timeout) and [`listen_timeout`](InProcess::listen_timeout).
/// - **An abandoned section stays in this process.** When a section runs past its timeout the
///   engine abandons its thread, restores the state from before the section and carries on, as
///   in a child; the outcome is the same. But a child exits at the end and takes the abandoned
///   thread with it; here the thread keeps running until its method returns (its `tell` and
///   `listen` already fail with `Disconnected`). A timed-out method that loops forever keeps a
///   thread busy until the test binary ends.
/// - **A panic outside every lifecycle method** (in a `Serialize` implementation, say) ends a
///   child; here it ends the engine's thread, and [`result`](InProcess::result) returns
///   [`ProcessError::Crashed`] with this process's id and exit code 101, which is what the
///   child's death would have reported.
/// - **Dropping the last handle** asks the lifecycle to stop and closes the channel, as a
///   parent that goes away does: the lifecycle's `tell` fails with `Disconnected` (which is a
///   stop), and its `listen` with [`ListenError::Disconnected`] once nothing is queued. The drop
///   does not wait for the thread to end.
/// - **Ctrl+C**: with [`graceful_ctrl_c`](crate::graceful_ctrl_c) a SIGINT stops in-process
///   runs as it stops children. Without it, SIGINT ends the whole program, this run included.
/// - Not provided: `timeout`, `background` and `asynced` (a test can bound its calls with the
///   `_timeout` methods, and run a handle on a thread of its own: `InProcess` is `Sync`).
///
/// The lifecycle runs on a thread named `skprocess-in-process` (sections with a timeout on
/// `skprocess-section` threads), with the 8 MiB stack a child's work thread has.
pub struct InProcess<P> {
    shared: Arc<Shared<P>>,
}

impl<P> std::fmt::Debug for InProcess<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let run = self.shared.run.get();
        f.debug_struct("InProcess")
            .field("type", &std::any::type_name::<P>())
            .field("started", &run.is_some())
            .field("alive", &run.is_some_and(|r| !r.is_finished()))
            .finish()
    }
}

struct Shared<P> {
    entry: &'static ProcessEntry,
    pending: Mutex<Pending<P>>,
    run: OnceLock<Arc<Run>>,
}

/// A started run: what the handle and the engine's thread share.
struct Run {
    status: Arc<StatusPage>,
    /// The handle's end of the channel: `tell` sends on it, `inbox` reads it.
    end: Arc<MemoryEnd>,
    inbox: Mailbox,
    done: Mutex<Done>,
    done_cond: Condvar,
}

#[derive(Default)]
struct Done {
    /// The engine's thread has ended.
    finished: bool,
    delivered: Option<Delivered>,
    timers: Option<ProcessTimers>,
    /// The exit code a child would have left with.
    exit: Option<i32>,
    taken: bool,
}

impl<P: Lifecycle> InProcess<P> {
    /// Wraps a process value; nothing runs until [`start`](InProcess::start). The type's own
    /// configuration (attribute keys and `__config__`) is applied now, as
    /// [`Skprocess::new`](crate::Skprocess::new) applies it.
    ///
    /// `P` must be registered, as for `Skprocess`: `#[skprocess]` registers non-generic types;
    /// an instantiation of a generic one needs [`register!`](crate::register).
    pub fn new<M>(process: P) -> InProcess<P>
    where
        P: Registered<M>,
    {
        let mut config = ProcessConfig::default();
        process.configure(&mut config);
        InProcess {
            shared: Arc::new(Shared {
                entry: P::entry(),
                pending: Mutex::new(Pending {
                    process: Some(process),
                    config,
                }),
                run: OnceLock::new(),
            }),
        }
    }

    /// Starts the lifecycle on a new thread of this process and returns at once.
    ///
    /// # Errors
    ///
    /// As [`Skprocess::start`](crate::Skprocess::start): [`ProcessError::AlreadyStarted`],
    /// [`ProcessError::InvalidConfig`], [`ProcessError::NotRegistered`],
    /// [`ProcessError::DuplicateName`], [`ProcessError::Encode`] (also for a state larger than
    /// the frame limit); [`ProcessError::Spawn`] if the thread (or the status page) cannot be
    /// created.
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
        let (handle_end, engine_end) = memory::pair(frame_limit);
        let handle_end = Arc::new(handle_end);
        let inbox = Mailbox::pending();
        inbox.open(Endpoint::Memory(Arc::clone(&handle_end)));
        let status = StatusPage::create()
            .map(|(page, _fd)| Arc::new(page))
            .map_err(ProcessError::Spawn)
            .inspect_err(|_| outgoing.unsent())?;
        let run = Arc::new(Run {
            status: Arc::clone(&status),
            end: handle_end,
            inbox,
            done: Mutex::new(Done::default()),
            done_cond: Condvar::new(),
        });
        crate::engine::install_panic_hook();
        let engine_run = Arc::clone(&run);
        std::thread::Builder::new()
            .name("skprocess-in-process".into())
            .stack_size(crate::engine::WORK_STACK)
            .spawn(move || engine_main::<P>(&engine_run, &start, descriptors, engine_end))
            .map_err(ProcessError::Spawn)
            .inspect_err(|_| outgoing.unsent())?;
        crate::signals::track(Arc::downgrade(&status) as _);
        pending.process = None;
        let _ = self.shared.run.set(run);
        Ok(())
    }

    /// Starts the lifecycle, waits for it, and returns its result: what
    /// [`Skprocess::run`](crate::Skprocess::run) returns for the same value.
    ///
    /// # Errors
    ///
    /// Those of [`start`](InProcess::start) and [`result`](InProcess::result).
    pub fn run(&self) -> Result<P::Output, ProcessError> {
        self.start()?;
        self.result()
    }

    fn started(&self) -> Result<&Run, ProcessError> {
        self.shared
            .run
            .get()
            .map(|run| &**run)
            .ok_or(ProcessError::NotStarted)
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

    /// Waits until the lifecycle has ended (whatever its outcome).
    ///
    /// # Errors
    ///
    /// [`ProcessError::NotStarted`].
    pub fn wait(&self) -> Result<(), ProcessError> {
        self.started()?.wait_finished(None);
        Ok(())
    }

    /// Waits at most `timeout` for the lifecycle to end; returns whether it has. The timeout
    /// never affects the process.
    ///
    /// # Errors
    ///
    /// [`ProcessError::NotStarted`].
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, ProcessError> {
        Ok(self.started()?.wait_finished(deadline_in(timeout)))
    }

    /// Waits for the process's outcome and takes it: the value of `__result__`, or the value
    /// `__error__` returned, or the error, exactly as
    /// [`Skprocess::result`](crate::Skprocess::result) would return it.
    ///
    /// # Errors
    ///
    /// The process's own error ([`ProcessError::Section`], [`ProcessError::Timeout`], ... as
    /// handed on by `__error__`), [`ProcessError::Encode`] for a result that cannot be encoded
    /// or is over the frame limit, [`ProcessError::Decode`] if the result does not decode,
    /// [`ProcessError::ChildSetup`] if the state does not decode,
    /// [`ProcessError::Crashed`] after a panic outside every lifecycle method,
    /// [`ProcessError::ResultTaken`] on a second call, [`ProcessError::NotStarted`].
    pub fn result(&self) -> Result<P::Output, ProcessError> {
        let run = self.started()?;
        let mut done = wait_until(&run.done_cond, lock(&run.done), None, |done| {
            done.finished || done.delivered.is_some() || done.taken
        })
        .0;
        if done.taken {
            return Err(ProcessError::ResultTaken);
        }
        done.taken = true;
        match done.delivered.take() {
            Some(delivered) => delivered.into_result(),
            None => Err(ProcessError::Crashed {
                pid: std::process::id(),
                exit: done.exit.map_or(ExitInfo::Unknown, ExitInfo::Code),
                current_run: run.status.current_run(),
            }),
        }
    }

    /// Asks the process to stop: it finishes its current section, skips the rest of the
    /// iteration, then runs `__onfinish__` and `__result__`. Returns at once. A no-op before
    /// `start` and after the end.
    pub fn stop(&self) {
        if let Some(run) = self.shared.run.get() {
            run.status.request_stop();
        }
    }

    /// Sends a message to the lifecycle, which receives it with
    /// [`Context::listen`](crate::Context::listen). The message is encoded as for a child.
    ///
    /// # Errors
    ///
    /// [`TellError::Encode`] if the value cannot be encoded or is over the frame limit (nothing
    /// is sent), [`TellError::Disconnected`] once the lifecycle has ended,
    /// [`TellError::Full`] if 256 KiB stayed queued unread for
    /// [`TELL_TIMEOUT`](crate::TELL_TIMEOUT), [`TellError::NotStarted`].
    pub fn tell<T: Serialize>(&self, message: T) -> Result<(), TellError> {
        let run = self.shared.run.get().ok_or(TellError::NotStarted)?;
        let message = encode(&message).map_err(TellError::Encode)?;
        run.end
            .send(&message, deadline_in(crate::error::TELL_TIMEOUT))
            .map_err(tell_error)
    }

    /// Waits for the lifecycle's next message (sent with
    /// [`Context::tell`](crate::Context::tell)). Messages told before the lifecycle ended stay
    /// readable after it ended.
    ///
    /// # Errors
    ///
    /// [`ListenError::Disconnected`] once the lifecycle has ended and nothing is queued,
    /// [`ListenError::Decode`] (holding the bytes) if the message is not a `T`,
    /// [`ListenError::NotStarted`].
    pub fn listen<T: DeserializeOwned>(&self) -> Result<T, ListenError> {
        self.listen_until(None)
    }

    /// Like [`listen`](InProcess::listen), giving up after `timeout` with
    /// [`ListenError::Timeout`]. The timeout never affects the process.
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
        let run = self.shared.run.get().ok_or(ListenError::NotStarted)?;
        decode_message(run.inbox.recv(deadline)?)
    }

    /// Whether the lifecycle is running (started and not yet ended).
    pub fn is_alive(&self) -> bool {
        self.shared.run.get().is_some_and(|run| !run.is_finished())
    }

    /// The number of iterations the lifecycle has completed (current while it runs).
    pub fn current_run(&self) -> usize {
        self.shared
            .run
            .get()
            .map_or(0, |run| run.status.current_run())
    }

    /// The timers of every section, delivered with the outcome as a child delivers them.
    /// Empty until then (and after a crash).
    pub fn timers(&self) -> ProcessTimers {
        self.shared
            .run
            .get()
            .and_then(|run| lock(&run.done).timers.clone())
            .unwrap_or_default()
    }

    /// The timer of whole iterations (`timers().full_run`).
    pub fn process_timer(&self) -> Sktimer {
        self.timers().full_run
    }
}

impl Run {
    fn is_finished(&self) -> bool {
        lock(&self.done).finished
    }

    fn wait_finished(&self, deadline: Option<Instant>) -> bool {
        wait_until(&self.done_cond, lock(&self.done), deadline, |done| {
            done.finished
        })
        .1
    }
}

impl<P> Drop for Shared<P> {
    fn drop(&mut self) {
        // As a parent that goes away: the lifecycle is asked to stop, and its tells and listens
        // find nobody there (which stops it too).
        if let Some(run) = self.run.get() {
            run.status.request_stop();
            run.end.close();
        }
    }
}

/// The engine's thread: does what a child does with the `Start` frame, runs the lifecycle, and
/// hands the handle the outcome frame a child would send.
fn engine_main<P: Lifecycle>(
    run: &Run,
    start: &[u8],
    descriptors: Vec<OwnedFd>,
    engine_end: MemoryEnd,
) {
    let engine_end = Arc::new(engine_end);
    let mut delivered = None;
    let exit = panic::catch_unwind(AssertUnwindSafe(|| {
        // The frame was built by `start` a moment ago, so it reads; were it not to, the error
        // is reported like any other set-up failure.
        let (frame_limit, body) = match read_start(start) {
            Ok(read) => read,
            Err(error) => (u32::MAX, Err(error)),
        };
        // What the child would send, checked against the frame limit as its connection checks
        // it; the handle then reads it as it reads a child's frame.
        let send = |kind: Kind, bytes: &[u8]| -> Result<(), IpcError> {
            check_len(bytes.len(), frame_limit)?;
            delivered = Some(Delivered::from_frame(kind, bytes));
            Ok(())
        };
        let received = body
            .and_then(|body| decode_start_body(&body))
            .and_then(|start| Ok((decode_state::<P>(&start.state, descriptors)?, start.config)));
        match received {
            Ok((state, config)) => {
                let inbox = Mailbox::pending();
                inbox.open(Endpoint::Memory(Arc::clone(&engine_end)));
                let link = Arc::new(ChildLink::new(None, inbox, Arc::clone(&run.status)));
                let (outcome, timers) = Engine::new(state, config, link).run();
                // The lifecycle is over: the handle reads what it told, then `Disconnected`.
                engine_end.close();
                send_outcome(send, outcome, timers);
                code::OK
            }
            Err(error) => report_setup_failure_with(send, error),
        }
    }))
    .unwrap_or(code::RUNTIME_PANIC);
    engine_end.close();
    let mut done = lock(&run.done);
    if let Some((delivered, timers)) = delivered {
        done.delivered = Some(delivered);
        done.timers = timers;
    }
    done.exit = Some(exit);
    done.finished = true;
    drop(done);
    run.done_cond.notify_all();
}

/// Reads the `Start` frame as a child reads it: the frame limit for the rest of the session,
/// and the entry's body.
fn read_start(frame: &[u8]) -> Result<(u32, Result<Vec<u8>, ProcessError>), ProcessError> {
    let malformed = |message: String| ProcessError::ChildSetup {
        message: format!("malformed start frame: {message}"),
    };
    match read_frame(&mut &*frame, u32::MAX) {
        Ok(Some(Frame {
            kind: Kind::Start,
            payload,
        })) => decode::<StartMessage>(&payload)
            .map(|message| (message.frame_limit, Ok(message.body)))
            .map_err(malformed),
        Ok(other) => Err(malformed(format!(
            "expected a Start frame, got {:?}",
            other.map(|frame| frame.kind)
        ))),
        Err(error) => Err(malformed(error.to_string())),
    }
}
