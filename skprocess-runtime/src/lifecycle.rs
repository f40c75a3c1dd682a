//! The lifecycle contract between a process type and the engine, and the child-side context.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::ProcessConfig;
use crate::error::{Failure, ListenError, ProcessError, TellError};
use crate::inbox::{Mailbox, decode_message};
use crate::shm::StatusPage;
use crate::timing::Sktimer;
use crate::wire::Conn;

/// A value that can cross a process boundary: serde both ways, `Send`, `'static`.
///
/// Implemented for every such type; it exists to name the requirement (and to give a clear
/// error when it is not met).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot cross a process boundary",
    label = "this type must be serializable, deserializable, `Send` and `'static`",
    note = "derive `Serialize` and `Deserialize` for it (skprocess re-exports serde as `skprocess::serde`)"
)]
pub trait Transferable: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> Transferable for T {}

/// Which optional hooks a process type defines. Undefined hooks are skipped entirely: no call,
/// no timer sample.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Hooks {
    /// `__prerun__` is defined.
    pub prerun: bool,
    /// `__postrun__` is defined.
    pub postrun: bool,
    /// `__onfinish__` is defined.
    pub onfinish: bool,
    /// `__error__` is defined.
    pub error: bool,
    /// Which sections are `async fn`s (one bit per [`Section`](crate::Section)).
    asyncs: u8,
}

impl Hooks {
    /// Only `__run__` (and `__result__`, which always exists).
    pub const NONE: Hooks = Hooks {
        prerun: false,
        postrun: false,
        onfinish: false,
        error: false,
        asyncs: 0,
    };

    /// Sets which hooks are defined (const, for generated code).
    pub const fn new(prerun: bool, postrun: bool, onfinish: bool, error: bool) -> Hooks {
        Hooks {
            prerun,
            postrun,
            onfinish,
            error,
            asyncs: 0,
        }
    }

    /// Marks `section` as an `async fn` (const, for generated code).
    pub const fn with_async(mut self, section: crate::Section) -> Hooks {
        self.asyncs |= 1 << section as u8;
        self
    }

    /// Whether `section` is an `async fn`: it runs on the process's tokio runtime, and a
    /// timeout ends it at an await point.
    pub const fn is_async(&self, section: crate::Section) -> bool {
        self.asyncs & (1 << section as u8) != 0
    }
}

/// The lifecycle of a process type: what the engine calls, in the child, in which order.
///
/// `#[skprocess]` on an `impl` block implements this trait from the block's `__prerun__`,
/// `__run__`, `__postrun__`, `__onfinish__`, `__result__`, `__error__` and `__config__` methods;
/// implementing it by hand is possible too (then register the type with
/// [`register!`](crate::register)).
///
/// The engine runs `prerun → run → postrun` for each iteration while the process should
/// continue (runs left, `join_in` not passed, no stop), then `onfinish` and `result`. A failure
/// in an iteration costs a life; with none left, or on a failure in `onfinish`/`result`,
/// `error` decides the outcome.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no process lifecycle",
    label = "missing `#[skprocess] impl {Self} {{ fn __run__(&mut self) {{ .. }} }}`",
    note = "add `#[skprocess]` to an `impl` block of `{Self}` that defines `__run__`"
)]
pub trait Lifecycle: Serialize + DeserializeOwned + Send + 'static {
    /// What `result` produces and the parent receives.
    type Output: Transferable;

    /// The optional hooks this type defines.
    const HOOKS: Hooks = Hooks::NONE;

    /// Adjusts the configuration, once, in the parent, when the handle is created.
    fn configure(&self, config: &mut ProcessConfig) {
        let _ = config;
    }

    /// Before each iteration.
    fn prerun(&mut self, cx: &mut Context) -> Result<(), Failure> {
        let _ = cx;
        Ok(())
    }

    /// Each iteration.
    fn run(&mut self, cx: &mut Context) -> Result<(), Failure>;

    /// After each iteration.
    fn postrun(&mut self, cx: &mut Context) -> Result<(), Failure> {
        let _ = cx;
        Ok(())
    }

    /// Once, when the loop ends normally.
    fn onfinish(&mut self, cx: &mut Context) -> Result<(), Failure> {
        let _ = cx;
        Ok(())
    }

    /// Produces the result.
    fn result(&mut self, cx: &mut Context) -> Result<Self::Output, Failure>;

    /// Opens the connection fields, in the process that runs the lifecycle, before the first
    /// lifecycle method (what [`#[autoreconnect]`](macro@crate::autoreconnect) generates). The
    /// default opens nothing.
    fn connect_fields(&mut self) -> Result<(), crate::reconnect::ConnectError> {
        Ok(())
    }

    /// Handles a failure: `Ok(value)` makes `value` the result; `Err(error)` delivers an error.
    fn error(
        &mut self,
        cx: &mut Context,
        error: ProcessError,
    ) -> Result<Self::Output, ProcessError> {
        let _ = cx;
        Err(error)
    }
}

