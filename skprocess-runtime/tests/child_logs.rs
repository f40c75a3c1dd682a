//! Logs from children with the `log` feature: records that a process or a pool task logs reach
//! the parent's logger (env_logger here, writing to a buffer) at the parent's level, with the
//! child's pid and process type, from any thread, including right before the child exits.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};

use log::kv::{Key, VisitSource};
use skprocess::pool::Pool;
use skprocess::prelude::*;

mod common;
use common::LIMIT;

/// Everything the parent's logger wrote.
static CAPTURED: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// What env_logger writes to: the buffer above.
struct Capture;

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        CAPTURED.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A record as the parent's logger saw it.
#[derive(Debug, Clone)]
struct Line {
    level: String,
    target: String,
    message: String,
    file: String,
    kvs: BTreeMap<String, String>,
}

/// Installs the parent's logger (once): env_logger at `info`, one line per record with every
/// field the test looks at.
fn logger() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        env_logger::Builder::new()
            .filter_level(log::LevelFilter::Info)
            .target(env_logger::Target::Pipe(Box::new(Capture)))
            .format(|buf, record| {
                struct Kvs(Vec<String>);
                impl<'kvs> VisitSource<'kvs> for Kvs {
                    fn visit_pair(
                        &mut self,
                        key: Key<'kvs>,
                        value: log::kv::Value<'kvs>,
                    ) -> Result<(), log::kv::Error> {
                        self.0.push(format!("{key}={value}"));
                        Ok(())
                    }
                }
                let mut kvs = Kvs(Vec::new());
                record.key_values().visit(&mut kvs).unwrap();
                writeln!(
                    buf,
                    "{}\x1f{}\x1f{}\x1f{}:{}\x1f{}",
                    record.level(),
                    record.target(),
                    record.args(),
                    record.file().unwrap_or("?"),
                    record.line().unwrap_or(0),
                    kvs.0.join("\x1e"),
                )
            })
            .init();
    });
}

