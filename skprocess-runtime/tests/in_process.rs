//! `InProcess`: a lifecycle on a thread of the test process returns exactly what a child
//! returns for the same value, and `tell`/`listen`, `stop`, timers and every typed error behave
//! as they do with a child.

use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use skprocess::buffer::{Buffer, BufferError, BufferMut, Handover};
use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Deserializer, Serialize, Serializer};
use skprocess::{Lifecycle, Registered};

mod common;
use common::{LIMIT, within};

/// Runs the value `make` builds in a child and in-process, and returns both results (as their
/// `Debug` text, which shows every field of an error, panic locations included).
fn both<P, M>(make: impl Fn() -> P) -> (String, String)
where
    P: Lifecycle + Registered<M>,
    P::Output: Debug,
{
    let child = Skprocess::new(make()).timeout(LIMIT).run();
    let value = make();
    let here = within(LIMIT, move || InProcess::new(value).run());
    (format!("{child:?}"), format!("{here:?}"))
}

/// Asserts that a child and an in-process run of the value `make` builds return the same.
fn same<P, M>(make: impl Fn() -> P) -> String
where
    P: Lifecycle + Registered<M>,
    P::Output: Debug,
{
    let (child, here) = both(make);
    assert_eq!(child, here);
    here
}

/// Records the order of its sections; fails, panics or stops where told to.
#[skprocess(runs = 3)]
#[derive(Default)]
struct Recorder {
    log: Vec<String>,
    fail_in: Option<(String, usize)>,
    panic_in: Option<(String, usize)>,
    stop_in: Option<(String, usize)>,
}

impl Recorder {
    fn step(&mut self, cx: &mut Context, section: &str) -> Result<(), String> {
        let run = cx.current_run();
        self.log.push(format!("{section}{run}"));
        let here = Some((section.to_owned(), run));
        if self.stop_in == here {
            cx.stop();
        }
        if self.panic_in == here {
            panic!("{section} panicked on {run}");
        }
        if self.fail_in == here {
            return Err(format!("{section} failed on {run}"));
        }
        Ok(())
    }
}

#[skprocess]
impl Recorder {
    fn __prerun__(&mut self, cx: &mut Context) -> Result<(), String> {
        self.step(cx, "pre")
    }
    fn __run__(&mut self, cx: &mut Context) -> Result<(), String> {
        self.step(cx, "run")
    }
    fn __postrun__(&mut self, cx: &mut Context) -> Result<(), String> {
        self.step(cx, "post")
    }
    fn __onfinish__(&mut self, cx: &mut Context) -> Result<(), String> {
        self.step(cx, "finish")
    }
    fn __result__(&mut self) -> Vec<String> {
        self.log.clone()
    }
}

fn at(section: &str, run: usize) -> Option<(String, usize)> {
    Some((section.to_owned(), run))
}

#[test]
fn runs_stops_and_failures_match_a_child() {
    let order = same(Recorder::default);
    assert!(
        order.starts_with("Ok([\"pre0\", \"run0\", \"post0\", \"pre1\""),
        "{order}"
    );
    same(|| Recorder {
        stop_in: at("run", 1),
        ..Recorder::default()
    });
    same(|| Recorder {
        fail_in: at("post", 2),
        ..Recorder::default()
    });
    let failed = same(|| Recorder {
        fail_in: at("finish", 3),
        ..Recorder::default()
    });
    assert!(failed.contains("Onfinish"), "{failed}");
}

#[test]
fn a_panicking_run_is_the_same_typed_error_as_in_a_child() {
    let make = || Recorder {
        panic_in: at("run", 1),
        ..Recorder::default()
    };
    same(make);
    match InProcess::new(make()).run() {
        Err(ProcessError::Section {
            section: Section::Run,
            current_run: 1,
            failure,
        }) => {
            assert!(failure.is_panic());
            assert_eq!(failure.message(), "run panicked on 1");
            let location = failure.panic_location().expect("a location");
            assert!(location.contains("in_process.rs"), "{location}");
        }
        other => panic!("unexpected: {other:?}"),
    }
}