/// The timers of every section of a process, filled in the child and available on the handle
/// after it finishes.
///
/// Sections a type does not define have empty timers. `full_run` gets one sample per completed
/// iteration: the sum of that iteration's `__prerun__`, `__run__` and `__postrun__` times.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProcessTimers {
    /// `__prerun__`.
    pub prerun: Sktimer,
    /// `__run__`.
    pub run: Sktimer,
    /// `__postrun__`.
    pub postrun: Sktimer,
    /// `__onfinish__`.
    pub onfinish: Sktimer,
    /// `__result__`.
    pub result: Sktimer,
    /// `__error__`.
    pub error: Sktimer,
    /// Whole iterations (prerun + run + postrun).
    pub full_run: Sktimer,
}

impl ProcessTimers {
    pub(crate) fn with_window(window: usize) -> ProcessTimers {
        let timer = || Sktimer::with_max_times(window);
        ProcessTimers {
            prerun: timer(),
            run: timer(),
            postrun: timer(),
            onfinish: timer(),
            result: timer(),
            error: timer(),
            full_run: timer(),
        }
    }

    /// The timer of one section.
    pub fn section(&self, section: crate::Section) -> &Sktimer {
        use crate::Section;
        match section {
            Section::Prerun => &self.prerun,
            Section::Run => &self.run,
            Section::Postrun => &self.postrun,
            Section::Onfinish => &self.onfinish,
            Section::Result => &self.result,
            Section::Error => &self.error,
        }
    }
}

/// What the child's context reaches: the connection to the parent, the mailbox of the parent's
/// messages (whose channel also carries this child's tells) and the status page. Absent
/// connection: a pool worker running a process inline.
#[derive(Debug)]
pub(crate) struct ChildLink {
    /// The lifecycle connection (the project's tests write raw frames on it).
    #[cfg_attr(not(feature = "__testing"), allow(dead_code))]
    pub(crate) conn: Option<Arc<Conn>>,
    pub(crate) inbox: Mailbox,
    pub(crate) status: Arc<StatusPage>,
    /// How many `tell`s failed because the parent was gone. A section that fails after such a
    /// tell, with a stop requested, ended because of the stop, not of its own fault.
    failed_tells: AtomicU64,
}

impl ChildLink {
    pub(crate) fn new(conn: Option<Arc<Conn>>, inbox: Mailbox, status: Arc<StatusPage>) -> Self {
        ChildLink {
            conn,
            inbox,
            status,
            failed_tells: AtomicU64::new(0),
        }
    }

    /// The number of tells that failed because the parent is gone.
    pub(crate) fn failed_tells(&self) -> u64 {
        self.failed_tells.load(Ordering::Acquire)
    }

    /// A tell found the parent gone: that is a stop.
    fn parent_gone(&self) {
        self.status.request_stop();
        self.failed_tells.fetch_add(1, Ordering::AcqRel);
    }
}

/// How often [`Context::stopped`] looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(10);

/// The child-side view of a running process, passed to lifecycle hooks that ask for it
/// (`fn __run__(&mut self, cx: &mut Context)`): talk to the parent, stop, read the run index and
/// the configuration.
#[derive(Debug, Clone)]
pub struct Context {
    link: Arc<ChildLink>,
    config: Arc<ProcessConfig>,
    current_run: usize,
    lives_left: u32,
    /// Set when the engine abandoned the section this context was lent to (it timed out): later
    /// `tell`s from that section go nowhere.
    abandoned: Arc<AtomicBool>,
    /// The deadline of the section this context is lent to, when it has a timeout.
    deadline: Option<Instant>,
    /// Set when an `async` section reached its deadline at an await point and its future was
    /// dropped (see [`AsyncSection`](crate::async_hooks::AsyncSection)).
    awaited_out: Arc<AtomicBool>,
}

impl Context {
    pub(crate) fn new(link: Arc<ChildLink>, config: Arc<ProcessConfig>) -> Context {
        let lives_left = config.lives;
        Context {
            link,
            config,
            current_run: 0,
            lives_left,
            abandoned: Arc::new(AtomicBool::new(false)),
            deadline: None,
            awaited_out: Arc::new(AtomicBool::new(false)),
        }
    }

