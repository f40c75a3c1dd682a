//! The pool side: [`NatsPool`] publishes a call's items as chunks on the work stream, and reads
//! their results from its own subject of the results stream.
//!
//! The client runs on a small tokio runtime the pool owns; the sync methods hand it work and
//! wait on a channel, so they work from any thread, inside another runtime too, and users pick
//! no executor.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;

use super::connect::NatsOptions;
use super::error::RemoteError;
use super::protocol::{
    Cancel, ERROR_HEADER, Names, Outcome, PROTOCOL, PROTOCOL_HEADER, ResultChunk, WORKER_HEADER,
    WorkChunk,
};
use super::registry::{RemoteKind, registry, task_name};
use super::streams;
use crate::lifecycle::Transferable;
use crate::pool::mode::{Fallible, Plain, Processes, Star, Value};
use crate::pool::progress::{ProgressFn, Tracker};
use crate::pool::{Payload, PoolError, Progress, TaskError, TaskFn};
use crate::wire::codec::{self, HostEncodeError};

/// Bytes a chunk's message takes besides its items: the chunk's fields and JetStream's headers.
const CHUNK_OVERHEAD: usize = 1024;
/// Bytes each item adds to a chunk besides its own (its length prefix).
const ITEM_OVERHEAD: usize = 8;
/// The longest a waiting call sleeps between looks at its deadline and at the connection.
const POLL: Duration = Duration::from_millis(100);
/// The most items a chunk holds when the call does not say.
const MAX_DEFAULT_CHUNK: usize = 512;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Builds a [`NatsPool`]: `NatsPool::builder(NatsOptions::new(url)).max_deliver(5).build()?`.
#[derive(Debug)]
pub struct NatsPoolBuilder {
    options: NatsOptions,
    settings: Settings,
}

#[derive(Clone, Copy, Debug)]
struct Settings {
    ack_wait: Duration,
    max_deliver: u64,
    server_timeout: Duration,
    max_in_flight: usize,
}

impl NatsPoolBuilder {
    /// How long a worker may hold a chunk without a sign of life before JetStream gives it to
    /// another worker (default 30 s, at least 1 s). Workers send a sign of life every quarter
    /// of a second while they run a chunk, so a long item is not redelivered; a host that dies
    /// or is cut off is. This is a setting of the pool's shared consumer: the last pool built
    /// sets it for every worker.
    pub fn ack_wait(mut self, ack_wait: Duration) -> NatsPoolBuilder {
        self.settings.ack_wait = ack_wait.max(Duration::from_secs(1));
        self
    }

    /// How many times an item is delivered before, if its process (or its host) died each
    /// time, it fails with [`TaskError::Poisoned`] (default 3, at least 1). Each chunk carries
    /// its pool's limit, so pools with different limits can share workers.
    pub fn max_deliver(mut self, deliveries: u32) -> NatsPoolBuilder {
        self.settings.max_deliver = u64::from(deliveries.max(1));
        self
    }

    /// How long a call waits for a lost server to come back before it fails with
    /// [`RemoteError::ServerGone`] (default 10 s, at most 5 minutes: a chunk published again
    /// after that could be stored twice).
    pub fn server_timeout(mut self, timeout: Duration) -> NatsPoolBuilder {
        self.settings.server_timeout = timeout.min(Duration::from_secs(300));
        self
    }

    /// How many chunks' worth of items one call keeps read and not yet handed out, at most
    /// (default 64, times the call's chunk size): the rest of an `imap`'s input is read only as
    /// its results are consumed, so an endless iterator stays bounded in memory.
    pub fn max_in_flight(mut self, chunks: usize) -> NatsPoolBuilder {
        self.settings.max_in_flight = chunks.max(1);
        self
    }

    /// Connects, and creates the pool's streams and consumer if they are not there yet.
    ///
    /// # Errors
    ///
    /// [`PoolError::Remote`] with [`RemoteError::Connect`] (server unreachable, credentials
    /// refused, TLS failed), [`RemoteError::Setup`] (JetStream not enabled) or
    /// [`RemoteError::InvalidConfig`].
    pub fn build(self) -> Result<NatsPool, PoolError> {
        let names = Names::new(self.options.pool_name())?;
        let runtime = self.options.runtime("skprocess-nats", 1)?;
        let url = self.options.url().to_owned();
        let id = client_id();
        let settings = self.settings;
        let options = self.options;
        let conn = block_on(&runtime, async move {
            Conn::start(options, names, id, settings).await
        })
        .unwrap_or_else(|| {
            Err(RemoteError::Connect {
                url,
                reason: "the client's runtime stopped".to_owned(),
            })
        })?;
        Ok(NatsPool {
            inner: Arc::new(Inner {
                runtime: Some(runtime),
                conn,
            }),
        })
    }
}

/// Sixteen random hex digits: this pool's id on the server.
fn client_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        bytes = ((nanos as u64) ^ u64::from(std::process::id())).to_le_bytes();
    }
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Runs `future` on `runtime` and waits for it from this thread (which may belong to another
/// runtime): `None` if the runtime dropped it.
fn block_on<T: Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    future: impl Future<Output = T> + Send + 'static,
) -> Option<T> {
    let (sender, receiver) = mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = sender.send(future.await);
    });
    receiver.recv().ok()
}

