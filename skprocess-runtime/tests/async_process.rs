//! Async processes: `async fn` lifecycle methods on the child's tokio runtime, async
//! `tell`/`listen`, lives, `join_in`, stop, and section timeouts at await points (with the sync
//! fallback for a section that never awaits). Needs the `tokio` feature.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use skprocess::prelude::*;

mod common;
use common::{LIMIT, within};

/// Every lifecycle method async: awaits tokio timers, spawns a task that outlives its section,
/// and talks to the parent with `tell_async` / `listen_async`.
#[skprocess(runs = 3)]
struct Echo {
    log: Vec<String>,
    #[serde(skip)]
    background: Option<tokio::task::JoinHandle<u32>>,
}

#[skprocess]
impl Echo {
    async fn __prerun__(&mut self, cx: &mut Context) {
        tokio::time::sleep(Duration::from_millis(2)).await;
        if cx.current_run() == 0 {
            // A task spawned in one section keeps running while the others do.
            self.background = Some(tokio::spawn(async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                7
            }));
        }
        self.log.push(format!("prerun{}", cx.current_run()));
    }

    async fn __run__(&mut self, cx: &mut Context) -> Result<(), String> {
        let asked: String = cx
            .listen_timeout_async(LIMIT)
            .await
            .map_err(|e| e.to_string())?;
        cx.tell_async(format!("{asked}!"))
            .await
            .map_err(|e| e.to_string())?;
        self.log.push(format!("run{}:{asked}", cx.current_run()));
        Ok(())
    }

    async fn __postrun__(&mut self) {
        tokio::task::yield_now().await;
    }

    async fn __onfinish__(&mut self) -> Result<(), String> {
        let background = self.background.take().ok_or("no background task")?;
        let value = background.await.map_err(|e| e.to_string())?;
        self.log.push(format!("background{value}"));
        Ok(())
    }

    async fn __result__(&mut self) -> Vec<String> {
        std::mem::take(&mut self.log)
    }
}

#[test]
fn every_async_lifecycle_method_runs_in_order_and_talks_to_the_parent() {
    let process = Skprocess::new(Echo {
        log: Vec::new(),
        background: None,
    });
    process.start().unwrap();
    for word in ["a", "b", "c"] {
        process.tell(word.to_owned()).unwrap();
        assert_eq!(
            process.listen_timeout::<String>(LIMIT).unwrap(),
            format!("{word}!")
        );
    }
    let log = process.timeout(LIMIT).result().unwrap();
    assert_eq!(
        log,
        [
            "prerun0",
            "run0:a",
            "prerun1",
            "run1:b",
            "prerun2",
            "run2:c",
            "background7"
        ]
    );
    // Async sections are timed like sync ones.
    let timers = process.timers();
    assert_eq!(timers.run.num_times(), 3);
    assert_eq!(timers.prerun.num_times(), 3);
    assert_eq!(timers.onfinish.num_times(), 1);
}

/// Changes its state, then waits at an await point past its timeout on run 1.
#[skprocess(runs = 3, timeouts(run = 0.3))]
struct SlowAwait {
    completed: u32,
    scratch: Vec<u32>,
}

#[skprocess]
impl SlowAwait {
    async fn __run__(&mut self, cx: &mut Context) {
        self.scratch.push(cx.current_run() as u32);
        if cx.current_run() == 1 {
            tokio::time::sleep(LIMIT).await;
        }
        self.completed += 1;
    }

    fn __error__(&mut self, error: &ProcessError) -> (u32, Vec<u32>, bool) {
        (self.completed, self.scratch.clone(), error.is_timeout())
    }

    fn __result__(&mut self) -> (u32, Vec<u32>, bool) {
        (self.completed, self.scratch.clone(), false)
    }
}

