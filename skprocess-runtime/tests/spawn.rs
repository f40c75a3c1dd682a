//! Spawning: names, helpers and trait impls in the child, generic types, children of children,
//! the modifiers, and the guarantees that a re-executed binary never runs `main` as a child.

use std::fmt;
use std::process::Command;
use std::time::{Duration, Instant};

use skprocess::prelude::*;
use skprocess::serde::{Serialize, de::DeserializeOwned};

mod common;
use common::{LIMIT, output_within, within};

fn first() -> Result<String, ProcessError> {
    #[skprocess(runs = 1)]
    struct Worker;
    #[skprocess]
    impl Worker {
        fn __run__(&mut self) {}
        fn __result__(&mut self) -> String {
            "first".into()
        }
    }
    Skprocess::new(Worker).timeout(LIMIT).run()
}

fn second() -> Result<String, ProcessError> {
    #[skprocess(runs = 1)]
    struct Worker;
    #[skprocess]
    impl Worker {
        fn __run__(&mut self) {}
        fn __result__(&mut self) -> String {
            "second".into()
        }
    }
    Skprocess::new(Worker).timeout(LIMIT).run()
}

#[test]
fn fn_local_types_of_the_same_name_do_not_collide() {
    assert_eq!(first().unwrap(), "first");
    assert_eq!(second().unwrap(), "second");
}

/// Uses a private helper, a trait impl of its own, and a trait method from std.
#[skprocess(runs = 2)]
struct Greeter {
    name: String,
    greetings: Vec<String>,
}

impl fmt::Display for Greeter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Greeter({})", self.name)
    }
}

trait Shout {
    fn shout(&self) -> String;
}

impl Shout for Greeter {
    fn shout(&self) -> String {
        self.name.to_uppercase()
    }
}

#[skprocess]
impl Greeter {
    fn greeting(&self, run: usize) -> String {
        format!("{run}: hello {} from {self}", self.shout())
    }

    fn __run__(&mut self, cx: &mut Context) {
        let greeting = self.greeting(cx.current_run());
        self.greetings.push(greeting);
    }

    fn __result__(&mut self) -> Vec<String> {
        self.greetings.clone()
    }
}

#[test]
fn helpers_and_trait_impls_work_in_the_child() {
    let result = Skprocess::new(Greeter {
        name: "ada".into(),
        greetings: Vec::new(),
    })
    .timeout(LIMIT)
    .run()
    .unwrap();
    assert_eq!(
        result,
        vec![
            "0: hello ADA from Greeter(ada)",
            "1: hello ADA from Greeter(ada)"
        ]
    );
}

/// A generic process type, registered per instantiation.
#[skprocess]
struct Repeat<T> {
    value: T,
    times: usize,
    out: Vec<T>,
}

#[skprocess]
impl<T> Repeat<T>
where
    T: Clone + Send + Serialize + DeserializeOwned + 'static,
{
    fn __config__(&self, config: &mut ProcessConfig) {
        config.runs = Some(self.times);
    }
    fn __run__(&mut self) {
        self.out.push(self.value.clone());
    }
    fn __result__(&mut self) -> Vec<T> {
        self.out.clone()
    }
}

skprocess::register!(Repeat<u32>);
skprocess::register!(Repeat<String>);

#[test]
fn generic_types_run_once_registered() {
    let numbers = Skprocess::new(Repeat {
        value: 7u32,
        times: 3,
        out: Vec::new(),
    });
    assert_eq!(numbers.timeout(LIMIT).run().unwrap(), vec![7, 7, 7]);
    let words = Skprocess::new(Repeat {
        value: "x".to_string(),
        times: 2,
        out: Vec::new(),
    });
    assert_eq!(words.timeout(LIMIT).run().unwrap(), vec!["x", "x"]);
}

/// Spawns a child of its own and returns what it computed.
#[skprocess(runs = 1)]
struct Grandparent {
    got: Vec<String>,
}

#[skprocess]
impl Grandparent {
    fn __run__(&mut self) -> Result<(), ProcessError> {
        self.got = Skprocess::new(Greeter {
            name: "grandchild".into(),
            greetings: Vec::new(),
        })
        .timeout(LIMIT)
        .run()?;
        Ok(())
    }
    fn __result__(&mut self) -> Vec<String> {
        self.got.clone()
    }
}

#[test]
fn children_can_spawn_children() {
    let got = Skprocess::new(Grandparent { got: Vec::new() })
        .timeout(LIMIT)
        .run()
        .unwrap();
    assert_eq!(got.len(), 2);
    assert!(got[0].contains("GRANDCHILD"), "{got:?}");
}

/// Waits a while, then answers.
#[skprocess(runs = 1)]
struct Slow {
    millis: u64,
}