/// A pool whose workers are processes on any host, reached through a NATS JetStream server:
/// the same calls as a local [`Pool`](crate::pool::Pool) (`map`, `unordered_map`, `imap`,
/// `unordered_imap`, `star()`, `fallible()`, `processes()`, `timeout`, `progress`).
///
/// Tasks travel by registered name ([`remote_tasks!`](crate::remote_tasks)); workers are the
/// same executable started in worker mode (see the [module docs](super)). Cheap to clone.
#[derive(Clone)]
pub struct NatsPool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for NatsPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsPool")
            .field("pool", &self.inner.conn.names.pool())
            .field("client", &self.inner.conn.id)
            .finish_non_exhaustive()
    }
}

struct Inner {
    /// `None` once dropped.
    runtime: Option<tokio::runtime::Runtime>,
    conn: Arc<Conn>,
}

impl Inner {
    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the pool")
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Results nobody will read: drop them now rather than when they expire.
            let conn = Arc::clone(&self.conn);
            let (sender, receiver) = mpsc::sync_channel(1);
            runtime.spawn(async move {
                let filter = conn.names.results_of(&conn.id);
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    conn.results.purge().filter(filter),
                )
                .await;
                let _ = tokio::time::timeout(Duration::from_secs(1), conn.client.flush()).await;
                let _ = sender.send(());
            });
            let _ = receiver.recv_timeout(Duration::from_secs(3));
            runtime.shutdown_background();
        }
    }
}

/// What the client's tasks hand a waiting call.
enum Event {
    Results(ResultChunk),
    PublishFailed(String),
    Malformed(String),
    /// A worker could not read the call's chunk (another version of the protocol).
    Unreadable {
        worker: String,
        reason: String,
    },
}

/// The connection and what the client's tasks share with the calls.
struct Conn {
    client: async_nats::Client,
    js: jetstream::Context,
    names: Names,
    /// This pool's id: its calls' subjects carry it.
    id: String,
    results: stream::Stream,
    work: stream::Stream,
    settings: Settings,
    max_payload: usize,
    calls: Mutex<HashMap<u64, mpsc::Sender<Event>>>,
    next_call: AtomicU64,
}

impl Conn {
    async fn start(
        options: NatsOptions,
        names: Names,
        id: String,
        settings: Settings,
    ) -> Result<Arc<Conn>, RemoteError> {
        let client = options.connect(&format!("skprocess pool {id}")).await?;
        let js = jetstream::new(client.clone());
        let (work, results) = streams::streams(&js, &names).await?;
        streams::set_consumers(&work, &names, settings.ack_wait).await?;
        let max_payload = client.server_info().max_payload.max(CHUNK_OVERHEAD * 2);
        // Workers ask here whether this pool still lives before they run its chunks.
        let alive =
            client
                .subscribe(names.alive(&id))
                .await
                .map_err(|error| RemoteError::Setup {
                    what: "the pool's liveness subject".to_owned(),
                    reason: crate::ErrorChain(&error).to_string(),
                })?;
        let conn = Arc::new(Conn {
            client,
            js,
            names,
            id,
            results,
            work,
            settings,
            max_payload,
            calls: Mutex::new(HashMap::new()),
            next_call: AtomicU64::new(1),
        });
        tokio::spawn(route_results(Arc::clone(&conn)));
        tokio::spawn(answer_alive(conn.client.clone(), alive));
        Ok(conn)
    }

    fn send(&self, call: u64, event: Event) {
        let sender = lock(&self.calls).get(&call).cloned();
        if let Some(sender) = sender {
            let _ = sender.send(event);
        }
    }

    fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Creates the streams and the work consumer again if they are gone (a server that came
    /// back without its store, or an administrator who deleted them).
    async fn recreate(&self) {
        if streams::streams(&self.js, &self.names).await.is_ok() {
            let _ = streams::set_consumers(&self.work, &self.names, self.settings.ack_wait).await;
        }
    }
}

/// Answers every "are you there?" while the pool lives.
async fn answer_alive(client: async_nats::Client, mut requests: async_nats::Subscriber) {
    while let Some(request) = requests.next().await {
        if let Some(reply) = request.reply {
            let _ = client.publish(reply, bytes::Bytes::new()).await;
        }
    }
}

/// How long a call with items out waits without hearing anything before it reads its results
/// subject again from its start.
const CATCH_UP_AFTER: Duration = Duration::from_secs(5);

/// Reads everything stored on one call's results subject and hands it to the call: a safety
/// net under the results reader (a message it never got is found here; what it did get comes
/// twice and is dropped as a duplicate).
async fn catch_up(conn: &Conn, call: u64) {
    let consumer = conn
        .results
        .create_consumer(consumer::pull::Config {
            filter_subject: conn.names.results(&conn.id, call),
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(10),
            ..Default::default()
        })
        .await;
    let Ok(mut consumer) = consumer else {
        return;
    };
    let Ok(info) = consumer.info().await else {
        return;
    };
    let mut left = info.num_pending;
    while left > 0 {
        let batch = consumer
            .fetch()
            .max_messages(usize::try_from(left).unwrap_or(usize::MAX).min(256))
            .messages()
            .await;
        let Ok(mut batch) = batch else {
            return;
        };
        let mut got = 0;
        while let Ok(Some(Ok(message))) =
            tokio::time::timeout(Duration::from_secs(3), batch.next()).await
        {
            route_result(conn, &message);
            got += 1;
        }
        if got == 0 {
            return;
        }
        left = left.saturating_sub(got);
    }
}

/// How often the results consumer hears from the server when nothing arrives; two silent
/// beats and it starts over.
const RESULTS_HEARTBEAT: Duration = Duration::from_secs(1);

/// How long a result message the pool did not acknowledge waits before it comes again.
const RESULTS_ACK_WAIT: Duration = Duration::from_secs(3);

/// Hands each result message to the call its subject names. A message that is not a result
/// fails that call, never the router.
///
/// Results are read through an ephemeral pull consumer with heartbeats and acknowledgements
/// (so a message lost between the server and this task comes again). When its stream of
/// messages fails (the connection dropped, heartbeats went missing), reading starts again on
/// the same consumer; when the consumer itself is gone (the server restarted without it), a new
/// one reads from the start.
async fn route_results(conn: Arc<Conn>) {
    loop {
        // A new consumer reads this pool's results from the start of the stream: what it
        // read before was acknowledged, and the results of finished calls are purged, so
        // this reads again at most the results of calls in progress (dropped as duplicates).
        let consumer = conn
            .results
            .create_consumer(consumer::pull::Config {
                filter_subject: conn.names.results_of(&conn.id),
                deliver_policy: consumer::DeliverPolicy::All,
                // Acknowledged: a message the client lost on the way (a pull it gave up on) is
                // delivered again instead of leaving its call waiting.
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: RESULTS_ACK_WAIT,
                inactive_threshold: Duration::from_secs(60),
                ..Default::default()
            })
            .await;
        let consumer = match consumer {
            Ok(consumer) => consumer,
            Err(_) => {
                if conn.connected() {
                    conn.recreate().await;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        // The same consumer for as long as it exists: what it delivered and the client lost
        // comes again from it.
        while read_results(&conn, &consumer).await {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Routes what `consumer` delivers until its stream of messages fails; whether the consumer
/// still exists then.
async fn read_results(conn: &Conn, consumer: &consumer::PullConsumer) -> bool {
    let messages = consumer
        .stream()
        .heartbeat(RESULTS_HEARTBEAT)
        .expires(RESULTS_HEARTBEAT * 5)
        .messages()
        .await;
    if let Ok(mut messages) = messages {
        loop {
            match tokio::time::timeout(RESULTS_HEARTBEAT * 3, messages.next()).await {
                Ok(Some(Ok(message))) => {
                    route_result(conn, &message);
                    let _ = message.ack().await;
                }
                // Quiet: make sure the consumer is still there (a server that lost its store
                // comes back without it, and the stream does not always say so).
                Err(_) if consumer.get_info().await.is_ok() => {}
                _ => break,
            }
        }
    }
    consumer.get_info().await.is_ok()
}

fn route_result(conn: &Conn, message: &jetstream::Message) {
    let Some(call) = conn.names.parse_results(&conn.id, &message.subject) else {
        return;
    };
    let header = |name: &str| {
        message
            .headers
            .as_ref()
            .and_then(|headers| headers.get(name))
            .map(|value| value.as_str().to_owned())
    };
    if let Some(reason) = header(ERROR_HEADER) {
        let worker = header(WORKER_HEADER).unwrap_or_else(|| "(unnamed)".to_owned());
        conn.send(call, Event::Unreadable { worker, reason });
        return;
    }
    let event = match header(PROTOCOL_HEADER).as_deref() {
        Some(PROTOCOL) => match codec::decode::<ResultChunk>(&message.payload) {
            Ok(chunk) if chunk.call == call => Event::Results(chunk),
            Ok(chunk) => Event::Malformed(format!(
                "results of call {} on the subject of call {call}",
                chunk.call
            )),
            Err(reason) => Event::Malformed(reason),
        },
        other => Event::Malformed(format!(
            "protocol {:?}, not {PROTOCOL:?}",
            other.unwrap_or("(none)")
        )),
    };
    conn.send(call, event);
}

/// How a call passes its items: `f(item)` ([`Plain`]) or `f(a, b, ...)` ([`Star`]). Either
/// way an item travels as the task's argument tuple.
pub trait RemoteArgs: sealed::Sealed + 'static {
    /// The argument tuple of an item of type `I`.
    type Args<I: Transferable>: Transferable;

    /// Makes the argument tuple.
    #[doc(hidden)]
    fn wrap<I: Transferable>(item: I) -> Self::Args<I>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Plain {}
    impl Sealed for super::Star {}
}

impl RemoteArgs for Plain {
    type Args<I: Transferable> = (I,);

    fn wrap<I: Transferable>(item: I) -> (I,) {
        (item,)
    }
}

impl RemoteArgs for Star {
    type Args<I: Transferable> = I;

    fn wrap<I: Transferable>(item: I) -> I {
        item
    }
}

/// One call being set up: modifiers first, then `map`, `imap` and the others, as for a local
/// [`PoolCall`](crate::pool::PoolCall).
pub struct NatsCall<'p, A, K> {
    pool: &'p NatsPool,
    timeout: Option<Duration>,
    chunk_size: Option<usize>,
    progress: Option<ProgressFn>,
    /// A name to send the task by instead of its own (tests of workers built from other code).
    sent_as: Option<String>,
    mode: PhantomData<fn() -> (A, K)>,
}

impl<A, K> std::fmt::Debug for NatsCall<'_, A, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsCall")
            .field("timeout", &self.timeout)
            .field("chunk_size", &self.chunk_size)
            .finish_non_exhaustive()
    }
}

impl<'p, A, K> NatsCall<'p, A, K> {
    fn with_mode<B, L>(self) -> NatsCall<'p, B, L> {
        NatsCall {
            pool: self.pool,
            timeout: self.timeout,
            chunk_size: self.chunk_size,
            progress: self.progress,
            sent_as: self.sent_as,
            mode: PhantomData,
        }
    }

    /// One deadline for the whole call. When it passes, the call returns
    /// [`PoolError::Timeout`]; chunks not yet taken are removed from the stream, and workers
    /// stop the call's items that run past it (each worker counts the time from when it got
    /// the chunk, so it never stops one early).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sends items `size` at a time (one message each). By default a call cuts its input into
    /// about 64 chunks (at most 512 items each; 16 when an iterator's size is unknown).
    pub fn chunk_size(mut self, size: usize) -> Self {
        self.chunk_size = Some(size.max(1));
        self
    }

    /// Reports the call's progress to `callback`, on the thread that drives the call, after
    /// each result message.
    pub fn progress(mut self, callback: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(callback));
        self
    }

    /// Sends the task by `name` instead of its own (as a program built from other code would).
    #[cfg(feature = "__testing")]
    #[doc(hidden)]
    pub fn sent_as(mut self, name: &str) -> Self {
        self.sent_as = Some(name.to_owned());
        self
    }
}

impl<'p, K> NatsCall<'p, Plain, K> {
    /// Unpacks tuple items into the task's arguments.
    pub fn star(self) -> NatsCall<'p, Star, K> {
        self.with_mode()
    }
}

