//! The parent side of a pool: workers, the queue of chunks, dispatch, crash recovery and
//! cancellation.
//!
//! Every call cuts its items into chunks (runs of consecutive items, bounded by count and by
//! bytes) and puts them on one queue shared by all calls. Each worker has up to [`DEPTH`] chunks
//! in flight: the one it runs and the next, already in its socket, so it never waits for the
//! parent between chunks. A worker reports results as they accumulate (a chunk may take several
//! `Results` frames); its thread hands them to the call's [`CallSink`] and refills the worker
//! from the queue. Lock order: the pool state, then a sink.
//!
//! A chunk a worker holds but has not started can be taken back ([`StatusPage::revoke`]): to
//! give it to an idle worker, or because its call was cancelled. At most one revocation is
//! pending per worker; the worker acknowledges it by reporting the chunk skipped.
//!
//! A worker that dies is found by its thread (end of stream), reaped, and replaced. Its status
//! page says which chunk and which item it was running: that item is reported as crashed, items
//! already reported stay delivered, and every other item it held goes back to the front of the
//! queue, so nothing is lost and nothing is delivered twice.

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::error::{PoolError, TaskError};
use super::submit::Bell;
use super::task::TaskCode;
use crate::error::{ExitInfo, IpcError, ProcessError, SetupFailure};
use crate::launch::CONNECT_TIMEOUT;
use crate::shm::{Phase, StatusPage};
use crate::sync::{lock, wait_until};
use crate::wire::protocol::{
    Kind, RESULTS_HEAD, ResultsHead, TaskFrame, WorkerInit, WorkerStart, decode_skipped,
};
use crate::wire::{Conn, Frame, encode};

/// Chunks in flight per worker: the running one and the next.
pub(crate) const DEPTH: usize = 2;

/// A run of consecutive items of one call, encoded, on its way to a worker.
pub(crate) struct Chunk {
    call: Arc<CallSink>,
    code: TaskCode,
    first_index: usize,
    lengths: Vec<u32>,
    items: Vec<u8>,
    /// The descriptors of the buffers in the items, by the indices they were encoded with
    /// (shared by the chunks a chunk is split into: each sends them all).
    fds: Arc<Vec<OwnedFd>>,
}

impl Chunk {
    pub(crate) fn new(
        call: Arc<CallSink>,
        code: TaskCode,
        first_index: usize,
        lengths: Vec<u32>,
        items: Vec<u8>,
        fds: Vec<OwnedFd>,
    ) -> Chunk {
        Chunk {
            call,
            code,
            first_index,
            lengths,
            items,
            fds: Arc::new(fds),
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.lengths.len()
    }

    /// The encoded items' bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.items.len()
    }

    /// The items `range` of this chunk as a chunk of their own.
    fn split(&self, range: std::ops::Range<usize>) -> Chunk {
        let bytes = |lengths: &[u32]| lengths.iter().map(|&l| l as usize).sum::<usize>();
        let start = bytes(&self.lengths[..range.start]);
        let len = bytes(&self.lengths[range.clone()]);
        Chunk {
            call: Arc::clone(&self.call),
            code: self.code,
            first_index: self.first_index + range.start,
            lengths: self.lengths[range].to_vec(),
            items: self.items[start..start + len].to_vec(),
            fds: Arc::clone(&self.fds),
        }
    }
}

/// What a call receives from the workers.
#[derive(Debug)]
pub(crate) enum Delivery {
    /// Encoded `Result<Output, TaskError>` values for `count` items from `first_index`, in
    /// `bytes[start..]`, which took the worker `nanos` nanoseconds.
    Done {
        first_index: usize,
        count: usize,
        bytes: Vec<u8>,
        start: usize,
        nanos: u64,
    },
    /// The worker died running item `index` (or before it could report it).
    Crashed {
        index: usize,
        pid: u32,
        exit: ExitInfo,
    },
}

/// Where one call's results arrive.
#[derive(Default)]
pub(crate) struct CallSink {
    state: Mutex<SinkState>,
    ready: Condvar,
    cancelled: AtomicBool,
    /// Cancelled by a deadline or an interrupt: workers running its items are killed.
    kill_running: AtomicBool,
    /// Rung after every delivery and failure, for waiters that watch several calls at once
    /// (submitted tasks, `as_completed`, futures). `None` for the other calls: nothing to ring.
    bell: Option<Arc<Bell>>,
}

#[derive(Default)]
struct SinkState {
    deliveries: VecDeque<Delivery>,
    failure: Option<FailureKind>,
}

#[derive(Clone)]
enum FailureKind {
    Closed,
    /// The pool's initializer failed in a worker: its name and how.
    Initializer(String, crate::error::Failure),
    /// No worker can be started (every slot gave up); this says why.
    Broken(SetupFailure),
    /// Ctrl+C, with [`graceful_ctrl_c`](crate::graceful_ctrl_c) on.
    Interrupted,
}

