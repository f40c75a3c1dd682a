//! Typed errors: what went wrong, where, on which run, with the original message.

use std::fmt;
use std::io;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A lifecycle section of a process.
///
/// `Display` gives the hook's name as the user wrote it: `__run__`, `__prerun__`, ...
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Section {
    /// `__prerun__`, before each iteration.
    Prerun,
    /// `__run__`, each iteration.
    Run,
    /// `__postrun__`, after each iteration.
    Postrun,
    /// `__onfinish__`, once when the loop ends normally.
    Onfinish,
    /// `__result__`, which produces the result.
    Result,
    /// `__error__`, which handles a failure.
    Error,
}

impl Section {
    /// The hook's name: `"__run__"`, `"__prerun__"`, ...
    pub fn hook_name(self) -> &'static str {
        match self {
            Section::Prerun => "__prerun__",
            Section::Run => "__run__",
            Section::Postrun => "__postrun__",
            Section::Onfinish => "__onfinish__",
            Section::Result => "__result__",
            Section::Error => "__error__",
        }
    }

    /// Whether a failure here costs a life (`__prerun__`, `__run__`, `__postrun__`) rather than
    /// going straight to `__error__`.
    pub fn uses_lives(self) -> bool {
        matches!(self, Section::Prerun | Section::Run | Section::Postrun)
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hook_name())
    }
}

/// What a failed hook left behind: its error message, or its panic message and location.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    message: String,
    kind: FailureKind,
}

/// Whether a hook returned an error or panicked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FailureKind {
    /// The hook returned `Err(e)`; the message is `e.to_string()` with its sources appended.
    Error,
    /// The hook panicked (an unwinding panic).
    Panic {
        /// `file:line:column` of the panic, when known.
        location: Option<String>,
    },
}

impl Failure {
    /// A failure from an error returned by a hook. The message keeps the error's `Display` and
    /// those of its sources (`outer: inner: innermost`).
    pub fn from_error(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(inner) = source {
            let text = inner.to_string();
            if !message.ends_with(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = inner.source();
        }
        Failure {
            message,
            kind: FailureKind::Error,
        }
    }

    /// A failure with a plain message.
    pub fn msg(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            kind: FailureKind::Error,
        }
    }

    /// A failure from a panic.
    pub fn panic(message: String, location: Option<String>) -> Self {
        Failure {
            message,
            kind: FailureKind::Panic { location },
        }
    }

    /// The original message: the error's text or the panic's message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the hook returned an error or panicked.
    pub fn kind(&self) -> &FailureKind {
        &self.kind
    }

    /// Whether the hook panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.kind, FailureKind::Panic { .. })
    }

    /// Where the hook panicked, when it did and the location is known.
    pub fn panic_location(&self) -> Option<&str> {
        match &self.kind {
            FailureKind::Panic { location } => location.as_deref(),
            FailureKind::Error => None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            FailureKind::Error => f.write_str(&self.message),
            FailureKind::Panic {
                location: Some(location),
            } => write!(f, "panicked at {location}: {}", self.message),
            FailureKind::Panic { location: None } => write!(f, "panicked: {}", self.message),
        }
    }
}

impl std::error::Error for Failure {}

/// Displays an error with its whole chain of sources: `outer: inner: innermost`.
///
/// Errors of this crate follow the Rust convention: an error that has a source does not repeat
/// the source's text in its own message. Print an error through `ErrorChain` to see all of it:
///
/// ```
/// use skprocess::ErrorChain;
/// use skprocess::pool::Pool;
///
/// fn risky(x: i32) -> Result<i32, String> {
///     if x == 3 { Err(format!("Cannot process {x}")) } else { Ok(x) }
/// }
///
/// # fn main() -> Result<(), skprocess::pool::PoolError> {
/// let pool = Pool::new(1)?;
/// let error = pool.fallible().map(risky, [1, 2, 3]).unwrap_err();
/// assert_eq!(ErrorChain(&error).to_string(), "item 2 failed: Cannot process 3");
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut written = self.0.to_string();
        f.write_str(&written)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            let text = error.to_string();
            // An error that already repeats its source's text (outside this crate) is not
            // printed twice.
            if !text.is_empty() && !written.ends_with(&text) {
                write!(f, ": {text}")?;
                written = text;
            }
            source = error.source();
        }
        Ok(())
    }
}

