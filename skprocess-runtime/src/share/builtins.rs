//! Ready-made shared objects: a map, a list, a bounded queue with task tracking, a semaphore, a
//! barrier, a results collector and a progress tracker.
//!
//! They are ordinary `#[shared]` types (the same macro users put on their own), so each
//! method call is one atomic step on the coordinator. The blocking ones (the queue, the
//! semaphore, the barrier) take `&self` and wait on a condition of their own, so waiting holds
//! no lock that other calls need; while they wait they watch the caller, and a caller that
//! died is given nothing: an item stays in the queue, a permit stays free. The permits a
//! client holds when its connection ends are given back.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::coordinator::{caller, caller_alive, on_client_gone};
use super::shared;
use crate::Transferable;
use crate::sync::lock;

/// How often a blocked call looks at whether its caller is still there.
const WATCH: Duration = Duration::from_millis(100);

/// Waits on `cond` until `ready` holds (then returns the guard), `timeout` passes or the caller
/// is gone (then the reason).
fn wait_for<'a, T>(
    cond: &Condvar,
    mut guard: MutexGuard<'a, T>,
    timeout: Option<Duration>,
    mut ready: impl FnMut(&mut T) -> bool,
) -> Result<MutexGuard<'a, T>, Waited> {
    let deadline = timeout.and_then(crate::sync::deadline_in);
    loop {
        if ready(&mut guard) {
            return if caller_alive() {
                Ok(guard)
            } else {
                Err(Waited::CallerGone)
            };
        }
        let now = Instant::now();
        let nap = match deadline {
            Some(deadline) if now >= deadline => return Err(Waited::Timeout),
            Some(deadline) => (deadline - now).min(WATCH),
            None => WATCH,
        };
        guard = cond
            .wait_timeout(guard, nap)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        if !caller_alive() {
            return Err(Waited::CallerGone);
        }
    }
}

enum Waited {
    Timeout,
    CallerGone,
}

// ----- map ------------------------------------------------------------------------------------

/// A map kept by a Share. Every method is one atomic step: `update` inserts a whole batch at
/// once, `get_many` reads several keys from one state.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize, V: Serialize",
    deserialize = "K: DeserializeOwned + Eq + Hash, V: DeserializeOwned"
))]
pub struct SharedMap<K, V> {
    map: HashMap<K, V>,
}

#[shared(crate = "crate")]
impl<K, V> SharedMap<K, V>
where
    K: Transferable + Sync + Eq + Hash + Clone,
    V: Transferable + Sync + Clone,
{
    /// An empty map.
    pub fn new() -> Self {
        SharedMap {
            map: HashMap::new(),
        }
    }

    /// Sets `key` to `value`; the previous value.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.map.insert(key, value)
    }

    /// The value of `key`.
    pub fn get(&self, key: K) -> Option<V> {
        self.map.get(&key).cloned()
    }

    /// Removes `key`; its value.
    pub fn remove(&mut self, key: K) -> Option<V> {
        self.map.remove(&key)
    }

    /// Whether `key` is in the map.
    pub fn contains_key(&self, key: K) -> bool {
        self.map.contains_key(&key)
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Inserts every entry, in one step.
    pub fn update(&mut self, entries: Vec<(K, V)>) {
        self.map.extend(entries);
    }

    /// The values of several keys, read in one step.
    pub fn get_many(&self, keys: Vec<K>) -> Vec<Option<V>> {
        keys.iter().map(|key| self.map.get(key).cloned()).collect()
    }

    /// The keys (a snapshot, in no particular order).
    pub fn keys(&self) -> Vec<K> {
        self.map.keys().cloned().collect()
    }

    /// The entries (a snapshot, in no particular order).
    pub fn items(&self) -> Vec<(K, V)> {
        self.map
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.map.clear();
    }
}

// ----- list -----------------------------------------------------------------------------------

/// A list kept by a Share.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SharedList<T> {
    items: Vec<T>,
}

#[shared(crate = "crate")]
impl<T: Transferable + Sync + Clone> SharedList<T> {
    /// An empty list.
    pub fn new() -> Self {
        SharedList { items: Vec::new() }
    }

    /// Appends an item; the new length.
    pub fn push(&mut self, item: T) -> usize {
        self.items.push(item);
        self.items.len()
    }

