//! Single tasks: `submit` and its handle (result, result_timeout, is_finished, cancel, await),
//! `as_completed`, and bounded waits without side effects on process and background handles.
//!
//! Tasks that must still be running when the test acts wait on a *gate*: a file the test
//! creates when it wants them to finish. Each leaves its worker's pid in `<gate>.started` when
//! it starts, so the test knows it runs. No assertion depends on how fast anything is.

use std::future::IntoFuture;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use skprocess::pool::{Pool, PoolError, TaskError, as_completed};
use skprocess::prelude::*;

mod common;
use common::{LIMIT, within};

fn square(x: u64) -> u64 {
    x * x
}

fn pool() -> Pool {
    Pool::new(2).expect("a pool starts")
}

/// A gate file for this test process, removed if it is left from an earlier run.
fn new_gate(name: &str) -> String {
    let path = std::env::temp_dir().join(format!("skprocess-submit-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(started(path.to_str().unwrap()));
    path.to_str().unwrap().to_owned()
}

fn started(gate: &str) -> PathBuf {
    PathBuf::from(format!("{gate}.started"))
}

fn open(gate: &str) {
    std::fs::write(gate, b"open").unwrap();
}

/// Leaves its worker's pid in `<gate>.started`, then waits (at most a minute) for the gate;
/// returns its worker's pid.
fn held(gate: String) -> u32 {
    let marker = started(&gate);
    let partial = marker.with_extension("partial");
    std::fs::write(&partial, std::process::id().to_string()).unwrap();
    std::fs::rename(&partial, &marker).unwrap();
    let deadline = Instant::now() + LIMIT;
    while !Path::new(&gate).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::process::id()
}

/// Waits until the task held at `gate` runs; returns its worker's pid.
fn running_pid(gate: &str) -> u32 {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Ok(pid) = std::fs::read_to_string(started(gate)) {
            return pid.parse().unwrap();
        }
        assert!(Instant::now() < deadline, "the task at {gate} never ran");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until `pid` is no longer a worker of `pool` and the pool has its full count again.
fn replaced(pool: &Pool, pid: u32) {
    let deadline = Instant::now() + LIMIT;
    loop {
        let pids = pool.pids();
        if !pids.contains(&pid) && pids.len() == pool.workers() {
            return;
        }
        assert!(Instant::now() < deadline, "worker {pid} was never replaced");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn clean(gates: &[&str]) {
    for gate in gates {
        let _ = std::fs::remove_file(gate);
        let _ = std::fs::remove_file(started(gate));
    }
}

fn fails_on_odd(x: u64) -> Result<u64, String> {
    if x % 2 == 1 {
        Err(format!("{x} is odd"))
    } else {
        Ok(x)
    }
}

fn panics(x: u64) -> u64 {
    panic!("no {x} today")
}

fn aborts(_: u64) -> u64 {
    std::process::abort()
}

/// A process type run by the pool; fails (out of lives) when asked to.
#[skprocess(runs = 2)]
struct Job {
    fail: bool,
    runs: u32,
}

#[skprocess]
impl Job {
    fn new(fail: bool) -> Self {
        Job { fail, runs: 0 }
    }

    fn __run__(&mut self) -> Result<(), String> {
        self.runs += 1;
        if self.fail {
            return Err("failed on purpose".into());
        }
        Ok(())
    }

    fn __result__(&mut self) -> u32 {
        self.runs
    }
}

#[test]
fn submitted_tasks_of_every_mode_give_their_results_and_errors() {
    let pool = pool();
    assert_eq!(pool.timeout(LIMIT).submit(square, 7).result().unwrap(), 49);
    assert_eq!(
        pool.star()
            .timeout(LIMIT)
            .submit(|a: u64, b: u64| a + b, (1, 2))
            .result()
            .unwrap(),
        3
    );
    assert_eq!(
        pool.fallible()
            .timeout(LIMIT)
            .submit(fails_on_odd, 4)
            .result()
            .unwrap(),
        4
    );
    match pool
        .fallible()
        .timeout(LIMIT)
        .submit(fails_on_odd, 3)
        .result()
    {
        Err(PoolError::Task { index: 0, error }) => {
            assert_eq!(error.failure().unwrap().message(), "3 is odd");
        }
        other => panic!("unexpected: {other:?}"),
    }
    assert_eq!(
        pool.processes()
            .timeout(LIMIT)
            .submit(Job::new, false)
            .result()
            .unwrap(),
        2
    );
    match pool
        .processes()
        .timeout(LIMIT)
        .submit(Job::new, true)
        .result()
    {
        Err(PoolError::Task {
            index: 0,
            error: TaskError::Process(error),
        }) => assert_eq!(error.failure().unwrap().message(), "failed on purpose"),
        other => panic!("unexpected: {other:?}"),
    }
    match pool.timeout(LIMIT).submit(panics, 5).result() {
        Err(PoolError::Task { index: 0, error }) => {
            assert_eq!(error.failure().unwrap().message(), "no 5 today");
        }
        other => panic!("unexpected: {other:?}"),
    }
    let before = pool.pids();
    match pool.timeout(LIMIT).submit(aborts, 0).result() {
        Err(PoolError::Task {
            index: 0,
            error: TaskError::Crashed { pid, .. },
        }) => {
            assert!(before.contains(&pid));
            replaced(&pool, pid);
        }
        other => panic!("unexpected: {other:?}"),
    }
    // A task that cannot be sent: the error is in the handle, which is finished at once.
    static OFFSET: u64 = 3;
    let offset: &'static u64 = &OFFSET;
    let refused = pool.submit(move |x: u64| x + *offset, 1);
    assert!(refused.is_finished());
    assert!(matches!(
        refused.result(),
        Err(PoolError::TaskCapturesData { .. })
    ));
    // The pool is still fine.
    assert_eq!(pool.timeout(LIMIT).submit(square, 9).result().unwrap(), 81);
}

#[test]
fn result_timeout_says_not_yet_and_leaves_the_task_running() {
    let pool = pool();
    let gate = new_gate("not-yet");
    let handle = pool.timeout(LIMIT).submit(held, gate.clone());
    let pid = running_pid(&gate);
    assert!(!handle.is_finished());
    assert!(!handle.wait_timeout(Duration::from_millis(20)));
    // Not yet: the handle comes back, and the task still runs in the same worker.
    let handle = match handle.result_timeout(Duration::from_millis(20)) {
        Err(handle) => handle,
        Ok(result) => panic!("finished before its gate opened: {result:?}"),
    };
    assert!(!handle.is_finished());
    assert!(pool.pids().contains(&pid));
    open(&gate);
    match handle.result_timeout(LIMIT) {
        Ok(Ok(ran_in)) => assert_eq!(ran_in, pid, "the task ran once, in the same worker"),
        Ok(Err(error)) => panic!("{error:?}"),
        Err(_) => panic!("not finished within {LIMIT:?}"),
    }
    // is_finished turns true by itself once the task is done.
    let done = pool.timeout(LIMIT).submit(square, 3);
    let deadline = Instant::now() + LIMIT;
    while !done.is_finished() {
        assert!(Instant::now() < deadline, "never finished");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(done.result().unwrap(), 9);
    clean(&[&gate]);
}

#[test]
fn cancelling_a_queued_task_drops_it_and_kills_nothing() {
    let pool = pool();
    let gates: Vec<String> = (0..5).map(|i| new_gate(&format!("queued-{i}"))).collect();
    // Both workers run a held task and hold one more each (two chunks in flight per worker):
    // the fifth task waits in the pool's queue.
    let busy: Vec<_> = gates[..4]
        .iter()
        .map(|gate| pool.timeout(LIMIT).submit(held, gate.clone()))
        .collect();
    let mut pids: Vec<u32> = gates[..2].iter().map(|gate| running_pid(gate)).collect();
    let queued = pool.timeout(LIMIT).submit(held, gates[4].clone());
    assert!(queued.cancel(), "a queued task is cancelled");
    assert!(!queued.cancel(), "a second cancel finds it settled");
    assert!(queued.is_finished());
    assert!(matches!(queued.result(), Err(PoolError::Cancelled)));
    for gate in &gates[..4] {
        open(gate);
    }
    for handle in busy {
        assert!(pids.contains(&handle.result().unwrap()));
    }
    // Nobody was killed, and the cancelled task never ran.
    let mut now = pool.pids();
    now.sort_unstable();
    pids.sort_unstable();
    assert_eq!(now, pids);
    assert!(!started(&gates[4]).exists(), "the cancelled task ran");
    assert_eq!(pool.timeout(LIMIT).submit(square, 4).result().unwrap(), 16);
    clean(&gates.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn cancelling_a_running_task_replaces_its_worker_and_spares_other_calls() {
    let pool = pool();
    let gate = new_gate("running");
    let handle = pool.timeout(LIMIT).submit(held, gate.clone());
    let pid = running_pid(&gate);
    // A map on the same pool, in progress while the cancel happens.
    let map = pool.timeout(LIMIT).background().map(square, 0..2_000u64);
    assert!(handle.cancel());
    assert!(matches!(handle.result(), Err(PoolError::Cancelled)));
    replaced(&pool, pid);
    assert_eq!(
        map.result().unwrap(),
        (0..2_000u64).map(square).collect::<Vec<_>>()
    );
    // Cancelling a finished task changes nothing.
    let done = pool.timeout(LIMIT).submit(square, 5);
    assert!(done.wait_timeout(LIMIT));
    assert!(!done.cancel());
    assert_eq!(done.result().unwrap(), 25);
    clean(&[&gate]);
}

#[test]
fn a_submit_deadline_kills_the_worker_even_when_nobody_waits() {
    let pool = pool();
    let gate = new_gate("deadline");
    let handle = pool
        .timeout(Duration::from_millis(300))
        .submit(held, gate.clone());
    let pid = running_pid(&gate);
    match within(LIMIT, move || handle.result()) {
        Err(PoolError::Timeout { completed: 0, .. }) => {}
        other => panic!("unexpected: {other:?}"),
    }
    replaced(&pool, pid);
    // Detached: the handle is dropped at once, the deadline still frees the worker.
    let detached = new_gate("detached");
    drop(
        pool.timeout(Duration::from_millis(300))
            .submit(held, detached.clone()),
    );
    let pid = running_pid(&detached);
    replaced(&pool, pid);
    // A deadline that the task meets changes nothing.
    assert_eq!(pool.timeout(LIMIT).submit(square, 6).result().unwrap(), 36);
    clean(&[&gate, &detached]);
}

#[test]
fn handles_can_be_awaited_from_any_executor() {
    let pool = pool();
    let value = within(LIMIT, {
        let pool = pool.clone();
        move || futures::executor::block_on(async { pool.timeout(LIMIT).submit(square, 12).await })
    });
    assert_eq!(value.unwrap(), 144);
    // A future whose task runs a while: woken by the worker's report, not by polling.
    let gate = new_gate("await");
    let future = pool.timeout(LIMIT).submit(held, gate.clone()).into_future();
    let opener = {
        let gate = gate.clone();
        std::thread::spawn(move || {
            running_pid(&gate);
            open(&gate);
        })
    };
    let pid = within(LIMIT, move || futures::executor::block_on(future)).unwrap();
    opener.join().unwrap();
    assert_eq!(
        std::fs::read_to_string(started(&gate)).unwrap(),
        pid.to_string()
    );
    // A deadline wakes the future too (the watcher rings it).
    let stuck = new_gate("await-deadline");
    let future = pool
        .timeout(Duration::from_millis(300))
        .submit(held, stuck.clone())
        .into_future();
    let result = within(LIMIT, move || futures::executor::block_on(future));
    assert!(result.unwrap_err().is_timeout());
    clean(&[&gate, &stuck]);
}

/// CPU time of the calling thread.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid out-pointer.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) },
        0
    );
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Returns its worker's pid at once.
fn quick(_: String) -> u32 {
    std::process::id()
}

#[test]
fn as_completed_yields_in_completion_order_without_polling() {
    let pool = pool();
    let slow = new_gate("order-slow");
    // The slow task first: the fast one, submitted after it, must come out first.
    let handles = vec![
        pool.timeout(LIMIT).submit(held, slow.clone()),
        pool.timeout(LIMIT).submit(quick, String::new()),
    ];
    let slow_pid = running_pid(&slow);
    let mut completed = as_completed(handles);
    let (first, handle) = completed.next().expect("a first task");
    assert_eq!(first, 1);
    assert!(handle.is_finished());
    handle.result().unwrap();
    // The gate opens a second from now; meanwhile the iterator sleeps.
    let opener = {
        let slow = slow.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(1));
            open(&slow);
        })
    };
    let (cpu, wall) = (thread_cpu_time(), Instant::now());
    let (second, handle) = completed.next().expect("a second task");
    let (cpu, wall) = (thread_cpu_time() - cpu, wall.elapsed());
    assert_eq!(second, 0);
    assert_eq!(handle.result().unwrap(), slow_pid);
    assert!(completed.next().is_none());
    assert!(!completed.timed_out());
    assert!(
        cpu < wall / 4,
        "as_completed used {cpu:?} of CPU in {wall:?} of waiting: it polls"
    );
    opener.join().unwrap();

    // With an overall timeout: what finished in time, then the end; the rest keeps running.
    let stuck = new_gate("order-stuck");
    let handles = vec![
        pool.timeout(LIMIT).submit(held, stuck.clone()),
        pool.timeout(LIMIT).submit(quick, String::new()),
    ];
    running_pid(&stuck);
    let mut completed = as_completed(handles).timeout(Duration::from_millis(300));
    let order: Vec<usize> = completed.by_ref().map(|(index, _)| index).collect();
    assert_eq!(order, [1]);
    assert!(completed.timed_out());
    let mut pending = completed.into_pending();
    assert_eq!(pending.len(), 1);
    let (index, handle) = pending.pop().unwrap();
    assert_eq!(index, 0);
    assert!(
        !handle.is_finished(),
        "the timeout of as_completed touched the task"
    );
    open(&stuck);
    assert!(handle.result().is_ok());
    // Tasks that finished before the iteration are yielded too, and an empty list ends at once.
    let done = pool.timeout(LIMIT).submit(square, 2);
    assert!(done.wait_timeout(LIMIT));
    let all: Vec<(usize, u64)> = as_completed(vec![done])
        .map(|(index, handle)| (index, handle.result().unwrap()))
        .collect();
    assert_eq!(all, [(0, 4)]);
    assert_eq!(
        as_completed(Vec::<skprocess::pool::TaskHandle<u64>>::new()).count(),
        0
    );
    clean(&[&slow, &stuck]);
}

#[test]
fn as_completed_over_many_tasks_yields_each_once() {
    let pool = pool();
    let handles: Vec<_> = (0..200u64)
        .map(|x| pool.timeout(LIMIT).submit(square, x))
        .collect();
    let mut seen: Vec<(usize, u64)> = within(LIMIT, move || {
        as_completed(handles)
            .map(|(index, handle)| (index, handle.result().unwrap()))
            .collect()
    });
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..200u64)
            .map(|x| (x as usize, square(x)))
            .collect::<Vec<_>>()
    );
}

/// An endless process: it runs until stopped and returns its count of runs.
#[skprocess]
struct Ticker {
    runs: u64,
}

#[skprocess]
impl Ticker {
    fn __run__(&mut self) {
        self.runs += 1;
        std::thread::sleep(Duration::from_millis(5));
    }

    fn __result__(&mut self) -> u64 {
        self.runs
    }
}

#[test]
fn result_timeout_on_processes_and_background_handles_leaves_them_running() {
    let process = Skprocess::new(Ticker { runs: 0 });
    assert!(matches!(
        process.result_timeout(Duration::ZERO),
        Some(Err(ProcessError::NotStarted))
    ));
    process.start().unwrap();
    assert!(process.result_timeout(Duration::from_millis(50)).is_none());
    assert!(process.is_alive(), "a bounded wait stopped the process");
    let runs = process.current_run();
    let deadline = Instant::now() + LIMIT;
    while process.current_run() == runs {
        assert!(Instant::now() < deadline, "the process stopped running");
        std::thread::sleep(Duration::from_millis(5));
    }
    process.stop();
    match process.result_timeout(LIMIT) {
        Some(Ok(runs)) => assert!(runs > 0),
        other => panic!("unexpected: {other:?}"),
    }

    // The background form.
    let process = Skprocess::new(Ticker { runs: 0 });
    let handle = process.background().run();
    let handle = match handle.result_timeout(Duration::from_millis(50)) {
        Err(handle) => handle,
        Ok(result) => panic!("an endless process ended: {result:?}"),
    };
    assert!(process.is_alive());
    process.stop();
    match handle.result_timeout(LIMIT) {
        Ok(Ok(runs)) => assert!(runs > 0),
        Ok(Err(error)) => panic!("{error:?}"),
        Err(_) => panic!("no result within {LIMIT:?}"),
    }

    // A pool call in the background.
    let pool = pool();
    let gate = new_gate("background");
    let handle = pool.timeout(LIMIT).background().map(held, [gate.clone()]);
    let pid = running_pid(&gate);
    let handle = match handle.result_timeout(Duration::from_millis(20)) {
        Err(handle) => handle,
        Ok(result) => panic!("finished before its gate opened: {result:?}"),
    };
    assert!(pool.pids().contains(&pid));
    open(&gate);
    match handle.result_timeout(LIMIT) {
        Ok(Ok(pids)) => assert_eq!(pids, [pid]),
        other => panic!("unexpected: {other:?}"),
    }
    clean(&[&gate]);
}

/// Sleeps `ms` milliseconds and returns them.
fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Cancels tasks at every stage (queued, held by a worker, running, finished) while a map runs
/// on the same pool: a cancel that succeeds makes the result `Cancelled`, one that does not
/// leaves the task's value, and the map gets every result exactly. Rounds:
/// `SKPROCESS_SUBMIT_ROUNDS` (default 10).
#[test]
fn cancels_at_any_moment_never_disturb_other_calls() {
    let rounds: u64 = std::env::var("SKPROCESS_SUBMIT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let pool = pool();
    for round in 0..rounds {
        let map = pool.timeout(LIMIT).background().map(square, 0..500u64);
        let handles: Vec<_> = (0..6u64)
            .map(|i| pool.timeout(LIMIT).submit(nap, (i * 7 + round) % 20))
            .collect();
        std::thread::sleep(Duration::from_millis(round % 15));
        for (i, handle) in handles.into_iter().enumerate() {
            let cancelled = i % 2 == 0 && handle.cancel();
            match handle.result() {
                Err(PoolError::Cancelled) => assert!(cancelled, "round {round}, task {i}"),
                Ok(ms) => {
                    assert!(!cancelled, "round {round}, task {i}");
                    assert_eq!(ms, (i as u64 * 7 + round) % 20);
                }
                other => panic!("round {round}, task {i}: {other:?}"),
            }
        }
        assert_eq!(
            map.result().unwrap(),
            (0..500u64).map(square).collect::<Vec<_>>(),
            "round {round}"
        );
    }
    // Killed workers were replaced: the pool still serves with both.
    let deadline = Instant::now() + LIMIT;
    while pool.pids().len() < 2 {
        assert!(Instant::now() < deadline, "a worker was never replaced");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        pool.timeout(LIMIT).map(square, 0..4u64).unwrap(),
        [0, 1, 4, 9]
    );
}

#[test]
fn quick_tasks_never_wait_behind_a_held_one_while_a_worker_is_free() {
    // A held task on one worker of two, then quick tasks: the second worker takes the quick
    // ones (one of them taken back from the first worker's prefetch), and none of them is handed
    // to the busy worker while that take-back is pending.
    let pool = pool();
    for round in 0..5 {
        let gate = new_gate(&format!("behind-{round}"));
        let slow = pool.timeout(LIMIT).submit(held, gate.clone());
        running_pid(&gate);
        let quick_ones: Vec<_> = (0..4)
            .map(|_| pool.timeout(LIMIT).submit(quick, String::new()))
            .collect();
        for handle in quick_ones {
            // The gate stays shut: each quick task must finish on the free worker.
            let result = handle.result_timeout(Duration::from_secs(30));
            assert!(result.is_ok(), "a quick task waited behind the held one");
        }
        open(&gate);
        slow.result().unwrap();
        clean(&[&gate]);
    }
}