/// How a child process ended without delivering its outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ExitInfo {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it.
    Signal {
        /// The signal number.
        number: i32,
        /// The signal's name, such as `SIGKILL`.
        name: String,
    },
    /// It ended in a way the platform could not describe.
    Unknown,
}

impl ExitInfo {
    pub(crate) fn from_status(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        if let Some(code) = status.code() {
            ExitInfo::Code(code)
        } else if let Some(number) = status.signal() {
            ExitInfo::Signal {
                number,
                name: crate::sys::signal_name(number).to_owned(),
            }
        } else {
            ExitInfo::Unknown
        }
    }

    /// The signal that ended the process, if a signal did.
    pub fn signal(&self) -> Option<i32> {
        match self {
            ExitInfo::Signal { number, .. } => Some(*number),
            _ => None,
        }
    }

    /// The exit code, if the process exited with one.
    pub fn code(&self) -> Option<i32> {
        match self {
            ExitInfo::Code(code) => Some(*code),
            _ => None,
        }
    }
}

impl fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitInfo::Code(code) => write!(f, "exited with code {code}"),
            ExitInfo::Signal { number, name } => write!(f, "killed by signal {number} ({name})"),
            ExitInfo::Unknown => f.write_str("ended in an unknown way"),
        }
    }
}

/// Everything that can go wrong with a process, in the parent or in the child.
///
/// The kinds of the Python original map onto variants: `PreRunError`, `RunError`,
/// `PostRunError`, `OnFinishError` and `ResultError` are [`ProcessError::Section`] with the
/// matching [`Section`]; `ProcessTimeoutError` is [`ProcessError::Timeout`];
/// `ErrorHandlerError` is [`ProcessError::ErrorHandler`]; `ResultTimeoutError` is
/// [`ProcessError::ResultTimeout`]. The original message of a user error always reaches the
/// parent intact.
#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ProcessError {
    /// A lifecycle hook returned an error or panicked.
    #[error("error in {section} on run {current_run}: {failure}")]
    Section {
        /// The hook that failed.
        section: Section,
        /// The run (iteration index, from 0) during which it failed.
        current_run: usize,
        /// The original message, and the panic location if it panicked.
        failure: Failure,
    },
    /// A lifecycle hook ran past its timeout.
    #[error("{section} timed out after {}s on run {current_run}", crate::sync::fmt_secs(*timeout))]
    Timeout {
        /// The hook that timed out.
        section: Section,
        /// Its configured limit.
        timeout: Duration,
        /// The run during which it timed out.
        current_run: usize,
    },
    /// `__error__` itself failed while handling `original`.
    #[error("__error__ failed ({cause}) while handling: {original}")]
    ErrorHandler {
        /// How `__error__` failed: a [`ProcessError::Section`] or [`ProcessError::Timeout`] for
        /// [`Section::Error`].
        cause: Box<ProcessError>,
        /// The error it was handling.
        original: Box<ProcessError>,
    },
    /// A deadline set with `.timeout(..)` on `run` or `result` passed. The process is stopped,
    /// then killed after a grace period.
    #[error("no result within {}s", crate::sync::fmt_secs(*timeout))]
    ResultTimeout {
        /// The deadline that passed.
        timeout: Duration,
    },
    /// The child process ended without delivering a result: it aborted, segfaulted, was killed
    /// from outside, or exited early.
    #[error("child process {pid} {exit} on run {current_run} without delivering a result")]
    Crashed {
        /// The child's process id.
        pid: u32,
        /// Its exit code or signal.
        exit: ExitInfo,
        /// The last run it reported as started.
        current_run: usize,
    },
    /// The process was killed through its handle (`kill()`, or a deadline whose grace period
    /// passed), so it has no result.
    #[error("child process {pid} was killed")]
    Killed {
        /// The child's process id.
        pid: u32,
    },
    /// A value could not be encoded for the trip to the other process.
    #[error("cannot encode {what}: {message}")]
    Encode {
        /// What was being encoded: "the process state", "the result", ...
        what: String,
        /// The codec's message.
        message: String,
    },
    /// Bytes from the other process did not decode as the expected type.
    #[error("cannot decode {what}: {message}")]
    Decode {
        /// What was being decoded.
        what: String,
        /// The codec's message.
        message: String,
    },
    /// The process type is not in this executable's registry (its registration was not linked
    /// in, or it implements the traits by hand without `skprocess::register!`). Nothing was
    /// spawned.
    #[error("process type `{name}` is not registered; use #[skprocess] or skprocess::register!")]
    NotRegistered {
        /// The registered name that was looked up.
        name: String,
    },
    /// Two registrations share the name being spawned. Nothing was spawned.
    #[error("{count} process types are registered under the name `{name}`")]
    DuplicateName {
        /// The duplicated name.
        name: String,
        /// How many registrations carry it.
        count: usize,
    },
    /// The configuration is invalid (for example `lives = 0`). Nothing was spawned.
    #[error("invalid process configuration: {message}")]
    InvalidConfig {
        /// What is wrong.
        message: String,
    },
    /// The child could not set itself up (it reports why before exiting).
    #[error("child process could not start its work: {message}")]
    ChildSetup {
        /// What failed in the child.
        message: String,
    },
    /// A [`#[child_init]`](macro@crate::child_init) hook returned an error or panicked in the
    /// child, before any lifecycle method or pool task ran there. The hooks after it did not
    /// run; the child reported the failure and exited.
    #[error("#[child_init] hook `{hook}` failed: {failure}")]
    ChildInit {
        /// The hook's name: the module path and the function's name, as registered.
        hook: String,
        /// The original message, and the panic location if it panicked.
        failure: Failure,
    },
    /// A connection field of a process struct with
    /// [`#[autoreconnect]`](macro@crate::autoreconnect) could not be opened in the process
    /// that runs the lifecycle, before its first lifecycle method. No lifecycle method ran
    /// (`__error__` is called with this error). The error names the field.
    #[error("{0}")]
    Connect(Box<crate::reconnect::ConnectError>),
    /// `wait`, `result` or a similar call came before `start`.
    #[error("the process has not been started")]
    NotStarted,
    /// `start` was called on a process that was already started; a process runs once.
    #[error("the process was already started; a process runs once")]
    AlreadyStarted,
    /// The result was already taken by an earlier `result()` call.
    #[error("the result was already taken")]
    ResultTaken,
    // Variants that never cross a process boundary come last: serde numbers variants by
    // position, and skipped variants in the middle would shift the numbers on one side only.
    /// The child process could not be started.
    #[error("cannot start the child process")]
    #[serde(skip)]
    Spawn(#[source] io::Error),
    /// Talking to the child failed.
    #[error("connection to the child process failed")]
    #[serde(skip)]
    Ipc(#[source] IpcError),
}

impl ProcessError {
    /// The section a lifecycle error or timeout happened in.
    pub fn section(&self) -> Option<Section> {
        match self {
            ProcessError::Section { section, .. } | ProcessError::Timeout { section, .. } => {
                Some(*section)
            }
            ProcessError::ErrorHandler { .. } => Some(Section::Error),
            _ => None,
        }
    }

    /// The run index a lifecycle error, timeout or crash happened on.
    pub fn current_run(&self) -> Option<usize> {
        match self {
            ProcessError::Section { current_run, .. }
            | ProcessError::Timeout { current_run, .. }
            | ProcessError::Crashed { current_run, .. } => Some(*current_run),
            ProcessError::ErrorHandler { original, .. } => original.current_run(),
            _ => None,
        }
    }

    /// The failure (message, panic location) of a lifecycle method or a
    /// [`#[child_init]`](macro@crate::child_init) hook that returned an error or panicked.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            ProcessError::Section { failure, .. } | ProcessError::ChildInit { failure, .. } => {
                Some(failure)
            }
            _ => None,
        }
    }

    /// Whether this is a section timeout ([`ProcessError::Timeout`]).
    pub fn is_timeout(&self) -> bool {
        matches!(self, ProcessError::Timeout { .. })
    }
}

