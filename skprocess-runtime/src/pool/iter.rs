//! `imap` and `unordered_imap`: lazy results, a bounded window of items in flight, and chunks
//! sized to how long items take.
//!
//! Without [`chunk_size`](super::PoolCall::chunk_size), the chunk size adapts. The first chunks
//! hold one item each. Every `Results` frame says how long the worker took for its items; the
//! iterator keeps an estimate of the time per item (it rises at once when items get slower and
//! falls gradually) and sizes the next chunks to take about [`TARGET_CHUNK`] each, growing at
//! most twofold per report, up to [`MAX_CHUNK`] items. Quick items thus travel in large chunks,
//! at nearly `map`'s cost per item, while items that take longer than the target go one per
//! chunk, so each result is yielded as soon as its item is done.
//!
//! Memory stays bounded on endless input: the items in flight plus the results held back (behind
//! a slow item, for the ordered form) never exceed [`DEPTH`] × 2 chunks per worker, and an
//! adaptive chunk holds no more items than fit in [`CHUNK_BYTES`] at the size items had so far
//! (so with 2 workers, at most 32,768 items, and about 32 MiB of inputs, are in flight).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::chunks::{CHUNK_BYTES, ChunkBuilder, Push};
use super::error::{PoolError, TaskError};
use super::progress::Tracker;
use super::scheduler::{CallSink, Chunk, DEPTH, Delivery, Next, decode_results};
use super::task::TaskCode;
use super::{CallOptions, Pool, TaskFn};
use crate::lifecycle::Transferable;

/// How long a chunk of an adaptive `imap` should take a worker.
const TARGET_CHUNK: Duration = Duration::from_millis(2);

/// The most items in one chunk of an adaptive `imap`.
const MAX_CHUNK: usize = 4096;

/// What one turn of the input gives: a chunk of consecutive items (if any could be encoded),
/// the items that cannot be sent, and whether the input ran out.
struct Fed {
    chunk: Option<Chunk>,
    failures: Vec<(usize, TaskError)>,
    exhausted: bool,
}

/// Takes up to the given number of items from the input and encodes them.
type Feed<'a> = dyn FnMut(usize) -> Fed + 'a;

/// Chooses how many items go in the next chunk.
#[derive(Debug)]
enum Sizer {
    /// Set by [`chunk_size`](super::PoolCall::chunk_size).
    Fixed(usize),
    /// Follows the time per item the workers report.
    Adaptive {
        size: usize,
        /// The estimated nanoseconds per item, once a report arrived.
        per_item: Option<f64>,
        /// The most items of the size seen so far that fit in [`CHUNK_BYTES`], so that the
        /// window's items never take more than that per chunk.
        byte_cap: usize,
    },
}

impl Sizer {
    fn size(&self) -> usize {
        match *self {
            Sizer::Fixed(size) => size,
            Sizer::Adaptive { size, byte_cap, .. } => size.min(byte_cap),
        }
    }

    /// A chunk of `count` items took `bytes` encoded.
    fn fed(&mut self, count: usize, bytes: usize) {
        if let Sizer::Adaptive { byte_cap, .. } = self {
            let per_item = bytes.div_ceil(count.max(1)).max(1);
            *byte_cap = (CHUNK_BYTES / per_item).clamp(1, MAX_CHUNK);
        }
    }

    /// A worker took `nanos` for `count` items.
    fn observe(&mut self, count: usize, nanos: u64) {
        let Sizer::Adaptive { size, per_item, .. } = self else {
            return;
        };
        if count == 0 {
            return;
        }
        let observed = nanos as f64 / count as f64;
        let estimate = match *per_item {
            // Slower items: believe it at once, so that slow items stop being batched.
            Some(previous) if observed < previous => 0.75 * previous + 0.25 * observed,
            _ => observed,
        };
        *per_item = Some(estimate);
        let ideal = TARGET_CHUNK.as_nanos() as f64 / estimate.max(1.0);
        let ideal = if ideal >= MAX_CHUNK as f64 {
            MAX_CHUNK
        } else {
            ideal as usize
        };
        *size = ideal.min(size.saturating_mul(2)).clamp(1, MAX_CHUNK);
    }
}