/// The outcome of waiting on a sink.
pub(crate) enum Next {
    Delivery(Delivery),
    TimedOut,
    /// The call was interrupted (Ctrl+C); the caller reports how many items it completed.
    Interrupted,
    Failed(PoolError),
}

impl CallSink {
    /// A sink that rings `bell` after each delivery and failure.
    pub(crate) fn with_bell(bell: Arc<Bell>) -> CallSink {
        CallSink {
            bell: Some(bell),
            ..CallSink::default()
        }
    }

    fn deliver(&self, delivery: Delivery) {
        if self.is_cancelled() {
            return;
        }
        lock(&self.state).deliveries.push_back(delivery);
        self.ready.notify_all();
        if let Some(bell) = &self.bell {
            bell.ring();
        }
    }

    fn fail(&self, failure: FailureKind) {
        lock(&self.state).failure.get_or_insert(failure);
        self.ready.notify_all();
        if let Some(bell) = &self.bell {
            bell.ring();
        }
    }

    /// Ends the call with [`PoolError::Interrupted`] (its waiter wakes and sees it).
    #[cfg(feature = "nats")]
    pub(crate) fn interrupt(&self) {
        self.fail(FailureKind::Interrupted);
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    fn kills_running(&self) -> bool {
        self.kill_running.load(Ordering::Acquire)
    }

    /// Waits for the next delivery until `deadline`.
    pub(crate) fn next(&self, deadline: Option<Instant>) -> Next {
        let (mut state, _) = wait_until(&self.ready, lock(&self.state), deadline, |state| {
            state.failure.is_some() || !state.deliveries.is_empty()
        });
        // A closed, broken or interrupted pool ends the call, whatever had arrived.
        match &state.failure {
            Some(FailureKind::Closed) => Next::Failed(PoolError::Closed),
            Some(FailureKind::Initializer(initializer, error)) => {
                Next::Failed(PoolError::Initializer {
                    initializer: initializer.clone(),
                    error: error.clone(),
                })
            }
            Some(FailureKind::Broken(failure)) => {
                Next::Failed(PoolError::Spawn(failure.to_error()))
            }
            Some(FailureKind::Interrupted) => Next::Interrupted,
            None => match state.deliveries.pop_front() {
                Some(delivery) => Next::Delivery(delivery),
                None => Next::TimedOut,
            },
        }
    }
}

/// A chunk in a worker's hands: its number in the worker's stream, and how many of its items
/// the worker reported so far.
struct Dispatched {
    chunk: Arc<Chunk>,
    seq: u64,
    reported: usize,
}

/// One live worker process.
struct Worker {
    pid: u32,
    pidfd: Arc<OwnedFd>,
    status: Arc<StatusPage>,
    outbox: mpsc::Sender<(Arc<Chunk>, u64)>,
    /// The number of the next chunk sent to this worker.
    next_seq: u64,
    /// In the order the worker takes them.
    in_flight: VecDeque<Dispatched>,
    /// The number of a chunk taken back from this worker before it started it; it reports it
    /// skipped.
    revoked: Option<u64>,
    /// How many more items it may be given before it retires (`max_tasks_per_worker`).
    budget: Option<usize>,
}

impl Worker {
    fn kill(&self) {
        let _ = crate::sys::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL);
    }

    /// Whether the worker is running `held` (it claimed it and has not finished it).
    fn is_running(&self, held: &Dispatched) -> bool {
        self.status.claimed() == held.seq && self.status.phase() == Phase::Running
    }

    /// Sends `chunk` to the worker. `Err` gives it back if the worker is gone.
    fn dispatch(&mut self, chunk: Arc<Chunk>) -> Result<(), Arc<Chunk>> {
        let seq = self.next_seq;
        match self.outbox.send((Arc::clone(&chunk), seq)) {
            Ok(()) => {
                self.next_seq += 1;
                if let Some(budget) = &mut self.budget {
                    *budget = budget.saturating_sub(chunk.count());
                }
                self.in_flight.push_back(Dispatched {
                    chunk,
                    seq,
                    reported: 0,
                });
                Ok(())
            }
            Err(_) => Err(chunk),
        }
    }
}

struct State {
    /// Set when the pool's initializer failed in a worker: the pool is closed for good.
    init_failure: Option<(String, crate::error::Failure)>,
    /// Per slot, a worker that is running its initializer (not yet in `workers`).
    starting: Vec<Option<Arc<OwnedFd>>>,
    queue: VecDeque<Arc<Chunk>>,
    workers: Vec<Option<Worker>>,
    /// Why a worker could not be started, the last time one could not.
    spawn_error: Option<SetupFailure>,
    /// Slots that gave up after failing to start a worker three times in a row.
    gave_up: usize,
    /// No new calls; shut the workers down once idle.
    closed: bool,
}