/// Why a child could not set itself up, as it tells its parent in a `SetupFailed` frame.
/// Cloneable, unlike [`ProcessError`]: a pool hands one to every call waiting on it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum SetupFailure {
    /// What failed, in words.
    Message(String),
    /// A `#[child_init]` hook returned an error or panicked.
    ChildInit {
        /// The hook's registered name.
        hook: String,
        /// How it failed.
        failure: Failure,
    },
}

impl SetupFailure {
    /// What the child reports for `error`: a hook's failure keeps its type, anything else
    /// travels as its message.
    pub(crate) fn from_error(error: ProcessError) -> SetupFailure {
        match error {
            ProcessError::ChildInit { hook, failure } => SetupFailure::ChildInit { hook, failure },
            ProcessError::ChildSetup { message } => SetupFailure::Message(message),
            other => SetupFailure::Message(ErrorChain(&other).to_string()),
        }
    }

    /// The error the parent reports.
    pub(crate) fn to_error(&self) -> ProcessError {
        match self {
            SetupFailure::Message(message) => ProcessError::ChildSetup {
                message: message.clone(),
            },
            SetupFailure::ChildInit { hook, failure } => ProcessError::ChildInit {
                hook: hook.clone(),
                failure: failure.clone(),
            },
        }
    }

    /// Whether a `#[child_init]` hook failed: the user's own code said no, so starting another
    /// child would fail the same way.
    pub(crate) fn is_child_init(&self) -> bool {
        matches!(self, SetupFailure::ChildInit { .. })
    }