/// Counts attempts; `__run__` fails on a chosen run a chosen number of times.
#[skprocess(runs = 4, lives = 3)]
struct Flaky {
    attempts: Vec<usize>,
    failures_left: u32,
    fail_run: usize,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
enum FlakyOutcome {
    Done(Vec<usize>),
    GaveUp { attempts: Vec<usize>, error: String },
}

#[skprocess]
impl Flaky {
    fn __prerun__(&mut self, cx: &mut Context) {
        self.attempts.push(cx.current_run());
    }

    fn __run__(&mut self, cx: &mut Context) -> Result<(), String> {
        if cx.current_run() == self.fail_run && self.failures_left > 0 {
            self.failures_left -= 1;
            return Err(format!("flaked, {} left", self.failures_left));
        }
        Ok(())
    }

    fn __error__(&mut self, error: ProcessError) -> FlakyOutcome {
        FlakyOutcome::GaveUp {
            attempts: self.attempts.clone(),
            error: error.to_string(),
        }
    }

    fn __result__(&mut self) -> FlakyOutcome {
        FlakyOutcome::Done(self.attempts.clone())
    }
}

#[test]
fn lives_and_the_error_hooks_value_match_a_child() {
    let retried = same(|| Flaky {
        attempts: Vec::new(),
        failures_left: 2,
        fail_run: 1,
    });
    assert_eq!(retried, "Ok(Done([0, 1, 1, 1, 2, 3]))");
    let gave_up = same(|| Flaky {
        attempts: Vec::new(),
        failures_left: 5,
        fail_run: 2,
    });
    assert!(
        gave_up.starts_with("Ok(GaveUp { attempts: [0, 1, 2, 2, 2]"),
        "{gave_up}"
    );
}

/// `__error__` that panics too.
#[skprocess(runs = 1)]
struct BrokenHandler;

#[skprocess]
impl BrokenHandler {
    fn __run__(&mut self) -> Result<(), &'static str> {
        Err("first failure")
    }

    fn __error__(&mut self) -> u8 {
        panic!("the handler broke too")
    }

    fn __result__(&mut self) -> u8 {
        0
    }
}

#[test]
fn a_failing_error_hook_matches_a_child() {
    let error = same(|| BrokenHandler);
    assert!(error.starts_with("Err(ErrorHandler"), "{error}");
}

/// Overruns its `__run__` timeout on run 1; the state before that run is what `__error__` sees.
#[skprocess(runs = 3, timeouts(run = 0.2))]
struct Overruns {
    completed: u32,
    scratch: Vec<u32>,
}

#[skprocess]
impl Overruns {
    fn __run__(&mut self, cx: &mut Context) {
        self.scratch.push(cx.current_run() as u32);
        if cx.current_run() == 1 {
            // mutate, then overrun: the mutation must be rolled back
            self.completed += 100;
            std::thread::sleep(Duration::from_secs(30));
        }
        self.completed += 1;
    }

    fn __error__(&mut self, error: &ProcessError) -> (u32, Vec<u32>, String) {
        (self.completed, self.scratch.clone(), error.to_string())
    }

    fn __result__(&mut self) -> (u32, Vec<u32>, String) {
        (self.completed, self.scratch.clone(), String::new())
    }
}

#[test]
fn a_section_timeout_matches_a_child() {
    let started = Instant::now();
    let result = same(|| Overruns {
        completed: 0,
        scratch: Vec::new(),
    });
    assert_eq!(
        result,
        "Ok((1, [0], \"__run__ timed out after 0.2s on run 1\"))"
    );
    // Neither waited for the abandoned section.
    assert!(started.elapsed() < Duration::from_secs(25));
}

/// Counts until `join_in` passes.
#[skprocess(join_in = 0.3)]
struct Bounded {
    count: u64,
}

