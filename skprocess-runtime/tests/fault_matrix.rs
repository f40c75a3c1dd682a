//! The fault matrix: every kind of process the library starts (the parent itself, a standalone
//! child, a pool worker, a client of the parent's Share) is hit by every fault a process meets in the wild (SIGKILL, SIGTERM,
//! SIGINT, SIGSTOP then SIGCONT), at a random moment of a fixed workload, and the outcome must
//! be the one [`MATRIX`] states: no hang, no lost or duplicated pool item, the right process
//! result, no orphan and no zombie.
//!
//! # How a cell runs
//!
//! The test re-executes this test binary as a helper parent (the ignored test
//! `fault_helper_role`), in a process group of its own so that no signal can reach the test's
//! group, and makes itself a subreaper, so that the helper's children, orphaned, are reparented
//! to the test process, which can watch them end and reap them. The helper runs a fixed workload
//! and reports every fact as one stdout line, `@fault <fact>`:
//!
//! - `process <pid>`: a standalone endless [`Ticker`] runs (it ran at least once); every run it
//!   tells the helper a message larger than a ring and sends the same on a pipe, so a fault to
//!   the child or the helper lands in the middle of a message most of the time; the helper
//!   reads both streams to their typed end on threads of their own and reports
//!   `streams <told> <torn> <piped> <torn>` (torn: not whole, or out of order; must be 0, and
//!   each stream must have delivered something);
//! - `share-client <pid>`: an endless [`ShareClient`] calls a `#[shared]` counter in the
//!   helper's Share, each request with a ballast larger than a ring, so that a fault to it
//!   often lands in the middle of a request (it made at least one call);
//! - `init-error <error>`: a pool whose initializer fails could not be built (the error must
//!   name the initializer: a typed error, no respawn loop, and its workers gone like the rest);
//! - `worker <pid>`: one line per worker of a pool of 3 workers (more than CPUs) with an
//!   initializer whose state every task uses, and which retires each worker after
//!   [`TASKS_PER_WORKER`] items (so workers are recycled while the faults land), and again
//!   after the call, so that a replacement worker is reported too;
//! - `item <index> <worker pid>` / `failed <index> <error>`: each result of
//!   `pool.timeout(60 s).unordered_imap(task, 0..ITEMS)` as it arrives (`call-error <error>` for
//!   an error that names no item); `ready` once [`READY_AFTER`] results arrived;
//! - `cancel <returned> <result>`: at `ready`, a long single task is submitted and cancelled
//!   at once (it must report `true cancelled`, and the call must lose nothing);
//! - `imap-done`, then (once the test said `go` on stdin, see below) `process.stop()` and
//!   `process-result Ok(n)` / `process-result Err(<error chain>)` from
//!   `process.timeout(30 s).result()`; then the same for the Share client (`share-result`),
//!   and `share-state <n> <confirmed> <after>`: the counter's value, the calls the client saw
//!   confirmed (kept in shared memory, so they survive its death) and the value after one more
//!   call by the helper (the Share is still usable); then the pool and the processes are dropped,
//!   `done` is printed and the helper exits 0.
//!
//! After `ready` the test waits a seeded random delay (0–300 ms), sends the fault to the target
//! (for [`Fault::StopCont`], SIGSTOP then SIGCONT 200–500 ms later), then writes `go` to the
//! helper's stdin. The helper waits for `go` (at most [`HELPER_GATE`]) before it stops its
//! process: so a fault always lands while the helper and every target are still there (during
//! the pool call, usually, or just after it), never after the helper finished.
//!
//! Then the test waits (with deadlines: a hang fails the cell) for the helper to exit, and for
//! every process the helper ever had (reported pids, workers seen in item lines, children of the
//! helper found in `/proc` while it ran, and any process reparented to the test) to be gone, and
//! checks the cell's [`Expect`]. Whatever is left at the end of a cell is killed and reaped, so
//! that a failing cell leaves nothing behind.
//!
//! Orphans and zombies are counted as follows. A *survivor* is a process of the helper's tree
//! still running 5 s after the helper was reaped. A *zombie* is a child the helper left unreaped:
//! when the helper exited on its own (it was not killed by the fault), every process reparented
//! to the test must be alive or gone, never already dead-and-unreaped (state `Z` at the test's
//! first look, before it reaps anything). (When the fault killed the helper, its children die
//! after it, as orphans; the test reaps them as their subreaper, and their `Z` state on the way
//! is not a leak.)
//!
//! # Knobs
//!
//! - `SKPROCESS_FAULT_SEED`: the seed (default: from the clock). It is printed first; every
//!   round's random choices derive from the seed, the cell's row in [`MATRIX`] and the round, so
//!   a failure replays with the same seed.
//! - `SKPROCESS_FAULT_ROUNDS`: rounds per cell (default 5).
//! - `SKPROCESS_FAULT_CELLS`: run only the cells whose name (`Target+Fault`, as in the summary)
//!   contains one of these comma-separated words, for instance `PoolWorker+Kill,Child+Int`.
//!
//! Run with `-- --nocapture` to see the per-round lines, the summary table and the total time.
//!
//! # Adding a target (Share, Pipe, ...)
//!
//! 1. a [`Target`] variant, and a pid for it in [`Target::pid`];
//! 2. the helper starts the new kind of process and prints `<word> <pid>` for it (and whatever
//!    facts show its outcome); [`Observed::absorb`] parses them;
//! 3. if its outcome needs a check of its own, a field in [`Expect::Completes`] and a check in
//!    [`check_completed`];
//! 4. four rows in [`MATRIX`], one per [`Fault`], stating the expected outcome.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use skprocess::ErrorChain;
use skprocess::pipe::Point;
use skprocess::prelude::*;

// ---------------------------------------------------------------------------------------------
// The matrix
// ---------------------------------------------------------------------------------------------

/// What a fault is sent to.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Target {
    /// The helper parent itself (its pid only, never its group).
    Parent,
    /// The helper's standalone endless process.
    Child,
    /// One of the helper's pool workers, chosen by the round's RNG.
    PoolWorker,
    /// The helper's endless Share client, in the middle of its calls.
    ShareClient,
}

