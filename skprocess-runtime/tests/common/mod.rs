//! Helpers shared by the integration tests (`mod common;` in each test crate).

// Each test crate uses some of these, not all.
#![allow(dead_code)]

use std::io::Read;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long any wait in these tests may take: generous, for slow shared machines. A hang fails
/// the test instead of stalling CI.
pub(crate) const LIMIT: Duration = Duration::from_secs(60);

/// Runs `f` on a helper thread and returns its value; panics if it has not returned within
/// `limit` (a panic in `f` is passed on). Bounds the calls that take no deadline of their own.
pub(crate) fn within<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let helper = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("no answer within {limit:?}: a hang"),
        Err(mpsc::RecvTimeoutError::Disconnected) => match helper.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the helper ended without an answer"),
        },
    }
}

/// Waits, reaping, until `pid` (a child of this process, directly or by reparenting to it as a
/// subreaper) has exited; returns whether it did within `limit`.
pub(crate) fn reaped_within(pid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        // SAFETY: waitpid on a process that is our child (directly, or by reparenting).
        let rc = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        if rc == pid
            || (rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD))
        {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `command.output()`, waiting at most `limit` for the command to exit: past that, it is killed
/// (with its process group, if the command was started as the leader of its own) and the test
/// fails.
pub(crate) fn output_within(command: &mut Command, limit: Duration) -> Output {
    // As `output()` does: stdin from nowhere, stdout and stderr captured.
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let pid = pid as i32;
            // SAFETY: our own child, not reaped yet (its waiter is still waiting); a group it
            // leads holds only what it started.
            unsafe {
                let target = if libc::getpgid(pid) == pid { -pid } else { pid };
                libc::kill(target, libc::SIGKILL);
            }
            panic!("the command did not exit within {limit:?}");
        }
    }
}

/// The environment variable that names the socket a probe helper connects to.
pub(crate) const PROBE_ENV: &str = "SKPROCESS_TEST_PROBE";

/// The body of a probe helper test (an ignored test that [`probe`] runs): connects to the
/// abstract socket named in [`PROBE_ENV`] and prints what it got, `probe: hello` if the peer
/// sent a first byte, `closed` if it closed the connection without one, `silent` if it did
/// neither within 10 s. Does nothing when the variable is not set.
pub(crate) fn probe_helper() {
    let Ok(name) = std::env::var(PROBE_ENV) else {
        return;
    };
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let mut stream = UnixStream::connect_addr(&addr).expect("the socket accepts connections");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut byte = [0u8; 1];
    let verdict = match stream.read(&mut byte) {
        Ok(0) => "closed",
        Ok(_) => "hello",
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => "closed",
        Err(_) => "silent",
    };
    println!("probe: {verdict}");
}

/// Runs the probe helper test `helper` of this test binary against the socket `name`, as the
/// user `as_user` (needs root) or as this one; what it saw.
pub(crate) fn probe(helper: &str, name: &str, as_user: Option<u32>) -> String {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", helper, "--ignored", "--nocapture"])
        .env(PROBE_ENV, name);
    if let Some(uid) = as_user {
        command.uid(uid).gid(uid);
    }
    let output = output_within(&mut command, LIMIT);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("probe: "))
        .unwrap_or_else(|| panic!("no probe line: {output:?}"))
        .to_owned()
}

/// Fails unless this test runs as root (it starts a peer as another user).
pub(crate) fn assert_root() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    assert!(
        root,
        "this test starts a peer as another user (nobody, 65534), which needs root; CI runs \
         as root"
    );
}
