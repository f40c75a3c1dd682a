//! The parent side of a pool: workers, the queue of chunks, dispatch, crash recovery and
//! cancellation.
//!
//! Every call cuts its items into chunks (runs of consecutive items) and puts them on one queue
//! shared by all calls. Each worker has up to [`DEPTH`] chunks in flight: the one it runs and
//! the next, already in its socket, so it never waits for the parent between chunks. When a
//! worker reports a chunk, its thread hands the results to the call's [`CallSink`] and refills
//! the worker from the queue. Lock order: the pool state, then a sink.
//!
//! A worker that dies is found by its thread (end of stream), reaped, and replaced. Its status
//! page says which chunk and which item it was running: that item is reported as crashed, and
//! every other item it held goes back to the front of the queue, so nothing is lost and nothing
//! is delivered twice.

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::error::{PoolError, TaskError};
use super::worker::{ENTRY_NAME, TaskFrame, WorkerStart};
use crate::child::StartFrame;
use crate::error::{ExitInfo, ProcessError};
use crate::shm::{Phase, StatusPage};
use crate::wire::frame::{MAX_FRAME, encode_frame, read_frame};
use crate::wire::{Conn, Frame, Kind, encode};

/// Chunks in flight per worker: the running one and the next.
pub(crate) const DEPTH: usize = 2;

/// A run of consecutive items of one call, encoded, on its way to a worker.
pub(crate) struct Chunk {
    id: u64,
    call: Arc<CallSink>,
    offset: i64,
    first_index: usize,
    lengths: Vec<u32>,
    items: Vec<u8>,
}

impl Chunk {
    pub(crate) fn new(
        call: Arc<CallSink>,
        offset: i64,
        first_index: usize,
        lengths: Vec<u32>,
        items: Vec<u8>,
    ) -> Chunk {
        Chunk {
            id: 0, // numbered when submitted
            call,
            offset,
            first_index,
            lengths,
            items,
        }
    }

    fn count(&self) -> usize {
        self.lengths.len()
    }

    /// The items `range` of this chunk as a chunk of their own.
    fn split(&self, range: std::ops::Range<usize>, id: u64) -> Chunk {
        let start: usize = self.lengths[..range.start]
            .iter()
            .map(|&l| l as usize)
            .sum();
        let len: usize = self.lengths[range.clone()]
            .iter()
            .map(|&l| l as usize)
            .sum();
        Chunk {
            id,
            call: Arc::clone(&self.call),
            offset: self.offset,
            first_index: self.first_index + range.start,
            lengths: self.lengths[range].to_vec(),
            items: self.items[start..start + len].to_vec(),
        }
    }
}

/// What a call receives from the workers.
#[derive(Debug)]
pub(crate) enum Delivery {
    /// Encoded `Result<Output, TaskError>` values for `count` items from `first_index`, in
    /// `bytes[start..]`.
    Done {
        first_index: usize,
        count: usize,
        bytes: Vec<u8>,
        start: usize,
    },
    /// The worker died running item `index`.
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
}

#[derive(Default)]
struct SinkState {
    deliveries: VecDeque<Delivery>,
    failure: Option<FailureKind>,
}

#[derive(Clone)]
enum FailureKind {
    Closed,
    /// No worker can be started (every slot gave up); the message says why.
    Broken(String),
}

/// The outcome of waiting on a sink.
pub(crate) enum Next {
    Delivery(Delivery),
    TimedOut,
    Failed(PoolError),
}

impl CallSink {
    fn deliver(&self, delivery: Delivery) {
        if self.is_cancelled() {
            return;
        }
        lock(&self.state).deliveries.push_back(delivery);
        self.ready.notify_all();
    }