/// What is sent.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Fault {
    /// SIGKILL.
    Kill,
    /// SIGTERM.
    Term,
    /// SIGINT, to the target's pid only (not a terminal's Ctrl+C to a group).
    Int,
    /// SIGSTOP, then SIGCONT 200–500 ms later.
    StopCont,
}

impl Fault {
    /// The signal sent first.
    fn signal(self) -> i32 {
        match self {
            Fault::Kill => libc::SIGKILL,
            Fault::Term => libc::SIGTERM,
            Fault::Int => libc::SIGINT,
            Fault::StopCont => libc::SIGSTOP,
        }
    }
}

/// The expected outcome of a cell.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Expect {
    /// The helper dies by the fault's signal; every process it started is gone within 5 s of
    /// its death; no survivor.
    ParentDies,
    /// The helper carries on: it prints `done` and exits 0 within the deadline; every index
    /// `0..ITEMS` is reported exactly once (as `item` or `failed`); at most `max_failed` are
    /// `failed`, each blamed on the death of the worker that was hit; the standalone process's
    /// result is `process` and the Share client's `share`; the Share holds every call the
    /// client saw confirmed (and at most the one call it died in) and still serves; no
    /// survivor, no zombie.
    Completes {
        max_failed: usize,
        process: ProcessOutcome,
        share: ProcessOutcome,
    },
}

/// The expected `process-result` line.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum ProcessOutcome {
    /// `Ok(n)`.
    Ok,
    /// `Ok(n)`, and the process's `__onfinish__` ran (its marker file exists): a graceful stop.
    Stopped,
    /// `Err(..)`: the child died by this signal without delivering a result.
    Crashed { signal: i32 },
}

/// Every item delivered, no failure, the process results `Ok`.
const NORMAL: Expect = Expect::Completes {
    max_failed: 0,
    process: ProcessOutcome::Ok,
    share: ProcessOutcome::Ok,
};

/// The expected outcome of every cell. Change a row only when the library's promised behaviour
/// changes; a cell that disagrees with its row is a bug to report, not a row to loosen.
const MATRIX: &[(Target, Fault, Expect)] = &[
    // The parent dies: the kernel's parent-death signal (SIGTERM) ends every child and worker.
    (Target::Parent, Fault::Kill, Expect::ParentDies),
    (Target::Parent, Fault::Term, Expect::ParentDies),
    (Target::Parent, Fault::Int, Expect::ParentDies),
    // A parent paused for a moment loses nothing.
    (Target::Parent, Fault::StopCont, NORMAL),
    // A child killed outright has no result: the parent gets the crash, with the signal.
    (
        Target::Child,
        Fault::Kill,
        Expect::Completes {
            max_failed: 0,
            process: ProcessOutcome::Crashed {
                signal: libc::SIGKILL,
            },
            share: ProcessOutcome::Ok,
        },
    ),
    // SIGTERM and SIGINT to a child are a graceful stop: `__onfinish__` and `__result__` run.
    (
        Target::Child,
        Fault::Term,
        Expect::Completes {
            max_failed: 0,
            process: ProcessOutcome::Stopped,
            share: ProcessOutcome::Ok,
        },
    ),
    (
        Target::Child,
        Fault::Int,
        Expect::Completes {
            max_failed: 0,
            process: ProcessOutcome::Stopped,
            share: ProcessOutcome::Ok,
        },
    ),
    (Target::Child, Fault::StopCont, NORMAL),
    // A worker that dies fails at most the one item it was running (none if it was between
    // items); it is replaced and every other item is delivered once.
    (
        Target::PoolWorker,
        Fault::Kill,
        Expect::Completes {
            max_failed: 1,
            process: ProcessOutcome::Ok,
            share: ProcessOutcome::Ok,
        },
    ),
    (
        Target::PoolWorker,
        Fault::Term,
        Expect::Completes {
            max_failed: 1,
            process: ProcessOutcome::Ok,
            share: ProcessOutcome::Ok,
        },
    ),
    // Workers ignore SIGINT (Ctrl+C is for the parent).
    (Target::PoolWorker, Fault::Int, NORMAL),
    (Target::PoolWorker, Fault::StopCont, NORMAL),
    // A Share client killed mid-call leaves the Share consistent and serving; SIGTERM and
    // SIGINT stop it gracefully. (The owner's death is the `Parent` rows: every client ends.)
    (
        Target::ShareClient,
        Fault::Kill,
        Expect::Completes {
            max_failed: 0,
            process: ProcessOutcome::Ok,
            share: ProcessOutcome::Crashed {
                signal: libc::SIGKILL,
            },
        },
    ),
    (
        Target::ShareClient,
        Fault::Term,
        Expect::Completes {
            max_failed: 0,
            process: ProcessOutcome::Ok,
            share: ProcessOutcome::Stopped,
        },
    ),
    (
        Target::ShareClient,
        Fault::Int,
        Expect::Completes {
            max_failed: 0,
            process: ProcessOutcome::Ok,
            share: ProcessOutcome::Stopped,
        },
    ),
    (Target::ShareClient, Fault::StopCont, NORMAL),
];

// ---------------------------------------------------------------------------------------------
// The workload and the helper parent
// ---------------------------------------------------------------------------------------------

/// Set (to the cell's temporary directory) only in the helper parent.
const ROLE_ENV: &str = "SKPROCESS_FAULT_HELPER_DIR";
const SEED_ENV: &str = "SKPROCESS_FAULT_SEED";
const ROUNDS_ENV: &str = "SKPROCESS_FAULT_ROUNDS";
const CELLS_ENV: &str = "SKPROCESS_FAULT_CELLS";
const DEFAULT_ROUNDS: usize = 5;

/// The prefix of every fact the helper prints (libtest may print on the same line first).
const TAG: &str = "@fault ";
/// The file the standalone process's `__onfinish__` writes, in the cell's directory.
const MARKER_FILE: &str = "onfinish";
/// The file the Share client's `__onfinish__` writes.
const SHARE_MARKER_FILE: &str = "share-onfinish";

