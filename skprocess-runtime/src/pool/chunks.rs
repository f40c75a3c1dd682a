//! Cutting a call's items into chunks, and running a whole call to its collected results
//! (`map`, `unordered_map` and the deferred forms).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::{Payload, PoolError, TaskError};
use super::progress::Tracker;
use super::scheduler::{CallSink, Chunk, Delivery, Next, Shared, decode_results};
use super::task::TaskCode;
use super::{CallOptions, Pool, TaskFn};
use crate::buffer::Outgoing;
use crate::lifecycle::Transferable;
use crate::wire::protocol::task_payload_len;

/// The most item bytes in one chunk (and never more than the frame limit allows): big items
/// travel in several chunks, so that they spread over the workers and no frame gets huge.
pub(super) const CHUNK_BYTES: usize = 4 << 20;

/// How many items of `total` go in one chunk of a `map`: a quarter of a fair share per worker,
/// so that faster workers can take more chunks.
pub(super) fn map_chunk_size(total: usize, workers: usize) -> usize {
    total.div_ceil(workers * 4).max(1)
}

/// Encodes one item at the end of `bytes`. Returns its length, or its error (nothing appended):
/// it cannot be encoded, or it is too large for any frame of `limit` bytes.
fn encode_item<I: Transferable>(
    bytes: &mut Vec<u8>,
    item: &I,
    limit: u32,
) -> Result<u32, TaskError> {
    let mark = bytes.len();
    let encoded = crate::wire::codec::encode_into(bytes, item).map_err(TaskError::Encode);
    let len = bytes.len() - mark;
    let fits = task_payload_len(1, len) <= limit as usize;
    match encoded {
        Ok(()) if fits => Ok(u32::try_from(len).expect("below the frame limit")),
        Ok(()) => {
            bytes.truncate(mark);
            Err(TaskError::TooLarge {
                what: Payload::Input,
                len: len as u64,
                limit: u64::from(limit),
            })
        }
        Err(error) => {
            bytes.truncate(mark);
            Err(error)
        }
    }
}

/// What became of an item handed to [`ChunkBuilder::push`].
pub(super) enum Push {
    /// It is in the chunk.
    Added,
    /// It does not fit with the items already in the chunk: take the chunk, then push it
    /// again (nothing of it was kept).
    Full,
    /// It cannot be sent; the chunk must be taken before the next item (a chunk is a run of
    /// consecutive items).
    Failed(TaskError),
}

/// Encodes consecutive items of one call into a chunk, bounded by [`CHUNK_BYTES`] and the
/// frame limit. The buffers in the items share the chunk's list of descriptors.
pub(super) struct ChunkBuilder {
    sink: Arc<CallSink>,
    code: TaskCode,
    limit: u32,
    max_bytes: usize,
    first: usize,
    lengths: Vec<u32>,
    bytes: Vec<u8>,
    outgoing: Outgoing,
    /// The last item's length and the largest chunk so far: items of a call tend to be alike.
    last: usize,
    largest: usize,
}

impl ChunkBuilder {
    pub(super) fn new(sink: Arc<CallSink>, code: TaskCode, limit: u32) -> ChunkBuilder {
        ChunkBuilder {
            sink,
            code,
            limit,
            max_bytes: CHUNK_BYTES.min(limit as usize),
            first: 0,
            lengths: Vec::new(),
            bytes: Vec::new(),
            outgoing: Outgoing::default(),
            last: 0,
            largest: 0,
        }
    }

    /// How many items the chunk holds.
    pub(super) fn len(&self) -> usize {
        self.lengths.len()
    }

    /// Encodes item `index` (the one after the chunk's last item) into the chunk.
    pub(super) fn push<I: Transferable>(&mut self, index: usize, item: &I) -> Push {
        debug_assert!(self.lengths.is_empty() || index == self.first + self.lengths.len());
        // When one more item like the last would not fit, the chunk is full now: this item is
        // then encoded once, into the next chunk, rather than encoded, found too large and
        // encoded again. A new chunk's buffer starts as large as the largest so far (within the
        // bound), so that large items are not copied again each time it grows.
        if !self.lengths.is_empty()
            && task_payload_len(self.lengths.len() + 1, self.bytes.len() + self.last)
                > self.max_bytes
        {
            return Push::Full;
        }
        if self.bytes.is_empty() {
            self.bytes.reserve(self.largest.min(self.max_bytes));
        }
        let (bytes, limit) = (&mut self.bytes, self.limit);
        let (mark, fds) = (bytes.len(), self.outgoing.mark());
        let encoded =
            crate::buffer::collecting_into(&mut self.outgoing, || encode_item(bytes, item, limit));
        match encoded {
            Err(error) => {
                self.outgoing.truncate(fds);
                Push::Failed(error)
            }
            Ok(_)
                if !self.lengths.is_empty()
                    && task_payload_len(self.lengths.len() + 1, self.bytes.len())
                        > self.max_bytes =>
            {
                // It goes in the next chunk, encoded again there (its buffers' indices are
                // that chunk's).
                self.bytes.truncate(mark);
                self.outgoing.truncate(fds);
                Push::Full
            }
            Ok(len) => {
                if self.lengths.is_empty() {
                    self.first = index;
                }
                self.lengths.push(len);
                self.last = len as usize;
                self.largest = self.largest.max(self.bytes.len());
                Push::Added
            }
        }
    }

