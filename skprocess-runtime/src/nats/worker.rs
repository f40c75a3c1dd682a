//! Worker mode: this executable, started with `SKPROCESS_NATS_WORKER=<url>` (or through
//! [`NatsWorker::serve`]), pulls chunks from the pool's work stream and runs their items on a
//! local [`Pool`], so an item that crashes costs a local process, not the worker.
//!
//! A chunk is acknowledged only once its results are stored in the results stream. While its
//! items run, the worker tells JetStream it is alive every quarter of a second; a worker that
//! dies or is cut off stops doing so, and after the consumer's `ack_wait` the chunk goes to
//! another worker.
//!
//! Deliveries are counted per item, against the limit each chunk carries (its pool's
//! `max_deliver`):
//!
//! - an item whose local process died goes back to the stream in a chunk of its own (its
//!   deliveries so far in `prior`), so the other items of its chunk are not run again;
//! - a chunk delivered again (its worker died or was cut off) is cut, before anything runs,
//!   into *suspects*: chunks of one item each, on a consumer of their own. A worker takes a
//!   suspect only when it holds nothing else, and takes nothing else while it runs it, so an
//!   item that takes its whole host down is blamed alone;
//! - the delivery that reaches the limit reports an item whose process died as
//!   [`TaskError::Poisoned`](crate::pool::TaskError::Poisoned), and a delivery past it (the
//!   host died at the last one) reports it without running it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind};
use futures_util::StreamExt;
use tokio::sync::Semaphore;

use super::connect::NatsOptions;
use super::error::RemoteError;
use super::protocol::{
    Cancel, ERROR_HEADER, Names, Outcome, PROTOCOL, PROTOCOL_HEADER, ResultChunk, WORKER_HEADER,
    WorkChunk,
};
use super::registry::{RunOutcome, registry};
use super::streams;
use crate::pool::{Payload, Pool, PoolError, Stopper, TaskError};
use crate::wire::codec;

/// The environment variable that starts this executable in worker mode, naming the server
/// (`SKPROCESS_NATS_WORKER=nats://10.0.0.1:4222 ./my-program`). Credentials, TLS and the pool's
/// name come from the variables of [`NatsOptions::from_env`].
pub const WORKER_ENV: &str = "SKPROCESS_NATS_WORKER";

/// How many local processes a worker runs items on (default: the number of CPUs).
pub const PROCESSES_ENV: &str = "SKPROCESS_NATS_PROCESSES";

/// Chunks a worker holds per local process (one running, one ready), as a local pool does.
const CHUNKS_PER_PROCESS: usize = 2;

/// Calls whose end a worker remembers (to drop their chunks), the oldest forgotten first.
const REMEMBERED_CANCELS: usize = 4096;

/// How often a worker tells JetStream that it still runs a chunk (the pool's `ack_wait` is at
/// least a second).
const ALIVE_EVERY: Duration = Duration::from_millis(250);

/// How long a pool's answer to "are you there?" is trusted.
const POOL_ALIVE_FOR: Duration = Duration::from_secs(5);

/// How long a pool must go unanswered before a worker drops its chunks.
const POOL_GONE_AFTER: Duration = Duration::from_secs(30);

/// The longest a worker waits for the next message of a pull (which asks the server to answer
/// within half a second).
const PULL_GRACE: Duration = Duration::from_secs(3);

/// How often a worker checks that the pool's consumers still exist, and whether suspects wait.
const CHECK_CONSUMERS_EVERY: Duration = Duration::from_secs(2);

/// How long a worker keeps trying to store results before it gives the chunk back.
const STORE_FOR: Duration = Duration::from_secs(30);

/// Signals seen: the first asks the worker to stop taking chunks and finish the ones it holds;
/// a second one ends it at once.
static SIGNALS: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_stop(signal: libc::c_int) {
    if SIGNALS.fetch_add(1, Ordering::AcqRel) > 0 {
        // SAFETY: _exit is async-signal-safe. The local processes follow (they die with
        // their parent).
        unsafe { libc::_exit(128 + signal) };
    }
}

fn stopping() -> bool {
    SIGNALS.load(Ordering::Acquire) > 0
}