    pub(crate) fn set_position(&mut self, current_run: usize, lives_left: u32) {
        self.current_run = current_run;
        self.lives_left = lives_left;
    }

    /// A copy for a section that runs on its own thread, ends at `deadline`, and may be
    /// abandoned.
    pub(crate) fn for_abandonable_section(&self, deadline: Option<Instant>) -> Context {
        Context {
            abandoned: Arc::new(AtomicBool::new(false)),
            deadline,
            awaited_out: Arc::new(AtomicBool::new(false)),
            ..self.clone()
        }
    }

    /// Whether the `async` section this context was lent to reached its deadline at an await
    /// point (its future was dropped).
    pub(crate) fn awaited_out(&self) -> bool {
        self.awaited_out.load(Ordering::Acquire)
    }

    /// What an `async` section needs to run (the deadline, where to record a timeout).
    pub(crate) fn async_parts(&self) -> (Option<Instant>, Arc<AtomicBool>) {
        (self.deadline, Arc::clone(&self.awaited_out))
    }

    pub(crate) fn abandon(&self) {
        self.abandoned.store(true, Ordering::Release);
    }

    /// The index of the current run: the number of completed iterations (`_current_run` in the
    /// original).
    pub fn current_run(&self) -> usize {
        self.current_run
    }

    /// Lives left, counting the current attempt.
    pub fn lives_left(&self) -> u32 {
        self.lives_left
    }

    /// The process's configuration.
    pub fn config(&self) -> &ProcessConfig {
        &self.config
    }

    /// When the current section's timeout expires (`None`: it has none). An `async` section
    /// is dropped at its first await point past it; code that wants to finish cleanly can
    /// check it.
    pub fn section_deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Asks the process to stop: the engine finishes the current section, skips the rest of the
    /// iteration, then runs `__onfinish__` and `__result__`.
    pub fn stop(&self) {
        self.link.status.request_stop();
    }

    /// Whether a stop was requested (by the parent, this process, or SIGINT/SIGTERM).
    pub fn stop_requested(&self) -> bool {
        self.link.status.stop_requested()
    }

    /// Sends a message to the parent, which receives it with
    /// [`Skprocess::listen`](crate::Skprocess::listen) (or
    /// [`InProcess::listen`](crate::InProcess::listen)).
    ///
    /// A tell that finds the parent gone is a stop: the process finishes the current section,
    /// runs `__onfinish__` and `__result__`, and a `__prerun__`, `__run__` or `__postrun__`
    /// that failed because of that tell (`cx.tell(..)?`) does not count as a failure.
    ///
    /// # Errors
    ///
    /// [`TellError::Encode`] if the value cannot be encoded or is larger than the frame limit,
    /// [`TellError::Disconnected`] if the parent is gone (or this process runs inline in a
    /// pool, where no parent listens, or the section this context belongs to was abandoned
    /// after a timeout).
    pub fn tell<T: Serialize>(&self, message: T) -> Result<(), TellError> {
        if self.abandoned.load(Ordering::Acquire) {
            return Err(TellError::Disconnected);
        }
        let channel = self.link.inbox.channel().ok_or(TellError::Disconnected)?;
        let bytes = crate::wire::encode(&message).map_err(TellError::Encode)?;
        let deadline = Instant::now().checked_add(crate::error::TELL_TIMEOUT);
        channel.send(&bytes, deadline).map_err(|err| {
            let err = crate::process::tell_error(err);
            if matches!(err, TellError::Disconnected) {
                self.link.parent_gone();
            }
            err
        })
    }

    /// Sends raw bytes to the parent, bypassing framing (for the project's own tests).
    #[cfg(feature = "__testing")]
    pub(crate) fn send_raw(&self, bytes: &[u8]) -> Result<(), crate::error::IpcError> {
        let conn = self
            .link
            .conn
            .as_ref()
            .ok_or(crate::error::IpcError::Disconnected)?;
        conn.send_frames(bytes)
    }

    /// Waits for the parent's next message (sent with
    /// [`Skprocess::tell`](crate::Skprocess::tell) or [`InProcess::tell`](crate::InProcess::tell)).
    ///
    /// # Errors
    ///
    /// [`ListenError::Disconnected`] once the parent is gone and nothing is queued (and in a
    /// section abandoned after its timeout); [`ListenError::Decode`] (holding the bytes) if the
    /// message is not a `T`.
    pub fn listen<T: DeserializeOwned>(&self) -> Result<T, ListenError> {
        decode_message(self.receive(None)?)
    }