    /// Appends every item, in one step; the new length.
    pub fn extend(&mut self, items: Vec<T>) -> usize {
        self.items.extend(items);
        self.items.len()
    }

    /// Removes the last item.
    pub fn pop(&mut self) -> Option<T> {
        self.items.pop()
    }

    /// The item at `index`.
    pub fn get(&self, index: usize) -> Option<T> {
        self.items.get(index).cloned()
    }

    /// Replaces the item at `index`; the previous one, or `None` (and no change) if `index` is
    /// out of range.
    pub fn set(&mut self, index: usize, item: T) -> Option<T> {
        self.items
            .get_mut(index)
            .map(|slot| std::mem::replace(slot, item))
    }

    /// Removes the item at `index`, shifting the rest.
    pub fn remove(&mut self, index: usize) -> Option<T> {
        (index < self.items.len()).then(|| self.items.remove(index))
    }

    /// The number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// A copy of the items.
    pub fn to_vec(&self) -> Vec<T> {
        self.items.clone()
    }

    /// Takes every item out, in one step.
    pub fn drain(&mut self) -> Vec<T> {
        std::mem::take(&mut self.items)
    }

    /// Removes every item.
    pub fn clear(&mut self) {
        self.items.clear();
    }
}

// ----- queue ----------------------------------------------------------------------------------

/// Why a [`Queue`], [`Semaphore`] or [`Barrier`] call gave nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum WaitError {
    /// The timeout passed (a full queue for `put`, an empty one for `get`, no free permit, not
    /// all parties at the barrier).
    #[error("timed out")]
    Timeout,
    /// `task_done` was called more times than items were taken, or `release` without a
    /// permit held.
    #[error("{0}")]
    Misuse(String),
    /// The calling process went away while it waited (seen by the coordinator only).
    #[error("the caller is gone")]
    CallerGone,
}

impl From<Waited> for WaitError {
    fn from(waited: Waited) -> WaitError {
        match waited {
            Waited::Timeout => WaitError::Timeout,
            Waited::CallerGone => WaitError::CallerGone,
        }
    }
}

struct QueueState<T> {
    items: VecDeque<T>,
    /// Items put and not yet marked done (Python's `JoinableQueue`).
    unfinished: usize,
}

/// A bounded multi-producer, multi-consumer queue kept by a Share, with the task tracking of
/// Python's `JoinableQueue`: every `get` is matched by a `task_done`, and `join` waits until
/// all are.
///
/// Timeouts: `None` waits as long as it takes (a stop of the Share, or the end of the caller,
/// still ends the wait); `Some(Duration::ZERO)` does not wait.
pub struct Queue<T> {
    capacity: usize,
    state: Mutex<QueueState<T>>,
    /// Signalled on every change.
    changed: Condvar,
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("Queue")
            .field("capacity", &self.capacity)
            .field("len", &state.items.len())
            .field("unfinished", &state.unfinished)
            .finish()
    }
}

impl<T: Serialize> Serialize for Queue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let state = lock(&self.state);
        (self.capacity, &state.items, state.unfinished).serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Queue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Queue<T>, D::Error> {
        let (capacity, items, unfinished): (usize, VecDeque<T>, usize) =
            Deserialize::deserialize(deserializer)?;
        Ok(Queue {
            capacity: capacity.max(1),
            state: Mutex::new(QueueState { items, unfinished }),
            changed: Condvar::new(),
        })
    }
}

#[shared(crate = "crate")]
impl<T: Transferable + Sync> Queue<T> {
    /// A queue of at most `capacity` items (at least 1).
    pub fn new(capacity: usize) -> Self {
        Queue {
            capacity: capacity.max(1),
            state: Mutex::new(QueueState {
                items: VecDeque::new(),
                unfinished: 0,
            }),
            changed: Condvar::new(),
        }
    }

    /// Adds `item` at the back, waiting up to `timeout` for room.
    pub fn put(&self, item: T, timeout: Option<Duration>) -> Result<(), WaitError> {
        let guard = lock(&self.state);
        let capacity = self.capacity;
        let mut state = wait_for(&self.changed, guard, timeout, |s| s.items.len() < capacity)?;
        state.items.push_back(item);
        state.unfinished += 1;
        self.changed.notify_all();
        Ok(())
    }