impl<'p, A> NatsCall<'p, A, Value> {
    /// Tasks return `Result<T, E>`; an `Err` fails the item with its message.
    pub fn fallible(self) -> NatsCall<'p, A, Fallible> {
        self.with_mode()
    }

    /// Tasks build a process value; its whole lifecycle runs in a worker.
    pub fn processes(self) -> NatsCall<'p, A, Processes> {
        self.with_mode()
    }
}

impl<'p, A: RemoteArgs, K: RemoteKind> NatsCall<'p, A, K> {
    /// Applies `task` to every item; results in input order. Every item is encoded before
    /// anything is sent.
    ///
    /// # Errors
    ///
    /// [`PoolError::Task`] for the failed item with the lowest index (after every item ran),
    /// [`PoolError::Timeout`], [`PoolError::Remote`] (the task is not registered, an item
    /// cannot cross hosts, a worker refused the task, the server went away).
    pub fn map<T, I>(
        &self,
        task: T,
        items: impl IntoIterator<Item = I>,
    ) -> Result<Vec<T::Output>, PoolError>
    where
        T: TaskFn<Star, K, A::Args<I>>,
        I: Transferable,
    {
        self.collect(task, items, true)
    }

    /// Like [`map`](Self::map), results in the order they arrive.
    pub fn unordered_map<T, I>(
        &self,
        task: T,
        items: impl IntoIterator<Item = I>,
    ) -> Result<Vec<T::Output>, PoolError>
    where
        T: TaskFn<Star, K, A::Args<I>>,
        I: Transferable,
    {
        self.collect(task, items, false)
    }

    /// A lazy iterator of results, in input order: items are read, encoded and published only
    /// as results come back, with at most
    /// [`max_in_flight`](NatsPoolBuilder::max_in_flight) chunks out. Each result is
    /// `Ok(value)` or `Err` for that item; a call-wide error ends the iteration.
    pub fn imap<'a, T, I>(
        &self,
        task: T,
        items: impl IntoIterator<Item = I> + 'a,
    ) -> NatsIter<'a, T::Output>
    where
        T: TaskFn<Star, K, A::Args<I>>,
        I: Transferable,
    {
        let _ = task;
        self.iter::<T, I>(items, true, false)
    }

    /// Like [`imap`](Self::imap), results in the order they arrive.
    pub fn unordered_imap<'a, T, I>(
        &self,
        task: T,
        items: impl IntoIterator<Item = I> + 'a,
    ) -> NatsIter<'a, T::Output>
    where
        T: TaskFn<Star, K, A::Args<I>>,
        I: Transferable,
    {
        let _ = task;
        self.iter::<T, I>(items, false, false)
    }

    fn collect<T, I>(
        &self,
        task: T,
        items: impl IntoIterator<Item = I>,
        ordered: bool,
    ) -> Result<Vec<T::Output>, PoolError>
    where
        T: TaskFn<Star, K, A::Args<I>>,
        I: Transferable,
    {
        let _ = task;
        let items: Vec<I> = items.into_iter().collect();
        let total = items.len();
        let mut results = self.iter::<T, I>(items, ordered, true);
        let mut values = Vec::with_capacity(total);
        let mut failed: Option<PoolError> = None;
        for result in &mut results {
            match result {
                Ok(value) => values.push(value),
                Err(error @ PoolError::Task { .. }) => {
                    if failed.as_ref().and_then(PoolError::index) > error.index()
                        || failed.is_none()
                    {
                        failed = Some(error);
                    }
                }
                Err(error) => return Err(error),
            }
        }
        match failed {
            Some(error) => Err(error),
            None => Ok(values),
        }
    }

    fn iter<'a, T, I>(
        &self,
        items: impl IntoIterator<Item = I> + 'a,
        ordered: bool,
        encode_first: bool,
    ) -> NatsIter<'a, T::Output>
    where
        T: TaskFn<Star, K, A::Args<I>>,
        I: Transferable,
    {
        let name = self
            .sent_as
            .clone()
            .unwrap_or_else(task_name::<T, K, A::Args<I>>);
        let items = items.into_iter();
        let hint = items.size_hint();
        let total = (Some(hint.0) == hint.1).then_some(hint.0);
        let chunk_size = self.chunk_size.unwrap_or(match total {
            Some(total) => (total / 64).clamp(1, MAX_DEFAULT_CHUNK),
            None => 16,
        });
        let encoded = items.map(|item| encode_item(A::wrap(item)));
        let mut refused = None;
        let feed: Box<dyn Iterator<Item = Encoded> + 'a> = if encode_first {
            let all: Vec<Encoded> = encoded.collect();
            if let Some((index, what)) = all.iter().enumerate().find_map(|(index, item)| match item
            {
                Encoded::Local(what) => Some((index, *what)),
                _ => None,
            }) {
                refused = Some(RemoteError::CannotCrossHosts { index, what }.into());
            }
            Box::new(all.into_iter())
        } else {
            Box::new(encoded)
        };
        if self.sent_as.is_none() && !registry().contains_key(&name) {
            refused = Some(
                RemoteError::NotRegistered {
                    task: std::any::type_name::<T>(),
                }
                .into(),
            );
        }
        NatsIter::new(self, name, feed, ordered, chunk_size, total, refused)
    }
}