#[skprocess]
impl Bounded {
    fn __run__(&mut self) {
        self.count += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    fn __result__(&mut self) -> u64 {
        self.count
    }
}

#[test]
fn join_in_ends_the_lifecycle_normally() {
    let started = Instant::now();
    let process = InProcess::new(Bounded { count: 0 });
    let count = within(LIMIT, move || {
        let count = process.run().unwrap();
        assert_eq!(process.timers().run.num_times() as u64, count);
        count
    });
    assert!(count >= 1, "{count}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn timers_match_a_childs_counts() {
    let child = Skprocess::new(Recorder::default());
    child.timeout(LIMIT).run().unwrap();
    let here = InProcess::new(Recorder::default());
    let here = within(LIMIT, move || {
        here.run().unwrap();
        here
    });
    let (a, b) = (child.timers(), here.timers());
    for section in [
        Section::Prerun,
        Section::Run,
        Section::Postrun,
        Section::Onfinish,
        Section::Result,
        Section::Error,
    ] {
        assert_eq!(
            a.section(section).num_times(),
            b.section(section).num_times(),
            "{section:?}"
        );
    }
    assert_eq!(b.run.num_times(), 3);
    assert_eq!(b.full_run.num_times(), 3);
    assert_eq!(b.error.num_times(), 0);
    assert_eq!(here.process_timer().num_times(), 3);
    assert_eq!(here.current_run(), 3);
}

/// A field serde leaves out: it starts at its default on the other side.
#[skprocess(runs = 1)]
struct Skips {
    kept: u32,
    #[serde(skip)]
    skipped: u32,
}

#[skprocess]
impl Skips {
    fn __run__(&mut self) {}
    fn __result__(&mut self) -> (u32, u32) {
        (self.kept, self.skipped)
    }
}

#[test]
fn the_value_crosses_the_codec_as_it_does_for_a_child() {
    let result = same(|| Skips {
        kept: 7,
        skipped: 9,
    });
    assert_eq!(result, "Ok((7, 0))");
}

/// Sums a read-only buffer and fills a writable one it was handed.
#[skprocess(runs = 1)]
struct Buffers {
    numbers: Buffer<f64>,
    out: Option<Handover<u32>>,
    filled: Vec<u32>,
}

#[skprocess]
impl Buffers {
    fn __run__(&mut self) -> Result<(), BufferError> {
        if let Some(out) = self.out.take() {
            let mut out = out.open()?;
            out.iter_mut()
                .enumerate()
                .for_each(|(i, x)| *x = i as u32 * 3);
            self.filled = out.to_vec();
        }
        Ok(())
    }
    fn __result__(&mut self) -> (f64, Vec<u32>) {
        (self.numbers.iter().sum(), self.filled.clone())
    }
}

#[test]
fn buffers_travel_in_the_value_as_they_do_to_a_child() {
    let result = same(|| Buffers {
        numbers: Buffer::from_slice(&[1.5_f64, 2.5, 4.0]).unwrap(),
        out: Some(BufferMut::<u32>::zeroed(4).unwrap().hand_over()),
        filled: Vec::new(),
    });
    assert_eq!(result, "Ok((8.0, [0, 3, 6, 9]))");
}

/// Returns a result larger than the frame limit.
#[skprocess(runs = 1)]
struct Oversized;

#[skprocess]
impl Oversized {
    fn __config__(&self, config: &mut ProcessConfig) {
        config.frame_limit = 65536;
    }
    fn __run__(&mut self) {}
    fn __result__(&mut self) -> Vec<u8> {
        vec![7; 100_000]
    }
}

#[test]
fn a_result_over_the_frame_limit_is_the_same_encode_error() {
    let error = same(|| Oversized);
    assert!(error.starts_with("Err(Encode"), "{error}");
}

/// A value whose `Deserialize` refuses: the state encodes but does not decode.
#[derive(Debug)]
struct Refuses;

impl Serialize for Refuses {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(0)
    }
}

impl<'de> Deserialize<'de> for Refuses {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(skprocess::serde::de::Error::custom("refused on arrival"))
    }
}

#[skprocess(runs = 1)]
struct Undecodable {
    field: Refuses,
}