/// Lazy results of `imap` or `unordered_imap`. Each item is `Ok(value)` or the item's error;
/// after a deadline or a pool failure, one `Err` and then the end. Dropping the iterator early
/// cancels what it had in flight.
pub struct PoolIter<'a, O> {
    pool: Pool,
    sink: Arc<CallSink>,
    feed: Box<Feed<'a>>,
    /// Why the call cannot run at all (its task's code cannot travel), until reported.
    refused: Option<PoolError>,
    ordered: bool,
    sizer: Sizer,
    in_flight: usize,
    exhausted: bool,
    finished: bool,
    /// Items taken from the input so far.
    taken: usize,
    /// Ordered: the index of the next result to yield, and the results after it by position
    /// (`waiting[i]` is item `next_index + i`), `held` of them present.
    next_index: usize,
    waiting: VecDeque<Option<Result<O, TaskError>>>,
    held: usize,
    /// Unordered: results in the order they arrived.
    ready: VecDeque<(usize, Result<O, TaskError>)>,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    progress: Tracker,
    reported_start: bool,
    /// No chunk larger than a worker may run before it retires (`max_tasks_per_worker`).
    task_cap: usize,
}

impl<O> std::fmt::Debug for PoolIter<'_, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolIter")
            .field("ordered", &self.ordered)
            .field("in_flight", &self.in_flight)
            .field("chunk_size", &self.sizer.size())
            .field("completed", &self.progress.done())
            .finish_non_exhaustive()
    }
}

impl<'a, O: Transferable> PoolIter<'a, O> {
    pub(super) fn new<T, A, K, I>(
        pool: &Pool,
        code: Result<TaskCode, PoolError>,
        items: impl IntoIterator<Item = I> + 'a,
        options: &CallOptions,
        ordered: bool,
    ) -> PoolIter<'a, O>
    where
        T: TaskFn<A, K, I, Output = O>,
        I: Transferable,
    {
        let sink = Arc::new(CallSink::default());
        let items = items.into_iter();
        let total = match items.size_hint() {
            (lower, Some(upper)) if lower == upper => Some(lower),
            _ => None,
        };
        let (feed, refused): (Box<Feed<'a>>, _) = match code {
            Ok(code) => {
                let builder =
                    ChunkBuilder::new(Arc::clone(&sink), code, pool.inner.shared.frame_limit());
                (Box::new(feeder(items, builder)), None)
            }
            Err(error) => (
                Box::new(|_| Fed {
                    chunk: None,
                    failures: Vec::new(),
                    exhausted: true,
                }),
                Some(error),
            ),
        };
        let sizer = match options.chunk_size {
            _ if T::ONE_PER_CHUNK => Sizer::Fixed(1),
            Some(size) => Sizer::Fixed(size.max(1)),
            None => Sizer::Adaptive {
                size: 1,
                per_item: None,
                byte_cap: MAX_CHUNK,
            },
        };
        PoolIter {
            pool: pool.clone(),
            sink,
            feed,
            refused,
            ordered,
            sizer,
            in_flight: 0,
            exhausted: false,
            finished: false,
            taken: 0,
            next_index: 0,
            waiting: VecDeque::new(),
            held: 0,
            ready: VecDeque::new(),
            timeout: options.timeout,
            deadline: options.timeout.and_then(|t| Instant::now().checked_add(t)),
            progress: Tracker::new(options.progress.clone(), total),
            reported_start: false,
            task_cap: pool.inner.shared.settings().max_tasks.unwrap_or(usize::MAX),
        }
    }

    fn push(&mut self, index: usize, result: Result<O, TaskError>) {
        if self.ordered {
            let position = index - self.next_index;
            if position >= self.waiting.len() {
                self.waiting.resize_with(position + 1, || None);
            }
            self.waiting[position] = Some(result);
            self.held += 1;
        } else {
            self.ready.push_back((index, result));
        }
    }

    /// Items in flight plus results not yet yielded may take this many items.
    fn window(&self) -> usize {
        self.pool.workers() * DEPTH * 2 * self.sizer.size()
    }

    fn top_up(&mut self) -> Result<(), PoolError> {
        if let Some(error) = self.refused.take() {
            return Err(error);
        }
        if !self.reported_start {
            self.reported_start = true;
            self.progress.report();
        }
        while !self.exhausted {
            let size = self.sizer.size().min(self.task_cap);
            let used = self.in_flight + self.held + self.ready.len();
            let room = self.window().saturating_sub(used);
            // Whole chunks only, unless nothing is in flight.
            if room < size && self.in_flight > 0 {
                break;
            }
            let fed = (self.feed)(size.min(room).max(1));
            let failed = fed.failures.len();
            for (index, error) in fed.failures {
                self.push(index, Err(error));
            }
            self.taken += failed;
            if failed > 0 {
                self.progress.count(failed, failed);
            }
            if let Some(chunk) = fed.chunk {
                let count = chunk.count();
                self.sizer.fed(count, chunk.bytes());
                self.pool.inner.shared.submit(vec![chunk])?;
                self.in_flight += count;
                self.taken += count;
            }
            if fed.exhausted {
                self.exhausted = true;
                self.progress.set_total(self.taken);
            }
            if failed > 0 || fed.exhausted {
                self.progress.report();
            }
        }
        Ok(())
    }

