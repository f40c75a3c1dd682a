//! The engine: runs a process type's lifecycle in the child (or inline in a pool worker, or on
//! a thread of the current process for [`InProcess`](crate::InProcess)).
//!
//! ```text
//! while lives left:
//!     while should continue (no stop, runs left, join_in not passed):
//!         prerun → (stop?) → run → (stop?) → postrun → current_run += 1
//!     on failure: one life less; with lives left, enter the same run again from prerun
//! onfinish → result            (a failure here goes straight to error)
//! error (when lives ran out or onfinish/result failed): its value is the result
//! ```
//!
//! Untimed sections run inline on the engine thread; the per-iteration cost is two clock reads
//! per defined section, one atomic load for the stop flag and one atomic store for the run
//! index. A section with a timeout runs on a helper thread with a snapshot of the state taken
//! before it; on expiry the engine abandons that thread, restores the snapshot and carries on
//! (lives, or `__error__`), so what `__error__` sees is the state at the start of the timed-out
//! section.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::config::ProcessConfig;
use crate::error::{Failure, ProcessError, Section};
use crate::lifecycle::{ChildLink, Context, Lifecycle, ProcessTimers};

/// The stack of the threads that run a child's work and its timed sections: the size of a main
/// thread's stack on Linux, so that code that runs in `main` runs in a child too.
pub(crate) const WORK_STACK: usize = 8 << 20;

/// How a run of the lifecycle ended.
#[derive(Debug)]
pub(crate) enum Outcome<O> {
    /// `__result__` (or `__error__`) produced a value.
    Value(O),
    /// The process failed and `__error__` (if any) handed the error on.
    Error(ProcessError),
}

thread_local! {
    /// Where the last panic on this thread happened, recorded by the panic hook.
    static PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };

    /// Whether an engine on this thread ever abandoned a section thread (a pool worker that did
    /// retires after the item: the abandoned thread may still hold resources).
    static ABANDONED_A_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether an engine running on this thread abandoned a timed-out section's thread.
pub(crate) fn abandoned_a_thread() -> bool {
    ABANDONED_A_THREAD.with(std::cell::Cell::get)
}

/// Installs (once) a panic hook that remembers each panic's location for the thread that
/// panicked, then defers to the previous hook (which prints the usual message).
pub(crate) fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let location = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
            PANIC_LOCATION.with(|slot| *slot.borrow_mut() = location);
            previous(info);
        }));
    });
}

pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}

/// Calls a hook, turning an unwinding panic into a [`Failure`] with its message and location.
pub(crate) fn call_hook<R>(f: impl FnOnce() -> Result<R, Failure>) -> Result<R, Failure> {
    PANIC_LOCATION.with(|slot| slot.borrow_mut().take());
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let location = PANIC_LOCATION.with(|slot| slot.borrow_mut().take());
            Err(Failure::panic(panic_message(&*payload), location))
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A helper thread that runs timed sections. Abandoned (never joined) when a section overruns.
struct SectionRunner {
    jobs: mpsc::Sender<Job>,
}

impl SectionRunner {
    fn spawn() -> std::io::Result<SectionRunner> {
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("skprocess-section".into())
            .stack_size(WORK_STACK)
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job();
                }
            })?;
        Ok(SectionRunner { jobs })
    }
}

/// What a failed section amounts to.
enum SectionError {
    /// The hook returned an error or panicked.
    Failed(Failure),
    /// The hook ran past its timeout and was abandoned.
    TimedOut(Duration),
    /// The engine itself could not run the section (snapshot not encodable, no thread).
    Engine(ProcessError),
}

pub(crate) struct Engine<T: Lifecycle> {
    state: Option<Box<T>>,
    cx: Context,
    link: Arc<ChildLink>,
    config: Arc<ProcessConfig>,
    timers: ProcessTimers,
    lives_left: u32,
    current_run: usize,
    runner: Option<SectionRunner>,
}

impl<T: Lifecycle> Engine<T> {
    pub(crate) fn new(state: T, config: ProcessConfig, link: Arc<ChildLink>) -> Engine<T> {
        let config = Arc::new(config);
        let cx = Context::new(Arc::clone(&link), Arc::clone(&config));
        Engine {
            state: Some(Box::new(state)),
            timers: ProcessTimers::with_window(config.timer_window),
            lives_left: config.lives,
            cx,
            link,
            config,
            current_run: 0,
            runner: None,
        }
    }