#[test]
fn an_async_section_times_out_at_an_await_point_and_its_state_is_rolled_back() {
    let process = Skprocess::new(SlowAwait {
        completed: 0,
        scratch: Vec::new(),
    });
    // Run 0 completed; run 1 pushed 1 and then waited: rolled back to the state before it.
    assert_eq!(process.timeout(LIMIT).run().unwrap(), (1, vec![0], true));
}

#[test]
fn an_async_timeout_with_lives_left_retries_the_run() {
    let process = Skprocess::new(SlowAwait {
        completed: 0,
        scratch: Vec::new(),
    });
    process.configure(|c| c.lives = 2).unwrap();
    // The retry of run 1 waits again; its second timeout costs the last life.
    assert_eq!(process.timeout(LIMIT).run().unwrap(), (1, vec![0], true));
}

/// Set when the future of `DropsAtAwait::__run__` is dropped (in this process: `InProcess`).
static DROPPED_AT_AWAIT: AtomicBool = AtomicBool::new(false);
/// Set when the never-awaiting section has been told to give up (so its thread ends).
static GIVE_UP: AtomicBool = AtomicBool::new(false);
static SPINNING: AtomicUsize = AtomicUsize::new(0);

struct SetOnDrop(&'static AtomicBool);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[skprocess(timeouts(run = 0.2))]
struct DropsAtAwait {
    spin: bool,
    touched: bool,
}

#[skprocess]
impl DropsAtAwait {
    async fn __run__(&mut self) {
        self.touched = true;
        if self.spin {
            // Never reaches an await point: the sync fallback abandons this thread.
            SPINNING.fetch_add(1, Ordering::SeqCst);
            while !GIVE_UP.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
        } else {
            let _guard = SetOnDrop(&DROPPED_AT_AWAIT);
            std::future::pending::<()>().await;
        }
    }

    fn __error__(&mut self, error: ProcessError) -> Result<bool, ProcessError> {
        if error.is_timeout() {
            Ok(self.touched)
        } else {
            Err(error)
        }
    }

    fn __result__(&mut self) -> bool {
        self.touched
    }
}

#[test]
fn the_timed_out_future_is_dropped_and_a_section_that_never_awaits_falls_back() {
    let awaiting = InProcess::new(DropsAtAwait {
        spin: false,
        touched: false,
    });
    // Timed out, the state rolled back (`touched` false again), the future dropped.
    assert!(!within(LIMIT, move || awaiting.run()).unwrap());
    assert!(DROPPED_AT_AWAIT.load(Ordering::SeqCst));

    let spinning = InProcess::new(DropsAtAwait {
        spin: true,
        touched: false,
    });
    // No await point: the engine still ends the section (abandoning its thread) and rolls back.
    let outcome = within(LIMIT, move || spinning.run());
    assert_eq!(SPINNING.load(Ordering::SeqCst), 1);
    GIVE_UP.store(true, Ordering::SeqCst);
    assert!(!outcome.unwrap());
}

/// The threads its `__run__` attempts ran on (in this process: `InProcess`).
static ATTEMPT_THREADS: std::sync::Mutex<Vec<std::thread::ThreadId>> =
    std::sync::Mutex::new(Vec::new());

/// Times out at an await point (`awaits`) or in a blocking sleep, on each of two attempts.
#[skprocess(lives = 2, timeouts(run = 0.2))]
struct WhichThread {
    awaits: bool,
}

#[skprocess]
impl WhichThread {
    async fn __run__(&mut self) {
        ATTEMPT_THREADS
            .lock()
            .unwrap()
            .push(std::thread::current().id());
        if self.awaits {
            tokio::time::sleep(LIMIT).await;
        } else {
            // No await point: only the fallback can end it (it ends on its own soon after).
            std::thread::sleep(Duration::from_millis(600));
        }
    }

    fn __error__(&mut self, error: &ProcessError) -> bool {
        error.is_timeout()
    }

    fn __result__(&mut self) -> bool {
        false
    }
}

#[test]
fn a_timeout_at_an_await_point_keeps_the_sections_thread() {
    // One test for both cases: they share the record of threads.
    let awaiting = InProcess::new(WhichThread { awaits: true });
    assert!(within(LIMIT, move || awaiting.run()).unwrap());
    let threads = std::mem::take(&mut *ATTEMPT_THREADS.lock().unwrap());
    // The retry ran on the same section thread: the first attempt's was not abandoned.
    assert_eq!(threads.len(), 2);
    assert_eq!(threads[0], threads[1]);

    let blocking = InProcess::new(WhichThread { awaits: false });
    assert!(within(LIMIT, move || blocking.run()).unwrap());
    let threads = std::mem::take(&mut *ATTEMPT_THREADS.lock().unwrap());
    // Here the fallback abandoned the first attempt's thread: the retry got a new one.
    assert_eq!(threads.len(), 2);
    assert_ne!(threads[0], threads[1]);
}

/// A section that never awaits and comes back after its deadline (within the grace): still a
/// timeout, as for a sync section.
#[skprocess(timeouts(run = 0.1))]
struct LateButBack {
    touched: bool,
}

#[skprocess]
impl LateButBack {
    async fn __run__(&mut self) {
        self.touched = true;
        std::thread::sleep(Duration::from_millis(150));
    }

    fn __error__(&mut self, error: &ProcessError) -> (bool, bool) {
        (error.is_timeout(), self.touched)
    }

    fn __result__(&mut self) -> (bool, bool) {
        (false, self.touched)
    }
}

#[test]
fn an_async_section_back_after_its_deadline_is_a_timeout() {
    let process = Skprocess::new(LateButBack { touched: false });
    // Timed out, and rolled back.
    assert_eq!(process.timeout(LIMIT).run().unwrap(), (true, false));
}

/// Fails its first two attempts at run 0 (async), then succeeds.
#[skprocess(runs = 2, lives = 3)]
struct Flaky {
    attempts: u32,
}

#[skprocess]
impl Flaky {
    async fn __run__(&mut self) -> Result<(), String> {
        self.attempts += 1;
        tokio::task::yield_now().await;
        if self.attempts <= 2 {
            return Err(format!("attempt {} failed", self.attempts));
        }
        Ok(())
    }

    async fn __error__(&mut self, error: ProcessError) -> String {
        format!("gave up after {}: {error}", self.attempts)
    }

    fn __result__(&mut self) -> String {
        format!("done after {}", self.attempts)
    }
}

#[test]
fn async_failures_cost_lives_and_an_async_error_hook_decides() {
    let lucky = Skprocess::new(Flaky { attempts: 0 });
    assert_eq!(lucky.timeout(LIMIT).run().unwrap(), "done after 4");

    let unlucky = Skprocess::new(Flaky { attempts: 0 });
    unlucky.configure(|c| c.lives = 2).unwrap();
    let message = unlucky.timeout(LIMIT).run().unwrap();
    assert!(
        message.starts_with("gave up after 2: ") && message.contains("attempt 2 failed"),
        "{message}"
    );
}

/// Loops on an async sleep until `join_in` or a stop ends it.
#[skprocess]
struct Ticker {
    ticks: u64,
}

#[skprocess]
impl Ticker {
    async fn __run__(&mut self, cx: &mut Context) {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(5)) => self.ticks += 1,
            () = cx.stopped() => {}
        }
    }

    async fn __result__(&mut self) -> u64 {
        self.ticks
    }
}