    /// The chunk so far, if it holds any item; the builder starts a new one.
    pub(super) fn take(&mut self) -> Option<Chunk> {
        if self.lengths.is_empty() {
            return None;
        }
        Some(Chunk::new(
            Arc::clone(&self.sink),
            self.code,
            self.first,
            std::mem::take(&mut self.lengths),
            std::mem::take(&mut self.bytes),
            std::mem::take(&mut self.outgoing).fds,
        ))
    }
}

/// Encodes items into chunks of at most `per_chunk` items, handing each chunk to `emit` as
/// soon as it is full (so workers start on the first chunk while the rest are encoded). Items
/// that cannot be sent are returned as failures.
fn encode_chunks<I: Transferable>(
    builder: &mut ChunkBuilder,
    items: Vec<I>,
    per_chunk: usize,
    emit: &mut dyn FnMut(Chunk) -> Result<(), PoolError>,
) -> Result<Vec<(usize, TaskError)>, PoolError> {
    let mut failures = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        loop {
            match builder.push(index, &item) {
                Push::Added => {
                    if builder.len() >= per_chunk
                        && let Some(chunk) = builder.take()
                    {
                        emit(chunk)?;
                    }
                }
                Push::Full => {
                    if let Some(chunk) = builder.take() {
                        emit(chunk)?;
                    }
                    continue;
                }
                Push::Failed(error) => {
                    if let Some(chunk) = builder.take() {
                        emit(chunk)?;
                    }
                    failures.push((index, error));
                }
            }
            break;
        }
    }
    if let Some(chunk) = builder.take() {
        emit(chunk)?;
    }
    Ok(failures)
}

/// Runs a whole call and collects its results (`map`, `unordered_map`, and the deferred forms).
pub(super) fn run_collect<T, A, K, I>(
    pool: &Pool,
    code: Result<TaskCode, PoolError>,
    items: Vec<I>,
    options: &CallOptions,
    ordered: bool,
) -> Result<Vec<T::Output>, PoolError>
where
    T: TaskFn<A, K, I>,
    I: Transferable,
{
    let deadline = options.timeout.and_then(|t| Instant::now().checked_add(t));
    let code = code?;
    let shared: &Arc<Shared> = &pool.inner.shared;
    let total = items.len();
    let mut progress = Tracker::new(options.progress.clone(), Some(total));
    progress.report();
    let sink = Arc::new(CallSink::default());
    // A process task may leave a timed-out section's thread behind, after which its worker
    // retires: one item per chunk, so that it retires right after that item.
    let per_chunk = if T::ONE_PER_CHUNK {
        1
    } else {
        options
            .chunk_size
            .unwrap_or_else(|| map_chunk_size(total, pool.workers()))
            // No chunk larger than a worker may run before it retires.
            .min(shared.settings().max_tasks.unwrap_or(usize::MAX))
    };
    let mut builder = ChunkBuilder::new(Arc::clone(&sink), code, shared.frame_limit());
    let submitted = encode_chunks(&mut builder, items, per_chunk, &mut |chunk| {
        shared.submit(vec![chunk])
    });
    let failures = match submitted {
        Ok(failures) => failures,
        Err(error) => {
            shared.cancel(&sink, true);
            return Err(error);
        }
    };

    // Values go straight to their place; errors (rare) to a list of their own, so that the
    // large error type does not inflate every slot.
    let mut slots: Vec<Option<T::Output>> = Vec::new();
    let mut arrived: Vec<T::Output> = Vec::new();
    let mut errors: Vec<(usize, TaskError)> = failures;
    if ordered {
        slots.resize_with(total, || None);
    }
    if !errors.is_empty() {
        progress.count(errors.len(), errors.len());
        progress.report();
    }
    let mut remaining = total - errors.len();
    while remaining > 0 {
        match sink.next(deadline) {
            Next::Delivery(Delivery::Done {
                first_index,
                count,
                bytes,
                start,
                ..
            }) => {
                let mut failed = 0;
                decode_results::<T::Output>(
                    &bytes[start..],
                    count,
                    &mut |i, result| match result {
                        Ok(value) if ordered => slots[first_index + i] = Some(value),
                        Ok(value) => arrived.push(value),
                        Err(error) => {
                            failed += 1;
                            errors.push((first_index + i, error));
                        }
                    },
                );
                remaining -= count;
                progress.count(count, failed);
                progress.report();
            }
            Next::Delivery(Delivery::Crashed { index, pid, exit }) => {
                errors.push((index, TaskError::Crashed { pid, exit }));
                remaining -= 1;
                progress.count(1, 1);
                progress.report();
            }
            Next::TimedOut => {
                shared.cancel(&sink, true);
                return Err(PoolError::Timeout {
                    timeout: options.timeout.unwrap_or(Duration::ZERO),
                    completed: progress.done(),
                });
            }
            Next::Interrupted => {
                return Err(PoolError::Interrupted {
                    completed: progress.done(),
                });
            }
            Next::Failed(error) => {
                shared.cancel(&sink, false);
                return Err(error);
            }
        }
    }
    // The failed item with the lowest index, if any, is the call's error.
    if let Some(position) = errors
        .iter()
        .enumerate()
        .min_by_key(|(_, (index, _))| *index)
        .map(|(position, _)| position)
    {
        let (index, error) = errors.swap_remove(position);
        return Err(PoolError::Task { index, error });
    }
    if ordered {
        Ok(slots
            .into_iter()
            .map(|slot| slot.expect("every item has a result"))
            .collect())
    } else {
        Ok(arrived)
    }
}