/// Items in the pool call, and how long each one takes. With 3 workers on 2 CPUs, the call
/// lasts about 0.4 s, so that most faults (sent 0–300 ms after `ready`) land during it.
const ITEMS: u64 = 200;
const ITEM_SLEEP: Duration = Duration::from_millis(5);
const POOL_WORKERS: usize = 3;
/// Each worker retires after this many items: about five retirements per call.
const TASKS_PER_WORKER: usize = 40;
/// The helper prints `ready` once this many results arrived.
const READY_AFTER: usize = 5;

/// How long the helper may take to print `ready` (it starts a process and a pool).
const STARTUP_LIMIT: Duration = Duration::from_secs(60);
/// How long the helper may take to exit after the fault. More than the helper's own limits
/// (the call's 60 s, the result's 30 s), so that they report first; past this, a hang.
const RUN_LIMIT: Duration = Duration::from_secs(100);
/// How long the helper waits for `go` before it carries on anyway.
const HELPER_GATE: Duration = Duration::from_secs(30);
/// How long every process of the helper's tree may outlive the helper.
const ORPHAN_LIMIT: Duration = Duration::from_secs(5);

/// The standalone process: runs until stopped, counting its runs; `__onfinish__` leaves a
/// marker file; the result is the count.
#[skprocess]
struct Ticker {
    marker: PathBuf,
    count: u64,
    /// Where every run also sends a message larger than a ring (so a fault lands in the middle
    /// of one, often), as it tells the helper the same.
    pipe: Point,
}

#[skprocess]
impl Ticker {
    fn __run__(
        &mut self,
        cx: &mut Context,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.count += 1;
        let message = stream_message(self.count);
        cx.tell(&message)?;
        self.pipe.send(&message)?;
        std::thread::sleep(Duration::from_millis(2));
        Ok(())
    }

    fn __onfinish__(&mut self) -> std::io::Result<()> {
        std::fs::write(&self.marker, b"onfinish ran")
    }

    fn __result__(&mut self) -> u64 {
        self.count
    }
}

/// Bytes of each streamed message: more than a ring (256 KiB), so it travels in pieces.
const STREAM_MESSAGE: usize = 300 * 1024;

/// Message `n` of the Ticker's streams: `n`, then bytes that depend on `n`.
fn stream_message(n: u64) -> Vec<u8> {
    let mut out = n.to_le_bytes().to_vec();
    out.extend((0..STREAM_MESSAGE).map(|k| (n as usize).wrapping_add(k) as u8));
    out
}

/// Whether `message` is a whole, untorn message of the Ticker's streams.
fn whole_stream_message(message: &[u8]) -> bool {
    message.len() == STREAM_MESSAGE + 8
        && message[..8]
            .try_into()
            .is_ok_and(|n| *message == stream_message(u64::from_le_bytes(n)))
}

/// Reads a stream until it ends, in order; returns (messages, torn or out-of-order ones).
fn drain_stream(mut next: impl FnMut() -> Option<Vec<u8>>) -> (u64, u64) {
    let (mut count, mut bad, mut last) = (0, 0, 0);
    while let Some(message) = next() {
        count += 1;
        let n = message
            .get(..8)
            .and_then(|n| n.try_into().ok())
            .map_or(0, u64::from_le_bytes);
        if !whole_stream_message(&message) || n != last + 1 {
            bad += 1;
        }
        last = n;
    }
    (count, bad)
}

/// The Share's object: a counter.
#[derive(serde::Serialize, serde::Deserialize, Default)]
#[serde(crate = "skprocess::serde")]
struct Tally {
    n: u64,
}

#[shared]
impl Tally {
    /// Takes a moment on the coordinator, so that most faults land in the middle of a call.
    fn add(&mut self, k: u64) -> u64 {
        std::thread::sleep(Duration::from_millis(1));
        self.n += k;
        self.n
    }

    /// `add`, with a ballast larger than a ring: the request travels in pieces, so that a
    /// fault to the client often lands in the middle of one (which must then never run).
    fn weigh(&mut self, k: u64, ballast: Vec<u8>) -> u64 {
        assert_eq!(ballast.len(), STREAM_MESSAGE, "a torn request ran");
        self.add(k)
    }

    fn get(&self) -> u64 {
        self.n
    }
}

/// The Share client: calls `Tally::add` until stopped, counting each confirmed call in shared
/// memory (where the count survives the client's death); `__onfinish__` leaves a marker file.
#[skprocess]
struct ShareClient {
    tally: Shared<Tally>,
    confirmed: Shared<u64>,
    marker: PathBuf,
}

#[skprocess]
impl ShareClient {
    fn __run__(&mut self) -> Result<(), ShareError> {
        self.tally.weigh(1, vec![1; STREAM_MESSAGE])?;
        self.confirmed.fetch_add(1)?;
        Ok(())
    }

    fn __onfinish__(&mut self) -> std::io::Result<()> {
        std::fs::write(&self.marker, b"onfinish ran")
    }

    fn __result__(&mut self) -> Result<u64, ShareError> {
        self.confirmed.load()
    }
}

use skprocess::serde;

/// The pool workers' state: the process it was built in.
struct WorkerPid(u32);

fn worker_state() -> WorkerPid {
    WorkerPid(std::process::id())
}

/// A task that takes longer than the whole call (it is cancelled).
fn lingers(_: &mut WorkerPid, x: u64) -> u64 {
    std::thread::sleep(Duration::from_secs(5));
    x
}

/// An initializer that always fails.
fn refuses() -> Result<WorkerPid, String> {
    Err("no database".into())
}

/// The pool task: its input and the worker that ran it (from the worker's state, which must be
/// the worker's own).
fn task(state: &mut WorkerPid, index: u64) -> (u64, u32) {
    std::thread::sleep(ITEM_SLEEP);
    assert_eq!(state.0, std::process::id(), "another worker's state");
    (index, state.0)
}

/// Prints one fact (stdout is line-buffered: each line leaves at once).
fn say(fact: std::fmt::Arguments<'_>) {
    println!("{TAG}{fact}");
}