/// Everything the pool's threads share.
pub(crate) struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// The frame limit of every worker's connection.
    frame_limit: u32,
    /// Keeps this pool's entry in the Ctrl+C list alive as long as the pool.
    interruptible: Mutex<Option<Arc<dyn crate::signals::Interrupt>>>,
    settings: WorkerSettings,
}

/// How the pool's workers start and when they retire.
#[derive(Debug, Clone, Default)]
pub(crate) struct WorkerSettings {
    /// The initializer each worker runs before its first task.
    pub(crate) init: Option<super::task::InitCode>,
    /// A worker retires after this many items (`max_tasks_per_worker`).
    pub(crate) max_tasks: Option<usize>,
    /// A worker retires after a chunk that leaves its resident memory above this.
    pub(crate) max_memory: Option<u64>,
}

/// Why a worker could not be started.
enum StartError {
    /// Starting or connecting it failed (or a start hook did).
    Spawn(SetupFailure),
    /// Its initializer failed.
    Init(String, crate::error::Failure),
}

impl From<String> for StartError {
    fn from(message: String) -> StartError {
        StartError::Spawn(message.into())
    }
}

impl From<SetupFailure> for StartError {
    fn from(failure: SetupFailure) -> StartError {
        StartError::Spawn(failure)
    }
}