    /// Takes the item at the front, waiting up to `timeout` for one.
    pub fn get(&self, timeout: Option<Duration>) -> Result<T, WaitError> {
        let guard = lock(&self.state);
        let mut state = wait_for(&self.changed, guard, timeout, |s| !s.items.is_empty())?;
        let item = state.items.pop_front().expect("waited for an item");
        self.changed.notify_all();
        Ok(item)
    }

    /// Marks one item taken with `get` as processed.
    pub fn task_done(&self) -> Result<(), WaitError> {
        let mut state = lock(&self.state);
        if state.unfinished <= state.items.len() {
            return Err(WaitError::Misuse(
                "task_done() called more times than items were taken".into(),
            ));
        }
        state.unfinished -= 1;
        self.changed.notify_all();
        Ok(())
    }

    /// Waits up to `timeout` until every item put has been marked done.
    pub fn join(&self, timeout: Option<Duration>) -> Result<(), WaitError> {
        let guard = lock(&self.state);
        drop(wait_for(&self.changed, guard, timeout, |s| {
            s.unfinished == 0
        })?);
        Ok(())
    }

    /// The number of items waiting.
    pub fn len(&self) -> usize {
        lock(&self.state).items.len()
    }

    /// Whether no item is waiting.
    pub fn is_empty(&self) -> bool {
        lock(&self.state).items.is_empty()
    }

    /// The most items the queue holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Items put and not yet marked done.
    pub fn unfinished(&self) -> usize {
        lock(&self.state).unfinished
    }
}

// ----- semaphore ------------------------------------------------------------------------------

#[derive(Default)]
struct Permits {
    free: usize,
    /// Permits held, by caller (0: the owner process).
    held: HashMap<u64, usize>,
}

struct SemaphoreInner {
    permits: Mutex<Permits>,
    changed: Condvar,
}

/// A counting semaphore kept by a Share. The coordinator knows which process holds each
/// permit: when a client's connection ends, its permits are given back, so a client that dies
/// holding one blocks nobody.
pub struct Semaphore {
    inner: Arc<SemaphoreInner>,
    /// Keeps the "client gone" hook registered for as long as the semaphore lives.
    _hook: Arc<dyn Fn(u64) + Send + Sync>,
}

impl std::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semaphore")
            .field("free", &lock(&self.inner.permits).free)
            .finish()
    }
}

impl Serialize for Semaphore {
    /// Encodes the free permits: a copy holds no permits of anyone.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        lock(&self.inner.permits).free.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Semaphore {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Semaphore, D::Error> {
        Ok(Semaphore::new(usize::deserialize(deserializer)?))
    }
}

#[shared(crate = "crate")]
impl Semaphore {
    /// A semaphore with `permits` free permits.
    pub fn new(permits: usize) -> Self {
        let inner = Arc::new(SemaphoreInner {
            permits: Mutex::new(Permits {
                free: permits,
                held: HashMap::new(),
            }),
            changed: Condvar::new(),
        });
        let weak = Arc::downgrade(&inner);
        let hook: Arc<dyn Fn(u64) + Send + Sync> = Arc::new(move |client| {
            if let Some(inner) = weak.upgrade() {
                let mut permits = lock(&inner.permits);
                if let Some(count) = permits.held.remove(&client) {
                    permits.free += count;
                    inner.changed.notify_all();
                }
            }
        });
        on_client_gone(&hook);
        Semaphore { inner, _hook: hook }
    }

    /// Takes a permit, waiting up to `timeout` for one.
    pub fn acquire(&self, timeout: Option<Duration>) -> Result<(), WaitError> {
        let guard = lock(&self.inner.permits);
        let mut permits = wait_for(&self.inner.changed, guard, timeout, |p| p.free > 0)?;
        permits.free -= 1;
        *permits.held.entry(caller()).or_default() += 1;
        Ok(())
    }

    /// Gives back a permit this process holds.
    pub fn release(&self) -> Result<(), WaitError> {
        let mut permits = lock(&self.inner.permits);
        let who = caller();
        match permits.held.get_mut(&who) {
            Some(count) if *count > 0 => {
                *count -= 1;
                if *count == 0 {
                    permits.held.remove(&who);
                }
                permits.free += 1;
                self.inner.changed.notify_all();
                Ok(())
            }
            _ => Err(WaitError::Misuse(
                "release() without a permit held by this process".into(),
            )),
        }
    }