/// The helper parent's workload (see the module docs). Only runs when the fault matrix starts
/// it.
#[test]
#[ignore = "run by the fault matrix as a helper process"]
fn fault_helper_role() {
    let Some(dir) = std::env::var_os(ROLE_ENV) else {
        return;
    };
    // The test's `go`: a line (or the end) of stdin.
    let (go_tx, go) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        let _ = go_tx.send(());
    });

    let (anchor, point) = Pipe::pair().expect("a pipe");
    let process = Skprocess::new(Ticker {
        marker: PathBuf::from(dir).join(MARKER_FILE),
        count: 0,
        pipe: point,
    });
    process.start().expect("start the process");
    // Both streams are read to their end, whatever happens to the child: the end is a typed
    // error (never a hang), and no message may be torn or out of order.
    let piped = std::thread::spawn(move || {
        drain_stream(|| anchor.recv_timeout::<Vec<u8>>(HELPER_GATE).ok())
    });
    std::thread::scope(|scope| {
        let told =
            scope.spawn(|| drain_stream(|| process.listen_timeout::<Vec<u8>>(HELPER_GATE).ok()));
        let deadline = Instant::now() + STARTUP_LIMIT;
        while process.current_run() < 1 {
            assert!(Instant::now() < deadline, "the process never ran");
            std::thread::sleep(Duration::from_millis(1));
        }
        say(format_args!("process {}", process.pid().expect("started")));

        let share = Share::new().expect("start the Share");
        let tally = share.insert("tally", Tally::default()).expect("insert");
        let confirmed = share.insert("confirmed", 0_u64).expect("insert");
        let client = Skprocess::new(ShareClient {
            tally: tally.clone(),
            confirmed: confirmed.clone(),
            marker: PathBuf::from(std::env::var_os(ROLE_ENV).expect("set")).join(SHARE_MARKER_FILE),
        });
        client.start().expect("start the Share client");
        while tally.get().expect("the owner's call") < 1 {
            assert!(Instant::now() < deadline, "the Share client never called");
            std::thread::sleep(Duration::from_millis(1));
        }
        say(format_args!(
            "share-client {}",
            client.pid().expect("started")
        ));

        match Pool::builder().workers(2).try_initializer(refuses).build() {
            Ok(_) => say(format_args!("init-error none")),
            Err(error) => say(format_args!("init-error {}", ErrorChain(&error))),
        }
        let pool = Pool::builder()
            .workers(POOL_WORKERS)
            .initializer(worker_state)
            .max_tasks_per_worker(TASKS_PER_WORKER)
            .build()
            .expect("start the pool");
        for pid in pool.pids() {
            say(format_args!("worker {pid}"));
        }
        let mut arrived = 0;
        for result in pool
            .with_state()
            .timeout(Duration::from_secs(60))
            .unordered_imap(task, 0..ITEMS)
        {
            match result {
                Ok((index, pid)) => say(format_args!("item {index} {pid}")),
                Err(error) => match error.index() {
                    Some(index) => say(format_args!("failed {index} {}", ErrorChain(&error))),
                    None => say(format_args!("call-error {}", ErrorChain(&error))),
                },
            }
            arrived += 1;
            if arrived == READY_AFTER {
                say(format_args!("ready"));
                // A single task cancelled while the call runs: queued, it is dropped; running,
                // its worker is killed and replaced. Either way the call loses nothing.
                let doomed = pool.with_state().submit(lingers, 0);
                let cancelled = doomed.cancel();
                let outcome = match doomed.result() {
                    Ok(_) => "ok".to_owned(),
                    Err(PoolError::Cancelled) => "cancelled".to_owned(),
                    Err(error) => format!("other {}", ErrorChain(&error)),
                };
                say(format_args!("cancel {cancelled} {outcome}"));
            }
        }
        for pid in pool.pids() {
            say(format_args!("worker {pid}"));
        }
        say(format_args!("imap-done"));

        let _ = go.recv_timeout(HELPER_GATE);
        process.stop();
        let (told, told_bad) = told.join().expect("the listener");
        match process.timeout(Duration::from_secs(30)).result() {
            Ok(count) => say(format_args!("process-result Ok({count})")),
            Err(error) => say(format_args!("process-result Err({})", ErrorChain(&error))),
        }
        let (piped, piped_bad) = piped.join().expect("the pipe reader");
        say(format_args!(
            "streams {told} {told_bad} {piped} {piped_bad}"
        ));
        client.stop();
        match client.timeout(Duration::from_secs(30)).result() {
            Ok(count) => say(format_args!("share-result Ok({count})")),
            Err(error) => say(format_args!("share-result Err({})", ErrorChain(&error))),
        }
        let n = tally.get().expect("the owner's call");
        let seen = confirmed.load().expect("shared memory");
        let after = tally.add(1).expect("the owner's call");
        say(format_args!("share-state {n} {seen} {after}"));
        drop(share);
        drop(pool);
    });
    drop(process);
    say(format_args!("done"));
}

// ---------------------------------------------------------------------------------------------
// What the helper said
// ---------------------------------------------------------------------------------------------

/// Every fact the helper printed.
#[derive(Debug, Default)]
struct Observed {
    process: Option<i32>,
    /// Worker pids in the order reported: the first [`POOL_WORKERS`] are the initial ones.
    workers: Vec<i32>,
    ready: bool,
    /// How many times each index was reported, as `item` or `failed`.
    reported: BTreeMap<u64, usize>,
    items: usize,
    failed: Vec<(u64, String)>,
    /// The workers named in `item` lines.
    item_pids: BTreeSet<i32>,
    /// The error of the pool whose initializer fails.
    init_error: Option<String>,
    /// What `cancel()` on a single task returned, and its result.
    cancel: Option<String>,
    call_errors: Vec<String>,
    imap_done: bool,
    process_result: Option<String>,
    share_client: Option<i32>,
    share_result: Option<String>,
    /// The counter, the confirmed calls, the counter after one more call.
    share_state: Option<(u64, u64, u64)>,
    /// Messages told and torn (or out of order) ones; the same on the pipe.
    streams: Option<[u64; 4]>,
    done: bool,
    /// Lines with the tag that did not parse.
    malformed: Vec<String>,
    /// The helper's stdout ended (every holder of the pipe is gone).
    eof: bool,
}