    /// Like [`listen`](Context::listen), giving up after `timeout` with [`ListenError::Timeout`].
    pub fn listen_timeout<T: DeserializeOwned>(&self, timeout: Duration) -> Result<T, ListenError> {
        decode_message(self.receive(Instant::now().checked_add(timeout))?)
    }

    /// Takes a queued message without waiting ([`ListenError::Timeout`] when none is queued).
    pub fn try_listen<T: DeserializeOwned>(&self) -> Result<T, ListenError> {
        decode_message(self.receive(Some(Instant::now()))?)
    }

    /// [`tell`](Context::tell) as a future, for `async` lifecycle methods: the message is
    /// encoded when this is called; while the channel is full, the future waits (without
    /// blocking its executor's thread) for room, up to [`TELL_TIMEOUT`](crate::TELL_TIMEOUT).
    ///
    /// # Errors
    ///
    /// As for [`tell`](Context::tell).
    pub fn tell_async<T: Serialize>(
        &self,
        message: T,
    ) -> impl std::future::Future<Output = Result<(), TellError>> + Send + 'static {
        let cx = self.clone();
        let encoded = crate::wire::encode(&message).map_err(TellError::Encode);
        async move {
            let bytes = encoded?;
            let deadline = Instant::now().checked_add(crate::error::TELL_TIMEOUT);
            // Room is checked without waiting; a full channel is retried after a short sleep
            // on the library's timer thread (any executor), backing off to 10 ms.
            let mut pause = Duration::from_micros(100);
            loop {
                if cx.abandoned.load(Ordering::Acquire) {
                    return Err(TellError::Disconnected);
                }
                let channel = cx.link.inbox.channel().ok_or(TellError::Disconnected)?;
                match channel.send(&bytes, Some(Instant::now())) {
                    Err(crate::ring::spsc::RingError::Full { .. })
                        if deadline.is_none_or(|d| Instant::now() < d) =>
                    {
                        crate::timing::timer_thread::sleep_until(Instant::now() + pause).await;
                        pause = (pause * 2).min(Duration::from_millis(10));
                    }
                    result => {
                        return result.map_err(|err| {
                            let err = crate::process::tell_error(err);
                            if matches!(err, TellError::Disconnected) {
                                cx.link.parent_gone();
                            }
                            err
                        });
                    }
                }
            }
        }
    }

    /// [`listen`](Context::listen) as a future, for `async` lifecycle methods: no thread
    /// waits; the future is woken when a message arrives. Dropping it (a `select!` that took
    /// another branch, a section's timeout) takes nothing from the queue.
    pub fn listen_async<T: DeserializeOwned>(&self) -> crate::process::ListenFuture<T> {
        crate::process::ListenFuture::for_child(self, None)
    }

    /// [`listen_timeout`](Context::listen_timeout) as a future ([`ListenError::Timeout`]
    /// after `timeout`).
    pub fn listen_timeout_async<T: DeserializeOwned>(
        &self,
        timeout: Duration,
    ) -> crate::process::ListenFuture<T> {
        crate::process::ListenFuture::for_child(self, Instant::now().checked_add(timeout))
    }

    /// Completes once a stop is requested (by the parent, this process, or SIGINT/SIGTERM),
    /// for an `async` section that waits on several things (`tokio::select!`). It checks every
    /// 10 ms, on any executor.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let link = Arc::clone(&self.link);
        async move {
            while !link.status.stop_requested() {
                crate::timing::timer_thread::sleep_until(Instant::now() + STOP_POLL).await;
            }
        }
    }

    /// The inbox and the abandonment flag, for [`ListenFuture`](crate::ListenFuture).
    pub(crate) fn listen_parts(&self) -> (Arc<ChildLink>, Arc<AtomicBool>) {
        (Arc::clone(&self.link), Arc::clone(&self.abandoned))
    }

    /// Receives from the inbox, unless this context's section was abandoned: an abandoned
    /// section must not take messages meant for the rest of the process. It waits in short
    /// slices so that it notices the abandonment, and puts back a message it took too late.
    fn receive(&self, deadline: Option<Instant>) -> Result<Vec<u8>, ListenError> {
        const SLICE: Duration = Duration::from_millis(50);
        loop {
            if self.abandoned.load(Ordering::Acquire) {
                return Err(ListenError::Disconnected);
            }
            let now = Instant::now();
            let slice_end = now + SLICE;
            let (until, last) = match deadline {
                Some(deadline) if deadline <= slice_end => (deadline, true),
                _ => (slice_end, false),
            };
            match self.link.inbox.recv(Some(until)) {
                Ok(bytes) if self.abandoned.load(Ordering::Acquire) => {
                    self.link.inbox.unreceive(bytes);
                    return Err(ListenError::Disconnected);
                }
                Err(ListenError::Timeout) if !last => continue,
                other => return other,
            }
        }
    }
}