/// Installs the stop handler for SIGTERM and SIGINT; puts the previous handlers back when
/// dropped.
struct StopSignals {
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

impl StopSignals {
    fn install() -> StopSignals {
        SIGNALS.store(0, Ordering::Release);
        let mut previous = Vec::new();
        for signal in [libc::SIGTERM, libc::SIGINT] {
            // SAFETY: a zeroed sigaction with an empty mask and our handler, which only touches
            // an atomic (or calls _exit); the old action is written to `old`.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_stop as *const () as libc::sighandler_t;
                libc::sigemptyset(&mut action.sa_mask);
                action.sa_flags = libc::SA_RESTART;
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signal, &action, &mut old) == 0 {
                    previous.push((signal, old));
                }
            }
        }
        StopSignals { previous }
    }
}

impl Drop for StopSignals {
    fn drop(&mut self) {
        for (signal, old) in &self.previous {
            // SAFETY: puts back the action sigaction returned.
            unsafe { libc::sigaction(*signal, old, std::ptr::null_mut()) };
        }
    }
}

/// A worker host of a [`NatsPool`](super::NatsPool): serves the pool named in its options
/// until SIGTERM or SIGINT (then it finishes the chunks it holds and returns).
///
/// Most programs need not call it: with the default `auto-init` feature, starting the
/// executable with [`SKPROCESS_NATS_WORKER`](WORKER_ENV) set runs it before `main` (without
/// `auto-init`, [`skprocess::init`](crate::init) does).
#[derive(Debug)]
pub struct NatsWorker {
    options: NatsOptions,
    processes: usize,
}

impl NatsWorker {
    /// A worker for the server and pool of `options`, with one local process per CPU.
    pub fn new(options: NatsOptions) -> NatsWorker {
        NatsWorker {
            options,
            processes: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }

    /// The worker `SKPROCESS_NATS_WORKER` asks for: its URL, and the settings of
    /// [`NatsOptions::from_env`] and `SKPROCESS_NATS_PROCESSES`.
    ///
    /// # Errors
    ///
    /// [`RemoteError::InvalidConfig`] when a variable does not parse.
    pub fn from_env() -> Result<NatsWorker, RemoteError> {
        let url = std::env::var(WORKER_ENV)
            .ok()
            .filter(|url| !url.is_empty())
            .ok_or_else(|| {
                RemoteError::InvalidConfig(format!("{WORKER_ENV} is not set (the server's URL)"))
            })?;
        let mut worker = NatsWorker::new(NatsOptions::new(url).with_env()?);
        if let Ok(processes) = std::env::var(PROCESSES_ENV) {
            let processes = processes.parse::<usize>().map_err(|_| {
                RemoteError::InvalidConfig(format!(
                    "{PROCESSES_ENV}={processes:?} is not a number of processes"
                ))
            })?;
            worker = worker.processes(processes);
        }
        Ok(worker)
    }

    /// Runs items on `processes` local processes (at least 1).
    pub fn processes(mut self, processes: usize) -> NatsWorker {
        self.processes = processes.max(1);
        self
    }

    /// Serves until SIGTERM or SIGINT.
    ///
    /// # Errors
    ///
    /// [`PoolError::Spawn`] if the local processes cannot start, [`PoolError::Remote`] if the
    /// server cannot be reached or its streams set up (a server lost later is waited for).
    pub fn serve(self) -> Result<(), PoolError> {
        let _signals = StopSignals::install();
        let pool = Pool::new(self.processes)?;
        let runtime = self.options.runtime("skprocess-nats-worker", 2)?;
        let served = runtime.block_on(serve(self.options, pool.clone(), self.processes));
        runtime.shutdown_timeout(Duration::from_secs(1));
        pool.terminate();
        served
    }
}

/// Runs worker mode if `SKPROCESS_NATS_WORKER` asks for it (before `main`): never returns then.
pub(crate) fn serve_if_asked() {
    let Some(url) = std::env::var_os(WORKER_ENV) else {
        return;
    };
    if url.is_empty() {
        return;
    }
    let worker = NatsWorker::from_env();
    if crate::sys::thread_count() == Some(1) {
        // SAFETY: this is the only thread of the process (just counted), so nothing reads or
        // writes the environment concurrently. The local processes must not become workers.
        unsafe { std::env::remove_var(WORKER_ENV) };
    }
    let code = match worker.map_err(PoolError::from).and_then(NatsWorker::serve) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("skprocess: NATS worker: {}", crate::ErrorChain(&error));
            crate::exit::code::SETUP_FAILED
        }
    };
    crate::exit::flush_and_exit(code);
}