/// An item on its way out.
enum Encoded {
    Bytes(Vec<u8>),
    Failed(TaskError),
    Local(&'static str),
}

fn encode_item<T: Transferable>(args: T) -> Encoded {
    match codec::encode_for_another_host(&args) {
        Ok(bytes) => Encoded::Bytes(bytes),
        Err(HostEncodeError::Local(what)) => Encoded::Local(what),
        Err(HostEncodeError::Other(reason)) => Encoded::Failed(TaskError::Encode(reason)),
    }
}

/// Which items have been reported (a redelivered chunk's results come twice).
#[derive(Default)]
struct Reported(Vec<u64>);

impl Reported {
    /// Whether `index` is marked.
    fn is_marked(&self, index: usize) -> bool {
        self.0
            .get(index / 64)
            .is_some_and(|word| word & (1u64 << (index % 64)) != 0)
    }

    /// Marks `index`; false if it was marked already.
    fn mark(&mut self, index: usize) -> bool {
        let (word, bit) = (index / 64, 1u64 << (index % 64));
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        let fresh = self.0[word] & bit == 0;
        self.0[word] |= bit;
        fresh
    }
}

/// Lazy results of a [`NatsPool`] call (`imap`, `unordered_imap`). Dropping it early cancels
/// the call: its chunks not yet taken are removed, and workers skip what they still hold.
pub struct NatsIter<'a, O> {
    pool: NatsPool,
    call: u64,
    task: String,
    events: mpsc::Receiver<Event>,
    feed: Box<dyn Iterator<Item = Encoded> + 'a>,
    /// An item read but left for the next chunk (it did not fit this one).
    held_back: Option<Encoded>,
    refused: Option<PoolError>,
    ordered: bool,
    chunk_size: usize,
    /// The most items read and not yet handed out.
    window: usize,
    /// Items published and not yet settled.
    in_flight: usize,
    /// Items read from the input so far.
    taken: usize,
    /// Items handed out so far.
    yielded: usize,
    exhausted: bool,
    finished: bool,
    reported: Reported,
    next_index: usize,
    waiting: VecDeque<Option<Result<O, TaskError>>>,
    ready: VecDeque<(usize, Result<O, TaskError>)>,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    /// Since when the connection has been down, while this call waited.
    lost_since: Option<Instant>,
    /// When this call last heard anything, or last asked for its results again.
    heard: Instant,
    progress: Tracker,
}

impl<O> std::fmt::Debug for NatsIter<'_, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsIter")
            .field("call", &self.call)
            .field("task", &self.task)
            .field("in_flight", &self.in_flight)
            .field("completed", &self.progress.done())
            .finish_non_exhaustive()
    }
}