/// Converts what a hook returned into the engine's terms. Used by generated code.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a valid return type for this lifecycle method",
    label = "return `()` or `Result<(), E>` where `E` converts into `Box<dyn Error + Send + Sync>`",
    note = "`__prerun__`, `__run__`, `__postrun__` and `__onfinish__` return nothing or a `Result`"
)]
pub trait HookReturn<T> {
    fn into_hook_result(self) -> Result<T, Failure>;
}

impl HookReturn<()> for () {
    fn into_hook_result(self) -> Result<(), Failure> {
        Ok(())
    }
}

impl<T, E> HookReturn<T> for Result<T, E>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn into_hook_result(self) -> Result<T, Failure> {
        self.map_err(|error| {
            let boxed: Box<dyn std::error::Error + Send + Sync> = error.into();
            Failure::from_error(&*boxed)
        })
    }
}

/// Names the value type of a hook's `Result<T, E>` return (generated code uses it for
/// `Lifecycle::Output`).
#[doc(hidden)]
pub trait FallibleReturn {
    type Value;
}

impl<T, E> FallibleReturn for Result<T, E> {
    type Value = T;
}

/// Implemented by `#[skprocess]` on a struct: the configuration its attribute keys set
/// (`#[skprocess(runs = 10)]`), applied before the type's own `__config__`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a process type",
    label = "missing `#[skprocess]` on the definition of `{Self}`",
    note = "put `#[skprocess]` on the struct definition as well as on its impl block"
)]
pub trait ProcessStruct {
    /// The name given with `#[skprocess(name = "...")]`, if any.
    const NAME: Option<&'static str>;

    fn apply_attributes(config: &mut ProcessConfig);

    /// Opens the fields that `#[autoreconnect(...)]` covers; the default opens nothing.
    fn connect_fields(&mut self) -> Result<(), crate::reconnect::ConnectError> {
        Ok(())
    }
}

/// What `#[skprocess]` routes each field of a process struct through when it derives the
/// struct's serde implementations: the field's own `Serialize`/`Deserialize`, unchanged (the
/// same bytes), but a field type that has none is reported once, at the field, with what to do
/// instead of pages of serde's trait errors.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "the field's type `{Self}` cannot cross processes",
    label = "this field is sent to the child process, and `{Self}` cannot be encoded",
    note = "a live resource (a file, a socket, a thread, a database driver's client) exists only in the process that opened it; instead: mark the field `#[serde(skip)]` and open the resource in `__prerun__`; for a database connection, use a connection type of `skprocess::reconnect` with `#[autoreconnect]`; for state shared between processes, use a `Share`",
    note = "a type of your own crosses once it derives `Serialize` and `Deserialize` (add `#[serde(crate = \"skprocess::serde\")]` to use skprocess's serde); a tokio lock, semaphore or `Notify` crosses as a copy with a helper of `skprocess::copies`",
    note = "any `#[serde(...)]` attribute of your own on the field turns this check off"
)]
pub trait CrossField: Sized {
    /// The field's own `Serialize`.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error>;
    /// The field's own `Deserialize`.
    fn deserialize<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error>;
}

#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned> CrossField for T {
    #[inline]
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Serialize::serialize(self, serializer)
    }

    #[inline]
    fn deserialize<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer)
    }
}

/// The same for a field whose type is an `Rc` or an `Arc`: shared ownership within one
/// process, which a copy in another process would silently break. Implemented for no type.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "the field's type `{Self}` shares its value within this process only; it cannot cross processes",
    label = "this field is sent to the child process, which would get a copy that nothing else shares",
    note = "to share state between processes, put it in a `Share` (`skprocess::share`): every process then calls methods on the same object",
    note = "for a copy in the child, hold the value itself (not an `Rc`/`Arc`); any `#[serde(...)]` attribute of your own on the field turns this check off",
    note = "a type of your own named `Rc` or `Arc` passes when written with its path (`geometry::Arc`)"
)]
pub trait CrossShared: Sized {
    /// Never called: no type implements this trait.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error>;
    /// Never called: no type implements this trait.
    fn deserialize<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error>;
}