/// What every chunk's task shares.
struct Host {
    js: jetstream::Context,
    client: async_nats::Client,
    names: Names,
    pool: Pool,
    /// Host name and process id.
    worker: String,
    max_payload: usize,
    cancelled: Mutex<Cancelled>,
    /// The local calls running, by pool client and call (each with an id of its own), to stop
    /// when their call ends.
    running: Mutex<HashMap<CallKey, Vec<(u64, Stopper)>>>,
    /// The next id for [`running`](Self::running).
    next_run: AtomicU64,
    /// Pools that answered lately.
    pools_alive: Mutex<HashMap<String, Instant>>,
    /// Why the local pool cannot run anything any more (the worker then stops).
    broken: Mutex<Option<PoolError>>,
}

/// A call, by the id of the pool that made it and its number there.
type CallKey = (String, u64);

#[derive(Default)]
struct Cancelled {
    set: HashSet<(String, u64)>,
    order: VecDeque<(String, u64)>,
}

impl Cancelled {
    fn contains(&self, key: &(String, u64)) -> bool {
        self.set.contains(key)
    }

    fn insert(&mut self, key: (String, u64)) {
        if self.set.insert(key.clone()) {
            self.order.push_back(key);
            if self.order.len() > REMEMBERED_CANCELS
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}

fn setup_error(what: &str, error: impl std::error::Error + 'static) -> RemoteError {
    RemoteError::Setup {
        what: what.to_owned(),
        reason: crate::ErrorChain(&error).to_string(),
    }
}

async fn serve(options: NatsOptions, pool: Pool, processes: usize) -> Result<(), PoolError> {
    let names = Names::new(options.pool_name())?;
    let worker = format!("{}:{}", host_name(), std::process::id());
    let client = options
        .connect(&format!("skprocess worker {worker}"))
        .await?;
    let js = jetstream::new(client.clone());
    let (work, _results) = streams::streams(&js, &names).await?;
    let mut consumers = streams::get_consumers(&work, &names).await?;
    let host = Arc::new(Host {
        js: js.clone(),
        client: client.clone(),
        names: names.clone(),
        pool,
        worker: worker.clone(),
        max_payload: client.server_info().max_payload,
        cancelled: Mutex::new(Cancelled::default()),
        running: Mutex::new(HashMap::new()),
        next_run: AtomicU64::new(0),
        pools_alive: Mutex::new(HashMap::new()),
        broken: Mutex::new(None),
    });
    let mut cancels = client
        .subscribe(names.cancel())
        .await
        .map_err(|error| setup_error("the cancel subscription", error))?;
    let listener = Arc::clone(&host);
    tokio::spawn(async move {
        while let Some(message) = cancels.next().await {
            if let Ok(cancel) = codec::decode::<Cancel>(&message.payload) {
                let key = (cancel.client, cancel.call);
                // Marked first: a handler registering its local call after this sees the mark.
                lock(&listener.cancelled).insert(key.clone());
                let stoppers = lock(&listener.running).remove(&key);
                for (_, stopper) in stoppers.into_iter().flatten() {
                    stopper.stop();
                }
            }
        }
    });
    eprintln!(
        "skprocess: NATS worker {worker} serving pool {} at {} with {processes} processes",
        names.pool(),
        options.url()
    );
    let slots = Arc::new(Semaphore::new(processes * CHUNKS_PER_PROCESS));
    let mut running = tokio::task::JoinSet::new();
    let mut checked = Instant::now();
    // Suspects are waiting: take no more work until idle, then take one (a worker that is
    // never idle under a steady load would otherwise never run them).
    let mut draining = false;
    while !stopping() && lock(&host.broken).is_none() {
        while running.try_join_next().is_some() {}
        if checked.elapsed() > CHECK_CONSUMERS_EVERY {
            // A server that lost its store comes back without the pool's streams, and a pull
            // from a consumer that is gone just finds nothing: look, and make them again.
            checked = Instant::now();
            let connected = client.connection_state() == async_nats::connection::State::Connected;
            if connected
                && consumers.work.get_info().await.is_err()
                && let Ok((work, _)) = streams::streams(&js, &names).await
                && let Ok(again) = streams::get_consumers(&work, &names).await
            {
                consumers = again;
            }
            if connected && let Ok(info) = consumers.suspects.get_info().await {
                draining = info.num_pending > 0;
            }
        }
        if draining && !running.is_empty() {
            tokio::select! {
                _ = running.join_next() => {}
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            continue;
        }
        // A worker that holds nothing takes a suspect first, alone: nothing else is taken
        // while it runs, so if it takes the host down, it alone is blamed.
        if running.is_empty() {
            draining = false;
            // No wait: what is there now (a fetch ends at once when there is none).
            let suspect = consumers.suspects.fetch().max_messages(1).messages().await;
            if let Ok(mut suspect) = suspect
                && let Ok(Some(Ok(message))) =
                    tokio::time::timeout(PULL_GRACE, suspect.next()).await
            {
                handle(&host, message, true).await;
                continue;
            }
        }
        let free = slots.available_permits();
        if free == 0 {
            tokio::select! {
                _ = running.join_next() => {}
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            continue;
        }
        let batch = next_message(&consumers.work, free, Duration::from_millis(500)).await;
        let Some(mut batch) = batch else {
            // The server is away, or came back without the pool's streams: wait, and make
            // them again if they are gone.
            tokio::time::sleep(Duration::from_millis(500)).await;
            if client.connection_state() == async_nats::connection::State::Connected
                && let Ok((work, _)) = streams::streams(&js, &names).await
                && let Ok(again) = streams::get_consumers(&work, &names).await
            {
                consumers = again;
            }
            continue;
        };
        // A pull the server forgot (it restarted) never ends by itself: bound each wait.
        let mut received = 0;
        loop {
            let message = match tokio::time::timeout(PULL_GRACE, batch.next()).await {
                Ok(Some(Ok(message))) => message,
                Ok(None) => break,
                _ => {
                    // An error that comes back at once (a consumer that is gone): not in a
                    // tight loop.
                    if received == 0 {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    break;
                }
            };
            received += 1;
            if stopping() {
                // Taken after the stop: give it back for another worker, uncounted.
                give_back(&host, &message).await;
                continue;
            }
            let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                break;
            };
            let host = Arc::clone(&host);
            running.spawn(async move {
                handle(&host, message, false).await;
                drop(permit);
            });
        }
    }
    eprintln!("skprocess: NATS worker {worker} stopping: finishing the chunks it holds");
    while running.join_next().await.is_some() {}
    let _ = tokio::time::timeout(Duration::from_secs(2), client.flush()).await;
    match lock(&host.broken).take() {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// Asks `consumer` for up to `count` messages, waiting at most `expires`; `None` while the
/// server is away.
async fn next_message(
    consumer: &jetstream::consumer::PullConsumer,
    count: usize,
    expires: Duration,
) -> Option<jetstream::consumer::pull::Batch> {
    consumer
        .batch()
        .max_messages(count)
        .expires(expires)
        .messages()
        .await
        .ok()
}

/// Whether a pool id from a chunk can be part of a subject (hex digits only).
fn valid_client(client: &str) -> bool {
    !client.is_empty() && client.len() <= 32 && client.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether the pool that made a call is still there to read its results (it answers on its
/// liveness subject). A pool that is gone leaves chunks nobody will read: they are dropped.
///
/// "No responders" is believed only after [`POOL_GONE_AFTER`] of asking again every second: a
/// pool cut off for a moment (a network blip, a server restart it has not reconnected from
/// yet) has no subscription on the server meanwhile, and its chunks must not be dropped.
async fn pool_alive(host: &Host, client: &str) -> bool {
    let since = Instant::now();
    loop {
        {
            let mut seen = lock(&host.pools_alive);
            seen.retain(|_, at| at.elapsed() < POOL_ALIVE_FOR);
            if seen.contains_key(client) {
                return true;
            }
        }
        let asked = tokio::time::timeout(
            Duration::from_secs(2),
            host.client
                .request(host.names.alive(client), bytes::Bytes::new()),
        )
        .await;
        match asked {
            Ok(Ok(_)) => {
                lock(&host.pools_alive).insert(client.to_owned(), Instant::now());
                return true;
            }
            Ok(Err(error)) if error.kind() == async_nats::RequestErrorKind::NoResponders => {
                if since.elapsed() >= POOL_GONE_AFTER {
                    eprintln!(
                        "skprocess: NATS worker {}: the pool {client} has not answered for {}s: \
                         dropping its chunk",
                        host.worker,
                        POOL_GONE_AFTER.as_secs()
                    );
                    return false;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            // No answer in time, or another error: maybe slow; run the chunk rather than
            // lose it.
            _ => return true,
        }
    }
}

/// Tells a call that its chunk could not be read, on its results subject, with no payload
/// (which a pool of another version can read too).
async fn report_unreadable(host: &Host, client: &str, call: u64, reason: &str) {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(ERROR_HEADER, reason);
    headers.insert(WORKER_HEADER, host.worker.as_str());
    stored(
        host,
        host.names.results(client, call),
        headers,
        bytes::Bytes::new(),
    )
    .await;
}

/// Tells JetStream every [`ALIVE_EVERY`] that a chunk is still being worked on, until dropped.
struct KeepAlive(tokio::task::JoinHandle<()>);

impl KeepAlive {
    fn start(message: &Arc<jetstream::Message>) -> KeepAlive {
        let message = Arc::clone(message);
        KeepAlive(tokio::spawn(async move {
            loop {
                tokio::time::sleep(ALIVE_EVERY).await;
                let _ = message.ack_with(AckKind::Progress).await;
            }
        }))
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs one chunk and reports its items; then acknowledges it, or gives it back. A `suspect`
/// (from the suspects consumer) runs alone on this host.
async fn handle(host: &Host, message: jetstream::Message, suspect: bool) {
    let received = Instant::now();
    let (delivered, sequence) = message.info().map_or((1, 0), |info| {
        (
            u64::try_from(info.delivered).unwrap_or(1),
            info.stream_sequence,
        )
    });
    let message = Arc::new(message);
    let _alive = KeepAlive::start(&message);
    let protocol = message
        .headers
        .as_ref()
        .and_then(|headers| headers.get(PROTOCOL_HEADER))
        .map(|value| value.as_str().to_owned());
    let decoded = match protocol.as_deref() {
        Some(PROTOCOL) => codec::decode::<WorkChunk>(&message.payload),
        other => Err(format!(
            "protocol {:?}, not {PROTOCOL:?} (another version of skprocess?)",
            other.unwrap_or("(none)")
        )),
    };
    let mut chunk = match decoded {
        Ok(chunk) if valid_client(&chunk.client) => chunk,
        result => {
            // Tell the call its subject names, if it names one; never deliver it again.
            let reason = match result {
                Err(reason) => reason,
                Ok(_) => "a pool id that is not hex".to_owned(),
            };
            if let Some((client, call)) = host.names.parse_work(&message.subject)
                && valid_client(&client)
            {
                report_unreadable(host, &client, call, &reason).await;
            }
            let _ = message.ack_with(AckKind::Term).await;
            return;
        }
    };
    let key = (chunk.client.clone(), chunk.call);
    if lock(&host.cancelled).contains(&key) || !pool_alive(host, &chunk.client).await {
        let _ = message.ack_with(AckKind::Term).await;
        return;
    }
    let subject = host.names.results(&chunk.client, chunk.call);
    // This delivery, counted from the item's first.
    let attempt = chunk.prior.saturating_add(delivered);
    if delivered > 1 && !suspect {
        // Its worker died or was cut off (or gave it back): each item becomes a suspect, to
        // run alone on a host, so that an item which takes its host down fails alone. Split
        // again after a lost acknowledgement, the suspects are stored once (their ids come
        // from this chunk's sequence); each keeps at least one delivery.
        let all: Vec<usize> = (0..chunk.items.len()).collect();
        let prior = (attempt - 1).min(chunk.max_deliver.saturating_sub(1));
        let split = split(
            host,
            &chunk,
            &chunk.items,
            &all,
            (prior, true),
            (sequence, received),
        )
        .await;
        let _ = message
            .ack_with(if split {
                AckKind::Ack
            } else {
                AckKind::Nak(Some(Duration::from_secs(1)))
            })
            .await;
        return;
    }
    if attempt > chunk.max_deliver {
        // A suspect whose host died at its last delivery: report without running.
        let outcomes = (0..chunk.items.len() as u64)
            .map(|position| {
                let deliveries = attempt - 1;
                (
                    chunk.first.saturating_add(position),
                    Outcome::Poisoned { deliveries },
                )
            })
            .collect();
        report_then_ack(host, &message, &subject, chunk.call, outcomes).await;
        return;
    }
    let Some(runner) = registry().get(&chunk.task).cloned() else {
        if attempt < chunk.max_deliver {
            // Another worker (of the right build) may take it.
            let _ = message
                .ack_with(AckKind::Nak(Some(Duration::from_millis(500))))
                .await;
            return;
        }
        let outcomes = (0..chunk.items.len() as u64)
            .map(|position| (chunk.first.saturating_add(position), Outcome::Refused))
            .collect();
        report_then_ack(host, &message, &subject, chunk.call, outcomes).await;
        return;
    };
    let timeout = chunk
        .timeout_ms
        .map(|ms| Duration::from_millis(ms).saturating_sub(received.elapsed()));
    let pool = host.pool.clone();
    let items = Arc::new(std::mem::take(&mut chunk.items));
    let run = {
        let items = Arc::clone(&items);
        let key = key.clone();
        let running = &host.running;
        let cancelled = &host.cancelled;
        // The local call's stopper is registered before its first result is awaited; a
        // cancel that came in between is seen here.
        let (stopper_tx, stopper_rx) = std::sync::mpsc::channel::<Stopper>();
        let run = tokio::task::spawn_blocking(move || {
            runner(&pool, &items, timeout, &mut |stopper| {
                let _ = stopper_tx.send(stopper);
            })
        });
        let id = host.next_run.fetch_add(1, Ordering::Relaxed);
        let registered = tokio::task::spawn_blocking(move || stopper_rx.recv().ok()).await;
        if let Ok(Some(stopper)) = registered {
            lock(running)
                .entry(key.clone())
                .or_default()
                .push((id, stopper.clone()));
            if lock(cancelled).contains(&key) {
                stopper.stop();
            }
        }
        let run = run.await;
        let mut running = lock(running);
        if let Some(stoppers) = running.get_mut(&key) {
            stoppers.retain(|(other, _)| *other != id);
            if stoppers.is_empty() {
                running.remove(&key);
            }
        }
        drop(running);
        run
    };
    let Ok(run) = run else {
        let _ = message.ack_with(AckKind::Nak(None)).await;
        return;
    };
    let mut outcomes = Vec::with_capacity(run.outcomes.len());
    let mut crashed = Vec::new();
    for (position, outcome) in run.outcomes.into_iter().enumerate() {
        let index = chunk.first.saturating_add(position as u64);
        match outcome {
            Some(RunOutcome::Settled(outcome)) => outcomes.push((index, outcome)),
            Some(RunOutcome::Crashed(reason)) => {
                eprintln!(
                    "skprocess: NATS worker {}: item {index} of call {} ({}): {reason} \
                     (delivery {attempt} of {})",
                    host.worker, chunk.call, chunk.task, chunk.max_deliver
                );
                if attempt >= chunk.max_deliver {
                    outcomes.push((
                        index,
                        Outcome::Poisoned {
                            deliveries: attempt,
                        },
                    ));
                } else {
                    crashed.push(position);
                }
            }
            None => {}
        }
    }
    let answer = match run.stopped {
        // The call's deadline passed, or the call was cancelled: nobody wants the rest.
        Some(PoolError::Timeout { .. } | PoolError::Interrupted { .. }) => AckKind::Term,
        Some(error) => {
            eprintln!(
                "skprocess: NATS worker {}: the local pool cannot run items any more ({}); \
                 giving the chunk back and stopping",
                host.worker,
                crate::ErrorChain(&error)
            );
            lock(&host.broken).get_or_insert(error);
            // Back on the stream uncounted (its items reported so far are dropped as
            // duplicates).
            give_back(host, &message).await;
            return;
        }
        None => AckKind::Ack,
    };
    if !report(host, &subject, chunk.call, outcomes).await {
        let _ = message.ack_with(AckKind::Nak(None)).await;
        return;
    }
    let answer = match (answer, crashed.is_empty()) {
        (AckKind::Ack, false) => {
            // Each item whose process died goes back alone, with this delivery counted (the
            // others of its chunk are not run again).
            let again = (attempt, false);
            if split(host, &chunk, &items, &crashed, again, (sequence, received)).await {
                AckKind::Ack
            } else {
                AckKind::Nak(None)
            }
        }
        (answer, _) => answer,
    };
    let _ = message.ack_with(answer).await;
}
/// Gives a chunk back without counting a delivery (a `Nak` would count one, and the next
/// worker would take its items for suspects): stores a copy (stored once, by an id made from
/// this delivery's sequence), then acknowledges this one. Falls back to a `Nak` when the copy
/// cannot be stored.
async fn give_back(host: &Host, message: &jetstream::Message) {
    let sequence = message.info().map_or(0, |info| info.stream_sequence);
    let mut headers = message.headers.clone().unwrap_or_default();
    headers.insert(
        "Nats-Msg-Id",
        format!("{}.r{sequence}", message.subject).as_str(),
    );
    let copied = stored(
        host,
        message.subject.to_string(),
        headers,
        message.payload.clone(),
    )
    .await;
    let answer = if copied {
        AckKind::Ack
    } else {
        AckKind::Nak(None)
    };
    let _ = message.ack_with(answer).await;
}

/// Puts items of `chunk` (at `positions` in `items`) back on the work stream, each in a chunk
/// of its own that counts `prior` deliveries already, as suspects or not; false if the server
/// did not store them all (the whole chunk is then given back). The last argument is the
/// chunk's stream sequence (which makes the new chunks' ids) and when it was received.
async fn split(
    host: &Host,
    chunk: &WorkChunk,
    items: &[Vec<u8>],
    positions: &[usize],
    (prior, suspects): (u64, bool),
    (sequence, received): (u64, Instant),
) -> bool {
    let subject = if suspects {
        host.names.suspects(&chunk.client, chunk.call)
    } else {
        host.names.work(&chunk.client, chunk.call)
    };
    for &position in positions {
        let index = chunk.first.saturating_add(position as u64);
        let single = WorkChunk {
            client: chunk.client.clone(),
            call: chunk.call,
            task: chunk.task.clone(),
            first: index,
            items: vec![items[position].clone()],
            timeout_ms: chunk.timeout_ms.map(|ms| {
                let spent = u64::try_from(received.elapsed().as_millis()).unwrap_or(u64::MAX);
                ms.saturating_sub(spent)
            }),
            max_deliver: chunk.max_deliver,
            prior,
        };
        let Ok(payload) = codec::encode(&single) else {
            return false;
        };
        let mut headers = async_nats::HeaderMap::new();
        // Stored once, even if this worker dies and the chunk is split again by another.
        headers.insert(
            "Nats-Msg-Id",
            format!("{}.{}.{index}.s{sequence}", chunk.client, chunk.call).as_str(),
        );
        headers.insert(PROTOCOL_HEADER, PROTOCOL);
        if !stored(host, subject.clone(), headers, payload.into()).await {
            return false;
        }
    }
    true
}

/// The most an outcome may take in a result message: what a message of it alone leaves.
fn outcome_limit(host: &Host) -> usize {
    host.max_payload.saturating_sub(1024).max(1024)
}

/// An outcome that fits a result message, and its encoded size: a value that does not fit
/// becomes `TooLarge`, a failure whose message does not fit has its message cut.
fn fitted(outcome: Outcome, limit: usize) -> (Outcome, usize) {
    let len = codec::encode(&outcome).map_or(usize::MAX, |bytes| bytes.len());
    if len <= limit {
        return (outcome, len);
    }
    let outcome = match outcome {
        Outcome::Value(bytes) => Outcome::Failed(TaskError::TooLarge {
            what: Payload::Output,
            len: bytes.len() as u64,
            limit: limit as u64,
        }),
        Outcome::Failed(error) => {
            let (mut message, location) = match &error {
                TaskError::Failed(failure) => (
                    failure.message().to_owned(),
                    failure.panic_location().map(str::to_owned),
                ),
                other => (crate::ErrorChain(other).to_string(), None),
            };
            let mut cut = (limit / 2).min(message.len());
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(" [...] (cut here: too large to send back)");
            let failure = match &error {
                TaskError::Failed(failure) if failure.is_panic() => {
                    crate::Failure::panic(message, location)
                }
                _ => crate::Failure::msg(message),
            };
            Outcome::Failed(TaskError::Failed(failure))
        }
        other => other,
    };
    let len = codec::encode(&outcome).map_or(limit, |bytes| bytes.len());
    (outcome, len)
}

/// Stores outcomes that need no run (poisoned or refused items), then acknowledges the chunk;
/// gives it back for another delivery if they could not be stored.
async fn report_then_ack(
    host: &Host,
    message: &jetstream::Message,
    subject: &str,
    call: u64,
    outcomes: Vec<(u64, Outcome)>,
) {
    let done = report(host, subject, call, outcomes).await;
    let answer = if done {
        AckKind::Ack
    } else {
        AckKind::Nak(None)
    };
    let _ = message.ack_with(answer).await;
}

/// Publishes a message to the work or results stream and waits (at most 5 s) until the server
/// stored it; whether it did.
async fn stored(
    host: &Host,
    subject: String,
    headers: async_nats::HeaderMap,
    payload: bytes::Bytes,
) -> bool {
    let publish = async {
        host.js
            .publish_with_headers(subject, headers, payload)
            .await
            .ok()?
            .await
            .ok()
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(5), publish).await,
        Ok(Some(_))
    )
}

/// Stores outcomes in the results stream, in as many messages as the server's size limit
/// needs; false if the server did not confirm them (the chunk is then delivered again).
async fn report(host: &Host, subject: &str, call: u64, outcomes: Vec<(u64, Outcome)>) -> bool {
    if outcomes.is_empty() {
        return true;
    }
    let limit = outcome_limit(host);
    let mut piece: Vec<(u64, Outcome)> = Vec::new();
    let mut size = 0;
    for (index, outcome) in outcomes {
        let (outcome, len) = fitted(outcome, limit);
        if size + len + 16 > limit && !piece.is_empty() {
            if !store(host, subject, call, std::mem::take(&mut piece)).await {
                return false;
            }
            size = 0;
        }
        size += len + 16;
        piece.push((index, outcome));
    }
    store(host, subject, call, piece).await
}

async fn store(host: &Host, subject: &str, call: u64, outcomes: Vec<(u64, Outcome)>) -> bool {
    let chunk = ResultChunk {
        call,
        worker: host.worker.clone(),
        outcomes,
    };
    let Ok(bytes) = codec::encode(&chunk) else {
        return false;
    };
    let payload: bytes::Bytes = bytes.into();
    let give_up = Instant::now() + STORE_FOR;
    loop {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(PROTOCOL_HEADER, PROTOCOL);
        if stored(host, subject.to_owned(), headers, payload.clone()).await {
            return true;
        }
        if Instant::now() >= give_up {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hex_pool_ids_make_subjects() {
        assert!(valid_client("0123abcdef"));
        assert!(!valid_client(""));
        assert!(!valid_client("ab.cd"));
        assert!(!valid_client("*"));
        assert!(!valid_client(">"));
    }

    #[test]
    fn an_outcome_too_large_to_send_back_is_cut_to_fit() {
        let long = "é".repeat(10_000);
        let failure = Outcome::Failed(TaskError::Failed(crate::Failure::panic(
            long,
            Some("here.rs:1:1".to_owned()),
        )));
        let (outcome, len) = fitted(failure, 4096);
        assert!(len <= 4096, "{len}");
        let Outcome::Failed(TaskError::Failed(failure)) = outcome else {
            panic!("still a failure");
        };
        assert!(failure.is_panic());
        assert_eq!(failure.panic_location(), Some("here.rs:1:1"));
        assert!(failure.message().ends_with("too large to send back)"));
        let (outcome, _) = fitted(Outcome::Value(vec![7; 10_000]), 4096);
        assert!(matches!(
            outcome,
            Outcome::Failed(TaskError::TooLarge {
                what: Payload::Output,
                len: 10_000,
                ..
            })
        ));
    }
}
