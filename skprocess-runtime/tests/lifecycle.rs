//! The engine's semantics, end to end in real child processes: order of sections, runs,
//! join_in, stop, lives, timeouts, `__error__`, timers, configuration.

use std::time::{Duration, Instant};

use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};

mod common;
use common::{LIMIT, within};

/// Records the order of its sections; fails where told to.
#[skprocess(runs = 3)]
struct Recorder {
    log: Vec<String>,
    fail_in: Option<(String, usize)>,
    stop_in: Option<(String, usize)>,
}

impl Recorder {
    fn new() -> Self {
        Recorder {
            log: Vec::new(),
            fail_in: None,
            stop_in: None,
        }
    }

    fn step(&mut self, cx: &mut Context, section: &str) -> Result<(), String> {
        let run = cx.current_run();
        self.log.push(format!("{section}{run}"));
        if self.stop_in.as_ref() == Some(&(section.to_owned(), run)) {
            cx.stop();
        }
        if self.fail_in.as_ref() == Some(&(section.to_owned(), run)) {
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

fn log(items: &str) -> Vec<String> {
    items.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn sections_run_in_order_for_each_run() {
    let result = Skprocess::new(Recorder::new())
        .timeout(LIMIT)
        .run()
        .unwrap();
    assert_eq!(
        result,
        log("pre0 run0 post0 pre1 run1 post1 pre2 run2 post2 finish3")
    );
}

#[test]
fn zero_runs_still_finish_and_produce_a_result() {
    let process = Skprocess::new(Recorder::new());
    process.configure(|c| c.runs = Some(0)).unwrap();
    assert_eq!(process.timeout(LIMIT).run().unwrap(), log("finish0"));
}

#[test]
fn a_stop_in_prerun_skips_the_rest_of_that_iteration() {
    let mut recorder = Recorder::new();
    recorder.stop_in = Some(("pre".into(), 1));
    let result = Skprocess::new(recorder).timeout(LIMIT).run().unwrap();
    assert_eq!(result, log("pre0 run0 post0 pre1 finish1"));
}

#[test]
fn a_stop_in_run_skips_postrun_and_the_count() {
    let mut recorder = Recorder::new();
    recorder.stop_in = Some(("run".into(), 0));
    let process = Skprocess::new(recorder);
    assert_eq!(
        process.timeout(LIMIT).run().unwrap(),
        log("pre0 run0 finish0")
    );
    assert_eq!(process.current_run(), 0);
}

#[test]
fn without_error_hook_an_onfinish_failure_is_the_error() {
    let mut recorder = Recorder::new();
    recorder.fail_in = Some(("finish".into(), 3));
    match Skprocess::new(recorder).timeout(LIMIT).run() {
        Err(ProcessError::Section {
            section: Section::Onfinish,
            current_run: 3,
            failure,
        }) => assert_eq!(failure.message(), "finish failed on 3"),
        other => panic!("unexpected: {other:?}"),
    }
}

/// Counts attempts; `__run__` fails on chosen runs a chosen number of times.
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
fn a_failure_with_lives_left_re_enters_the_same_run_keeping_state() {
    let flaky = Flaky {
        attempts: Vec::new(),
        failures_left: 2,
        fail_run: 1,
    };
    assert_eq!(
        Skprocess::new(flaky).timeout(LIMIT).run().unwrap(),
        FlakyOutcome::Done(vec![0, 1, 1, 1, 2, 3])
    );
}

#[test]
fn with_no_lives_left_error_decides_and_its_value_is_the_result() {
    let flaky = Flaky {
        attempts: Vec::new(),
        failures_left: 5,
        fail_run: 2,
    };
    assert_eq!(
        Skprocess::new(flaky).timeout(LIMIT).run().unwrap(),
        FlakyOutcome::GaveUp {
            attempts: vec![0, 1, 2, 2, 2],
            error: "error in __run__ on run 2: flaked, 2 left".into(),
        }
    );
}

/// `__error__` that panics.
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
fn a_failing_error_hook_reports_both_failures() {
    match Skprocess::new(BrokenHandler).timeout(LIMIT).run() {
        Err(ProcessError::ErrorHandler { cause, original }) => {
            assert_eq!(
                cause.failure().map(|f| f.message()),
                Some("the handler broke too")
            );
            assert_eq!(cause.section(), Some(Section::Error));
            assert_eq!(
                original.failure().map(|f| f.message()),
                Some("first failure")
            );
        }
        other => panic!("unexpected: {other:?}"),
    }
}

/// Hands errors on, after noting them.
#[skprocess(runs = 1)]
struct HandsOn;

#[skprocess]
impl HandsOn {
    fn __run__(&mut self) -> std::io::Result<()> {
        Err(std::io::Error::other("disk on fire"))
    }

    fn __error__(&mut self, cx: &mut Context, error: ProcessError) -> Result<u8, ProcessError> {
        let _ = cx.tell(format!("saw: {error}"));
        Err(error)
    }

    fn __result__(&mut self) -> u8 {
        0
    }
}

#[test]
fn an_error_hook_may_hand_the_error_on() {
    let process = Skprocess::new(HandsOn);
    let err = process.timeout(LIMIT).run().unwrap_err();
    assert_eq!(err.failure().unwrap().message(), "disk on fire");
    assert_eq!(
        process.listen_timeout::<String>(LIMIT).unwrap(),
        "saw: error in __run__ on run 0: disk on fire"
    );
}

/// Sleeps past its `__run__` timeout on run 1; the state before that run is what __error__ sees.
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

    fn __error__(&mut self, error: &ProcessError) -> (u32, Vec<u32>, bool) {
        (self.completed, self.scratch.clone(), error.is_timeout())
    }

    fn __result__(&mut self) -> (u32, Vec<u32>, bool) {
        (self.completed, self.scratch.clone(), false)
    }
}

#[test]
fn a_timed_out_section_is_rolled_back_to_its_start() {
    let started = Instant::now();
    let result = Skprocess::new(Overruns {
        completed: 0,
        scratch: Vec::new(),
    })
    .timeout(LIMIT)
    .run()
    .unwrap();
    assert_eq!(result, (1, vec![0], true));
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_timeout_with_lives_left_retries_the_run() {
    let process = Skprocess::new(Overruns {
        completed: 0,
        scratch: Vec::new(),
    });
    process.configure(|c| c.lives = 2).unwrap();
    // Run 1 overruns on both attempts; the second attempt exhausts the lives.
    assert_eq!(process.timeout(LIMIT).run().unwrap(), (1, vec![0], true));
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
fn join_in_ends_the_process_normally() {
    let started = Instant::now();
    let process = Skprocess::new(Bounded { count: 0 });
    let count = process.timeout(LIMIT).run().unwrap();
    assert!(count >= 1, "{count}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(process.timers().run.num_times() as u64 == count);
}

#[test]
fn timers_cover_every_defined_section_and_whole_iterations() {
    let process = Skprocess::new(Recorder::new());
    process.timeout(LIMIT).run().unwrap();
    let timers = process.timers();
    assert_eq!(timers.prerun.num_times(), 3);
    assert_eq!(timers.run.num_times(), 3);
    assert_eq!(timers.postrun.num_times(), 3);
    assert_eq!(timers.onfinish.num_times(), 1);
    assert_eq!(timers.result.num_times(), 1);
    assert_eq!(timers.error.num_times(), 0);
    let full = process.process_timer();
    assert_eq!(full.num_times(), 3);
    let parts = timers.prerun.total_time() + timers.run.total_time() + timers.postrun.total_time();
    assert!(
        (full.total_time() - parts).abs() < 1e-9,
        "{} vs {parts}",
        full.total_time()
    );
}

#[test]
fn the_timer_window_bounds_kept_samples_but_not_counts() {
    let process = Skprocess::new(Bounded { count: 0 });
    process
        .configure(|c| {
            c.join_in = None;
            c.runs = Some(50);
            c.timer_window = 8;
        })
        .unwrap();
    process.timeout(LIMIT).run().unwrap();
    let run = process.timers().run;
    assert_eq!(run.num_times(), 50);
    assert_eq!(run.times().len(), 8);
}

#[test]
fn configuration_comes_from_attributes_then_config_hook_then_handle() {
    let process = Skprocess::new(Flaky {
        attempts: Vec::new(),
        failures_left: 0,
        fail_run: 0,
    });
    let config = process.config();
    assert_eq!(config.runs, Some(4));
    assert_eq!(config.lives, 3);
    process.configure(|c| c.runs = Some(1)).unwrap();
    assert_eq!(
        process.timeout(LIMIT).run().unwrap(),
        FlakyOutcome::Done(vec![0])
    );
    assert!(matches!(
        process.configure(|c| c.runs = Some(2)),
        Err(ProcessError::AlreadyStarted)
    ));
    assert!(matches!(process.start(), Err(ProcessError::AlreadyStarted)));
}

#[test]
fn calls_before_start_are_typed_errors() {
    let process = Skprocess::new(Recorder::new());
    // The un-timed calls are the point here: they run on a helper thread, bounded.
    let process = within(LIMIT, move || {
        assert!(matches!(process.wait(), Err(ProcessError::NotStarted)));
        assert!(matches!(process.result(), Err(ProcessError::NotStarted)));
        process
    });
    assert!(matches!(process.tell(1u8), Err(TellError::NotStarted)));
    assert!(!process.is_alive());
    assert_eq!(process.pid(), None);
    assert_eq!(process.current_run(), 0);
    process.stop(); // a no-op
}
