//! Multiprocessing for Rust in the spirit of Python's suitkaise: annotate a struct with
//! [`#[skprocess]`](macro@skprocess), and its lifecycle (`__prerun__`, `__run__`, `__postrun__`,
//! `__onfinish__`, `__result__`, `__error__`) runs in a child process, looped, timed, retried,
//! time-limited and stoppable, talking to its parent with `tell` and `listen`.
//!
//! ```
//! use skprocess::prelude::*;
//!
//! #[skprocess(runs = 100)]
//! struct Counter {
//!     count: u32,
//! }
//!
//! #[skprocess]
//! impl Counter {
//!     fn __run__(&mut self) {
//!         self.count += 1; // in the child, 100 times
//!     }
//!
//!     fn __result__(&mut self) -> u32 {
//!         self.count
//!     }
//! }
//!
//! fn main() -> Result<(), ProcessError> {
//!     let process = Skprocess::new(Counter { count: 0 });
//!     process.start()?;
//!     process.wait()?;
//!     assert_eq!(process.result()?, 100);
//!     assert_eq!(process.timers().run.num_times(), 100);
//!     Ok(())
//! }
//! ```
//!
//! # What is here
//!
//! - [`#[skprocess]`](macro@skprocess) turns a struct and its impl block into a process type;
//!   [`Skprocess`] is the parent-side handle: `start`, `wait`, `result`, `run`, `stop`, `kill`,
//!   `tell`, `listen`, `current_run`, the timers, and the `timeout`, `background` and `asynced`
//!   modifiers.
//! - [`InProcess`] runs the same lifecycle on a thread of the current process and returns what
//!   `Skprocess::run()` would: for unit tests of lifecycle methods, under a debugger, with
//!   `cargo test` capturing their output.
//! - [`ProcessConfig`]: `runs`, `join_in`, `lives`, per-section `timeouts`.
//! - [`Context`]: what lifecycle methods may ask for: `tell`, `listen`, `stop`, `current_run`.
//! - [`ProcessError`]: every failure, typed, with the original message, the section and run, the
//!   panic location, the exit code or signal.
//! - [`pool`]: a [`Pool`](pool::Pool) of worker processes: `map`, `imap`, their unordered
//!   variants, `star()`, process types as tasks.
//! - [`pipe`]: a [`Pipe`](pipe::Pipe) between two processes, whose point travels to a child
//!   and connects back on arrival.
//! - [`share`]: a [`Share`](share::Share) of objects every process calls through typed
//!   proxies ([`#[shared]`](macro@share::shared)), numbers and flags in shared memory, and a
//!   map, list, queue, semaphore and barrier ready-made.
//! - [`timing`]: [`Sktimer`](timing::Sktimer), [`TimeThis`](timing::TimeThis) and
//!   [`#[timethis]`](macro@timethis).
//! - [`#[child_init]`](macro@child_init) and [`register_child_init!`]: start hooks that run in
//!   every child and pool worker before user code (a logger, a configuration: what `main` sets
//!   up, since `main` never runs in a child).
//! - With the `log` and `tracing` features, records a child logs reach the parent's logger or
//!   subscriber, with the child's pid and process type.
//!
//! # How it works
//!
//! A child is this same executable, re-executed with a marker in its environment. A
//! constructor in this crate catches the marker before `main` runs, connects back to the
//! parent over a local socket, proves it knows the session secret (HMAC-SHA256
//! challenge–response), receives the process value (serde, in a compact binary format of its own), runs the lifecycle, sends
//! back the result and the timers, and exits. The parent's handle reads the child's frames on a
//! thread of its own, reaps the child, and turns a death without a result into
//! [`ProcessError::Crashed`] with the signal or exit code. A child's life is tied to its parent:
//! it stops when the parent's connection goes away, and the kernel sends it SIGTERM when the
//! parent process dies. The book's "How it works" part has the details.
//!
//! # Feature flags
//!
//! - `auto-init` (default): catch children with a constructor before `main`. Without it, call
//!   [`init`] as the first line of `main` (and spawning from `cargo test` is not possible).
//! - `log`: `log` records emitted in children and pool workers reach the parent's logger, at
//!   the parent's maximum level, with `pid` and `process` key-values.
//! - `tracing`: `tracing` events emitted in children and pool workers reach the parent's
//!   subscriber, at the parent's maximum level, with `pid` and `process` fields.
//! - `postgres`, `redis`, `rusqlite`, `tokio-postgres`, `redis-async`: the connection types of
//!   [`reconnect`] for `#[autoreconnect]`; the last two are async (`AsyncPostgres`,
//!   `AsyncRedis`) and bring the `tokio` feature.
//!
//! # Testing
//!
//! Processes work unchanged under `cargo test`, nextest and doctests: the constructor catches
//! the re-executed test binary before the test harness starts.
//!
//! To test a process type's lifecycle methods without a child, run it with [`InProcess`]: same
//! engine, same codec, same typed errors, but breakpoints and `println!` inside the methods
//! work as in any unit test.
//!
//! # Platform support
//!
//! Linux. The runtime relies on pidfds, memfd, abstract-namespace local sockets and
//! `PR_SET_PDEATHSIG`.

