//! Runs a built example binary in its own process group, with a deadline, and checks its output.
//!
//! The binary is the one `cargo test` already built (`target/<profile>/examples/NAME`): running
//! `cargo run` from inside `cargo test` would wait on cargo's build lock. The whole process group
//! is killed when the deadline passes, so a leaked grandchild that holds the output pipe cannot
//! hang the suite; a process left behind after the example exits fails the test.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// What one run of an example produced.
#[derive(Debug)]
pub(crate) struct Output {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Output {
    /// The stdout lines, trimmed of trailing whitespace.
    pub(crate) fn lines(&self) -> Vec<&str> {
        self.stdout.lines().map(str::trim_end).collect()
    }

    /// Panics unless some stdout line contains `needle`.
    #[track_caller]
    pub(crate) fn expect_line(&self, needle: &str) {
        assert!(
            self.stdout.lines().any(|line| line.contains(needle)),
            "no line contains {needle:?}\n{self}"
        );
    }

    /// Panics unless some stdout line contains `needle` once runs of whitespace are collapsed
    /// to one space and the line is trimmed (for padded table output).
    #[track_caller]
    pub(crate) fn expect_line_ws(&self, needle: &str) {
        let collapse = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        let needle = collapse(needle);
        assert!(
            self.stdout
                .lines()
                .any(|line| collapse(line).contains(&needle)),
            "no line contains {needle:?} (whitespace collapsed)\n{self}"
        );
    }

    /// Panics unless stdout has lines containing each needle, in this order (other lines may
    /// come between them).
    #[track_caller]
    pub(crate) fn expect_in_order(&self, needles: &[&str]) {
        let mut lines = self.stdout.lines();
        for needle in needles {
            assert!(
                lines.any(|line| line.contains(needle)),
                "no line containing {needle:?} after the previous expected line\n{self}"
            );
        }
    }

    /// The stdout lines that contain `needle`.
    pub(crate) fn lines_containing(&self, needle: &str) -> Vec<&str> {
        self.stdout.lines().filter(|l| l.contains(needle)).collect()
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--- status: {:?}\n--- stdout:\n{}--- stderr:\n{}---",
            self.status, self.stdout, self.stderr
        )
    }
}

/// The directory holding the example binaries of the profile this test was built with.
fn examples_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test binary>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary lives in target/<profile>/deps");
    profile_dir.join("examples")
}

fn pump(mut from: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = from.read_to_end(&mut buf);
        let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    rx
}

fn group_alive(pgid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence; pgid is our child's own group.
    unsafe { libc::kill(-pgid, 0) == 0 }
}

fn kill_group(pgid: i32) {
    // SAFETY: the group is the example's own (process_group(0)); never ours.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// Runs example `name` with the given deadline, returning its output. Panics (failing the test)
/// when the binary is missing, the deadline passes, the example exits unsuccessfully, or a
/// process of its group outlives it.
#[track_caller]
pub(crate) fn run(name: &str, deadline: Duration) -> Output {
    run_with(name, deadline, &[])
}

/// [`run`] with extra environment variables.
#[track_caller]
pub(crate) fn run_with(name: &str, deadline: Duration, env: &[(&str, &str)]) -> Output {
    let path = examples_dir().join(name);
    assert!(
        path.exists(),
        "example binary {} is missing: `cargo test -p examples` builds it",
        path.display()
    );
    let mut child = Command::new(&path)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
    let pgid = child.id() as i32;
    let stdout = pump(child.stdout.take().expect("stdout"));
    let stderr = pump(child.stderr.take().expect("stderr"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if started.elapsed() > deadline {
            kill_group(pgid);
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(10));
    };
    // The example has exited (or was killed). Anything left in its group is a leak: give it a
    // moment to go (children notice their parent's exit), then kill it so the pipes close.
    let leak_deadline = Instant::now() + Duration::from_secs(5);
    let mut leaked = false;
    while group_alive(pgid) {
        if Instant::now() > leak_deadline {
            leaked = true;
            kill_group(pgid);
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    let collect = |rx: mpsc::Receiver<String>| {
        rx.recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| "<output pipe held open>".to_owned())
    };
    let output = Output {
        status: status.unwrap_or_else(|| ExitStatus::from_raw(libc::SIGKILL)),
        stdout: collect(stdout),
        stderr: collect(stderr),
    };
    assert!(
        status.is_some(),
        "example {name} did not finish within {deadline:?}\n{output}"
    );
    assert!(
        !leaked,
        "example {name} left processes running 5 s after it exited\n{output}"
    );
    assert!(output.status.success(), "example {name} failed\n{output}");
    output
}