/// The records whose message contains `tag`.
fn lines_with(tag: &str) -> Vec<Line> {
    let captured = String::from_utf8(CAPTURED.lock().unwrap().clone()).unwrap();
    captured
        .lines()
        .filter(|line| line.contains(tag))
        .map(|line| {
            let parts: Vec<&str> = line.split('\x1f').collect();
            assert_eq!(parts.len(), 5, "{line:?}");
            Line {
                level: parts[0].to_owned(),
                target: parts[1].to_owned(),
                message: parts[2].to_owned(),
                file: parts[3].to_owned(),
                kvs: parts[4]
                    .split('\x1e')
                    .filter(|kv| !kv.is_empty())
                    .map(|kv| {
                        let (key, value) = kv.split_once('=').unwrap();
                        (key.to_owned(), value.to_owned())
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Logs in every child of this binary, before any user code: the forwarder is already there.
#[child_init]
fn announce() {
    log::info!(target: "hooks", "hook ran in {}", std::process::id());
}

/// Whether a hook's own logger was refused (the forwarder is the child's logger already).
static OWN_LOGGER_REFUSED: AtomicBool = AtomicBool::new(false);

#[child_init]
fn try_own_logger() {
    let refused = env_logger::Builder::new().try_init().is_err();
    OWN_LOGGER_REFUSED.store(refused, Ordering::Relaxed);
}

#[skprocess(runs = 2)]
struct Chatty {
    tag: String,
}

#[skprocess]
impl Chatty {
    fn __run__(&mut self, cx: &mut Context) {
        let run = cx.current_run();
        log::warn!(run; "{} warn {run}", self.tag);
        log::info!("{} info {run}", self.tag);
        log::debug!("{} debug {run}", self.tag);
    }

    fn __result__(&mut self) -> (u32, String, bool, bool) {
        // The parent's level, mirrored: debug records are not even formatted here.
        (
            std::process::id(),
            log::max_level().to_string(),
            log::log_enabled!(log::Level::Debug),
            OWN_LOGGER_REFUSED.load(Ordering::Relaxed),
        )
    }
}

#[test]
fn a_process_forwards_what_is_at_or_above_the_parents_level() {
    logger();
    let (pid, max_level, debug_enabled, own_logger_refused) = Skprocess::new(Chatty {
        tag: "chatty-process".into(),
    })
    .timeout(LIMIT)
    .run()
    .unwrap();
    assert_eq!((max_level.as_str(), debug_enabled), ("INFO", false));
    // A hook cannot put another logger in place of the forwarder; records still arrive.
    assert!(own_logger_refused);
    let lines = lines_with("chatty-process");
    let messages: Vec<&str> = lines.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "chatty-process warn 0",
            "chatty-process info 0",
            "chatty-process warn 1",
            "chatty-process info 1"
        ]
    );
    let process = skprocess::registered_name::<Chatty, _>();
    for line in &lines {
        assert_eq!(line.target, "child_logs", "{line:?}");
        assert!(
            line.file
                .starts_with("skprocess-runtime/tests/child_logs.rs:")
                || line.file.starts_with("tests/child_logs.rs:"),
            "{line:?}"
        );
        assert_eq!(line.kvs["pid"], pid.to_string(), "{line:?}");
        assert_eq!(line.kvs["process"], process, "{line:?}");
    }
    assert_eq!(lines[0].level, "WARN");
    assert_eq!(lines[1].level, "INFO");
    // The child's own key-values follow.
    assert_eq!(lines[2].kvs["run"], "1");
    // The hook's record, before any of the process's.
    let hooks = lines_with(&format!("hook ran in {pid}"));
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].target, "hooks");
    assert_eq!(hooks[0].kvs["pid"], pid.to_string());
}

fn pool_task(item: u32) -> u32 {
    log::warn!(item; "pool-task warn {item}");
    log::info!("pool-task info {item}");
    log::debug!("pool-task debug {item}");
    std::process::id()
}

#[test]
fn a_pool_task_forwards_with_the_workers_pid() {
    logger();
    let pool = Pool::new(2).unwrap();
    let pids = pool.timeout(LIMIT).map(pool_task, 0..10).unwrap();
    // The call returned: every record its tasks logged was re-emitted already.
    let lines = lines_with("pool-task");
    assert_eq!(lines.len(), 20, "{lines:#?}");
    for item in 0..10u32 {
        let of_item: Vec<&Line> = lines
            .iter()
            .filter(|l| l.message.ends_with(&format!(" {item}")))
            .collect();
        let levels: Vec<&str> = of_item.iter().map(|l| l.level.as_str()).collect();
        assert_eq!(levels, ["WARN", "INFO"], "item {item}");
        for line in of_item {
            assert_eq!(line.kvs["pid"], pids[item as usize].to_string());
            assert_eq!(line.kvs["process"], "pool worker");
        }
    }
    assert!(lines.iter().all(|l| !l.message.contains("debug")));
}

#[skprocess(runs = 1)]
struct Threads {
    threads: usize,
    each: usize,
}

#[skprocess]
impl Threads {
    fn __run__(&mut self) {
        let each = self.each;
        let handles: Vec<_> = (0..self.threads)
            .map(|t| {
                std::thread::spawn(move || {
                    for i in 0..each {
                        log::info!("from-threads {t} {i}");
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
    }
}

#[test]
fn records_from_every_thread_of_the_child_arrive_in_each_threads_order() {
    logger();
    // A child logging in a tight loop: held back by the socket when the parent lags, never
    // buffered without bound. SKPROCESS_LOG_RECORDS sets how many records per thread.
    let each: usize = std::env::var("SKPROCESS_LOG_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    Skprocess::new(Threads { threads: 4, each })
        .timeout(LIMIT)
        .run()
        .unwrap();
    let lines = lines_with("from-threads");
    assert_eq!(lines.len(), 4 * each);
    let mut next = [0usize; 4];
    for line in &lines {
        let mut words = line.message.split(' ').skip(1);
        let thread: usize = words.next().unwrap().parse().unwrap();
        let index: usize = words.next().unwrap().parse().unwrap();
        assert_eq!(index, next[thread], "thread {thread}");
        next[thread] += 1;
    }
}

#[skprocess(runs = 1)]
struct LastWords {
    exit_code: Option<i32>,
}

#[skprocess]
impl LastWords {
    fn __run__(&mut self) {
        if let Some(code) = self.exit_code {
            log::error!("last-words before exit {code}");
            std::process::exit(code);
        }
    }

    fn __result__(&mut self) -> u32 {
        log::warn!("last-words in __result__");
        std::process::id()
    }
}

#[test]
fn records_logged_right_before_the_child_ends_arrive() {
    logger();
    let pid = Skprocess::new(LastWords { exit_code: None })
        .timeout(LIMIT)
        .run()
        .unwrap();
    let lines = lines_with("last-words in __result__");
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].kvs["pid"], pid.to_string());

    let error = Skprocess::new(LastWords { exit_code: Some(7) })
        .timeout(LIMIT)
        .run()
        .unwrap_err();
    assert!(
        matches!(&error, ProcessError::Crashed { exit, .. } if exit.code() == Some(7)),
        "{error:?}"
    );
    assert_eq!(lines_with("last-words before exit 7").len(), 1);
}
