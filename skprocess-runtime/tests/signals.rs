//! Signals and exits: a stop wins over a failed `tell`, a graceful Ctrl+C in a plain parent,
//! and exit paths that cannot hang on stdout.
//!
//! Each test re-executes this test binary as a helper parent (the ignored test `helper`, its
//! role chosen by an environment variable) in a process group of its own, so that signals never
//! reach the test's own group. The test is a subreaper: the helper's children, orphaned, are
//! reparented to it, so it can see them end and reap them.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use skprocess::pool::{Pool, PoolError};
use skprocess::prelude::*;

mod common;
use common::reaped_within;

const ROLE: &str = "SKPROCESS_TEST_SIGNALS_ROLE";
const DIR: &str = "SKPROCESS_TEST_SIGNALS_DIR";

/// Tells its parent its run count every run (`cx.tell(..)?` ends the run), until stopped;
/// records that `__onfinish__` and `__result__` ran.
#[skprocess]
struct Teller {
    dir: PathBuf,
    runs: u64,
}

#[skprocess]
impl Teller {
    fn __run__(&mut self, cx: &mut Context) -> Result<(), TellError> {
        std::thread::sleep(Duration::from_millis(5));
        self.runs += 1;
        cx.tell(self.runs)?;
        Ok(())
    }

    fn __onfinish__(&mut self) -> std::io::Result<()> {
        std::fs::write(self.dir.join("onfinish"), b"ran")
    }

    fn __result__(&mut self) -> u64 {
        let _ = std::fs::write(self.dir.join("result"), b"ran");
        self.runs
    }
}

/// Locks stdout in its first run and never lets go (a section abandoned after its timeout, the
/// lock still held), then runs on quietly.
#[skprocess(lives = 5, timeouts(run = 0.2))]
struct StdoutHog {
    ready_sent: bool,
}

static HOGGED: AtomicBool = AtomicBool::new(false);