#[test]
fn join_in_and_stop_end_an_async_loop() {
    let joined = Skprocess::new(Ticker { ticks: 0 });
    joined
        .configure(|c| c.join_in = Some(Duration::from_millis(300)))
        .unwrap();
    assert!(joined.timeout(LIMIT).run().unwrap() > 0);

    let stopped = Skprocess::new(Ticker { ticks: 0 });
    stopped.start().unwrap();
    let deadline = std::time::Instant::now() + LIMIT;
    while stopped.current_run() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the ticker never ticked"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    stopped.stop();
    assert!(stopped.timeout(LIMIT).result().unwrap() >= 3);
}

/// Says which attempt it is, then waits for the parent's message; the first attempt has no
/// message coming and times out at its await point.
#[skprocess(runs = 2, lives = 2, timeouts(run = 3.0))]
struct Patient {
    got: Vec<String>,
}

#[skprocess]
impl Patient {
    async fn __run__(&mut self, cx: &mut Context) -> Result<(), String> {
        cx.tell_async((cx.current_run(), cx.lives_left()))
            .await
            .map_err(|e| e.to_string())?;
        // Without a deadline of its own: the section's timeout drops it.
        let message: String = cx.listen_async().await.map_err(|e| e.to_string())?;
        self.got.push(message);
        Ok(())
    }