    fn take_ready(&mut self) -> Option<(usize, Result<O, TaskError>)> {
        if self.ordered {
            if !matches!(self.waiting.front(), Some(Some(_))) {
                return None;
            }
            let result = self.waiting.pop_front().flatten()?;
            self.held -= 1;
            self.next_index += 1;
            Some((self.next_index - 1, result))
        } else {
            self.ready.pop_front()
        }
    }

    fn end(&mut self, error: PoolError) -> Option<Result<O, PoolError>> {
        self.finished = true;
        Some(Err(error))
    }
}

/// The input's feed: takes items and encodes them into one chunk of at most the asked number
/// of items (an item that does not fit waits for the next turn).
fn feeder<'a, I: Transferable>(
    items: impl Iterator<Item = I> + 'a,
    mut builder: ChunkBuilder,
) -> impl FnMut(usize) -> Fed + 'a {
    let mut items = items.enumerate();
    let mut pending: Option<(usize, I)> = None;
    move |want: usize| {
        let mut failures = Vec::new();
        let mut exhausted = false;
        while builder.len() + failures.len() < want {
            let Some((index, item)) = pending.take().or_else(|| items.next()) else {
                exhausted = true;
                break;
            };
            match builder.push(index, &item) {
                Push::Added => {}
                Push::Full => {
                    pending = Some((index, item));
                    break;
                }
                Push::Failed(error) => {
                    failures.push((index, error));
                    if builder.len() > 0 {
                        // A chunk is a run of consecutive items: this one ends here.
                        break;
                    }
                }
            }
        }
        Fed {
            chunk: builder.take(),
            failures,
            exhausted,
        }
    }
}

/// Stops a call from another thread (a NATS worker whose call was cancelled): its queued items
/// are dropped, the processes running its items are killed and replaced, and the iterator
/// then yields [`PoolError::Interrupted`].
#[cfg(feature = "nats")]
#[derive(Clone)]
pub(crate) struct Stopper {
    pool: Pool,
    sink: Arc<CallSink>,
}

#[cfg(feature = "nats")]
impl Stopper {
    /// Stops the call.
    pub(crate) fn stop(&self) {
        self.sink.interrupt();
        self.pool.inner.shared.cancel(&self.sink, true);
    }
}

#[cfg(feature = "nats")]
impl<O> PoolIter<'_, O> {
    /// A handle that stops this call from another thread.
    pub(crate) fn stopper(&self) -> Stopper {
        Stopper {
            pool: self.pool.clone(),
            sink: Arc::clone(&self.sink),
        }
    }
}

impl<O: Transferable> Iterator for PoolIter<'_, O> {
    type Item = Result<O, PoolError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        loop {
            if let Err(error) = self.top_up() {
                return self.end(error);
            }
            if let Some((index, result)) = self.take_ready() {
                return Some(result.map_err(|error| PoolError::Task { index, error }));
            }
            if self.in_flight == 0 && self.exhausted {
                self.finished = true;
                return None;
            }
            match self.sink.next(self.deadline) {
                Next::Delivery(Delivery::Done {
                    first_index,
                    count,
                    bytes,
                    start,
                    nanos,
                }) => {
                    let mut failed = 0;
                    decode_results::<O>(&bytes[start..], count, &mut |i, result| {
                        failed += usize::from(result.is_err());
                        self.push(first_index + i, result);
                    });
                    self.in_flight -= count;
                    self.sizer.observe(count, nanos);
                    self.progress.count(count, failed);
                    self.progress.report();
                }
                Next::Delivery(Delivery::Crashed { index, pid, exit }) => {
                    self.push(index, Err(TaskError::Crashed { pid, exit }));
                    self.in_flight -= 1;
                    self.progress.count(1, 1);
                    self.progress.report();
                }
                Next::TimedOut => {
                    self.pool.inner.shared.cancel(&self.sink, true);
                    let error = PoolError::Timeout {
                        timeout: self.timeout.unwrap_or_default(),
                        completed: self.progress.done(),
                    };
                    return self.end(error);
                }
                Next::Interrupted => {
                    let completed = self.progress.done();
                    return self.end(PoolError::Interrupted { completed });
                }
                Next::Failed(error) => return self.end(error),
            }
        }
    }
}

impl<O> Drop for PoolIter<'_, O> {
    fn drop(&mut self) {
        if !self.finished || self.in_flight > 0 {
            self.pool.inner.shared.cancel(&self.sink, false);
        }
    }
}