    /// The free permits.
    pub fn available(&self) -> usize {
        lock(&self.inner.permits).free
    }
}

// ----- barrier --------------------------------------------------------------------------------

struct BarrierState {
    arrived: usize,
    generation: u64,
}

/// A barrier kept by a Share: `wait` returns once `parties` callers are waiting.
pub struct Barrier {
    parties: usize,
    state: Mutex<BarrierState>,
    changed: Condvar,
}

impl std::fmt::Debug for Barrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties)
            .field("arrived", &lock(&self.state).arrived)
            .finish()
    }
}

impl Serialize for Barrier {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.parties.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Barrier {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Barrier, D::Error> {
        Ok(Barrier::new(usize::deserialize(deserializer)?))
    }
}

#[shared(crate = "crate")]
impl Barrier {
    /// A barrier for `parties` callers (at least 1).
    pub fn new(parties: usize) -> Self {
        Barrier {
            parties: parties.max(1),
            state: Mutex::new(BarrierState {
                arrived: 0,
                generation: 0,
            }),
            changed: Condvar::new(),
        }
    }

    /// Waits up to `timeout` for all parties; `Ok(true)` for the one caller that completed
    /// the group. A caller that times out (or dies) leaves the group, which stays usable.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool, WaitError> {
        let mut state = lock(&self.state);
        let generation = state.generation;
        state.arrived += 1;
        if state.arrived == self.parties {
            state.arrived = 0;
            state.generation += 1;
            self.changed.notify_all();
            return Ok(true);
        }
        match wait_for(&self.changed, state, timeout, |s| {
            s.generation != generation
        }) {
            Ok(_) => Ok(false),
            Err(waited) => {
                let mut state = lock(&self.state);
                if state.generation == generation {
                    state.arrived -= 1;
                    Err(waited.into())
                } else {
                    Ok(false) // the group completed just as the wait ended
                }
            }
        }
    }

    /// The number of parties.
    pub fn parties(&self) -> usize {
        self.parties
    }
}

// ----- results and progress -------------------------------------------------------------------

/// One slot per worker, filled as they finish (the design notes' `SharedResults`).
#[derive(Debug, Serialize, Deserialize)]
pub struct SharedResults<T> {
    slots: Vec<Option<T>>,
}

#[shared(crate = "crate")]
impl<T: Transferable + Sync + Clone> SharedResults<T> {
    /// `slots` empty slots.
    pub fn new(slots: usize) -> Self {
        SharedResults {
            slots: (0..slots).map(|_| None).collect(),
        }
    }

    /// Stores `value` in slot `slot`; an error for a slot out of range.
    pub fn set(&mut self, slot: usize, value: T) -> Result<(), String> {
        let len = self.slots.len();
        let place = self
            .slots
            .get_mut(slot)
            .ok_or_else(|| format!("slot {slot} is out of range (0..{len})"))?;
        *place = Some(value);
        Ok(())
    }

    /// The value in slot `slot`.
    pub fn get(&self, slot: usize) -> Option<T> {
        self.slots.get(slot).cloned().flatten()
    }

    /// Every slot in order (`None` where nothing was stored).
    pub fn collect(&self) -> Vec<Option<T>> {
        self.slots.clone()
    }

    /// How many slots hold a value.
    pub fn filled(&self) -> usize {
        self.slots.iter().filter(|slot| slot.is_some()).count()
    }
}

/// Progress across workers towards a total (the design notes' `SharedProgress`).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Progress {
    total: u64,
    completed: u64,
}

#[shared(crate = "crate")]
impl Progress {
    /// No progress yet towards `total`.
    pub fn new(total: u64) -> Self {
        Progress {
            total,
            completed: 0,
        }
    }

    /// Marks `amount` more as completed; the number completed.
    pub fn increment(&mut self, amount: u64) -> u64 {
        self.completed = self.completed.saturating_add(amount);
        self.completed
    }

    /// The number completed.
    pub fn completed(&self) -> u64 {
        self.completed
    }

    /// The total.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The percentage completed (100 for a total of 0).
    pub fn percent(&self) -> f64 {
        if self.total == 0 {
            100.0
        } else {
            self.completed as f64 * 100.0 / self.total as f64
        }
    }

    /// Whether the total is reached.
    pub fn is_complete(&self) -> bool {
        self.completed >= self.total
    }
}