#[skprocess]
impl Undecodable {
    fn __run__(&mut self) {}
    fn __result__(&mut self) -> u8 {
        0
    }
}

#[test]
fn a_state_that_does_not_decode_is_the_same_set_up_error() {
    let error = same(|| Undecodable { field: Refuses });
    assert!(error.starts_with("Err(ChildSetup"), "{error}");
    assert!(error.contains("refused on arrival"), "{error}");
}

/// A result whose `Serialize` panics: outside every lifecycle method, so the run dies.
#[derive(Debug)]
struct Bomb;

impl Serialize for Bomb {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        panic!("the result exploded while being encoded")
    }
}

impl<'de> Deserialize<'de> for Bomb {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Ok(Bomb)
    }
}

#[skprocess(runs = 1)]
struct Explodes;

#[skprocess]
impl Explodes {
    fn __run__(&mut self) {}
    fn __result__(&mut self) -> Bomb {
        Bomb
    }
}

#[test]
fn a_panic_outside_every_hook_is_a_crash_with_the_childs_exit_code() {
    let child = Skprocess::new(Explodes).timeout(LIMIT).run();
    let here = within(LIMIT, || InProcess::new(Explodes).run());
    for result in [child, here] {
        match result {
            Err(ProcessError::Crashed { exit, .. }) => assert_eq!(exit.code(), Some(101)),
            other => panic!("unexpected: {other:?}"),
        }
    }
}

/// Answers each number it is told with ten times it, until stopped.
#[skprocess]
struct Echo {
    answered: u32,
}

#[skprocess]
impl Echo {
    fn __run__(&mut self, cx: &mut Context) -> Result<(), ListenError> {
        match cx.listen_timeout::<u32>(Duration::from_millis(50)) {
            Ok(n) => {
                let _ = cx.tell(n * 10);
                self.answered += 1;
                Ok(())
            }
            Err(ListenError::Timeout) => Ok(()),
            Err(other) => Err(other),
        }
    }

    fn __onfinish__(&mut self, cx: &mut Context) {
        let _ = cx.tell(u32::MAX);
    }

    fn __result__(&mut self) -> u32 {
        self.answered
    }
}

#[test]
fn tell_and_listen_keep_their_order_both_ways() {
    let process = InProcess::new(Echo { answered: 0 });
    within(LIMIT, move || {
        assert!(matches!(process.tell(1u32), Err(TellError::NotStarted)));
        assert!(matches!(
            process.listen::<u32>(),
            Err(ListenError::NotStarted)
        ));
        process.start().unwrap();
        // All told first, then all read back: both queues hold many messages at once.
        for n in 0..200u32 {
            process.tell(n).unwrap();
        }
        for n in 0..200u32 {
            assert_eq!(process.listen_timeout::<u32>(LIMIT).unwrap(), n * 10);
        }
        // One at a time.
        for n in 200..210u32 {
            process.tell(n).unwrap();
            assert_eq!(process.listen::<u32>().unwrap(), n * 10);
        }
        assert!(matches!(
            process.try_listen::<u32>(),
            Err(ListenError::Timeout)
        ));
        process.stop();
        assert_eq!(process.result().unwrap(), 210);
        assert!(matches!(process.result(), Err(ProcessError::ResultTaken)));
        // What it told before it ended stays readable, then it is gone.
        assert_eq!(process.listen_timeout::<u32>(LIMIT).unwrap(), u32::MAX);
        assert!(matches!(
            process.listen_timeout::<u32>(LIMIT),
            Err(ListenError::Disconnected)
        ));
        assert!(matches!(process.tell(1u32), Err(TellError::Disconnected)));
        assert!(process.wait_timeout(LIMIT).unwrap());
        assert!(!process.is_alive());
    });
}

#[test]
fn a_message_of_the_wrong_type_is_a_decode_error_holding_its_bytes() {
    let process = InProcess::new(Echo { answered: 0 });
    within(LIMIT, move || {
        process.start().unwrap();
        process.tell(4u32).unwrap();
        match process.listen_timeout::<String>(LIMIT) {
            Err(ListenError::Decode { bytes, .. }) => assert!(!bytes.is_empty()),
            other => panic!("unexpected: {other:?}"),
        }
        process.stop();
        assert_eq!(process.result().unwrap(), 1);
    });
}