    fn __result__(&mut self) -> Vec<String> {
        self.got.clone()
    }
}

#[test]
fn a_listen_dropped_by_a_timeout_takes_no_message() {
    let process = Skprocess::new(Patient { got: Vec::new() });
    process.start().unwrap();
    let next = || process.listen_timeout::<(usize, u32)>(LIMIT).unwrap();
    // Run 0, first attempt: nothing is sent; it times out and costs a life.
    assert_eq!(next(), (0, 2));
    // Run 0 again, after the dropped listen: the message goes to this attempt.
    assert_eq!(next(), (0, 1));
    process.tell("first".to_owned()).unwrap();
    assert_eq!(next(), (1, 1));
    process.tell("second".to_owned()).unwrap();
    assert_eq!(
        process.timeout(LIMIT).result().unwrap(),
        ["first", "second"]
    );
}

/// An async process type as a pool task.
#[skprocess(runs = 2)]
struct Fetch {
    id: u32,
    total: u32,
}

impl Fetch {
    fn new(id: u32) -> Self {
        Fetch { id, total: 0 }
    }
}

#[skprocess]
impl Fetch {
    async fn __run__(&mut self) {
        let id = self.id;
        let doubled = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            id * 2
        })
        .await
        .expect("the task ran");
        self.total += doubled;
    }

    async fn __result__(&mut self) -> u32 {
        self.total
    }
}

#[test]
fn async_process_types_run_as_pool_tasks() {
    let pool = Pool::new(2).unwrap();
    let totals = pool
        .processes()
        .timeout(LIMIT)
        .map(Fetch::new, 0..8u32)
        .unwrap();
    assert_eq!(totals, (0..8u32).map(|id| id * 4).collect::<Vec<_>>());
}

/// Many async processes at once, more than CPUs, each talking to the parent: a stress of the
/// async tell/listen path (`SKPROCESS_STRESS_ROUNDS` messages each, default 200).
#[skprocess]
struct Relay {
    rounds: u32,
}

#[skprocess]
impl Relay {
    async fn __run__(&mut self, cx: &mut Context) -> Result<(), String> {
        for _ in 0..self.rounds {
            let n: u32 = cx
                .listen_timeout_async(LIMIT)
                .await
                .map_err(|e| e.to_string())?;
            cx.tell_async(n + 1).await.map_err(|e| e.to_string())?;
        }
        cx.stop();
        Ok(())
    }

    fn __result__(&mut self) -> u32 {
        self.rounds
    }
}

#[test]
fn many_async_processes_relay_messages() {
    let rounds: u32 = std::env::var("SKPROCESS_STRESS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let processes: Vec<_> = (0..6)
        .map(|_| {
            let p = Skprocess::new(Relay { rounds });
            p.start().unwrap();
            p
        })
        .collect();
    for n in 0..rounds {
        for p in &processes {
            p.tell(n).unwrap();
        }
        for p in &processes {
            assert_eq!(p.listen_timeout::<u32>(LIMIT).unwrap(), n + 1);
        }
    }
    for p in processes {
        assert_eq!(p.timeout(LIMIT).result().unwrap(), rounds);
    }
}