    /// Runs the whole lifecycle. Returns the outcome and the filled timers.
    pub(crate) fn run(mut self) -> (Outcome<T::Output>, ProcessTimers) {
        let outcome = self.run_lifecycle();
        self.link.status.set_phase(crate::shm::Phase::Done);
        (outcome, self.timers)
    }

    fn run_lifecycle(&mut self) -> Outcome<T::Output> {
        use crate::shm::Phase;
        let started = Instant::now();
        let join_at = self.config.join_in.and_then(|d| started.checked_add(d));
        self.link.status.set_phase(Phase::Running);
        let connected = match self.state.as_mut() {
            Some(state) => state.connect_fields(),
            None => Ok(()),
        };
        if let Err(error) = connected {
            return self.handle_error(ProcessError::Connect(Box::new(error)));
        }
        loop {
            match self.iterate(join_at) {
                Ok(()) => break,
                Err(error) => {
                    self.lives_left -= 1;
                    if self.lives_left == 0 {
                        return self.handle_error(error);
                    }
                    // Lives left: enter the same run again from __prerun__, state as it is.
                }
            }
        }
        self.link.status.set_phase(Phase::Finishing);
        if T::HOOKS.onfinish
            && let Err(error) = self.section(Section::Onfinish, |s, cx| s.onfinish(cx))
        {
            return self.handle_error(error);
        }
        match self.section(Section::Result, |s, cx| s.result(cx)) {
            Ok((value, _)) => Outcome::Value(value),
            Err(error) => self.handle_error(error),
        }
    }

    fn should_continue(&self, join_at: Option<Instant>) -> bool {
        !self.link.status.stop_requested()
            && self.config.runs.is_none_or(|runs| self.current_run < runs)
            && join_at.is_none_or(|at| Instant::now() < at)
    }

    /// Iterates until the loop should end. `Err` is a failed section (it costs a life).
    fn iterate(&mut self, join_at: Option<Instant>) -> Result<(), ProcessError> {
        let hooks = T::HOOKS;
        while self.should_continue(join_at) {
            let mut full = 0.0;
            if hooks.prerun {
                let Some((_, took)) = self.loop_section(Section::Prerun, |s, cx| s.prerun(cx))?
                else {
                    break;
                };
                full += took;
                if self.link.status.stop_requested() {
                    break;
                }
            }
            let Some((_, took)) = self.loop_section(Section::Run, |s, cx| s.run(cx))? else {
                break;
            };
            full += took;
            if self.link.status.stop_requested() {
                break;
            }
            if hooks.postrun {
                let Some((_, took)) = self.loop_section(Section::Postrun, |s, cx| s.postrun(cx))?
                else {
                    break;
                };
                full += took;
            }
            self.current_run += 1;
            self.link.status.set_current_run(self.current_run);
            self.timers.full_run.add_time(full);
        }
        Ok(())
    }