#[test]
fn a_message_over_the_frame_limit_is_the_same_encode_error() {
    let big = vec![1u8; 100_000];
    let child = Skprocess::new(Echo { answered: 0 });
    child.configure(|c| c.frame_limit = 65536).unwrap();
    child.start().unwrap();
    let child_error = child.tell(&big).unwrap_err();
    child.stop();
    child.timeout(LIMIT).result().unwrap();
    let here = InProcess::new(Echo { answered: 0 });
    here.configure(|c| c.frame_limit = 65536).unwrap();
    let here_error = within(LIMIT, move || {
        here.start().unwrap();
        let error = here.tell(&big).unwrap_err();
        here.stop();
        here.result().unwrap();
        error
    });
    assert!(matches!(here_error, TellError::Encode(_)), "{here_error:?}");
    assert_eq!(child_error.to_string(), here_error.to_string());
}

/// Listens until stopped, or until nobody is there to tell it anything.
#[skprocess]
struct Waiter;

static WAITER_FINISHED: AtomicBool = AtomicBool::new(false);

#[skprocess]
impl Waiter {
    fn __run__(&mut self, cx: &mut Context) {
        // A handle that went away closes the channel: `listen` says so (as with a parent that
        // died). Returning that error would fail the run; this type stops instead.
        if let Err(ListenError::Disconnected) = cx.listen_timeout::<u32>(Duration::from_millis(50))
        {
            cx.stop();
        }
    }

    fn __onfinish__(&mut self) {
        // In-process, a static is shared with the test: this is how it sees the end.
        WAITER_FINISHED.store(true, Ordering::SeqCst);
    }

    fn __result__(&mut self) {}
}