#[skprocess]
impl StdoutHog {
    fn __run__(&mut self, cx: &mut Context) {
        if !HOGGED.swap(true, Ordering::SeqCst) {
            println!("printed before the lock");
            let _hold = std::io::stdout().lock();
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        if !self.ready_sent {
            self.ready_sent = true;
            let _ = cx.tell(1u8);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A slow pool item. Item 0 leaves a file `started` in the helper's directory (workers
/// inherit its environment), so the helper knows the call is in flight.
fn slow_item(x: u64) -> u64 {
    if x == 0
        && let Some(dir) = std::env::var_os(DIR)
    {
        let _ = std::fs::write(PathBuf::from(dir).join("started"), b"");
    }
    std::thread::sleep(Duration::from_millis(20));
    x
}

/// The helper parent. Roles:
/// - `tell`: starts a `Teller`, prints `ready` once it runs, then waits to be killed;
/// - `graceful`: turns on `graceful_ctrl_c`, starts a `Teller` and a long pool call, prints
///   `ready`; after Ctrl+C prints what the process and the call returned, then waits;
/// - `hog`: starts a `StdoutHog`, prints `ready` once its stdout lock is held, then waits.
#[test]
#[ignore = "run by the other tests of this file as a helper process"]
fn helper() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let dir = PathBuf::from(std::env::var_os(DIR).expect("a directory"));
    match role.as_str() {
        "tell" => {
            let process = Skprocess::new(Teller { dir, runs: 0 });
            process.start().unwrap();
            let _: u64 = process.listen_timeout(Duration::from_secs(30)).unwrap();
            println!("child {}", process.pid().unwrap());
            println!("ready");
            std::thread::sleep(Duration::from_secs(60));
        }
        "graceful" => {
            skprocess::graceful_ctrl_c().unwrap();
            let process = Skprocess::new(Teller {
                dir: dir.clone(),
                runs: 0,
            });
            process.start().unwrap();
            let _: u64 = process.listen_timeout(Duration::from_secs(30)).unwrap();
            let pool = Pool::new(2).unwrap();
            let call = {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    pool.timeout(Duration::from_secs(60))
                        .map(slow_item, 0..100_000)
                })
            };
            // Ready once the call is in flight (its first item ran).
            let deadline = Instant::now() + Duration::from_secs(30);
            while !dir.join("started").exists() {
                assert!(Instant::now() < deadline, "the pool call never started");
                std::thread::sleep(Duration::from_millis(5));
            }
            println!("ready");
            match call.join().unwrap() {
                Err(PoolError::Interrupted { completed }) => {
                    println!("pool interrupted {completed}")
                }
                other => println!("pool other {:?}", other.map(|v| v.len())),
            }
            match process.timeout(Duration::from_secs(30)).result() {
                Ok(runs) => println!("process result {runs}"),
                Err(e) => println!("process error {e}"),
            }
            println!("pressed {}", skprocess::ctrl_c_pressed());
            assert_eq!(
                pool.timeout(Duration::from_secs(30))
                    .map(slow_item, 0..4)
                    .unwrap()
                    .len(),
                4
            );
            println!("pool usable");
            std::io::stdout().flush().unwrap();
            std::thread::sleep(Duration::from_secs(60));
        }
        "hog" => {
            let process = Skprocess::new(StdoutHog { ready_sent: false });
            process.start().unwrap();
            let _: u8 = process.listen_timeout(Duration::from_secs(30)).unwrap();
            println!("child {}", process.pid().unwrap());
            println!("ready");
            std::io::stdout().flush().unwrap();
            std::thread::sleep(Duration::from_secs(60));
        }
        other => panic!("unknown role {other}"),
    }
}

struct Helper {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line read so far.
    seen: std::cell::RefCell<Vec<String>>,
    dir: PathBuf,
}

impl Helper {
    fn start(role: &str) -> Helper {
        // SAFETY: prctl with integer arguments.
        assert_eq!(
            unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) },
            0
        );
        let dir =
            std::env::temp_dir().join(format!("skprocess-signals-{role}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "helper",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROLE, role)
            .env(DIR, &dir)
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let helper = Helper {
            child,
            lines,
            seen: std::cell::RefCell::default(),
            dir,
        };
        helper.expect_line("ready", Duration::from_secs(60));
        helper
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap()
    }

    /// Waits for a line containing `needle` (or finds one already read); returns it. A line
    /// is returned once.
    fn expect_line(&self, needle: &str, within: Duration) -> String {
        let mut seen = self.seen.borrow_mut();
        if let Some(at) = seen.iter().position(|l| l.contains(needle)) {
            return seen.remove(at);
        }
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => seen.push(line),
                Err(_) => panic!("no line containing {needle:?} within {within:?}: {seen:?}"),
            }
        }
    }

    fn signal(&self, signal: i32) {
        // SAFETY: the helper is our child, in a process group of its own.
        unsafe { libc::kill(self.pid(), signal) };
    }

    /// Waits for the helper to exit; its status.
    fn wait(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the helper did not exit within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        // SAFETY: the helper's own group.
        unsafe { libc::kill(-self.pid(), libc::SIGKILL) };
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn child_pid(line: &str) -> i32 {
    line[line.find("child ").unwrap() + 6..]
        .trim()
        .parse()
        .unwrap()
}

fn exists(dir: &Path, name: &str) -> bool {
    dir.join(name).exists()
}

#[test]
fn a_tell_that_finds_the_parent_gone_is_a_stop_and_onfinish_runs() {
    let mut helper = Helper::start("tell");
    // The parent dies of SIGINT (it installed no handler); only the parent gets it, so the
    // child learns of it from its next tell.
    helper.signal(libc::SIGINT);
    let status = helper.wait(Duration::from_secs(30));
    assert_eq!(status.signal(), Some(libc::SIGINT));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(exists(&helper.dir, "onfinish") && exists(&helper.dir, "result")) {
        assert!(
            Instant::now() < deadline,
            "__onfinish__ ran: {}, __result__ ran: {}",
            exists(&helper.dir, "onfinish"),
            exists(&helper.dir, "result")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn graceful_ctrl_c_stops_children_and_interrupts_pool_calls_then_a_second_one_ends_the_program() {
    let mut helper = Helper::start("graceful");
    helper.signal(libc::SIGINT);
    let line = helper.expect_line("pool ", Duration::from_secs(30));
    assert!(line.contains("pool interrupted "), "{line}");
    let completed: usize = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(completed < 100_000, "{line}");
    let line = helper.expect_line("process ", Duration::from_secs(30));
    assert!(line.contains("process result "), "{line}");
    assert!(exists(&helper.dir, "onfinish"));
    helper.expect_line("pressed true", Duration::from_secs(10));
    helper.expect_line("pool usable", Duration::from_secs(60));
    // A second Ctrl+C ends the program the usual way.
    helper.signal(libc::SIGINT);
    let status = helper.wait(Duration::from_secs(30));
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
}

#[test]
fn a_child_whose_stdout_lock_is_held_forever_still_exits_after_its_parent_died() {
    let mut helper = Helper::start("hog");
    // The line the child printed before taking the lock reached the shared stdout.
    helper.expect_line("printed before the lock", Duration::from_secs(10));
    let child = child_pid(&helper.expect_line("child ", Duration::from_secs(10)));
    helper.signal(libc::SIGKILL);
    helper.wait(Duration::from_secs(10));
    // Gone within 4 s: the 2 s grace after the parent is gone, then an exit that flushes from
    // a helper thread and does not wait for the lock more than 200 ms.
    let gone = reaped_within(child, Duration::from_secs(4));
    if !gone {
        // SAFETY: our own reparented child; leave nothing behind.
        unsafe { libc::kill(child, libc::SIGKILL) };
    }
    assert!(gone, "the child still runs 4 s after its parent died");
}
