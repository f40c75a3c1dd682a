//! No orphans: a parent that dies, even by SIGKILL, takes its children with it; a terminal's
//! Ctrl+C (SIGINT to the whole process group) stops every child gracefully.
//!
//! Each test re-executes this test binary as a helper parent (the ignored test
//! `helper_parent_role`) in a process group of its own, so that signals never reach the test's
//! own group. The test process makes itself a subreaper: the helper's children, orphaned, are
//! reparented to it, so it can see them end and reap them.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use skprocess::prelude::*;

mod common;
use common::{LIMIT, reaped_within};

const CHILDREN: usize = 2;
const ROLE_ENV: &str = "SKPROCESS_TEST_HELPER_DIR";

/// Runs until stopped; records in a file that `__onfinish__` ran.
#[skprocess]
struct Endless {
    marker: PathBuf,
}

#[skprocess]
impl Endless {
    fn __run__(&mut self) {
        std::thread::sleep(Duration::from_millis(2));
    }

    fn __onfinish__(&mut self) -> std::io::Result<()> {
        std::fs::write(&self.marker, b"onfinish ran")
    }
}

/// The helper parent: starts the children, prints their pids once they run, then waits to be
/// killed. Only runs when the orphan tests start it.
#[test]
#[ignore = "run by the orphan tests as a helper process"]
fn helper_parent_role() {
    let Some(dir) = std::env::var_os(ROLE_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let processes: Vec<_> = (0..CHILDREN)
        .map(|i| {
            let process = Skprocess::new(Endless {
                marker: dir.join(format!("child-{i}")),
            });
            process.start().expect("start");
            process
        })
        .collect();
    let deadline = Instant::now() + LIMIT;
    for process in &processes {
        while process.current_run() < 1 {
            assert!(Instant::now() < deadline, "a child never ran");
            std::thread::sleep(Duration::from_millis(2));
        }
        println!("child {}", process.pid().unwrap());
    }
    println!("ready");
    std::thread::sleep(Duration::from_secs(120));
}

fn become_subreaper() {
    // SAFETY: prctl with an integer argument.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(rc, 0, "cannot become a subreaper");
}

struct Helper {
    pid: i32,
    children: Vec<i32>,
    dir: PathBuf,
}

fn start_helper(name: &str) -> Helper {
    become_subreaper();
    let dir = std::env::temp_dir().join(format!("skprocess-orphans-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_parent_role",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE_ENV, &dir)
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = helper.id() as i32;
    let stdout = helper.stdout.take().unwrap();
    std::mem::forget(helper); // reaped by hand below
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut children = Vec::new();
    let deadline = Instant::now() + LIMIT;
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the helper never became ready");
        // libtest may print "test helper_parent_role ... " on the same line first.
        if let Some(at) = line.find("child ") {
            children.push(line[at + 6..].trim().parse().unwrap());
        }
        if line.trim_end().ends_with("ready") {
            break;
        }
    }
    assert_eq!(children.len(), CHILDREN);
    Helper { pid, children, dir }
}

fn kill_leftovers(helper: &Helper) {
    for &pid in helper.children.iter().chain([&helper.pid]) {
        // SAFETY: only our own (possibly reparented) children, which we have not reaped.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        reaped_within(pid, Duration::from_secs(5));
    }
}

/// Reaps the (signalled) helper, then its children as they end: the pids of those still there
/// after `limit`. Whatever is left is killed, so that a failing test leaves nothing behind.
fn survivors_after(helper: &Helper, limit: Duration) -> Vec<i32> {
    assert!(reaped_within(helper.pid, Duration::from_secs(10)));
    let survivors = helper
        .children
        .iter()
        .copied()
        .filter(|&pid| !reaped_within(pid, limit))
        .collect();
    kill_leftovers(helper);
    survivors
}

fn markers(dir: &Path) -> usize {
    (0..CHILDREN)
        .filter(|i| dir.join(format!("child-{i}")).exists())
        .count()
}

#[test]
fn a_sigkilled_parent_takes_its_children_with_it() {
    let helper = start_helper("sigkill");
    // SAFETY: the helper is our child, in a process group of its own.
    unsafe { libc::kill(helper.pid, libc::SIGKILL) };
    let survivors = survivors_after(&helper, Duration::from_secs(5));
    assert!(
        survivors.is_empty(),
        "children {survivors:?} outlived their parent by 5 s"
    );
    let _ = std::fs::remove_dir_all(&helper.dir);
}

#[test]
fn ctrl_c_to_the_group_stops_every_child_gracefully() {
    let helper = start_helper("sigint");
    // A terminal's Ctrl+C: SIGINT to the helper's whole process group (never ours).
    // SAFETY: a signal to the helper's own group.
    unsafe { libc::kill(-helper.pid, libc::SIGINT) };
    let survivors = survivors_after(&helper, Duration::from_secs(5));
    assert!(
        survivors.is_empty(),
        "children {survivors:?} still running 5 s after Ctrl+C"
    );
    assert_eq!(
        markers(&helper.dir),
        CHILDREN,
        "not every child ran __onfinish__"
    );
    let _ = std::fs::remove_dir_all(&helper.dir);
}

#[test]
fn sigterm_to_a_child_is_a_graceful_stop() {
    let process = Skprocess::new(Endless {
        marker: std::env::temp_dir().join(format!("skprocess-sigterm-{}", std::process::id())),
    });
    process.start().unwrap();
    let deadline = Instant::now() + LIMIT;
    while process.current_run() < 1 {
        assert!(Instant::now() < deadline, "the child never ran");
        std::thread::sleep(Duration::from_millis(2));
    }
    // SAFETY: our own running child.
    unsafe { libc::kill(process.pid().unwrap() as i32, libc::SIGTERM) };
    process
        .timeout(LIMIT)
        .result()
        .expect("a stopped process delivers its result");
    let marker = std::fs::read_to_string(
        std::env::temp_dir().join(format!("skprocess-sigterm-{}", std::process::id())),
    )
    .unwrap();
    assert_eq!(marker, "onfinish ran");
}