#[test]
fn dropping_the_handle_stops_the_lifecycle() {
    let process = InProcess::new(Waiter);
    process.start().unwrap();
    // Let it get into its loop (most likely into a `listen`) before the handle goes.
    let deadline = Instant::now() + LIMIT;
    while process.current_run() < 1 {
        assert!(Instant::now() < deadline, "the lifecycle did not start");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(process.is_alive());
    drop(process);
    while !WAITER_FINISHED.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the lifecycle did not stop");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Counts iterations until stopped.
#[skprocess]
struct Ticker {
    ticks: u64,
    finished: bool,
}

#[skprocess]
impl Ticker {
    fn __run__(&mut self) {
        self.ticks += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
    fn __onfinish__(&mut self) {
        self.finished = true;
    }
    fn __result__(&mut self) -> (u64, bool) {
        (self.ticks, self.finished)
    }
}

#[test]
fn stop_ends_an_indefinite_lifecycle_through_onfinish_and_result() {
    // A handle can be shared between threads, as a `Skprocess` can.
    fn shareable<T: Send + Sync>() {}
    shareable::<InProcess<Ticker>>();
    let process = InProcess::new(Ticker {
        ticks: 0,
        finished: false,
    });
    within(LIMIT, move || {
        assert!(!process.is_alive());
        assert!(matches!(process.wait(), Err(ProcessError::NotStarted)));
        process.start().unwrap();
        assert!(matches!(process.start(), Err(ProcessError::AlreadyStarted)));
        assert!(matches!(
            process.configure(|c| c.runs = Some(1)),
            Err(ProcessError::AlreadyStarted)
        ));
        while process.current_run() < 3 {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(!process.wait_timeout(Duration::from_millis(10)).unwrap());
        assert!(process.is_alive());
        process.stop();
        let (ticks, finished) = process.result().unwrap();
        assert!(ticks >= 3, "{ticks}");
        assert!(finished);
        process.wait().unwrap();
        assert!(!process.is_alive());
        assert_eq!(process.timers().run.num_times() as u64, ticks);
    });
}

#[test]
fn configuration_errors_come_before_anything_runs() {
    let process = InProcess::new(Ticker {
        ticks: 0,
        finished: false,
    });
    process.configure(|c| c.lives = 0).unwrap();
    assert!(matches!(
        process.start(),
        Err(ProcessError::InvalidConfig { .. })
    ));
    assert!(matches!(process.result(), Err(ProcessError::NotStarted)));
    // Still startable once the configuration is fixed.
    process.configure(|c| c.runs = Some(2)).unwrap();
    process.configure(|c| c.lives = 1).unwrap();
    assert_eq!(within(LIMIT, move || process.run().unwrap()), (2, true));
}

// ---- A user-style unit test ------------------------------------------------------------------

/// A process a user might write: keeps a running mean of the numbers it is told, replies with
/// it, and rejects non-finite input.
#[skprocess]
struct Mean {
    sum: f64,
    count: u32,
}

#[skprocess]
impl Mean {
    fn __run__(&mut self, cx: &mut Context) -> Result<(), String> {
        let x: f64 = match cx.listen_timeout(Duration::from_millis(50)) {
            Ok(x) => x,
            Err(ListenError::Timeout) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        };
        if !x.is_finite() {
            return Err(format!("not a number: {x}"));
        }
        self.sum += x;
        self.count += 1;
        println!(
            "mean after {} values: {}",
            self.count,
            self.sum / f64::from(self.count)
        );
        cx.tell(self.sum / f64::from(self.count))
            .map_err(|e| e.to_string())
    }

    fn __result__(&mut self) -> u32 {
        self.count
    }
}

#[test]
fn unit_test_of_a_run_method() {
    let mean = InProcess::new(Mean { sum: 0.0, count: 0 });
    mean.start().unwrap();
    mean.tell(2.0_f64).unwrap();
    assert_eq!(mean.listen_timeout::<f64>(LIMIT).unwrap(), 2.0);
    mean.tell(4.0_f64).unwrap();
    assert_eq!(mean.listen_timeout::<f64>(LIMIT).unwrap(), 3.0);
    mean.tell(f64::NAN).unwrap();
    // No lives left: the failure is the outcome, with the method's own message.
    let error = within(LIMIT, move || mean.result().unwrap_err());
    assert_eq!(error.section(), Some(Section::Run));
    assert_eq!(error.failure().unwrap().message(), "not a number: NaN");
}

// ---- Output capture --------------------------------------------------------------------------

/// Prints from its lifecycle methods, and panics in one of them.
#[skprocess(runs = 2)]
struct Chatty;

#[skprocess]
impl Chatty {
    fn __run__(&mut self, cx: &mut Context) {
        println!("printed by __run__ on run {}", cx.current_run());
        assert!(cx.current_run() == 0, "panicked in __run__ on run 1");
    }
    fn __result__(&mut self) {}
}

#[test]
#[ignore = "run by the_test_harness_captures_what_lifecycle_methods_print as a helper process"]
fn helper_prints_from_lifecycle_methods() {
    let error = within(LIMIT, || InProcess::new(Chatty).run().unwrap_err());
    assert_eq!(
        error.failure().unwrap().message(),
        "panicked in __run__ on run 1"
    );
}

#[test]
fn the_test_harness_captures_what_lifecycle_methods_print() {
    let run = |capture: bool| {
        let mut command = std::process::Command::new(std::env::current_exe().unwrap());
        command.args([
            "--exact",
            "helper_prints_from_lifecycle_methods",
            "--ignored",
        ]);
        if !capture {
            command.arg("--nocapture");
        }
        let output = common::output_within(&mut command, LIMIT);
        assert!(output.status.success(), "{output:?}");
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    };
    let shown = run(false);
    assert!(shown.contains("printed by __run__ on run 1"), "{shown}");
    assert!(shown.contains("panicked in __run__ on run 1"), "{shown}");
    let captured = run(true);
    assert!(captured.contains("1 passed"), "{captured}");
    assert!(!captured.contains("printed by __run__"), "{captured}");
    assert!(!captured.contains("panicked in __run__"), "{captured}");
}