impl Shared {
    /// Starts `size` workers and waits until they are all connected.
    pub(crate) fn start(
        size: usize,
        frame_limit: u32,
        settings: WorkerSettings,
    ) -> Result<Arc<Shared>, PoolError> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                init_failure: None,
                starting: (0..size).map(|_| None).collect(),
                queue: VecDeque::new(),
                workers: (0..size).map(|_| None).collect(),
                spawn_error: None,
                gave_up: 0,
                closed: false,
            }),
            changed: Condvar::new(),
            threads: Mutex::new(Vec::new()),
            frame_limit,
            interruptible: Mutex::new(None),
            settings,
        });
        for index in 0..size {
            let thread_shared = Arc::clone(&shared);
            let thread = std::thread::Builder::new()
                .name(format!("skprocess-pool-{index}"))
                .spawn(move || slot_main(&thread_shared, index))
                .map_err(|e| PoolError::Spawn(ProcessError::Spawn(e)))?;
            lock(&shared.threads).push(thread);
        }
        let (state, _) = wait_until(&shared.changed, lock(&shared.state), None, |state| {
            state.gave_up > 0
                || state.init_failure.is_some()
                || state.workers.iter().all(Option::is_some)
        });
        if let Some((initializer, error)) = state.init_failure.clone() {
            drop(state);
            shared.shut_down(Duration::ZERO);
            return Err(PoolError::Initializer { initializer, error });
        }
        if state.gave_up > 0 {
            let failure = state
                .spawn_error
                .clone()
                .unwrap_or_else(|| "a pool worker could not start".to_owned().into());
            drop(state);
            shared.shut_down(Duration::ZERO);
            return Err(PoolError::Spawn(failure.to_error()));
        }
        drop(state);
        let interruptible: Arc<dyn crate::signals::Interrupt> =
            Arc::new(Interruptible(Arc::downgrade(&shared)));
        crate::signals::track(Arc::downgrade(&interruptible));
        lock(&shared.interruptible).replace(interruptible);
        Ok(shared)
    }

    /// The frame limit of the workers' connections.
    pub(crate) fn frame_limit(&self) -> u32 {
        self.frame_limit
    }

    /// How the workers start and retire.
    pub(crate) fn settings(&self) -> &WorkerSettings {
        &self.settings
    }

    /// The pool's initializer failed in a worker: close the pool for good, failing every call
    /// in progress with that failure.
    fn init_failed(&self, initializer: String, error: crate::error::Failure) {
        let pending: Vec<Arc<Chunk>> = {
            let mut state = lock(&self.state);
            state
                .init_failure
                .get_or_insert((initializer.clone(), error.clone()));
            state.closed = true;
            let mut pending: Vec<_> = state.queue.drain(..).collect();
            for pidfd in state.starting.iter().flatten() {
                let _ = crate::sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
            }
            for worker in state.workers.iter_mut().flatten() {
                worker.kill();
                pending.extend(worker.in_flight.iter().map(|d| Arc::clone(&d.chunk)));
                worker.outbox = mpsc::channel().0;
            }
            pending
        };
        self.changed.notify_all();
        for chunk in pending {
            chunk
                .call
                .fail(FailureKind::Initializer(initializer.clone(), error.clone()));
        }
    }

    /// Queues a call's chunks and dispatches them.
    pub(crate) fn submit(&self, chunks: Vec<Chunk>) -> Result<(), PoolError> {
        let mut state = lock(&self.state);
        if let Some((initializer, error)) = state.init_failure.clone() {
            return Err(PoolError::Initializer { initializer, error });
        }
        if state.closed {
            return Err(PoolError::Closed);
        }
        if state.gave_up == state.workers.len() {
            return Err(PoolError::Spawn(state.spawn_error.as_ref().map_or_else(
                || ProcessError::ChildSetup {
                    message: "no pool worker can be started".into(),
                },
                SetupFailure::to_error,
            )));
        }
        state.queue.extend(chunks.into_iter().map(Arc::new));
        for index in 0..state.workers.len() {
            fill(&mut state, index);
        }
        Ok(())
    }

    /// Cancels a call: its queued chunks are dropped, its chunks not yet started in a worker are
    /// taken back, and (with `kill_running`, for a deadline or an interrupt) the workers running
    /// one of its chunks are killed and replaced. A worker that runs another call's chunk is
    /// never killed for this one: a chunk of this call that it holds and that cannot be taken
    /// back yet is taken back (or its worker killed, once it runs it) at the worker's next
    /// report.
    pub(crate) fn cancel(self: &Arc<Self>, call: &Arc<CallSink>, kill_running: bool) {
        if kill_running {
            call.kill_running.store(true, Ordering::Release);
        }
        call.cancelled.store(true, Ordering::Release);
        let mut state = lock(&self.state);
        state.queue.retain(|chunk| !Arc::ptr_eq(&chunk.call, call));
        for worker in state.workers.iter_mut().flatten() {
            sweep(worker);
        }
        if kill_running && holds_any(&state, call) {
            // A worker holds a chunk of the call that could not be taken back yet (another
            // revocation is pending on it) and may start it without reporting anything first:
            // keep sweeping until no worker holds the call's work.
            drop(state);
            let (shared, call) = (Arc::downgrade(self), Arc::clone(call));
            let _ = std::thread::Builder::new()
                .name("skprocess-pool-sweep".into())
                .spawn(move || sweep_until_free(&shared, &call));
        }
    }

    /// Ends every call in progress with [`PoolError::Interrupted`], killing the workers that run
    /// their items (Ctrl+C with [`graceful_ctrl_c`](crate::graceful_ctrl_c) on).
    fn interrupt_calls(self: &Arc<Self>) {
        let calls: Vec<Arc<CallSink>> = {
            let state = lock(&self.state);
            let mut calls: Vec<Arc<CallSink>> = Vec::new();
            let held = state
                .workers
                .iter()
                .flatten()
                .flat_map(|w| w.in_flight.iter().map(|d| &d.chunk));
            for chunk in state.queue.iter().chain(held) {
                if !calls.iter().any(|c| Arc::ptr_eq(c, &chunk.call)) {
                    calls.push(Arc::clone(&chunk.call));
                }
            }
            calls
        };
        for call in calls {
            call.fail(FailureKind::Interrupted);
            self.cancel(&call, true);
        }
    }

    /// Waits until no chunk is queued or in flight (used by `close`).
    pub(crate) fn wait_idle(&self) {
        let _ = wait_until(&self.changed, lock(&self.state), None, |state| {
            state.queue.is_empty()
                && state
                    .workers
                    .iter()
                    .flatten()
                    .all(|w| w.in_flight.is_empty())
        });
    }

    /// Stops accepting calls, lets workers finish what they hold for at most `grace`, then kills
    /// what is left, reaps every worker and fails pending calls with `PoolError::Closed`.
    pub(crate) fn shut_down(&self, grace: Duration) {
        let pending: Vec<Arc<Chunk>> = {
            let mut state = lock(&self.state);
            state.closed = true;
            let mut pending: Vec<_> = state.queue.drain(..).collect();
            for pidfd in state.starting.iter().flatten() {
                let _ = crate::sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
            }
            for worker in state.workers.iter_mut().flatten() {
                if grace.is_zero() {
                    worker.kill();
                }
                pending.extend(worker.in_flight.iter().map(|d| Arc::clone(&d.chunk)));
                // Dropping the outbox ends the writer, which hangs up: the worker exits.
                worker.outbox = mpsc::channel().0;
            }
            pending
        };
        self.changed.notify_all();
        for chunk in pending {
            chunk.call.fail(FailureKind::Closed);
        }
        let deadline = Instant::now() + grace;
        let threads: Vec<_> = lock(&self.threads).drain(..).collect();
        for thread in &threads {
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        for worker in lock(&self.state).workers.iter().flatten() {
            worker.kill();
        }
        for thread in threads {
            let _ = thread.join();
        }
    }

    fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }

    /// The process ids of the live workers.
    pub(crate) fn pids(&self) -> Vec<u32> {
        lock(&self.state)
            .workers
            .iter()
            .flatten()
            .map(|w| w.pid)
            .collect()
    }
}

/// What a Ctrl+C interrupts: a pool's calls in progress.
pub(crate) struct Interruptible(pub(crate) std::sync::Weak<Shared>);