#![doc(test(no_crate_inject, attr(deny(warnings))))]
#![deny(missing_docs)]

// `::skprocess::...` paths (what the macros generate) resolve inside this crate too.
#[allow(unused_extern_crates)]
extern crate self as skprocess;

#[cfg(feature = "__testing")]
#[doc(hidden)]
#[path = "testing.rs"]
pub mod __testing;
mod async_hooks;
mod asyncs;
pub mod buffer;
mod child;
mod child_init;
pub mod circuits;
mod config;
pub mod copies;
mod engine;
mod error;
mod exit;
mod identity;
mod inbox;
mod launch;
mod lifecycle;
mod logs;
#[cfg(feature = "nats")]
pub mod nats;
pub mod pipe;
pub mod pool;
mod process;
pub mod reconnect;
mod registry;
mod ring;
pub mod share;
mod shm;
mod signals;
mod sync;
mod sys;
pub mod timing;
mod wire;

pub use crate::asyncs::{BackgroundHandle, ThreadFuture};
pub use crate::child::init;
pub use crate::child_init::child_init_hooks;
pub use crate::config::DEFAULT_FRAME_LIMIT;
pub use crate::config::{ProcessConfig, TimeoutConfig};
pub use crate::error::{
    ErrorChain, ExitInfo, Failure, FailureKind, IpcError, ListenError, ProcessError, Section,
    TELL_TIMEOUT, TellError,
};
pub use crate::lifecycle::{Context, Hooks, Lifecycle, ProcessTimers, Transferable};
pub use crate::process::{
    Asynced, Background, Deadline, InProcess, KILL_GRACE, ListenFuture, Skprocess,
};
pub use crate::registry::{ProcessEntry, Registered, registered_name};
pub use crate::signals::{ctrl_c_pressed, graceful_ctrl_c};

/// serde, re-exported so that process types need no direct dependency on it.
pub use ::serde;

#[doc(inline)]
pub use skprocess_macros::autoreconnect;
#[doc(inline)]
pub use skprocess_macros::child_init;
#[doc(inline)]
pub use skprocess_macros::skprocess;
#[doc(inline)]
pub use skprocess_macros::timethis;

/// The items most programs need: `use skprocess::prelude::*;`.
pub mod prelude {
    pub use crate::circuits::{BreakingCircuit, Circuit};
    pub use crate::pipe::{Pipe, PipeError};
    pub use crate::pool::{Pool, PoolError};
    pub use crate::share::{Share, ShareError, Shared, shared};
    pub use crate::timing::{Sktimer, TimeThis};
    pub use crate::{
        Context, InProcess, ListenError, ProcessConfig, ProcessError, ProcessTimers, Section,
        Skprocess, TellError,
    };
    pub use skprocess_macros::{autoreconnect, child_init, skprocess, timethis};
}

#[doc(hidden)]
pub mod __private {
    //! Used by code generated by `skprocess-macros`. **Not a stable API**: anything here may
    //! change in any release without notice.
    pub use ::core::option::Option::{self, None, Some};
    pub use ::core::result::Result::{self, Err, Ok};
    pub use ::linkme;
    pub use ::serde;
    // remote tasks: what `remote_tasks!` expands to
    #[cfg(feature = "nats")]
    pub use crate::nats::__private as nats;
    // processes
    pub use crate::async_hooks::{AsContext, AsyncContext, AsyncSection};
    pub use crate::child_init::{CHILD_INITS, ChildInit, ChildInitReturn};
    pub use crate::error::Failure;
    pub use crate::lifecycle::{
        CrossField, CrossShared, FallibleReturn, HookReturn, Hooks, Lifecycle, ProcessStruct,
        Transferable,
    };
    pub use crate::reconnect::{
        ConnectError, ConnectionField, Credential, Probe, ProbeConnection, ProbeOther,
        SecretSource, assert_connection,
    };
    pub use crate::registry::{PROCESSES, ProcessEntry, Registered};
    pub use crate::{Context, ProcessConfig, ProcessError, Section};
    pub use ::core::any::TypeId;
    pub use ::core::time::Duration;
    // shares: what `#[shared]` expands to
    pub use crate::share::{
        EncodedValue, Handle, Proxy, SHARED_TYPES, ShareError, Shareable, SharedObject,
        SharedTypeEntry, StoredValue, ValueKind, build_object, encode_reply, object_encoded,
        object_kind, object_stored,
    };
    /// Names the requirement on a shared method's argument and return types, where they are
    /// written.
    pub fn assert_transferable<T: crate::Transferable>() {}
    // timing: what `#[timethis]` expands to
    pub use crate::timing::global::{GLOBAL_TIMERS, GlobalTimer};
    pub use crate::timing::timethis::{MaxTimesOnce, TimedGuard, TimedSpan};
}