impl<'a, O: Transferable> NatsIter<'a, O> {
    fn new<A, K>(
        call: &NatsCall<'_, A, K>,
        task: String,
        feed: Box<dyn Iterator<Item = Encoded> + 'a>,
        ordered: bool,
        chunk_size: usize,
        total: Option<usize>,
        refused: Option<PoolError>,
    ) -> NatsIter<'a, O> {
        let conn = &call.pool.inner.conn;
        let id = conn.next_call.fetch_add(1, Ordering::Relaxed);
        let (sender, events) = mpsc::channel();
        if refused.is_none() {
            lock(&conn.calls).insert(id, sender);
        }
        let progress = Tracker::new(call.progress.clone(), total);
        progress.report();
        NatsIter {
            pool: call.pool.clone(),
            call: id,
            task,
            events,
            feed,
            held_back: None,
            refused,
            ordered,
            chunk_size,
            window: conn.settings.max_in_flight.saturating_mul(chunk_size),
            in_flight: 0,
            taken: 0,
            yielded: 0,
            exhausted: false,
            finished: false,
            reported: Reported::default(),
            next_index: 0,
            waiting: VecDeque::new(),
            ready: VecDeque::new(),
            timeout: call.timeout,
            deadline: call.timeout.map(|timeout| Instant::now() + timeout),
            lost_since: None,
            heard: Instant::now(),
            progress,
        }
    }

    /// Records an item's outcome, once.
    fn settle(&mut self, index: usize, result: Result<O, TaskError>, was_sent: bool) {
        if !self.reported.mark(index) {
            return;
        }
        if was_sent {
            self.in_flight -= 1;
        }
        self.progress.count(1, usize::from(result.is_err()));
        if self.ordered {
            let position = index - self.next_index;
            if self.waiting.len() <= position {
                self.waiting.resize_with(position + 1, || None);
            }
            self.waiting[position] = Some(result);
        } else {
            self.ready.push_back((index, result));
        }
    }

    fn take_ready(&mut self) -> Option<(usize, Result<O, TaskError>)> {
        if self.ordered {
            if let Some(Some(_)) = self.waiting.front() {
                let result = self.waiting.pop_front().flatten()?;
                let index = self.next_index;
                self.next_index += 1;
                return Some((index, result));
            }
            None
        } else {
            self.ready.pop_front()
        }
    }

    /// Publishes chunks while the call has room in flight and input left.
    fn top_up(&mut self) -> Result<(), PoolError> {
        let limit = self.conn().max_payload;
        // The most an item may take: what a chunk of it alone leaves.
        let item_limit = limit.saturating_sub(CHUNK_OVERHEAD + self.task.len() + ITEM_OVERHEAD);
        // A chunk is cut only when a whole one fits in the window (cutting whatever room frees
        // up would make chunks of one item as results are consumed).
        while !self.exhausted && self.taken - self.yielded + self.chunk_size <= self.window {
            let first = self.taken;
            let mut items = Vec::new();
            let mut size = CHUNK_OVERHEAD + self.task.len();
            while items.len() < self.chunk_size {
                let Some(item) = self.held_back.take().or_else(|| self.feed.next()) else {
                    self.exhausted = true;
                    self.progress.set_total(self.taken);
                    break;
                };
                match item {
                    Encoded::Bytes(bytes) => {
                        if bytes.len() > item_limit {
                            if items.is_empty() {
                                let len = bytes.len() as u64;
                                self.taken += 1;
                                self.settle(
                                    first,
                                    Err(TaskError::TooLarge {
                                        what: Payload::Input,
                                        len,
                                        limit: item_limit as u64,
                                    }),
                                    false,
                                );
                            } else {
                                self.held_back = Some(Encoded::Bytes(bytes));
                            }
                            break;
                        }
                        if size + ITEM_OVERHEAD + bytes.len() > limit {
                            self.held_back = Some(Encoded::Bytes(bytes));
                            break;
                        }
                        size += ITEM_OVERHEAD + bytes.len();
                        items.push(bytes);
                        self.taken += 1;
                    }
                    Encoded::Failed(error) => {
                        if items.is_empty() {
                            self.taken += 1;
                            self.settle(first, Err(error), false);
                        } else {
                            self.held_back = Some(Encoded::Failed(error));
                        }
                        break;
                    }
                    Encoded::Local(what) => {
                        return Err(RemoteError::CannotCrossHosts {
                            index: self.taken,
                            what,
                        }
                        .into());
                    }
                }
            }
            if !items.is_empty() {
                self.publish(first, items)?;
            }
        }
        Ok(())
    }

    fn publish(&mut self, first: usize, items: Vec<Vec<u8>>) -> Result<(), PoolError> {
        let count = items.len();
        let conn = Arc::clone(self.conn());
        let chunk = WorkChunk {
            client: conn.id.clone(),
            call: self.call,
            task: self.task.clone(),
            first: first as u64,
            items,
            timeout_ms: self.deadline.map(|deadline| {
                deadline
                    .saturating_duration_since(Instant::now())
                    .as_millis()
                    .try_into()
                    .unwrap_or(u64::MAX)
            }),
            max_deliver: conn.settings.max_deliver,
            prior: 0,
        };
        let payload = codec::encode(&chunk).map_err(|reason| RemoteError::Publish { reason })?;
        self.in_flight += count;
        let call = self.call;
        self.pool.inner.runtime().spawn(async move {
            if let Err(reason) = publish_chunk(&conn, call, first, payload).await {
                conn.send(call, Event::PublishFailed(reason));
            }
        });
        Ok(())
    }

    fn handle(&mut self, event: Event) -> Result<(), PoolError> {
        match event {
            Event::Results(chunk) => {
                for (index, outcome) in chunk.outcomes {
                    let Ok(index) = usize::try_from(index) else {
                        continue;
                    };
                    if index >= self.taken || self.reported.is_marked(index) {
                        // Not one of this call's items, or reported already (a duplicate of
                        // a redelivered chunk, whatever it says).
                        continue;
                    }
                    let result = match outcome {
                        Outcome::Value(bytes) => {
                            codec::decode::<O>(&bytes).map_err(TaskError::Decode)
                        }
                        Outcome::Failed(error) => Err(error),
                        Outcome::Poisoned { deliveries } => Err(TaskError::Poisoned { deliveries }),
                        Outcome::Refused => {
                            return Err(RemoteError::UnknownTask {
                                task: self.task.clone(),
                                worker: chunk.worker,
                            }
                            .into());
                        }
                    };
                    self.settle(index, result, true);
                }
            }
            Event::PublishFailed(reason) => {
                if self.conn().connected() {
                    return Err(RemoteError::Publish { reason }.into());
                }
                return Err(RemoteError::ServerGone {
                    waited: self.conn().settings.server_timeout,
                    completed: self.progress.done(),
                }
                .into());
            }
            Event::Malformed(reason) => {
                return Err(RemoteError::MalformedResult { reason }.into());
            }
            Event::Unreadable { worker, reason } => {
                return Err(RemoteError::Unreadable { worker, reason }.into());
            }
        }
        self.progress.report();
        Ok(())
    }

    /// Waits for the next event, up to [`POLL`]; checks the deadline and the connection.
    fn wait(&mut self) -> Result<(), PoolError> {
        let now = Instant::now();
        if let Some(deadline) = self.deadline
            && now >= deadline
        {
            return Err(PoolError::Timeout {
                timeout: self.timeout.unwrap_or_default(),
                completed: self.progress.done(),
            });
        }
        let slice = self
            .deadline
            .map_or(POLL, |deadline| (deadline - now).min(POLL));
        match self.events.recv_timeout(slice) {
            Ok(event) => {
                self.heard = Instant::now();
                self.handle(event)
            }
            Err(RecvTimeoutError::Timeout) => {
                if self.conn().connected() {
                    self.lost_since = None;
                    if self.in_flight > 0 && self.heard.elapsed() >= CATCH_UP_AFTER {
                        // Quiet for a while with items out: read the call's results subject
                        // again from its start (what is stored is never missed; duplicates are
                        // dropped).
                        self.heard = Instant::now();
                        let conn = Arc::clone(self.conn());
                        let call = self.call;
                        self.pool.inner.runtime().spawn(async move {
                            catch_up(&conn, call).await;
                        });
                    }
                } else {
                    let since = *self.lost_since.get_or_insert(now);
                    let waited = now.duration_since(since);
                    if waited >= self.conn().settings.server_timeout {
                        return Err(RemoteError::ServerGone {
                            waited,
                            completed: self.progress.done(),
                        }
                        .into());
                    }
                }
                Ok(())
            }
            Err(RecvTimeoutError::Disconnected) => Err(PoolError::Closed),
        }
    }

    fn end(&mut self, error: PoolError) -> Option<Result<O, PoolError>> {
        self.finished = true;
        self.close();
        Some(Err(error))
    }
}