    /// Runs a section of the loop. `Ok(None)`: it failed only because a `tell` found the parent
    /// gone, which is a stop (the iteration ends as stopped, no life is lost, `__onfinish__`
    /// and `__result__` run).
    fn loop_section<F>(&mut self, section: Section, f: F) -> Result<Option<((), f64)>, ProcessError>
    where
        F: FnOnce(&mut T, &mut Context) -> Result<(), crate::error::Failure> + Send + 'static,
    {
        let failed_tells = self.link.failed_tells();
        match self.section(section, f) {
            Ok(done) => Ok(Some(done)),
            Err(ProcessError::Section { .. })
                if self.link.failed_tells() > failed_tells && self.link.status.stop_requested() =>
            {
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// Runs `__error__` (or the default, which hands the error on) on `error`.
    fn handle_error(&mut self, error: ProcessError) -> Outcome<T::Output> {
        if !T::HOOKS.error {
            return Outcome::Error(error);
        }
        let original = error.duplicate();
        match self.section(Section::Error, move |s, cx| Ok(s.error(cx, error))) {
            Ok((Ok(value), _)) => Outcome::Value(value),
            Ok((Err(handed_on), _)) => Outcome::Error(handed_on),
            Err(cause) => Outcome::Error(ProcessError::ErrorHandler {
                cause: Box::new(cause),
                original: Box::new(original),
            }),
        }
    }

    /// Runs one section, timing it. Returns its value and its duration in seconds.
    fn section<R, F>(&mut self, section: Section, f: F) -> Result<(R, f64), ProcessError>
    where
        R: Send + 'static,
        F: FnOnce(&mut T, &mut Context) -> Result<R, crate::error::Failure> + Send + 'static,
    {
        self.cx.set_position(self.current_run, self.lives_left);
        let started = Instant::now();
        let result = match self.config.timeouts.get(section) {
            None => {
                let state = self.state.as_deref_mut().expect("state present");
                let cx = &mut self.cx;
                call_hook(|| f(state, cx)).map_err(SectionError::Failed)
            }
            Some(timeout) => self.timed_section(section, timeout, f),
        };
        let elapsed = started.elapsed().as_secs_f64();
        match result {
            Ok(value) => {
                self.timers.section_mut(section).add_time(elapsed);
                Ok((value, elapsed))
            }
            Err(SectionError::Failed(failure)) => Err(ProcessError::Section {
                section,
                current_run: self.current_run,
                failure,
            }),
            Err(SectionError::TimedOut(timeout)) => Err(ProcessError::Timeout {
                section,
                timeout,
                current_run: self.current_run,
            }),
            Err(SectionError::Engine(error)) => Err(error),
        }
    }

    /// Runs a section on the helper thread with a deadline; on expiry, abandons it and restores
    /// the snapshot taken before it. An `async` section gets a short grace past its deadline
    /// to end at an await point (its future dropped, its thread kept) before it is abandoned.
    fn timed_section<R, F>(
        &mut self,
        section: Section,
        timeout: Duration,
        f: F,
    ) -> Result<R, SectionError>
    where
        R: Send + 'static,
        F: FnOnce(&mut T, &mut Context) -> Result<R, crate::error::Failure> + Send + 'static,
    {
        let snapshot = crate::wire::encode(self.state.as_deref().expect("state present")).map_err(
            |message| {
                SectionError::Engine(ProcessError::Encode {
                    what: "the process state (a snapshot before a timed section)".into(),
                    message,
                })
            },
        )?;
        if self.runner.is_none() {
            let runner = SectionRunner::spawn().map_err(|e| {
                SectionError::Engine(ProcessError::ChildSetup {
                    message: format!("cannot start a thread for a timed section: {e}"),
                })
            })?;
            self.runner = Some(runner);
        }
        let mut state = self.state.take().expect("state present");
        let deadline = Instant::now().checked_add(timeout);
        let mut wait = timeout;
        if T::HOOKS.is_async(section) {
            wait = wait.saturating_add(crate::async_hooks::ASYNC_GRACE);
        }
        // A deadline past what an `Instant` holds is no deadline (`Duration::MAX`).
        let mut cx = self.cx.for_abandonable_section(deadline);
        let abandon = cx.clone();
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let result = call_hook(|| f(&mut state, &mut cx));
            let _ = done_tx.send((state, result, Instant::now()));
        });
        let sent = self.runner.as_ref().expect("runner present").jobs.send(job);
        if let Err(mpsc::SendError(job)) = sent {
            // The runner thread is gone (it cannot be, short of a bug): run the job here.
            job();
        }
        let restore = |engine: &mut Self| -> Result<(), SectionError> {
            let restored: T = crate::wire::decode(&snapshot).map_err(|message| {
                SectionError::Engine(ProcessError::Decode {
                    what: "the process state snapshot".into(),
                    message,
                })
            })?;
            engine.state = Some(Box::new(restored));
            Ok(())
        };
        match done_rx.recv_timeout(wait) {
            // An async section dropped at an await point past its deadline, or one that came
            // back within the grace but after its deadline (it never awaited there): the
            // thread is free, the state may be half-changed; back to the snapshot, as for a
            // sync section that overran.
            Ok((_, _, finished))
                if abandon.awaited_out() || deadline.is_some_and(|d| finished > d) =>
            {
                restore(self)?;
                Err(SectionError::TimedOut(timeout))
            }
            Ok((state, result, _)) => {
                self.state = Some(state);
                result.map_err(SectionError::Failed)
            }
            Err(_) => {
                abandon.abandon();
                ABANDONED_A_THREAD.with(|flag| flag.set(true));
                self.runner = None; // the overrunning thread keeps the old state; forget both
                restore(self)?;
                Err(SectionError::TimedOut(timeout))
            }
        }
    }
}

impl ProcessTimers {
    fn section_mut(&mut self, section: Section) -> &mut crate::timing::Sktimer {
        match section {
            Section::Prerun => &mut self.prerun,
            Section::Run => &mut self.run,
            Section::Postrun => &mut self.postrun,
            Section::Onfinish => &mut self.onfinish,
            Section::Result => &mut self.result,
            Section::Error => &mut self.error,
        }
    }
}