    fn fail(&self, failure: FailureKind) {
        lock(&self.state).failure.get_or_insert(failure);
        self.ready.notify_all();
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Waits for the next delivery until `deadline`.
    pub(crate) fn next(&self, deadline: Option<Instant>) -> Next {
        let mut state = lock(&self.state);
        loop {
            // A closed or broken pool ends the call, whatever had arrived.
            match &state.failure {
                Some(FailureKind::Closed) => return Next::Failed(PoolError::Closed),
                Some(FailureKind::Broken(message)) => {
                    return Next::Failed(PoolError::Spawn(ProcessError::ChildSetup {
                        message: message.clone(),
                    }));
                }
                None => {}
            }
            if let Some(delivery) = state.deliveries.pop_front() {
                return Next::Delivery(delivery);
            }
            match deadline {
                None => state = self.ready.wait(state).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Next::TimedOut;
                    }
                    state = self
                        .ready
                        .wait_timeout(state, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }
}

/// One live worker process.
struct Worker {
    pid: u32,
    pidfd: Arc<OwnedFd>,
    status: Arc<StatusPage>,
    outbox: mpsc::Sender<Arc<Chunk>>,
    in_flight: VecDeque<Arc<Chunk>>,
    /// Chunks taken back from this worker before it started them (given to an idle worker);
    /// it reports them as skipped.
    stolen: Vec<u64>,
}

struct State {
    queue: VecDeque<Arc<Chunk>>,
    workers: Vec<Option<Worker>>,
    /// Why a worker could not be started, the last time one could not.
    spawn_error: Option<String>,
    /// Slots that gave up after failing to start a worker three times in a row.
    gave_up: usize,
    /// No new calls; shut the workers down once idle.
    closed: bool,
    next_chunk: u64,
}

/// Everything the pool's threads share.
pub(crate) struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Starts `size` workers and waits until they are all connected.
    pub(crate) fn start(size: usize) -> Result<Arc<Shared>, PoolError> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                workers: (0..size).map(|_| None).collect(),
                spawn_error: None,
                gave_up: 0,
                closed: false,
                next_chunk: 1,
            }),
            changed: Condvar::new(),
            threads: Mutex::new(Vec::new()),
        });
        for index in 0..size {
            let thread_shared = Arc::clone(&shared);
            let thread = std::thread::Builder::new()
                .name(format!("skprocess-pool-{index}"))
                .spawn(move || slot_main(&thread_shared, index))
                .map_err(|e| PoolError::Spawn(ProcessError::Spawn(e)))?;
            lock(&shared.threads).push(thread);
        }
        let mut state = lock(&shared.state);
        loop {
            if state.gave_up > 0 {
                let message = state
                    .spawn_error
                    .clone()
                    .unwrap_or_else(|| "a pool worker could not start".into());
                drop(state);
                shared.shut_down(Duration::ZERO);
                return Err(PoolError::Spawn(ProcessError::ChildSetup { message }));
            }
            if state.workers.iter().all(Option::is_some) {
                break;
            }
            state = shared
                .changed
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
        drop(state);
        Ok(shared)
    }

    /// Queues a call's chunks and dispatches them.
    pub(crate) fn submit(&self, chunks: Vec<Chunk>) -> Result<(), PoolError> {
        let mut state = lock(&self.state);
        if state.closed {
            return Err(PoolError::Closed);
        }
        if state.gave_up == state.workers.len() {
            return Err(PoolError::Spawn(ProcessError::ChildSetup {
                message: state
                    .spawn_error
                    .clone()
                    .unwrap_or_else(|| "no pool worker can be started".into()),
            }));
        }
        for mut chunk in chunks {
            chunk.id = state.next_chunk;
            state.next_chunk += 1;
            state.queue.push_back(Arc::new(chunk));
        }
        for index in 0..state.workers.len() {
            fill(&mut state, index);
        }
        Ok(())
    }

    /// Cancels a call: its queued chunks are dropped, its chunks not yet started in a worker are
    /// skipped, and (with `kill_running`, for a deadline) the workers running one of its chunks
    /// are killed and replaced.
    pub(crate) fn cancel(&self, call: &Arc<CallSink>, kill_running: bool) {
        call.cancelled.store(true, Ordering::Release);
        let mut state = lock(&self.state);
        state.queue.retain(|chunk| !Arc::ptr_eq(&chunk.call, call));
        for worker in state.workers.iter().flatten() {
            let held: Vec<&Arc<Chunk>> = worker
                .in_flight
                .iter()
                .filter(|c| Arc::ptr_eq(&c.call, call))
                .collect();
            let Some(&last) = held.last() else { continue };
            // One chunk not yet started can be skipped through the skip mark (when the mark is
            // free). Otherwise the worker runs, or is about to run, one of this call's chunks.
            let skippable = held.len() == 1 && worker.stolen.is_empty();
            if skippable {
                worker.status.set_skip_task(last.id);
            }
            let running = held.iter().any(|chunk| {
                worker.status.task() == chunk.id && worker.status.phase() == Phase::Running
            });
            if kill_running && (running || !skippable) {
                // Its work belongs to the expired call (a worker holds at most `DEPTH` chunks,
                // so any other call's chunk it held goes back to the queue when it is gone).
                let _ = crate::sys::pidfd_send_signal(worker.pidfd.as_fd(), libc::SIGKILL);
            }
        }
    }

    /// Waits until no chunk is queued or in flight (used by `close`).
    pub(crate) fn wait_idle(&self) {
        let mut state = lock(&self.state);
        while !state.queue.is_empty()
            || state
                .workers
                .iter()
                .flatten()
                .any(|w| !w.in_flight.is_empty())
        {
            state = self
                .changed
                .wait_timeout(state, Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Stops accepting calls, lets workers finish what they hold for at most `grace`, then kills
    /// what is left, reaps every worker and fails pending calls with `PoolError::Closed`.
    pub(crate) fn shut_down(&self, grace: Duration) {
        let pending: Vec<Arc<Chunk>> = {
            let mut state = lock(&self.state);
            state.closed = true;
            let mut pending: Vec<_> = state.queue.drain(..).collect();
            for worker in state.workers.iter_mut().flatten() {
                if grace.is_zero() {
                    let _ = crate::sys::pidfd_send_signal(worker.pidfd.as_fd(), libc::SIGKILL);
                }
                pending.extend(worker.in_flight.iter().cloned());
                // Dropping the outbox ends the writer, which hangs up: the worker exits.
                let (dead, _) = mpsc::channel();
                worker.outbox = dead;
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
        {
            let state = lock(&self.state);
            for worker in state.workers.iter().flatten() {
                let _ = crate::sys::pidfd_send_signal(worker.pidfd.as_fd(), libc::SIGKILL);
            }
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

/// Gives worker `index` chunks from the queue until it has [`DEPTH`] in flight. With the queue
/// empty, an idle worker takes a chunk another worker holds but has not started (so a quick item
/// never waits behind a slow one while a worker is free).
fn fill(state: &mut State, index: usize) {
    let State { queue, workers, .. } = state;
    let Some(worker) = workers[index].as_mut() else {
        return;
    };
    while worker.in_flight.len() < DEPTH {
        let Some(chunk) = queue.pop_front() else {
            break;
        };
        if chunk.call.is_cancelled() {
            continue;
        }
        if worker.outbox.send(Arc::clone(&chunk)).is_err() {
            queue.push_front(chunk);
            return;
        }
        worker.in_flight.push_back(chunk);
    }
    let idle = worker.in_flight.is_empty();
    if idle && let Some(chunk) = steal(workers, index) {
        {
            let worker = workers[index].as_mut().expect("checked above");
            if worker.outbox.send(Arc::clone(&chunk)).is_ok() {
                worker.in_flight.push_back(chunk);
            } else {
                queue.push_front(chunk);
            }
        }
    }
}

/// Takes back a chunk some other worker holds but has not started.
///
/// The parent marks the chunk "skip" in the holder's status page, then reads which chunk the
/// holder runs; the holder publishes the chunk it starts, then reads the skip mark (both
/// sequentially consistent). So either the holder will skip the chunk (and it may be given to
/// another worker), or the parent sees it started (and leaves it).
fn steal(workers: &mut [Option<Worker>], thief: usize) -> Option<Arc<Chunk>> {
    for (index, slot) in workers.iter_mut().enumerate() {
        let Some(holder) = slot.as_mut() else {
            continue;
        };
        // One skip mark per worker: never take a second chunk back before the worker has
        // acknowledged the first, or the mark would be overwritten and the chunk run twice.
        if index == thief || holder.in_flight.len() < DEPTH || !holder.stolen.is_empty() {
            continue;
        }
        let candidate = holder.in_flight.back().expect("DEPTH > 0");
        if candidate.call.is_cancelled() {
            continue;
        }
        holder.status.set_skip_task(candidate.id);
        if holder.status.task() == candidate.id {
            continue; // it started meanwhile
        }
        let chunk = holder.in_flight.pop_back().expect("checked above");
        holder.stolen.push(chunk.id);
        return Some(chunk);
    }
    None
}

/// The life of one worker slot: start a worker, feed it, and when it dies, put back what it
/// held and start another; until the pool closes.
fn slot_main(shared: &Arc<Shared>, index: usize) {
    let mut failures = 0u32;
    while !shared.is_closed() {
        match run_worker(shared, index) {
            Ok(()) => failures = 0,
            Err(message) => {
                failures += 1;
                if failures >= 3 {
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
fn give_up(shared: &Shared, message: String) {
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
fn run_worker(shared: &Arc<Shared>, index: usize) -> Result<(), String> {
    let (status, status_fd) = StatusPage::create().map_err(|e| e.to_string())?;
    let status = Arc::new(status);
    let launched = crate::launch::launch(None).map_err(|e| e.to_string())?;
    let pid = launched.pid;
    let pidfd = Arc::new(launched.pidfd);
    let conn = match crate::launch::await_connection(&pidfd, &launched.expectation) {
        Ok(conn) => conn,
        Err(_) => {
            let _ = crate::launch::reap(launched.child, &pidfd, Duration::from_secs(5));
            return Err("a pool worker did not connect back".into());
        }
    };
    drop(launched.expectation);
    let start = encode(&StartFrame {
        entry: ENTRY_NAME.to_owned(),
        body: encode(&WorkerStart {
            identity: super::task::executable_identity().to_vec(),
        })
        .expect("the worker start message encodes"),
    })
    .expect("the start frame encodes");
    let greeted = conn
        .send_with_fd(Kind::Status, &[], status_fd.as_fd())
        .and_then(|()| conn.send(Kind::Start, &start));
    drop(status_fd);
    if greeted.is_err() {
        let _ = crate::launch::reap(launched.child, &pidfd, Duration::from_secs(5));
        return Err("a pool worker hung up at once".into());
    }
    // The worker checks that it runs the pool's executable, then says it is ready.
    let ready = match read_frame(&mut conn.raw_reader(), MAX_FRAME) {
        Ok(Some(Frame {
            kind: Kind::Ready, ..
        })) => Ok(()),
        Ok(Some(Frame {
            kind: Kind::SetupFailed,
            payload,
        })) => Err(crate::wire::decode::<String>(&payload)
            .unwrap_or_else(|_| "a pool worker could not start".into())),
        Ok(_) | Err(_) => Err("a pool worker hung up before it was ready".into()),
    };
    if let Err(message) = ready {
        conn.shutdown();
        let _ = crate::launch::reap(launched.child, &pidfd, Duration::from_secs(5));
        return Err(message);
    }

    let (outbox, inbox) = mpsc::channel::<Arc<Chunk>>();
    let writer_conn = Arc::clone(&conn);
    let writer = std::thread::Builder::new()
        .name(format!("skprocess-pool-{index}-w"))
        .spawn(move || {
            for chunk in inbox {
                let payload =
                    TaskFrame::encode(chunk.id, chunk.offset, &chunk.lengths, &chunk.items);
                let sent = encode_frame(Kind::Task, &payload)
                    .and_then(|frame| writer_conn.send_raw(&frame));
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
            pidfd: Arc::clone(&pidfd),
            status: Arc::clone(&status),
            outbox,
            in_flight: VecDeque::new(),
            stolen: Vec::new(),
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

    let setup_error = serve(shared, index, &conn);
    conn.shutdown();
    let exit = crate::launch::reap(launched.child, &pidfd, Duration::from_secs(5))
        .map(ExitInfo::from_status)
        .unwrap_or(ExitInfo::Unknown);
    // Taking the worker out of the state drops its outbox, which ends the writer.
    worker_gone(shared, index, exit);
    let _ = writer.join();
    match setup_error {
        Some(message) => Err(message),
        None => Ok(()),
    }
}

/// Reads a worker's reports until it hangs up. Returns the worker's own setup error, if it
/// reported one.
fn serve(shared: &Shared, index: usize, conn: &Conn) -> Option<String> {
    let mut reader = conn.reader();
    loop {
        match read_frame(&mut reader, MAX_FRAME) {
            Ok(Some(Frame {
                kind: kind @ (Kind::TaskDone | Kind::TaskSkipped),
                payload,
            })) => {
                if !complete(shared, index, payload, kind == Kind::TaskSkipped) {
                    return None; // it broke the protocol and was killed
                }
            }
            Ok(Some(Frame {
                kind: Kind::SetupFailed,
                payload,
            })) => {
                return Some(
                    crate::wire::decode::<String>(&payload)
                        .unwrap_or_else(|_| "a pool worker could not start".into()),
                );
            }
            Ok(Some(_)) => {} // nothing else is meant for the pool
            Ok(None) | Err(_) => return None,
        }
    }
}

/// A worker reported a chunk: done (with its results) or skipped (the parent had taken it back
/// before it started). Returns `false` if the report was not for the chunk it held (the worker
/// is then killed, and its chunks go back to the queue).
fn complete(shared: &Shared, index: usize, payload: Vec<u8>, skipped: bool) -> bool {
    let Some(id) = payload
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    else {
        return false;
    };
    let mut state = lock(&shared.state);
    let Some(worker) = state.workers[index].as_mut() else {
        return false;
    };
    if let Some(position) = worker.stolen.iter().position(|&stolen| stolen == id) {
        // Given to another worker meanwhile. (A result for it, should the skip mark ever have
        // been missed, is dropped: the other worker delivers that chunk.)
        worker.stolen.swap_remove(position);
        fill(&mut state, index);
        return true;
    }
    if worker.in_flight.front().is_none_or(|chunk| chunk.id != id) {
        let _ = crate::sys::pidfd_send_signal(worker.pidfd.as_fd(), libc::SIGKILL);
        return false;
    }
    let chunk = worker.in_flight.pop_front().expect("checked above");
    if skipped {
        // Skipped, yet not taken by another worker (a take-over that lost the race with the
        // worker starting it): back to the queue, unless its call was cancelled.
        if !chunk.call.is_cancelled() {
            state.queue.push_front(chunk);
        }
    } else {
        chunk.call.deliver(Delivery::Done {
            first_index: chunk.first_index,
            count: chunk.count(),
            bytes: payload,
            start: 8,
        });
    }
    for other in 0..state.workers.len() {
        fill(&mut state, other);
    }
    drop(state);
    shared.changed.notify_all();
    true
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
        for chunk in &worker.in_flight {
            chunk.call.fail(FailureKind::Closed);
        }
        shared.changed.notify_all();
        return;
    }
    let blame = (worker.status.phase() == Phase::Running)
        .then(|| (worker.status.task(), worker.status.current_run()));
    let mut requeue = Vec::new();
    let mut crashed = Vec::new();
    for (position, chunk) in worker.in_flight.iter().enumerate() {
        if chunk.call.is_cancelled() {
            continue;
        }
        match blame {
            Some((task, item)) if position == 0 && task == chunk.id && item < chunk.count() => {
                if item > 0 {
                    let id = state.next_chunk;
                    state.next_chunk += 1;
                    requeue.push(Arc::new(chunk.split(0..item, id)));
                }
                crashed.push((Arc::clone(&chunk.call), chunk.first_index + item));
                if item + 1 < chunk.count() {
                    let id = state.next_chunk;
                    state.next_chunk += 1;
                    requeue.push(Arc::new(chunk.split(item + 1..chunk.count(), id)));
                }
            }
            _ => requeue.push(Arc::clone(chunk)),
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
/// with its position in the chunk.
pub(crate) fn decode_results<O: serde::de::DeserializeOwned>(
    bytes: &[u8],
    count: usize,
    each: &mut dyn FnMut(usize, Result<O, TaskError>),
) {
    let mut rest = bytes;
    for i in 0..count {
        match crate::wire::codec::decode_prefix::<Result<O, TaskError>>(rest) {
            Ok((value, used)) => {
                each(i, value);
                rest = &rest[used..];
            }
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
