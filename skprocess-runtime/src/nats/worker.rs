//! Worker mode: this executable, started with `SKPROCESS_NATS_WORKER=<url>` (or through
//! [`NatsWorker::serve`]), pulls chunks from the pool's work stream and runs their items on a
//! local [`Pool`], so an item that crashes costs a local process, not the worker.
//!
//! A chunk is acknowledged only once its results are stored in the results stream. While its
//! items run, the worker tells JetStream it is alive every third of the consumer's `ack_wait`;
//! a worker that dies or is cut off stops doing so, and the chunk goes to another worker. An
//! item whose local process died is delivered again (with its whole chunk) until the
//! consumer's `max_deliver`; at the last delivery the worker reports it as
//! [`TaskError::Poisoned`](crate::pool::TaskError::Poisoned) instead.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind};
use futures_util::StreamExt;
use tokio::sync::Semaphore;

use super::connect::NatsOptions;
use super::error::RemoteError;
use super::protocol::{Cancel, Names, Outcome, ResultChunk, WorkChunk};
use super::registry::{RunOutcome, registry};
use super::streams;
use crate::pool::{Payload, Pool, PoolError, TaskError};
use crate::wire::codec;

/// The environment variable that starts this executable in worker mode, naming the server
/// (`SKPROCESS_NATS_WORKER=nats://10.0.0.1:4222 ./my-program`). Credentials, TLS and the pool's
/// name come from the variables of [`NatsOptions::from_env`].
pub const WORKER_ENV: &str = "SKPROCESS_NATS_WORKER";

/// How many local processes a worker runs items on (default: the number of CPUs).
pub const PROCESSES_ENV: &str = "SKPROCESS_NATS_PROCESSES";

/// Chunks a worker holds per local process (one running, one ready), as a local pool does.
const CHUNKS_PER_PROCESS: usize = 2;

/// Calls whose end a worker remembers (to skip their chunks), the oldest forgotten first.
const REMEMBERED_CANCELS: usize = 4096;

/// Set by SIGTERM or SIGINT: stop taking chunks, finish the ones held, leave.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_signal: libc::c_int) {
    STOP.store(true, Ordering::Release);
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
        for signal in [libc::SIGTERM, libc::SIGINT] {
            // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
            unsafe { libc::signal(signal, on_stop as *const () as libc::sighandler_t) };
        }
        let pool = Pool::new(self.processes)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("skprocess-nats-worker")
            .enable_all()
            .build()
            .map_err(|error| RemoteError::Connect {
                url: self.options.url().to_owned(),
                reason: format!("cannot start the client's runtime: {error}"),
            })?;
        let served = runtime.block_on(serve(self.options, pool.clone(), self.processes));
        runtime.shutdown_timeout(Duration::from_secs(1));
        pool.close();
        served.map_err(PoolError::from)
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
    names: Names,
    pool: Pool,
    /// Host name and process id.
    worker: String,
    max_payload: usize,
    /// The consumer's settings, refreshed now and then (a pool may change them).
    ack_wait: Mutex<Duration>,
    max_deliver: Mutex<u64>,
    cancelled: Mutex<Cancelled>,
}

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