    /// Reads a `SetupFailed` payload; one that does not decode still says that the child could
    /// not start.
    pub(crate) fn decode(payload: &[u8]) -> SetupFailure {
        crate::wire::decode(payload).unwrap_or_else(|message| {
            SetupFailure::Message(format!(
                "the child could not start its work, and its report did not decode: {message}"
            ))
        })
    }
}

impl From<String> for SetupFailure {
    fn from(message: String) -> SetupFailure {
        SetupFailure::Message(message)
    }
}

/// A failure of the connection between the processes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IpcError {
    /// An I/O error on the socket.
    #[error("socket i/o failed")]
    Io(#[from] io::Error),
    /// The peer closed the connection.
    #[error("the peer closed the connection")]
    Disconnected,
    /// A frame announced more bytes than the limit allows.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The announced length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A frame was malformed: unknown kind, wrong length for its kind, bad content.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The peer did not prove it knows the session secret (or the connection was refused).
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The child did not connect back in time.
    #[error("the child did not connect within {0:?}")]
    ConnectTimeout(Duration),
    /// The peer did not read or write within the time allowed (during the handshake, which
    /// has one deadline for all of it).
    #[error("the peer did not answer in time")]
    Timeout,
}

/// Why [`tell`](crate::Skprocess::tell) failed. Nothing was sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TellError {
    /// The value could not be encoded.
    #[error("cannot encode the message: {0}")]
    Encode(String),
    /// The other process is gone (or the process finished).
    #[error("the other process is gone")]
    Disconnected,
    /// The process has not been started.
    #[error("the process has not been started")]
    NotStarted,
    /// The receiver did not make room within the tell's bound
    /// ([`TELL_TIMEOUT`](crate::TELL_TIMEOUT)): its ring stayed full. Nothing was delivered.
    #[error("the receiver's ring stayed full ({capacity} bytes) until the tell gave up")]
    Full {
        /// The ring's capacity in bytes.
        capacity: usize,
    },
}