#[skprocess]
impl Slow {
    fn __run__(&mut self) {
        std::thread::sleep(Duration::from_millis(self.millis));
    }
    fn __result__(&mut self) -> u64 {
        self.millis
    }
}

#[test]
fn run_with_a_deadline_returns_in_time_and_puts_the_process_down() {
    let process = Skprocess::new(Slow { millis: 60_000 });
    let started = Instant::now();
    let err = process
        .timeout(Duration::from_millis(300))
        .run()
        .unwrap_err();
    assert!(matches!(err, ProcessError::ResultTimeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // The section cannot notice the stop, so it is killed after the grace period.
    assert!(process.wait_timeout(LIMIT).unwrap());
    assert!(!process.is_alive());
}

#[test]
fn a_deadline_that_is_met_gives_the_result() {
    let process = Skprocess::new(Slow { millis: 10 });
    assert_eq!(process.timeout(LIMIT).run().unwrap(), 10);
}

#[test]
fn wait_timeout_reports_whether_the_process_ended_and_leaves_it_running() {
    let process = Skprocess::new(Slow { millis: 500 });
    process.start().unwrap();
    assert!(!process.wait_timeout(Duration::from_millis(10)).unwrap());
    assert!(process.is_alive());
    assert!(process.wait_timeout(LIMIT).unwrap());
    assert_eq!(process.timeout(LIMIT).result().unwrap(), 500);
}

#[test]
fn background_and_async_compose_with_deadlines() {
    // The calls without a deadline are part of the point: their waits run on a helper thread,
    // bounded.
    let process = Skprocess::new(Slow { millis: 20 });
    let handle = process.background().run();
    assert_eq!(within(LIMIT, move || handle.result()).unwrap(), 20);

    let process = Skprocess::new(Slow { millis: 60_000 });
    let handle = process
        .timeout(Duration::from_millis(200))
        .background()
        .run();
    assert!(matches!(
        handle.result(),
        Err(ProcessError::ResultTimeout { .. })
    ));

    let process = Skprocess::new(Slow { millis: 20 });
    let future = process.asynced().run();
    let value = within(LIMIT, move || futures::executor::block_on(future)).unwrap();
    assert_eq!(value, 20);

    let process = Skprocess::new(Slow { millis: 60_000 });
    let result =
        futures::executor::block_on(process.asynced().timeout(Duration::from_millis(200)).run());
    assert!(matches!(result, Err(ProcessError::ResultTimeout { .. })));
}

#[test]
fn a_malformed_child_marker_exits_without_running_main() {
    let exe = std::env::current_exe().unwrap();
    let output = output_within(
        Command::new(exe).env("SKPROCESS_CHILD", "not a marker"),
        LIMIT,
    );
    assert_eq!(output.status.code(), Some(64));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("running"), "main ran: {stdout}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("malformed"));
}

#[test]
fn a_child_that_cannot_reach_its_parent_exits_without_running_main() {
    let exe = std::env::current_exe().unwrap();
    // A well-formed marker naming this process as the parent, but a hub nobody listens on.
    let marker = format!(
        "2;skprocess.nobody.listens;{};{};{}",
        "00".repeat(32),
        "00".repeat(16),
        std::process::id()
    );
    let started = Instant::now();
    let output = output_within(Command::new(exe).env("SKPROCESS_CHILD", marker), LIMIT);
    assert_eq!(output.status.code(), Some(71), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("running"), "main ran: {stdout}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot reach its parent"));
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_child_whose_named_parent_is_gone_exits_at_once() {
    // The marker names a parent that has died (before the child could ask for its death
    // signal): nobody waits for this child, and it must not run `main`.
    let exe = std::env::current_exe().unwrap();
    let mut gone = Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    let marker = format!("2;x;{};{};{gone_pid}", "00".repeat(32), "00".repeat(16));
    let output = output_within(Command::new(exe).env("SKPROCESS_CHILD", marker), LIMIT);
    assert_eq!(output.status.code(), Some(75), "{output:?}");
}

#[test]
fn a_program_that_inherited_another_processes_marker_runs_its_main() {
    // A child's own code starts a program, which inherits the child's marker (the variable can
    // stay when `init()` ran late): the marker names a live process that is not this program's
    // parent, so the program is not a skprocess child and runs `main` (here: the test harness,
    // told to run no test).
    let exe = std::env::current_exe().unwrap();
    let marker = format!("2;x;{};{};1", "00".repeat(32), "00".repeat(16));
    let mut command = Command::new(exe);
    command
        .args(["--exact", "no_such_test"])
        .env("SKPROCESS_CHILD", marker);
    let output = output_within(&mut command, LIMIT);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("running 0 tests"));
}
