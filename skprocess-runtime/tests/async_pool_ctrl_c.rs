//! Ctrl+C and `AsyncPool::with_workers`, with `graceful_ctrl_c` on: a SIGINT to the whole
//! process group (what a terminal sends) ends the call in progress with `Interrupted`, its
//! tasks are cancelled in their workers, the workers themselves keep running (the same pids),
//! and the pool serves the next call. Needs the `tokio` feature.
//!
//! The test re-executes this binary as a helper (the ignored test `helper`) in a process group
//! of its own, so that the SIGINT reaches only the helper and its workers.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use skprocess::pool::{AsyncPool, AsyncPoolError};

mod common;
use common::LIMIT;

const ROLE: &str = "SKPROCESS_ASYNC_CTRL_C_HELPER";

async fn nap(x: u64) -> u32 {
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _ = x;
    std::process::id()
}

#[test]
#[ignore = "run by `ctrl_c_interrupts_the_call_and_keeps_the_workers` as a helper process"]
fn helper() {
    if std::env::var_os(ROLE).is_none() {
        return;
    }
    skprocess::graceful_ctrl_c().expect("the handler");
    let pool = AsyncPool::with_workers(2, 8).expect("the workers");
    let before = pool.block_on(pool.map(nap, 0..8u64)).expect("a first call");
    let mut workers = pool.pids();
    workers.sort_unstable();
    println!("workers {workers:?}");
    // Long enough (4,000 tasks of 50 ms, 8 at a time: 25 s) for the SIGINT to land in it.
    let caller = pool.clone();
    let call = std::thread::spawn(move || caller.block_on(caller.map(nap, 0..4_000u64)));
    std::thread::sleep(Duration::from_millis(300));
    println!("ready");
    match call.join().expect("the call") {
        Err(AsyncPoolError::Interrupted { completed }) => println!("interrupted {completed}"),
        other => println!("other {:?}", other.map(|v| v.len())),
    }
    println!("pressed {}", skprocess::ctrl_c_pressed());
    let mut after = pool.pids();
    after.sort_unstable();
    println!("workers {after:?}");
    let again = pool
        .block_on(pool.map(nap, 0..16u64))
        .expect("the next call");
    println!("usable {}", again.len() + before.len());
}

#[test]
fn ctrl_c_interrupts_the_call_and_keeps_the_workers() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, "1")
        .process_group(0)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the helper");
    let group = child.id() as i32;
    let (tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let mut next = |prefix: &str| -> String {
        loop {
            match lines.recv_timeout(LIMIT) {
                Ok(line) => {
                    seen.push(line.clone());
                    if let Some(at) = line.find(prefix) {
                        return line[at..].to_owned();
                    }
                }
                Err(_) => {
                    // SAFETY: kill(2) on the helper's own group.
                    unsafe { libc::kill(-group, libc::SIGKILL) };
                    panic!("no `{prefix}` line from the helper; it said: {seen:?}");
                }
            }
        }
    };
    let workers = next("workers ");
    next("ready");
    // What a terminal's Ctrl+C does: SIGINT to every process of the foreground group.
    // SAFETY: kill(2) on the helper's own group.
    unsafe { libc::kill(-group, libc::SIGINT) };
    let outcome = next("interrupted ").replace("interrupted ", "");
    let completed: usize = outcome.parse().expect("a count");
    assert!(completed < 4_000, "the call ran to its end: {completed}");
    assert_eq!(next("pressed "), "pressed true");
    // The same workers: Ctrl+C cancelled their tasks and left them running.
    assert_eq!(next("workers "), workers);
    assert_eq!(next("usable "), "usable 24");
    let deadline = std::time::Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("the helper's status") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            // SAFETY: kill(2) on the helper's own group.
            unsafe { libc::kill(-group, libc::SIGKILL) };
            panic!("the helper did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
}
