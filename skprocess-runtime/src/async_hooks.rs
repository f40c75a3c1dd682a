//! `async fn` lifecycle methods: what `#[skprocess]` generates for them runs their futures
//! here, on one tokio runtime per process (feature `tokio`).
//!
//! The engine stays synchronous: an async section is an ordinary section whose body blocks on
//! its future. The runtime is multi-threaded and built on first use in the process that runs
//! the lifecycle (a child, a pool worker, or the parent for [`InProcess`](crate::InProcess));
//! `block_on` runs the section's future on the engine's thread (so the future need not be
//! `Send`), while the runtime's worker threads drive timers, sockets and the tasks the section
//! spawns, which keep running between sections and iterations.
//!
//! A section with a timeout races its future against the deadline: at the first await point
//! past it, the future is dropped (its locals and borrows released, nothing more of it runs)
//! and the engine restores the state as of the section's start, as for a sync timeout. A
//! section that never reaches an await point cannot be dropped there; the engine then falls
//! back to the sync mechanism (it abandons the section's thread) after a short grace.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::Failure;
use crate::lifecycle::Context;

/// How much longer than an async section's timeout the engine waits for it to end at an await
/// point before it abandons the section's thread, as for a sync section.
pub(crate) const ASYNC_GRACE: Duration = Duration::from_millis(250);

/// The requirement that async lifecycle methods put on the build: skprocess's `tokio`
/// feature, which brings the runtime they run on.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`async` lifecycle methods need skprocess's `tokio` feature",
    label = "this `async fn` runs on a tokio runtime inside the process",
    note = "enable it in Cargo.toml: `skprocess-runtime = {{ version = \"..\", features = [\"tokio\"] }}`"
)]
pub trait AsyncContext {}

#[cfg(feature = "tokio")]
impl AsyncContext for Context {}

/// One run of an `async` section. Used by generated code.
#[doc(hidden)]
#[derive(Debug)]
pub struct AsyncSection {
    deadline: Option<Instant>,
    awaited_out: Arc<AtomicBool>,
}

impl AsyncSection {
    /// Takes what the section needs from its context (before the section's future borrows
    /// the context).
    pub fn of<C: AsyncContext + AsContext>(cx: &C) -> AsyncSection {
        let (deadline, awaited_out) = cx.as_context().async_parts();
        AsyncSection {
            deadline,
            awaited_out,
        }
    }

    /// Runs `future` to completion on the process's runtime, or until the section's deadline
    /// at one of its await points (`None`: the future was dropped there).
    pub fn block_on<F: Future>(&self, future: F) -> Option<F::Output> {
        run(self.deadline, &self.awaited_out, future)
    }

    /// What a unit or result section returns when it ended at its deadline (the engine reports
    /// it as [`ProcessError::Timeout`](crate::ProcessError::Timeout)).
    pub fn timed_out(&self) -> Failure {
        Failure::msg("the section reached its timeout at an await point")
    }

    /// The same for `__error__`, which hands on a `ProcessError` (the engine reports it as a
    /// timeout of `__error__`).
    pub fn timed_out_error(&self) -> crate::ProcessError {
        crate::ProcessError::Timeout {
            section: crate::Section::Error,
            timeout: Duration::ZERO,
            current_run: 0,
        }
    }
}

/// The context argument of [`AsyncSection::of`]: a `Context`, whether the hook got it as `&`
/// or `&mut`. Used by generated code.
#[doc(hidden)]
pub trait AsContext {
    /// The context.
    fn as_context(&self) -> &Context;
}

impl AsContext for Context {
    fn as_context(&self) -> &Context {
        self
    }
}

#[cfg(feature = "tokio")]
fn run<F: Future>(
    deadline: Option<Instant>,
    awaited_out: &AtomicBool,
    future: F,
) -> Option<F::Output> {
    let runtime = runtime();
    match deadline {
        None => Some(runtime.block_on(future)),
        Some(deadline) => {
            let deadline = tokio::time::Instant::from_std(deadline);
            // The timer is made inside the runtime (it needs its context).
            let raced = async move { tokio::time::timeout_at(deadline, future).await };
            match runtime.block_on(raced) {
                Ok(value) => Some(value),
                Err(_elapsed) => {
                    awaited_out.store(true, Ordering::Release);
                    None
                }
            }
        }
    }
}

#[cfg(not(feature = "tokio"))]
fn run<F: Future>(_: Option<Instant>, _: &AtomicBool, _: F) -> Option<F::Output> {
    // `AsyncSection::of` requires `Context: AsyncContext`, implemented only with the `tokio`
    // feature: without it, a program with an async lifecycle method does not compile.
    let _ = Ordering::Relaxed;
    unreachable!("async lifecycle methods need the `tokio` feature")
}

/// The process's tokio runtime, built on first use: multi-threaded (one worker per CPU, named
/// `skprocess-async`), with time and I/O.
///
/// # Panics
///
/// When the runtime cannot be built (no threads can be started): the section fails with that
/// message, as for any panic in a section.
#[cfg(feature = "tokio")]
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    match try_runtime() {
        Ok(runtime) => runtime,
        Err(message) => {
            panic!("cannot start the tokio runtime for async lifecycle methods: {message}")
        }
    }
}

/// [`runtime`], or why it cannot be built (for callers with an error type of their own, such
/// as the async connection types).
#[cfg(feature = "tokio")]
pub(crate) fn try_runtime() -> Result<&'static tokio::runtime::Runtime, &'static str> {
    static RUNTIME: std::sync::OnceLock<Result<tokio::runtime::Runtime, String>> =
        std::sync::OnceLock::new();
    let built = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .thread_name("skprocess-async")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    });
    built.as_ref().map_err(String::as_str)
}