impl crate::signals::Interrupt for Interruptible {
    fn interrupt(&self) {
        if let Some(shared) = self.0.upgrade() {
            shared.interrupt_calls();
        }
    }
}

/// Whether some worker holds a chunk of `call`.
fn holds_any(state: &State, call: &Arc<CallSink>) -> bool {
    state
        .workers
        .iter()
        .flatten()
        .any(|w| w.in_flight.iter().any(|d| Arc::ptr_eq(&d.chunk.call, call)))
}

/// Sweeps every worker until none holds a chunk of the cancelled `call` (each one is taken
/// back, or its worker killed once it runs it), or the pool is gone.
fn sweep_until_free(shared: &std::sync::Weak<Shared>, call: &Arc<CallSink>) {
    loop {
        std::thread::sleep(Duration::from_millis(10));
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let mut state = lock(&shared.state);
        if state.closed || !holds_any(&state, call) {
            return;
        }
        for worker in state.workers.iter_mut().flatten() {
            sweep(worker);
        }
    }
}

/// Applies cancellations to what a worker holds: kills it if it runs a chunk of a call
/// cancelled with `kill_running`, and takes back one not-started chunk of a cancelled call if
/// no other revocation is pending. Called at cancellation and after every report of the worker.
fn sweep(worker: &mut Worker) {
    if let Some(front) = worker.in_flight.front()
        && front.chunk.call.kills_running()
        && worker.is_running(front)
    {
        worker.kill();
        return;
    }
    if worker.revoked.is_some() {
        return;
    }
    // The first such chunk: the worker takes its chunks in order, and each revocation it
    // acknowledges lets the next one be taken back.
    let cancelled = worker
        .in_flight
        .iter()
        .position(|d| d.chunk.call.is_cancelled() && d.reported == 0 && !worker.is_running(d));
    let Some(position) = cancelled else { return };
    let seq = worker.in_flight[position].seq;
    if worker.status.revoke(seq) {
        worker.in_flight.remove(position);
        worker.revoked = Some(seq);
    } else if worker.in_flight[position].chunk.call.kills_running()
        && worker.is_running(&worker.in_flight[position])
    {
        // It started it meanwhile. (If it already passed it, its results are on the way.)
        worker.kill();
    }
}

/// Gives worker `index` chunks from the queue until it has [`DEPTH`] in flight. With the queue
/// empty, an idle worker takes a chunk another worker holds but has not started (so a quick item
/// never waits behind a slow one while a worker is free).
fn fill(state: &mut State, index: usize) {
    let State { queue, workers, .. } = state;
    let Some(worker) = workers[index].as_mut() else {
        return;
    };
    // While a chunk taken back from it is pending, a busy worker gets nothing more to hold:
    // nothing could take a second chunk back from it until it acknowledges the first (one
    // revocation at a time), so that chunk would wait behind its running one while another
    // worker may be idle.
    while worker.in_flight.len() < DEPTH
        && worker.budget != Some(0)
        && (worker.revoked.is_none() || worker.in_flight.is_empty())
    {
        let Some(mut chunk) = queue.pop_front() else {
            break;
        };
        if chunk.call.is_cancelled() {
            continue;
        }
        if let Some(budget) = worker.budget
            && budget < chunk.count()
        {
            // Only what the worker may still run: the rest waits at the front of the queue.
            queue.push_front(Arc::new(chunk.split(budget..chunk.count())));
            chunk = Arc::new(chunk.split(0..budget));
        }
        if let Err(chunk) = worker.dispatch(chunk) {
            queue.push_front(chunk);
            return;
        }
    }
    let budget = worker.budget.unwrap_or(usize::MAX);
    if budget == 0 {
        if worker.in_flight.is_empty() {
            // It ran its share (`max_tasks_per_worker`): hanging up retires it, and its slot
            // starts a fresh worker.
            worker.outbox = mpsc::channel().0;
        }
        return;
    }
    if worker.in_flight.is_empty()
        && let Some(chunk) = steal(workers, index, budget)
    {
        let worker = workers[index].as_mut().expect("checked above");
        if let Err(chunk) = worker.dispatch(chunk) {
            queue.push_front(chunk);
        }
    }
}

/// Takes back a chunk some other worker holds but has not started, of at most `budget` items.
fn steal(workers: &mut [Option<Worker>], thief: usize, budget: usize) -> Option<Arc<Chunk>> {
    for (index, slot) in workers.iter_mut().enumerate() {
        let Some(holder) = slot.as_mut() else {
            continue;
        };
        if index == thief || holder.in_flight.len() < DEPTH || holder.revoked.is_some() {
            continue;
        }
        let candidate = holder.in_flight.back().expect("DEPTH > 0");
        if candidate.reported > 0
            || candidate.chunk.call.is_cancelled()
            || candidate.chunk.count() > budget
        {
            continue;
        }
        if holder.status.revoke(candidate.seq) {
            let taken = holder.in_flight.pop_back().expect("checked above");
            holder.revoked = Some(taken.seq);
            return Some(taken.chunk);
        }
    }
    None
}