/// How long a `tell` waits for room when the receiver does not listen and its ring (256 KiB)
/// is full, before it fails with [`TellError::Full`].
pub const TELL_TIMEOUT: Duration = Duration::from_secs(60);

/// Why [`listen`](crate::Skprocess::listen) returned without a message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    /// No message arrived within the timeout (or none was queued, for `try_listen`).
    #[error("no message within the timeout")]
    Timeout,
    /// The other process is gone and no message is queued.
    #[error("the other process is gone and no message is queued")]
    Disconnected,
    /// A message arrived but did not decode as the requested type. Its bytes are in the error,
    /// so nothing is lost.
    #[error("a message did not decode as `{type_name}`: {message}")]
    Decode {
        /// The requested type.
        type_name: &'static str,
        /// The codec's message.
        message: String,
        /// The message's encoded bytes.
        bytes: Vec<u8>,
    },
    /// The process has not been started.
    #[error("the process has not been started")]
    NotStarted,
    /// The channel carried something that cannot be a message (a peer that broke the
    /// protocol); nothing more is read from it.
    #[error("the message channel broke: {0}")]
    Broken(String),
}

impl ListenError {
    /// Whether this is a timeout (as opposed to a message or a gone peer).
    pub fn is_timeout(&self) -> bool {
        matches!(self, ListenError::Timeout)
    }
}