impl<O> NatsIter<'_, O> {
    fn conn(&self) -> &Arc<Conn> {
        &self.pool.inner.conn
    }

    /// Forgets the call, tells workers to stop what they still run of it (an early end, or a
    /// duplicate of a redelivered chunk), and removes its chunks not yet taken and its
    /// results.
    fn close(&mut self) {
        let conn = Arc::clone(self.conn());
        let call = self.call;
        lock(&conn.calls).remove(&call);
        let Some(runtime) = self.pool.inner.runtime.as_ref() else {
            return;
        };
        runtime.spawn(async move {
            let notice = Cancel {
                client: conn.id.clone(),
                call,
            };
            if let Ok(bytes) = codec::encode(&notice) {
                let _ = conn.client.publish(conn.names.cancel(), bytes.into()).await;
            }
            let _ = conn
                .work
                .purge()
                .filter(conn.names.work(&conn.id, call))
                .await;
            let _ = conn
                .work
                .purge()
                .filter(conn.names.suspects(&conn.id, call))
                .await;
            let _ = conn
                .results
                .purge()
                .filter(conn.names.results(&conn.id, call))
                .await;
        });
    }
}

/// Publishes one chunk and waits for the stream to store it, trying again (with the same id,
/// so it is stored once) while the server is away, up to the pool's `server_timeout`.
async fn publish_chunk(
    conn: &Conn,
    call: u64,
    first: usize,
    payload: Vec<u8>,
) -> Result<(), String> {
    let give_up = Instant::now() + conn.settings.server_timeout;
    let subject = conn.names.work(&conn.id, call);
    let id = format!("{}.{call}.{first}", conn.id);
    let payload: bytes::Bytes = payload.into();
    loop {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id.as_str());
        headers.insert(PROTOCOL_HEADER, PROTOCOL);
        let attempt = async {
            conn.js
                .publish_with_headers(subject.clone(), headers, payload.clone())
                .await
                .map_err(|error| crate::ErrorChain(&error).to_string())?
                .await
                .map_err(|error| crate::ErrorChain(&error).to_string())
        };
        match attempt.await {
            Ok(_) => return Ok(()),
            Err(reason) if Instant::now() >= give_up => return Err(reason),
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if conn.connected() {
                    // Connected, and still refused: the stream may be gone.
                    conn.recreate().await;
                }
            }
        }
        if !lock(&conn.calls).contains_key(&call) {
            return Err("the call ended".to_owned());
        }
    }
}