/// The life of one worker slot: start a worker, feed it, and when it dies, put back what it
/// held and start another; until the pool closes. A slot gives up after three failed starts
/// in a row, or at once when a `#[child_init]` hook failed (the next worker would run the
/// same hook).
fn slot_main(shared: &Arc<Shared>, index: usize) {
    let mut failures = 0u32;
    while !shared.is_closed() {
        match run_worker(shared, index) {
            Ok(()) => failures = 0,
            Err(StartError::Init(initializer, error)) => {
                shared.init_failed(initializer, error);
                return;
            }
            Err(StartError::Spawn(message)) => {
                failures += 1;
                if failures >= 3 || message.is_child_init() {
                    give_up(shared, message);
                    return;
                }
                std::thread::sleep(Duration::from_millis(50 * u64::from(failures)));
            }
        }
    }
}

/// A slot stops trying. The other workers serve the queue; when none is left, every call
/// waiting on the pool fails with the reason, and later calls fail at once.
fn give_up(shared: &Shared, message: SetupFailure) {
    let mut state = lock(&shared.state);
    state.spawn_error = Some(message.clone());
    state.gave_up += 1;
    let failed: Vec<Arc<Chunk>> = if state.gave_up == state.workers.len() {
        state.queue.drain(..).collect()
    } else {
        Vec::new()
    };
    drop(state);
    shared.changed.notify_all();
    for chunk in failed {
        chunk.call.fail(FailureKind::Broken(message.clone()));
    }
}

/// Starts one worker and serves it until it ends. `Err` when it could not be started.
fn run_worker(shared: &Arc<Shared>, index: usize) -> Result<(), StartError> {
    let limit = shared.frame_limit;
    let settings = &shared.settings;
    let start = WorkerStart {
        init: settings.init.as_ref().map(|init| WorkerInit {
            offset: init.offset,
            data: init.data,
            name: init.name.to_owned(),
        }),
        max_memory: settings.max_memory,
    };
    let start = encode(&start).map_err(|e| e.to_string())?;
    let start = crate::launch::start_frame(super::worker::ENTRY_NAME, start, limit)
        .map_err(|e| e.to_string())?;
    let mut launched = crate::launch::launch().map_err(|e| e.to_string())?;
    let conn = match launched.connect(&start, limit) {
        Ok(conn) => conn,
        Err(failure) => {
            let message = match failure.into_error() {
                Some(error) => format!("a pool worker did not start: {error}"),
                None => "a pool worker exited before it connected".to_owned(),
            };
            let _ = launched.into_reaper().reap(Duration::from_secs(5));
            return Err(StartError::Spawn(message.into()));
        }
    };
    let (pid, pidfd, status) = (
        launched.pid,
        Arc::clone(&launched.pidfd),
        Arc::clone(&launched.status),
    );
    let reaper = launched.into_reaper();
    // The worker checks that it runs the pool's executable, then says it is ready.
    let ready = match conn.read_frame_until(limit, Instant::now() + CONNECT_TIMEOUT) {
        Ok(Some(Frame {
            kind: Kind::Ready, ..
        })) => Ok(()),
        Ok(Some(Frame {
            kind: Kind::SetupFailed,
            payload,
        })) => Err(SetupFailure::decode(&payload)),
        Ok(_) | Err(_) => Err("a pool worker hung up before it was ready"
            .to_owned()
            .into()),
    };
    if let Err(message) = ready {
        conn.shutdown();
        let _ = reaper.reap(Duration::from_secs(1));
        return Err(StartError::Spawn(message));
    }
    // Its initializer runs now, for as long as it takes; a shutdown kills it meanwhile.
    lock(&shared.state).starting[index] = Some(Arc::clone(&pidfd));
    if shared.is_closed() {
        let _ = crate::sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
    }
    let initialized = wait_initialized(&conn, pid, settings);
    lock(&shared.state).starting[index] = None;
    if let Err(error) = initialized {
        conn.shutdown();
        let _ = reaper.reap(Duration::from_secs(1));
        return Err(error);
    }

    let (outbox, inbox) = mpsc::channel::<(Arc<Chunk>, u64)>();
    let writer_conn = Arc::clone(&conn);
    let writer = std::thread::Builder::new()
        .name(format!("skprocess-pool-{index}-w"))
        .spawn(move || {
            for (chunk, seq) in inbox {
                let head = TaskFrame::head(
                    seq,
                    chunk.code.offset,
                    chunk.code.data,
                    &chunk.lengths,
                    chunk.items.len(),
                    writer_conn.limit(),
                );
                // The buffers' descriptors go just before the chunk that refers to them.
                let sent = chunk
                    .fds
                    .iter()
                    .try_for_each(|fd| writer_conn.send_with_fd(Kind::BufferFd, &[], fd.as_fd()))
                    .and(head)
                    .and_then(|head| writer_conn.send_vectored(&[&head, &chunk.items]));
                if sent.is_err() {
                    break;
                }
            }
            // The pool closed (or the worker is gone): hang up, so the worker exits.
            writer_conn.shutdown();
        })
        .map_err(|e| e.to_string())?;

    {
        let mut state = lock(&shared.state);
        state.workers[index] = Some(Worker {
            pid,
            pidfd,
            status,
            outbox,
            next_seq: 1,
            in_flight: VecDeque::new(),
            revoked: None,
            budget: settings.max_tasks,
        });
        if state.closed {
            // Closed while this worker started: let it go at once.
            if let Some(worker) = state.workers[index].as_mut() {
                worker.outbox = mpsc::channel().0;
            }
        }
        fill(&mut state, index);
    }
    shared.changed.notify_all();

    let setup_error = serve(shared, index, pid, &conn);
    conn.shutdown();
    let exit = reaper
        .reap(Duration::from_secs(5))
        .map_or(ExitInfo::Unknown, ExitInfo::from_status);
    // Taking the worker out of the state drops its outbox, which ends the writer.
    worker_gone(shared, index, exit);
    let _ = writer.join();
    match setup_error {
        Some(message) => Err(StartError::Spawn(message)),
        None => Ok(()),
    }
}