impl Observed {
    /// Takes in one line of the helper's stdout.
    fn absorb(&mut self, line: &str) {
        // libtest may have printed "test fault_helper_role ... " on the same line first.
        let Some(at) = line.find(TAG) else {
            return;
        };
        let fact = line[at + TAG.len()..].trim_end();
        let (word, rest) = fact.split_once(' ').unwrap_or((fact, ""));
        let parsed = match word {
            "process" => rest.parse().ok().map(|pid| self.process = Some(pid)),
            "worker" => rest.parse().ok().map(|pid| {
                if !self.workers.contains(&pid) {
                    self.workers.push(pid);
                }
            }),
            "ready" => {
                self.ready = true;
                Some(())
            }
            "item" => rest.split_once(' ').and_then(|(index, pid)| {
                let (index, pid) = (index.parse().ok()?, pid.parse().ok()?);
                *self.reported.entry(index).or_default() += 1;
                self.items += 1;
                self.item_pids.insert(pid);
                Some(())
            }),
            "failed" => rest.split_once(' ').and_then(|(index, error)| {
                let index = index.parse().ok()?;
                *self.reported.entry(index).or_default() += 1;
                self.failed.push((index, error.to_owned()));
                Some(())
            }),
            "call-error" => {
                self.call_errors.push(rest.to_owned());
                Some(())
            }
            "imap-done" => {
                self.imap_done = true;
                Some(())
            }
            "process-result" => {
                self.process_result = Some(rest.to_owned());
                Some(())
            }
            "share-client" => rest.parse().ok().map(|pid| self.share_client = Some(pid)),
            "init-error" => {
                self.init_error = Some(rest.to_owned());
                Some(())
            }
            "cancel" => {
                self.cancel = Some(rest.to_owned());
                Some(())
            }
            "streams" => {
                let numbers: Vec<u64> = rest
                    .split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect();
                (numbers.len() == 4).then(|| {
                    self.streams = Some([numbers[0], numbers[1], numbers[2], numbers[3]]);
                })
            }
            "share-result" => {
                self.share_result = Some(rest.to_owned());
                Some(())
            }
            "share-state" => {
                let numbers: Vec<u64> = rest
                    .split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect();
                (numbers.len() == 3).then(|| {
                    self.share_state = Some((numbers[0], numbers[1], numbers[2]));
                })
            }
            "done" => {
                self.done = true;
                Some(())
            }
            _ => None,
        };
        if parsed.is_none() {
            self.malformed.push(fact.to_owned());
        }
    }

    /// Every pid of the helper's tree it told us about.
    fn pids(&self) -> impl Iterator<Item = i32> + '_ {
        self.process
            .iter()
            .chain(&self.share_client)
            .chain(&self.workers)
            .chain(&self.item_pids)
            .copied()
    }
}

// ---------------------------------------------------------------------------------------------
// Processes: /proc, signals, reaping
// ---------------------------------------------------------------------------------------------

fn become_subreaper() {
    // SAFETY: prctl with integer arguments.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(rc, 0, "cannot become a subreaper");
}

fn own_pid() -> i32 {
    i32::try_from(std::process::id()).expect("pids fit in i32")
}

/// A process's state letter and parent, from `/proc/<pid>/stat`; `None` once it is gone.
fn proc_stat(pid: i32) -> Option<(char, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ppid ...": comm may hold spaces and parentheses; the last ')' ends it.
    let rest = text.get(text.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// The children of `parent`, with their state letters.
fn children_of(parent: i32) -> Vec<(i32, char)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| match proc_stat(pid) {
            Some((state, ppid)) if ppid == parent => Some((pid, state)),
            _ => None,
        })
        .collect()
}

/// Sends `signal` to `pid`; whether it was delivered.
fn send(pid: i32, signal: i32) -> bool {
    // SAFETY: kill(2) with a pid of the helper's tree (checked by the caller) and a signal.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// How a process ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Ended {
    Exited(i32),
    Signaled(i32),
}

fn decode_status(status: i32) -> Ended {
    if libc::WIFSIGNALED(status) {
        Ended::Signaled(libc::WTERMSIG(status))
    } else {
        Ended::Exited(libc::WEXITSTATUS(status))
    }
}

/// Reaps `pid` if it has ended (without waiting).
fn try_reap(pid: i32) -> Option<Ended> {
    let mut status = 0;
    // SAFETY: waitpid on our own child, with a status out-pointer to a local.
    let rc = unsafe { libc::waitpid(pid, &raw mut status, libc::WNOHANG) };
    (rc == pid).then(|| decode_status(status))
}

/// Reaps every child of the test process that has ended (the test process starts no children
/// but helpers, and every process reparented to it is one of theirs). Returns the reaped pids.
fn reap_ended() -> Vec<i32> {
    let mut reaped = Vec::new();
    loop {
        // SAFETY: waitpid with a null status pointer.
        let rc = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
        if rc <= 0 {
            return reaped;
        }
        reaped.push(rc);
    }
}

// ---------------------------------------------------------------------------------------------
// The helper, from the test's side
// ---------------------------------------------------------------------------------------------

struct Helper {
    pid: i32,
    stdin: Option<ChildStdin>,
    /// Lines of the helper's stdout; `None` at its end.
    lines: Receiver<Option<String>>,
    dir: PathBuf,
    /// Its exit, once reaped.
    ended: Option<Ended>,
}