impl<O: Transferable> Iterator for NatsIter<'_, O> {
    type Item = Result<O, PoolError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        if let Some(error) = self.refused.take() {
            self.finished = true;
            return Some(Err(error));
        }
        loop {
            if let Err(error) = self.top_up() {
                return self.end(error);
            }
            if let Some((index, result)) = self.take_ready() {
                self.yielded += 1;
                return Some(result.map_err(|error| PoolError::Task { index, error }));
            }
            if self.in_flight == 0 && self.exhausted {
                self.finished = true;
                self.close();
                return None;
            }
            if let Err(error) = self.wait() {
                return self.end(error);
            }
        }
    }
}

impl<O> Drop for NatsIter<'_, O> {
    fn drop(&mut self) {
        if !self.finished && self.refused.is_none() {
            self.finished = true;
            self.close();
        }
    }
}

impl NatsPool {
    /// A builder for a pool reached with `options`.
    pub fn builder(options: NatsOptions) -> NatsPoolBuilder {
        NatsPoolBuilder {
            options,
            settings: Settings {
                ack_wait: Duration::from_secs(30),
                max_deliver: 3,
                server_timeout: Duration::from_secs(10),
                max_in_flight: 64,
            },
        }
    }

    /// Connects with the default settings; see [`NatsPoolBuilder::build`].
    ///
    /// # Errors
    ///
    /// As for [`NatsPoolBuilder::build`].
    pub fn connect(options: NatsOptions) -> Result<NatsPool, PoolError> {
        NatsPool::builder(options).build()
    }

    /// The pool's name on the server.
    pub fn name(&self) -> &str {
        self.inner.conn.names.pool()
    }

    /// This pool's own id on the server: the subjects of its calls carry it
    /// (`skp.<pool>.work.<id>.<call>`, `skp.<pool>.results.<id>.<call>`).
    pub fn id(&self) -> &str {
        &self.inner.conn.id
    }

    /// How many times an item is delivered before, if its process died each time, it fails
    /// with [`TaskError::Poisoned`].
    pub fn max_deliver(&self) -> u64 {
        self.inner.conn.settings.max_deliver
    }

    fn call(&self) -> NatsCall<'_, Plain, Value> {
        NatsCall {
            pool: self,
            timeout: None,
            chunk_size: None,
            progress: None,
            sent_as: None,
            mode: PhantomData,
        }
    }

    /// Unpacks tuple items into the task's arguments: `pool.star().map(add, [(1, 2)])`.
    pub fn star(&self) -> NatsCall<'_, Star, Value> {
        self.call().star()
    }

    /// Tasks return `Result<T, E>`; an `Err` fails the item with its message.
    pub fn fallible(&self) -> NatsCall<'_, Plain, Fallible> {
        self.call().fallible()
    }

    /// Tasks build a process value; its whole lifecycle runs in a worker.
    pub fn processes(&self) -> NatsCall<'_, Plain, Processes> {
        self.call().processes()
    }

    /// One deadline for the whole call; see [`NatsCall::timeout`].
    pub fn timeout(&self, timeout: Duration) -> NatsCall<'_, Plain, Value> {
        self.call().timeout(timeout)
    }

    /// Sends items `size` at a time; see [`NatsCall::chunk_size`].
    pub fn chunk_size(&self, size: usize) -> NatsCall<'_, Plain, Value> {
        self.call().chunk_size(size)
    }

    /// Reports the call's progress to `callback`; see [`NatsCall::progress`].
    pub fn progress(
        &self,
        callback: impl Fn(Progress) + Send + Sync + 'static,
    ) -> NatsCall<'_, Plain, Value> {
        self.call().progress(callback)
    }

    /// Applies `task` to every item; results in input order. See [`NatsCall::map`].
    ///
    /// # Errors
    ///
    /// As for [`NatsCall::map`].
    pub fn map<T, I>(
        &self,
        task: T,
        items: impl IntoIterator<Item = I>,
    ) -> Result<Vec<T::Output>, PoolError>
    where
        T: TaskFn<Star, Value, (I,)>,
        I: Transferable,
    {
        self.call().map(task, items)
    }

    /// Like [`map`](Self::map), results in the order they arrive.
    ///
    /// # Errors
    ///
    /// As for [`NatsCall::map`].
    pub fn unordered_map<T, I>(
        &self,
        task: T,
        items: impl IntoIterator<Item = I>,
    ) -> Result<Vec<T::Output>, PoolError>
    where
        T: TaskFn<Star, Value, (I,)>,
        I: Transferable,
    {
        self.call().unordered_map(task, items)
    }

    /// A lazy iterator of results in input order; see [`NatsCall::imap`].
    pub fn imap<'a, T, I>(
        &self,
        task: T,
        items: impl IntoIterator<Item = I> + 'a,
    ) -> NatsIter<'a, T::Output>
    where
        T: TaskFn<Star, Value, (I,)>,
        I: Transferable,
    {
        self.call().imap(task, items)
    }

    /// A lazy iterator of results in the order they arrive.
    pub fn unordered_imap<'a, T, I>(
        &self,
        task: T,
        items: impl IntoIterator<Item = I> + 'a,
    ) -> NatsIter<'a, T::Output>
    where
        T: TaskFn<Star, Value, (I,)>,
        I: Transferable,
    {
        self.call().unordered_imap(task, items)
    }
}