/// Waits for a new worker's word that its start hooks and initializer ran (re-emitting what
/// they logged meanwhile), however long they take; the worker's death ends the wait.
fn wait_initialized(conn: &Conn, pid: u32, settings: &WorkerSettings) -> Result<(), StartError> {
    loop {
        // Unbuffered: the frames after `Initialized` are for `serve`.
        let frame = match conn.read_one() {
            Ok(Some(frame)) => frame,
            Ok(None) | Err(_) => {
                return Err(StartError::Spawn(
                    match &settings.init {
                        Some(init) => format!(
                            "a pool worker died while running the initializer `{}`",
                            init.name
                        ),
                        None => "a pool worker hung up before it was ready".to_owned(),
                    }
                    .into(),
                ));
            }
        };
        match frame.kind {
            Kind::Initialized => return Ok(()),
            Kind::InitFailed => {
                return Err(
                    match crate::wire::decode::<(String, crate::error::Failure)>(&frame.payload) {
                        Ok((initializer, error)) => StartError::Init(initializer, error),
                        Err(message) => format!(
                            "a pool worker's initializer failed, and its report is malformed: \
                             {message}"
                        )
                        .into(),
                    },
                );
            }
            Kind::SetupFailed => {
                return Err(StartError::Spawn(SetupFailure::decode(&frame.payload)));
            }
            Kind::Log => {
                let source = crate::logs::Source {
                    pid,
                    process: crate::logs::POOL_WORKER,
                };
                if let Err(error) = crate::logs::receive(&frame.payload, source) {
                    return Err(
                        format!("a pool worker sent a malformed log record: {error}").into(),
                    );
                }
            }
            kind => {
                return Err(format!(
                    "unexpected {kind:?} frame from a pool worker before its first task"
                )
                .into());
            }
        }
    }
}

/// Reads a worker's reports until it hangs up. Returns the worker's own setup error, if it
/// reported one.
fn serve(shared: &Shared, index: usize, pid: u32, conn: &Conn) -> Option<SetupFailure> {
    let mut frames = conn.frames();
    loop {
        let handled = match frames.next_frame() {
            Ok(Some(Frame {
                kind: Kind::Results,
                payload,
            })) => results(shared, index, payload),
            Ok(Some(Frame {
                kind: Kind::Skipped,
                payload,
            })) => skipped(shared, index, &payload),
            Ok(Some(Frame {
                kind: Kind::SetupFailed,
                payload,
            })) => return Some(SetupFailure::decode(&payload)),
            // Re-emitted at once, before any later frame: a task's records before its results.
            Ok(Some(Frame {
                kind: Kind::Log,
                payload,
            })) => crate::logs::receive(
                &payload,
                crate::logs::Source {
                    pid,
                    process: crate::logs::POOL_WORKER,
                },
            ),
            Ok(Some(Frame { kind, .. })) => Err(IpcError::Malformed(format!(
                "unexpected {kind:?} frame from a pool worker"
            ))),
            Ok(None) | Err(_) => return None,
        };
        if handled.is_err() {
            // A worker that breaks the protocol is put down; what it held goes back to the
            // queue when its connection ends.
            if let Some(worker) = lock(&shared.state).workers[index].as_ref() {
                worker.kill();
            }
            return None;
        }
    }
}