async fn serve(options: NatsOptions, pool: Pool, processes: usize) -> Result<(), RemoteError> {
    let names = Names::new(options.pool_name())?;
    let worker = format!("{}:{}", host_name(), std::process::id());
    let client = options
        .connect(&format!("skprocess worker {worker}"))
        .await?;
    let js = jetstream::new(client.clone());
    let (work, _results) = streams::streams(&js, &names).await?;
    let mut consumer = streams::get_work_consumer(
        &work,
        streams::work_consumer_config(&names, Duration::from_secs(30), 3),
    )
    .await?;
    let config = &consumer.cached_info().config;
    let host = Arc::new(Host {
        js,
        names: names.clone(),
        pool,
        worker: worker.clone(),
        max_payload: client.server_info().max_payload,
        ack_wait: Mutex::new(config.ack_wait),
        max_deliver: Mutex::new(u64::try_from(config.max_deliver).unwrap_or(u64::MAX)),
        cancelled: Mutex::new(Cancelled::default()),
    });
    let mut cancels =
        client
            .subscribe(names.cancel())
            .await
            .map_err(|error| RemoteError::Setup {
                what: "the cancel subscription".to_owned(),
                reason: crate::ErrorChain(&error).to_string(),
            })?;
    let listener = Arc::clone(&host);
    tokio::spawn(async move {
        while let Some(message) = cancels.next().await {
            if let Ok(cancel) = codec::decode::<Cancel>(&message.payload) {
                lock(&listener.cancelled).insert((cancel.client, cancel.call));
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
    let mut refreshed = Instant::now();
    while !STOP.load(Ordering::Acquire) {
        while running.try_join_next().is_some() {}
        if refreshed.elapsed() > Duration::from_secs(5) {
            refreshed = Instant::now();
            if let Ok(info) = consumer.info().await {
                *lock(&host.ack_wait) = info.config.ack_wait;
                *lock(&host.max_deliver) =
                    u64::try_from(info.config.max_deliver).unwrap_or(u64::MAX);
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
        let batch = consumer
            .batch()
            .max_messages(free)
            .expires(Duration::from_millis(500))
            .messages()
            .await;
        let Ok(mut batch) = batch else {
            // The server is away: wait for the client to reconnect.
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        while let Some(message) = batch.next().await {
            let Ok(message) = message else {
                break;
            };
            let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                break;
            };
            let host = Arc::clone(&host);
            running.spawn(async move {
                handle(&host, message).await;
                drop(permit);
            });
        }
    }
    eprintln!("skprocess: NATS worker {worker} stopping: finishing the chunks it holds");
    while running.join_next().await.is_some() {}
    let _ = client.flush().await;
    Ok(())
}

/// Whether a pool id from a chunk can be part of a subject (hex digits only).
fn valid_client(client: &str) -> bool {
    !client.is_empty() && client.len() <= 32 && client.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Runs one chunk and reports its items; then acknowledges it, or asks for it again.
async fn handle(host: &Host, message: jetstream::Message) {
    let received = Instant::now();
    let delivered = message
        .info()
        .map_or(1, |info| u64::try_from(info.delivered).unwrap_or(1));
    let chunk = match codec::decode::<WorkChunk>(&message.payload) {
        Ok(chunk) if valid_client(&chunk.client) => chunk,
        _ => {
            // Not a chunk of ours: nobody can be told; never deliver it again.
            let _ = message.ack_with(AckKind::Term).await;
            return;
        }
    };
    if lock(&host.cancelled).contains(&(chunk.client.clone(), chunk.call)) {
        let _ = message.ack_with(AckKind::Term).await;
        return;
    }
    let subject = host.names.results(&chunk.client, chunk.call);
    let Some(runner) = registry().get(&chunk.task).cloned() else {
        let outcomes = (0..chunk.items.len() as u64)
            .map(|position| (chunk.first + position, Outcome::Refused))
            .collect();
        if report(host, &subject, chunk.call, outcomes).await {
            let _ = message.ack().await;
        } else {
            let _ = message.ack_with(AckKind::Nak(None)).await;
        }
        return;
    };
    let message = Arc::new(message);
    let alive = {
        let message = Arc::clone(&message);
        let every = *lock(&host.ack_wait) / 3;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let _ = message.ack_with(AckKind::Progress).await;
            }
        })
    };
    let timeout = chunk
        .timeout_ms
        .map(|ms| Duration::from_millis(ms).saturating_sub(received.elapsed()));
    let pool = host.pool.clone();
    let items = chunk.items;
    let run = tokio::task::spawn_blocking(move || runner(&pool, &items, timeout)).await;
    alive.abort();
    let Ok(run) = run else {
        let _ = message.ack_with(AckKind::Nak(None)).await;
        return;
    };
    let last = delivered >= *lock(&host.max_deliver);
    let mut outcomes = Vec::with_capacity(run.outcomes.len());
    let mut again = false;
    for (position, outcome) in run.outcomes.into_iter().enumerate() {
        let index = chunk.first + position as u64;
        match outcome {
            Some(RunOutcome::Settled(outcome)) => outcomes.push((index, outcome)),
            Some(RunOutcome::Crashed(reason)) => {
                eprintln!(
                    "skprocess: NATS worker {}: item {index} of call {} ({}): {reason} \
                     (delivery {delivered})",
                    host.worker, chunk.call, chunk.task
                );
                if last {
                    outcomes.push((
                        index,
                        Outcome::Poisoned {
                            deliveries: delivered,
                        },
                    ));
                } else {
                    again = true;
                }
            }
            None => {}
        }
    }
    let stopped_for_good = matches!(run.stopped, Some(PoolError::Timeout { .. }));
    again |= run.stopped.is_some() && !stopped_for_good;
    if !report(host, &subject, chunk.call, outcomes).await {
        again = true;
    }
    let answer = if again {
        AckKind::Nak(None)
    } else if stopped_for_good {
        AckKind::Term
    } else {
        AckKind::Ack
    };
    let _ = message.ack_with(answer).await;
}

/// Stores outcomes in the results stream, in as many messages as the server's size limit
/// needs; false if the server did not confirm them (the chunk is then delivered again).
async fn report(host: &Host, subject: &str, call: u64, outcomes: Vec<(u64, Outcome)>) -> bool {
    if outcomes.is_empty() {
        return true;
    }
    let limit = host.max_payload.saturating_sub(1024).max(1024);
    let mut piece: Vec<(u64, Outcome)> = Vec::new();
    let mut size = 0;
    for (index, outcome) in outcomes {
        let len = match &outcome {
            Outcome::Value(bytes) => bytes.len(),
            _ => 256,
        };
        let outcome = if len > limit {
            Outcome::Failed(TaskError::TooLarge {
                what: Payload::Output,
                len: len as u64,
                limit: limit as u64,
            })
        } else {
            outcome
        };
        if size + len + 16 > limit && !piece.is_empty() {
            if !store(host, subject, call, std::mem::take(&mut piece)).await {
                return false;
            }
            size = 0;
        }
        size += len.min(limit) + 16;
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
    let give_up = Instant::now() + Duration::from_secs(30);
    loop {
        let stored = async {
            host.js
                .publish(subject.to_owned(), payload.clone())
                .await
                .ok()?
                .await
                .ok()
        };
        if stored.await.is_some() {
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
}