impl Helper {
    fn start(dir: &Path) -> Helper {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).expect("create the cell's directory");
        let mut child = Command::new(std::env::current_exe().expect("the test executable"))
            .args([
                "--exact",
                "fault_helper_role",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROLE_ENV, dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start the helper");
        let pid = i32::try_from(child.id()).expect("pids fit in i32");
        let stdout = child.stdout.take().expect("piped");
        let stdin = child.stdin.take();
        drop(child); // reaped by hand (`try_reap`), like every process of its tree
        let (tx, lines) = mpsc::channel();
        // Ends when every holder of the pipe (the helper and the children that inherited its
        // stdout) is gone; never joined.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(Some(line)).is_err() {
                    return;
                }
            }
            let _ = tx.send(None);
        });
        Helper {
            pid,
            stdin,
            lines,
            dir: dir.to_owned(),
            ended: None,
        }
    }

    /// Takes in the helper's lines for at most `wait` (less if its stdout ended).
    fn pump(&self, seen: &mut Observed, wait: Duration) {
        let deadline = Instant::now() + wait;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(Some(line)) => seen.absorb(&line),
                Ok(None) | Err(RecvTimeoutError::Disconnected) => {
                    seen.eof = true;
                    // Nothing more will come: do not spin.
                    std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                    return;
                }
                Err(RecvTimeoutError::Timeout) => return,
            }
            if Instant::now() >= deadline {
                return;
            }
        }
    }

    fn reaped(&mut self) -> Option<Ended> {
        if self.ended.is_none() {
            self.ended = try_reap(self.pid);
        }
        self.ended
    }

    /// Lets the helper go on to its end (it waits for this after its pool call).
    fn go(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            // A dead helper cannot read it: EPIPE, ignored.
            let _ = stdin.write_all(b"go\n");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One cell
// ---------------------------------------------------------------------------------------------

/// A small seeded RNG (SplitMix64): enough for delays and choices, and replayable.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    /// The RNG of one round of one cell: independent of which other cells run.
    fn for_round(seed: u64, cell: usize, round: usize) -> Rng {
        let mut rng = Rng(seed ^ ((cell as u64) << 32) ^ round as u64);
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What one round of one cell did, and what was wrong with it.
#[derive(Debug)]
struct CellReport {
    target: Target,
    fault: Fault,
    /// The random delay between `ready` and the fault.
    delay: Duration,
    /// The pid the fault went to.
    target_pid: Option<i32>,
    /// How the helper ended (`None`: it did not, within the deadline).
    helper: Option<Ended>,
    items: usize,
    /// The `failed` lines: index and error.
    failed: Vec<(u64, String)>,
    process_result: Option<String>,
    share_result: Option<String>,
    share_state: Option<(u64, u64, u64)>,
    /// The `streams` line: told, torn, piped, torn.
    streams: Option<[u64; 4]>,
    survivors: Vec<i32>,
    zombies: Vec<i32>,
    /// Children still running when the helper had exited on its own (not a failure as long as
    /// they end within [`ORPHAN_LIMIT`]; shown to spot a handle that did not reap its child).
    lingering: Vec<i32>,
    /// Every way the round disagreed with its row of the matrix (empty: it passed).
    problems: Vec<String>,
    elapsed: Duration,
}

impl Target {
    /// The pid the fault goes to, from what the helper reported.
    fn pid(self, helper: &Helper, seen: &Observed, rng: &mut Rng) -> Option<i32> {
        match self {
            Target::Parent => Some(helper.pid),
            Target::Child => seen.process,
            Target::ShareClient => seen.share_client,
            Target::PoolWorker => {
                // Workers retire as the call goes (and are replaced, by workers the helper may
                // not have named yet): one of the helper's live children that is neither its
                // process nor its Share client, chosen by the RNG.
                let live: Vec<i32> = children_of(helper.pid)
                    .into_iter()
                    .filter(|&(pid, state)| {
                        state != 'Z' && Some(pid) != seen.process && Some(pid) != seen.share_client
                    })
                    .map(|(pid, _)| pid)
                    .collect();
                (!live.is_empty()).then(|| live[rng.below(live.len() as u64) as usize])
            }
        }
    }
}

fn cell_name(target: Target, fault: Fault) -> String {
    format!("{target:?}+{fault:?}")
}

/// Runs one round of a cell: starts a helper, faults its target, and checks the outcome against
/// `expect`. Never blocks past its deadlines; leaves no process behind.
fn run_cell(target: Target, fault: Fault, expect: Expect, rng: &mut Rng) -> CellReport {
    static ROUND: AtomicUsize = AtomicUsize::new(0);
    let started = Instant::now();
    let delay = Duration::from_millis(rng.below(301));
    let paused = Duration::from_millis(200 + rng.below(301));
    let dir = std::env::temp_dir().join(format!(
        "skprocess-fault-{}-{}",
        std::process::id(),
        ROUND.fetch_add(1, Ordering::Relaxed)
    ));
    let mut helper = Helper::start(&dir);
    let mut seen = Observed::default();
    let mut problems = Vec::new();
    // Every process of the helper's tree the test heard of.
    let mut tree = BTreeSet::new();
    let watch_tree = |helper: &Helper, tree: &mut BTreeSet<i32>| {
        tree.extend(children_of(helper.pid).into_iter().map(|(pid, _)| pid));
    };

    // 1. Until `ready`.
    let deadline = Instant::now() + STARTUP_LIMIT;
    while !seen.ready && Instant::now() < deadline && helper.reaped().is_none() {
        helper.pump(&mut seen, Duration::from_millis(10));
    }
    watch_tree(&helper, &mut tree);

    // 2. The fault.
    let mut target_pid = None;
    if seen.ready && helper.reaped().is_none() {
        // Keep reading the helper's facts meanwhile: the workers it names change.
        let waited = Instant::now();
        while waited.elapsed() < delay {
            helper.pump(&mut seen, delay.saturating_sub(waited.elapsed()));
        }
        target_pid = target.pid(&helper, &seen, rng);
        // A worker may retire between the choice and the check: choose again (a few times).
        for _ in 0..5 {
            let alive = |pid: i32| proc_stat(pid).is_some_and(|s| s.1 == helper.pid && s.0 != 'Z');
            if target != Target::PoolWorker || target_pid.is_none_or(alive) {
                break;
            }
            target_pid = target.pid(&helper, &seen, rng);
        }
        match target_pid {
            // Only a live process of the helper's tree (or the helper) is ever signalled.
            Some(pid) if pid == helper.pid || proc_stat(pid).is_some_and(|s| s.1 == helper.pid) => {
                if !send(pid, fault.signal()) {
                    problems.push(format!("cannot send {fault:?} to {pid}"));
                }
                if fault == Fault::StopCont {
                    std::thread::sleep(paused);
                    send(pid, libc::SIGCONT);
                }
            }
            Some(pid) => problems.push(format!(
                "the target {pid} was gone before the fault (the helper was still running)"
            )),
            None => problems.push(format!("the helper reported no {target:?} to fault")),
        }
    } else {
        problems.push(format!(
            "the helper never became ready within {STARTUP_LIMIT:?} (ended: {:?})",
            helper.reaped()
        ));
    }
    helper.go();

    // 3. Until the helper ends.
    let deadline = Instant::now() + RUN_LIMIT;
    let mut last_watch = Instant::now();
    while helper.reaped().is_none() {
        if Instant::now() > deadline {
            problems.push(format!(
                "hang: the helper had not exited {RUN_LIMIT:?} after the fault (last facts: \
                 imap-done {}, process-result {:?}, done {})",
                seen.imap_done, seen.process_result, seen.done
            ));
            break;
        }
        helper.pump(&mut seen, Duration::from_millis(10));
        if last_watch.elapsed() >= Duration::from_millis(50) {
            watch_tree(&helper, &mut tree);
            last_watch = Instant::now();
        }
    }

    // 4. Orphans and zombies, once the helper was reaped.
    let mut survivors = Vec::new();
    let mut zombies = Vec::new();
    let mut lingering = Vec::new();
    if let Some(ended) = helper.ended {
        let me = own_pid();
        let killed_by_fault = ended == Ended::Signaled(fault.signal());
        // The first look, before reaping anything: a child the helper left dead and unreaped.
        for (pid, state) in children_of(me) {
            tree.insert(pid);
            if !killed_by_fault {
                if state == 'Z' {
                    zombies.push(pid);
                } else {
                    lingering.push(pid);
                }
            }
        }
        tree.extend(seen.pids());
        let deadline = Instant::now() + ORPHAN_LIMIT;
        loop {
            reap_ended();
            // The helper is gone, so each process of its tree still here is reparented to the
            // test (a pid with another parent was reused by an unrelated process).
            let running: Vec<i32> = tree
                .iter()
                .copied()
                .filter(|&pid| proc_stat(pid).is_some_and(|(s, ppid)| ppid == me && s != 'Z'))
                .chain(
                    children_of(me)
                        .into_iter()
                        .filter(|&(_, s)| s != 'Z')
                        .map(|(pid, _)| pid),
                )
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            if running.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                survivors = running;
                break;
            }
            helper.pump(&mut seen, Duration::from_millis(10));
        }
    }
    // The facts printed just before the helper ended may still be in the pipe.
    let drain = Instant::now() + Duration::from_secs(2);
    while !seen.eof && Instant::now() < drain {
        helper.pump(&mut seen, Duration::from_millis(20));
    }

    // 5. The row of the matrix.
    match (expect, helper.ended) {
        (_, None) => {} // the hang is reported already
        (Expect::ParentDies, Some(ended)) => {
            if ended != Ended::Signaled(fault.signal()) {
                problems.push(format!(
                    "the helper should have died by signal {}, but {ended:?}",
                    fault.signal()
                ));
            }
        }
        (
            Expect::Completes {
                max_failed,
                process,
                share,
            },
            Some(ended),
        ) => {
            check_completed(
                &mut problems,
                &seen,
                ended,
                max_failed,
                process,
                target_pid,
                &helper.dir,
            );
            check_share(&mut problems, &seen, share, &helper.dir);
        }
    }
    if !survivors.is_empty() {
        problems.push(format!(
            "orphans: {survivors:?} still running {ORPHAN_LIMIT:?} after the helper ended"
        ));
    }
    if !zombies.is_empty() {
        problems.push(format!(
            "zombies: the helper exited leaving {zombies:?} dead and unreaped"
        ));
    }
    if !seen.malformed.is_empty() {
        problems.push(format!("unparsed facts: {:?}", seen.malformed));
    }

    // 6. Leave nothing behind, whatever happened.
    let helper_ended = helper.ended;
    clean_up(&mut helper);
    let _ = std::fs::remove_dir_all(&helper.dir);

    CellReport {
        target,
        fault,
        delay,
        target_pid,
        helper: helper_ended,
        items: seen.items,
        failed: seen.failed,
        process_result: seen.process_result,
        share_result: seen.share_result,
        share_state: seen.share_state,
        streams: seen.streams,
        survivors,
        zombies,
        lingering,
        problems,
        elapsed: started.elapsed(),
    }
}

/// The checks of a cell whose helper carries on ([`Expect::Completes`]).
fn check_completed(
    problems: &mut Vec<String>,
    seen: &Observed,
    ended: Ended,
    max_failed: usize,
    process: ProcessOutcome,
    target_pid: Option<i32>,
    dir: &Path,
) {
    if ended != Ended::Exited(0) || !seen.done {
        problems.push(format!(
            "the helper should have printed `done` and exited 0, but {ended:?} (done: {})",
            seen.done
        ));
    }
    if !seen.call_errors.is_empty() {
        problems.push(format!("the pool call failed: {:?}", seen.call_errors));
    }
    // (`Some` unless the fault landed before `ready`, which it never does.)
    if seen.cancel.as_deref() != Some("true cancelled") {
        problems.push(format!(
            "a single task cancelled during the call should end Cancelled: {:?}",
            seen.cancel
        ));
    }
    match &seen.init_error {
        Some(error) if error.contains("initializer") && error.contains("refuses") => {}
        other => problems.push(format!(
            "a failing initializer should fail the pool's build, naming it: {other:?}"
        )),
    }
    match seen.streams {
        Some([told, 0, piped, 0]) if told > 0 && piped > 0 => {}
        other => problems.push(format!(
            "the child's streams (told, torn, piped, torn) should be whole and non-empty: {other:?}"
        )),
    }
    let lost: Vec<u64> = (0..ITEMS)
        .filter(|i| !seen.reported.contains_key(i))
        .collect();
    if !lost.is_empty() {
        problems.push(format!("lost items: {lost:?}"));
    }
    let repeated: Vec<(u64, usize)> = seen
        .reported
        .iter()
        .filter(|&(&i, &n)| n > 1 || i >= ITEMS)
        .map(|(&i, &n)| (i, n))
        .collect();
    if !repeated.is_empty() {
        problems.push(format!(
            "items reported more than once (or unknown): {repeated:?}"
        ));
    }
    if seen.failed.len() > max_failed {
        problems.push(format!(
            "{} failed items, at most {max_failed} allowed: {:?}",
            seen.failed.len(),
            seen.failed
        ));
    }
    if max_failed > 0 {
        // A failure is allowed only as the death of the worker that was hit.
        let blame = target_pid.map(|pid| format!("worker process {pid} "));
        for (index, error) in &seen.failed {
            let blamed = blame.as_deref().is_some_and(|b| error.contains(b))
                && error.contains("while running this item");
            if !blamed {
                problems.push(format!(
                    "item {index} failed, but not by the death of worker {target_pid:?}: {error}"
                ));
            }
        }
    }
    let marker = dir.join(MARKER_FILE).exists();
    if !outcome_is(process, seen.process_result.as_deref(), marker) {
        problems.push(format!(
            "process-result should be {process:?}, but {:?} (__onfinish__ marker: {marker})",
            seen.process_result
        ));
    }
}

/// Whether a `...-result` line shows `outcome` (`marker`: the process's `__onfinish__` ran).
fn outcome_is(outcome: ProcessOutcome, result: Option<&str>, marker: bool) -> bool {
    let result = result.unwrap_or("");
    match outcome {
        ProcessOutcome::Ok => result.starts_with("Ok("),
        ProcessOutcome::Stopped => result.starts_with("Ok(") && marker,
        ProcessOutcome::Crashed { signal } => {
            result.starts_with("Err(") && result.contains(&format!("killed by signal {signal} "))
        }
    }
}

/// The Share's checks: the client's result, and a counter that holds every confirmed call, at
/// most one more (the call a killed client died in, which ran or not), and still serves.
fn check_share(problems: &mut Vec<String>, seen: &Observed, share: ProcessOutcome, dir: &Path) {
    let marker = dir.join(SHARE_MARKER_FILE).exists();
    if !outcome_is(share, seen.share_result.as_deref(), marker) {
        problems.push(format!(
            "share-result should be {share:?}, but {:?} (__onfinish__ marker: {marker})",
            seen.share_result
        ));
    }
    match seen.share_state {
        Some((n, confirmed, after)) => {
            let extra = match share {
                ProcessOutcome::Crashed { .. } => 1,
                _ => 0,
            };
            if !(confirmed..=confirmed + extra).contains(&n) || confirmed == 0 {
                problems.push(format!(
                    "the Share's counter is {n} after {confirmed} confirmed calls (at most \
                     {extra} more allowed)"
                ));
            }
            if after != n + 1 {
                problems.push(format!("the Share did not serve on: {n} then {after}"));
            }
        }
        None => problems.push("no share-state line".to_owned()),
    }
}

/// Kills and reaps whatever is left of the helper's tree (at most 10 s).
fn clean_up(helper: &mut Helper) {
    let me = own_pid();
    if helper.reaped().is_none() {
        // Its group is its own (and still exists: the helper is not reaped).
        send(-helper.pid, libc::SIGKILL);
        send(helper.pid, libc::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(5);
        while helper.reaped().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        reap_ended();
        let left = children_of(me);
        if left.is_empty() || Instant::now() > deadline {
            return;
        }
        for (pid, _) in left {
            send(pid, libc::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------

fn seed() -> u64 {
    match std::env::var(SEED_ENV) {
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_ENV}={value:?} is not a number")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    }
}

fn rounds() -> usize {
    std::env::var(ROUNDS_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_ROUNDS)
}

fn selected(name: &str) -> bool {
    match std::env::var(CELLS_ENV) {
        Ok(filter) if !filter.trim().is_empty() => filter
            .split(',')
            .map(str::trim)
            .any(|word| !word.is_empty() && name.contains(word)),
        _ => true,
    }
}

/// One summary row.
struct Row {
    name: String,
    rounds: usize,
    failures: usize,
    failed_items: usize,
    slowest: Duration,
}

#[test]
fn fault_matrix() {
    let seed = seed();
    let rounds = rounds();
    println!("fault matrix: seed {seed} (replay: {SEED_ENV}={seed}), {rounds} rounds per cell");
    become_subreaper();
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for (cell, &(target, fault, expect)) in MATRIX.iter().enumerate() {
        let name = cell_name(target, fault);
        if !selected(&name) {
            continue;
        }
        let mut row = Row {
            name: name.clone(),
            rounds,
            failures: 0,
            failed_items: 0,
            slowest: Duration::ZERO,
        };
        for round in 0..rounds {
            let mut rng = Rng::for_round(seed, cell, round);
            let report = run_cell(target, fault, expect, &mut rng);
            let verdict = if report.problems.is_empty() {
                "ok".to_owned()
            } else {
                format!("FAILED: {}", report.problems.join("; "))
            };
            println!(
                "{} round {round}: delay {:?}, target {:?}, helper {:?}, items {}, failed {:?}, \
                 process {:?}, share {:?} {:?}, streams {:?}, survivors {}, zombies {}, \
                 lingering {}, {:.2}s: {verdict}",
                cell_name(report.target, report.fault),
                report.delay,
                report.target_pid,
                report.helper,
                report.items,
                report.failed,
                report.process_result,
                report.share_result,
                report.share_state,
                report.streams,
                report.survivors.len(),
                report.zombies.len(),
                report.lingering.len(),
                report.elapsed.as_secs_f64(),
            );
            row.failed_items += report.failed.len();
            row.slowest = row.slowest.max(report.elapsed);
            if !report.problems.is_empty() {
                row.failures += 1;
                failures.push(format!(
                    "{name} round {round}: {}",
                    report.problems.join("; ")
                ));
            }
        }
        rows.push(row);
    }
    let total = started.elapsed();

    println!();
    println!(
        "{:<22} {:>6} {:>8} {:>12} {:>10}",
        "cell", "rounds", "failures", "failed items", "slowest"
    );
    for row in &rows {
        println!(
            "{:<22} {:>6} {:>8} {:>12} {:>9.2}s",
            row.name,
            row.rounds,
            row.failures,
            row.failed_items,
            row.slowest.as_secs_f64()
        );
    }
    println!(
        "fault matrix: {:.1}s in all (seed {seed})",
        total.as_secs_f64()
    );
    assert!(
        rounds > 0 && !rows.is_empty(),
        "the fault matrix ran nothing ({ROUNDS_ENV}={rounds}, {CELLS_ENV} selected {} cells)",
        rows.len()
    );
    assert!(
        failures.is_empty(),
        "{} failed round(s) (seed {seed}; replay with {SEED_ENV}={seed}):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