/// A worker reported results of the chunk it runs.
fn results(shared: &Shared, index: usize, payload: Vec<u8>) -> Result<(), IpcError> {
    let head = ResultsHead::decode(&payload)?;
    let mut state = lock(&shared.state);
    let worker = state.workers[index]
        .as_mut()
        .ok_or(IpcError::Disconnected)?;
    let front = worker
        .in_flight
        .front_mut()
        .filter(|d| d.seq == head.seq && d.reported == head.first as usize)
        .ok_or_else(|| IpcError::Malformed("results for a chunk the worker does not run".into()))?;
    let count = head.count as usize;
    if count == 0 || front.reported + count > front.chunk.count() {
        return Err(IpcError::Malformed(
            "results for items the chunk does not have".into(),
        ));
    }
    front.chunk.call.deliver(Delivery::Done {
        first_index: front.chunk.first_index + front.reported,
        count,
        bytes: payload,
        start: RESULTS_HEAD,
        nanos: head.nanos,
    });
    front.reported += count;
    let finished = front.reported == front.chunk.count();
    if finished {
        worker.in_flight.pop_front();
    }
    sweep(worker);
    if finished {
        for other in 0..state.workers.len() {
            fill(&mut state, other);
        }
        drop(state);
        shared.changed.notify_all();
    }
    Ok(())
}

/// A worker skipped the chunk the parent took back from it.
fn skipped(shared: &Shared, index: usize, payload: &[u8]) -> Result<(), IpcError> {
    let seq = decode_skipped(payload)?;
    let mut state = lock(&shared.state);
    let worker = state.workers[index]
        .as_mut()
        .ok_or(IpcError::Disconnected)?;
    if worker.revoked != Some(seq) {
        return Err(IpcError::Malformed(
            "skipped a chunk that was not taken back".into(),
        ));
    }
    worker.revoked = None;
    sweep(worker);
    for other in 0..state.workers.len() {
        fill(&mut state, other);
    }
    drop(state);
    shared.changed.notify_all();
    Ok(())
}

/// A worker ended: blame the item it died on (if it died running one), put everything else it
/// held back at the front of the queue, and let the other workers pick it up.
fn worker_gone(shared: &Shared, index: usize, exit: ExitInfo) {
    let mut state = lock(&shared.state);
    let Some(worker) = state.workers[index].take() else {
        return;
    };
    if state.closed {
        // Closed or terminated: what it held will not run anywhere.
        drop(state);
        for held in &worker.in_flight {
            held.chunk.call.fail(FailureKind::Closed);
        }
        shared.changed.notify_all();
        return;
    }
    let item = worker.status.current_run();
    let mut requeue = Vec::new();
    let mut crashed = Vec::new();
    for (position, held) in worker.in_flight.iter().enumerate() {
        let chunk = &held.chunk;
        if chunk.call.is_cancelled() {
            continue;
        }
        let mut put_back = |range: std::ops::Range<usize>| {
            if range.is_empty() {
            } else if range.len() == chunk.count() {
                requeue.push(Arc::clone(chunk));
            } else {
                requeue.push(Arc::new(chunk.split(range)));
            }
        };
        if position == 0 && worker.is_running(held) {
            if item < chunk.count() {
                // Items before it ran, but their results died with the worker: they run again.
                let item = item.max(held.reported);
                put_back(held.reported..item);
                crashed.push((Arc::clone(&chunk.call), chunk.first_index + item));
                put_back(item + 1..chunk.count());
            } else {
                // It ran every item and died (or hung up) before reporting them all: each one
                // it did not report counts as failed with it.
                for i in held.reported..chunk.count() {
                    crashed.push((Arc::clone(&chunk.call), chunk.first_index + i));
                }
            }
        } else {
            put_back(held.reported..chunk.count());
        }
    }
    for chunk in requeue.into_iter().rev() {
        state.queue.push_front(chunk);
    }
    for (call, item) in crashed {
        call.deliver(Delivery::Crashed {
            index: item,
            pid: worker.pid,
            exit: exit.clone(),
        });
    }
    for other in 0..state.workers.len() {
        fill(&mut state, other);
    }
    drop(state);
    shared.changed.notify_all();
}

/// Decodes the `count` results of a [`Delivery::Done`], in item order, handing each to `each`
/// with its position in the delivery.
pub(crate) fn decode_results<O: serde::de::DeserializeOwned>(
    bytes: &[u8],
    count: usize,
    each: &mut dyn FnMut(usize, Result<O, TaskError>),
) {
    let mut decoder = crate::wire::codec::Decoder::new(bytes);
    for i in 0..count {
        match decoder.next::<Result<O, TaskError>>() {
            Ok(value) => each(i, value),
            Err(message) => {
                // Out of step: the remaining items cannot be located either.
                for j in i..count {
                    each(j, Err(TaskError::Decode(message.clone())));
                }
                return;
            }
        }
    }
}