impl ProcessError {
    /// A copy of this error. Errors that hold an `io::Error` are copied with its kind and
    /// message.
    pub(crate) fn duplicate(&self) -> ProcessError {
        fn io_copy(e: &io::Error) -> io::Error {
            io::Error::new(e.kind(), e.to_string())
        }
        match self {
            ProcessError::Section {
                section,
                current_run,
                failure,
            } => ProcessError::Section {
                section: *section,
                current_run: *current_run,
                failure: failure.clone(),
            },
            ProcessError::Timeout {
                section,
                timeout,
                current_run,
            } => ProcessError::Timeout {
                section: *section,
                timeout: *timeout,
                current_run: *current_run,
            },
            ProcessError::ErrorHandler { cause, original } => ProcessError::ErrorHandler {
                cause: Box::new(cause.duplicate()),
                original: Box::new(original.duplicate()),
            },
            ProcessError::ResultTimeout { timeout } => {
                ProcessError::ResultTimeout { timeout: *timeout }
            }
            ProcessError::Crashed {
                pid,
                exit,
                current_run,
            } => ProcessError::Crashed {
                pid: *pid,
                exit: exit.clone(),
                current_run: *current_run,
            },
            ProcessError::Killed { pid } => ProcessError::Killed { pid: *pid },
            ProcessError::ChildInit { hook, failure } => ProcessError::ChildInit {
                hook: hook.clone(),
                failure: failure.clone(),
            },
            ProcessError::Connect(e) => ProcessError::Connect(e.clone()),
            ProcessError::Spawn(e) => ProcessError::Spawn(io_copy(e)),
            ProcessError::Ipc(e) => ProcessError::Ipc(match e {
                IpcError::Io(e) => IpcError::Io(io_copy(e)),
                IpcError::Disconnected => IpcError::Disconnected,
                IpcError::FrameTooLarge { len, max } => IpcError::FrameTooLarge {
                    len: *len,
                    max: *max,
                },
                IpcError::Malformed(m) => IpcError::Malformed(m.clone()),
                IpcError::Auth(m) => IpcError::Auth(m.clone()),
                IpcError::ConnectTimeout(d) => IpcError::ConnectTimeout(*d),
                IpcError::Timeout => IpcError::Timeout,
            }),
            ProcessError::Encode { what, message } => ProcessError::Encode {
                what: what.clone(),
                message: message.clone(),
            },
            ProcessError::Decode { what, message } => ProcessError::Decode {
                what: what.clone(),
                message: message.clone(),
            },
            ProcessError::NotRegistered { name } => {
                ProcessError::NotRegistered { name: name.clone() }
            }
            ProcessError::DuplicateName { name, count } => ProcessError::DuplicateName {
                name: name.clone(),
                count: *count,
            },
            ProcessError::InvalidConfig { message } => ProcessError::InvalidConfig {
                message: message.clone(),
            },
            ProcessError::ChildSetup { message } => ProcessError::ChildSetup {
                message: message.clone(),
            },
            ProcessError::NotStarted => ProcessError::NotStarted,
            ProcessError::AlreadyStarted => ProcessError::AlreadyStarted,
            ProcessError::ResultTaken => ProcessError::ResultTaken,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant that crosses a process boundary decodes as itself (serde numbers variants
    /// by position; a skipped variant in the wrong place would shift them).
    #[test]
    fn crossing_variants_round_trip_through_the_codec() {
        let failure = Failure::panic("boom".into(), Some("src/lib.rs:1:2".into()));
        let errors = vec![
            ProcessError::Section {
                section: Section::Postrun,
                current_run: 3,
                failure: failure.clone(),
            },
            ProcessError::Timeout {
                section: Section::Run,
                timeout: Duration::from_millis(300),
                current_run: 2,
            },
            ProcessError::ErrorHandler {
                cause: Box::new(ProcessError::Section {
                    section: Section::Error,
                    current_run: 1,
                    failure: Failure::msg("inner"),
                }),
                original: Box::new(ProcessError::ResultTimeout {
                    timeout: Duration::from_secs(1),
                }),
            },
            ProcessError::Crashed {
                pid: 7,
                exit: ExitInfo::Signal {
                    number: 9,
                    name: "SIGKILL".into(),
                },
                current_run: 4,
            },
            ProcessError::Killed { pid: 8 },
            ProcessError::Encode {
                what: "w".into(),
                message: "m".into(),
            },
            ProcessError::Decode {
                what: "w".into(),
                message: "m".into(),
            },
            ProcessError::NotRegistered { name: "n".into() },
            ProcessError::DuplicateName {
                name: "n".into(),
                count: 2,
            },
            ProcessError::InvalidConfig {
                message: "m".into(),
            },
            ProcessError::ChildSetup {
                message: "m".into(),
            },
            ProcessError::NotStarted,
            ProcessError::AlreadyStarted,
            ProcessError::ResultTaken,
        ];
        for error in errors {
            let bytes = crate::wire::encode(&error).unwrap();
            let back: ProcessError = crate::wire::decode(&bytes).unwrap();
            assert_eq!(format!("{back:?}"), format!("{error:?}"));
        }
        // The parent-only variants refuse to be encoded rather than encode wrongly.
        let spawn = ProcessError::Spawn(io::Error::other("x"));
        assert!(crate::wire::encode(&spawn).is_err());
    }

    #[test]
    fn messages_keep_the_original_text() {
        let error = ProcessError::Section {
            section: Section::Run,
            current_run: 1,
            failure: Failure::msg("Content failure on run 1"),
        };
        assert_eq!(
            error.to_string(),
            "error in __run__ on run 1: Content failure on run 1"
        );
        let timeout = ProcessError::Timeout {
            section: Section::Run,
            timeout: Duration::from_secs(2),
            current_run: 3,
        };
        assert_eq!(timeout.to_string(), "__run__ timed out after 2.0s on run 3");
        assert_eq!(timeout.section(), Some(Section::Run));
        assert_eq!(timeout.current_run(), Some(3));
        assert!(timeout.is_timeout());
    }

    #[test]
    fn failure_from_error_keeps_the_source_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] io::Error);
        let failure = Failure::from_error(&Outer(io::Error::other("inner")));
        assert_eq!(failure.message(), "outer: inner");
        assert!(!failure.is_panic());
    }
}
