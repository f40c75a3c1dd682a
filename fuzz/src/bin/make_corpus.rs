//! Writes the seed corpora of the fuzz targets under `fuzz/corpus/<target>/`: small, valid
//! inputs of each decoder, so that the fuzzer starts from the deep end of every format.
//!
//! ```text
//! cd fuzz && cargo +nightly run --bin make_corpus
//! ```
//!
//! Public types are encoded with the runtime's own codec (`skprocess::__testing::encode`); the
//! crate-private messages (`StartMessage`, `ProcessStart`, the `Task` and `Results` frames) are
//! built by hand from the layouts in `skprocess-runtime/src/wire/protocol.rs`, and checked
//! against mirror types decoded with the same codec. Rerunning it rewrites the seeds it owns
//! (their names start with `seed-`) and leaves the inputs the fuzzer found alone.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use skprocess::__testing::{decode, encode};
use skprocess::pool::{Payload, TaskError};
use skprocess::serde::{Deserialize, Serialize};
use skprocess::{
    ExitInfo, Failure, ProcessConfig, ProcessError, ProcessTimers, Section, TimeoutConfig,
};

// ----- the wire, by hand -------------------------------------------------------------------

/// Frame kinds (`Kind` in protocol.rs).
mod kind {
    pub(crate) const HELLO: u8 = 1;
    pub(crate) const AUTH: u8 = 2;
    pub(crate) const WELCOME: u8 = 3;
    pub(crate) const STATUS: u8 = 4;
    pub(crate) const START: u8 = 10;
    pub(crate) const TELL: u8 = 11;
    pub(crate) const STOP: u8 = 12;
    pub(crate) const READY: u8 = 13;
    pub(crate) const RESULT: u8 = 20;
    pub(crate) const ERROR: u8 = 21;
    pub(crate) const SETUP_FAILED: u8 = 22;
    pub(crate) const TASK: u8 = 30;
    pub(crate) const RESULTS: u8 = 31;
    pub(crate) const SKIPPED: u8 = 32;
}

/// `u32 payload length (LE) | u8 kind | payload`.
fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("a small payload");
    let mut out = len.to_le_bytes().to_vec();
    out.push(kind);
    out.extend_from_slice(payload);
    out
}

/// The codec's `str` / `bytes`: `u64` length, then the bytes.
fn bytes_field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Encodes a public value with the runtime's codec.
fn enc<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    encode(value).expect("the codec encodes the seed values")
}

/// `StartMessage { entry: String, identity: bytes, frame_limit: u32, body: bytes,
/// log_levels: { log: u8, tracing: u8 } }` (levels `info` and off).
fn start_message(entry: &str, identity: &[u8], frame_limit: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    bytes_field(&mut out, entry.as_bytes());
    bytes_field(&mut out, identity);
    out.extend_from_slice(&frame_limit.to_le_bytes());
    bytes_field(&mut out, body);
    out.extend_from_slice(&[3, 0]);
    out
}

/// `ProcessStart { config: ProcessConfig, state: bytes }`.
fn process_start(config: &ProcessConfig, state: &[u8]) -> Vec<u8> {
    let mut out = enc(config);
    bytes_field(&mut out, state);
    out
}

/// A `Task` payload: `seq u64 | offset i64 | count u32 | count × len u32 | items`.
fn task_payload(seq: u64, offset: i64, items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = seq.to_le_bytes().to_vec();
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&(items.len() as u32).to_le_bytes());
    for item in items {
        out.extend_from_slice(&(item.len() as u32).to_le_bytes());
    }
    for item in items {
        out.extend_from_slice(item);
    }
    out
}

/// A `Results` payload: `seq u64 | first u32 | count u32 | count × Result<O, TaskError>`.
fn results_payload(seq: u64, first: u32, results: &[Vec<u8>]) -> Vec<u8> {
    let mut out = seq.to_le_bytes().to_vec();
    out.extend_from_slice(&first.to_le_bytes());
    out.extend_from_slice(&(results.len() as u32).to_le_bytes());
    for result in results {
        out.extend_from_slice(result);
    }
    out
}

// ----- mirrors of the crate-private messages, to check the hand-built bytes ------------------

/// Reads a codec `bytes` field.
fn de_bytes<'de, D: skprocess::serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    struct V;
    impl skprocess::serde::de::Visitor<'_> for V {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("bytes")
        }
        fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
        fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
    }
    d.deserialize_bytes(V)
}

#[derive(Deserialize)]
#[serde(crate = "skprocess::serde")]
#[allow(dead_code, reason = "only decoded, to check the layout")]
struct StartMirror {
    entry: String,
    #[serde(deserialize_with = "de_bytes")]
    identity: Vec<u8>,
    frame_limit: u32,
    #[serde(deserialize_with = "de_bytes")]
    body: Vec<u8>,
    log_levels: (u8, u8),
}

#[derive(Deserialize)]
#[serde(crate = "skprocess::serde")]
#[allow(dead_code, reason = "only decoded, to check the layout")]
struct ProcessStartMirror {
    config: ProcessConfig,
    #[serde(deserialize_with = "de_bytes")]
    state: Vec<u8>,
}

// ----- values --------------------------------------------------------------------------------

fn failure_error() -> Failure {
    Failure::msg("boom: the input was odd")
}

fn failure_panic() -> Failure {
    Failure::panic(
        "attempt to divide by zero".to_owned(),
        Some("src/main.rs:12:5".to_owned()),
    )
}

fn process_errors() -> Vec<(&'static str, ProcessError)> {
    vec![
        (
            "section",
            ProcessError::Section {
                section: Section::Run,
                current_run: 3,
                failure: failure_panic(),
            },
        ),
        (
            "timeout",
            ProcessError::Timeout {
                section: Section::Prerun,
                timeout: Duration::from_millis(1500),
                current_run: 0,
            },
        ),
        (
            "error-handler",
            ProcessError::ErrorHandler {
                cause: Box::new(ProcessError::Section {
                    section: Section::Error,
                    current_run: 1,
                    failure: failure_error(),
                }),
                original: Box::new(ProcessError::Timeout {
                    section: Section::Run,
                    timeout: Duration::new(2, 5),
                    current_run: 1,
                }),
            },
        ),
        (
            "crashed-signal",
            ProcessError::Crashed {
                pid: 4242,
                exit: ExitInfo::Signal {
                    number: 9,
                    name: "SIGKILL".to_owned(),
                },
                current_run: 7,
            },
        ),
        (
            "decode",
            ProcessError::Decode {
                what: "the result".to_owned(),
                message: "unexpected end of input".to_owned(),
            },
        ),
        (
            "child-setup",
            ProcessError::ChildSetup {
                message: "no such entry".to_owned(),
            },
        ),
        ("result-taken", ProcessError::ResultTaken),
    ]
}

fn task_errors() -> Vec<(&'static str, TaskError)> {
    vec![
        ("failed", TaskError::Failed(failure_error())),
        ("failed-panic", TaskError::Failed(failure_panic())),
        (
            "process",
            TaskError::Process(ProcessError::Crashed {
                pid: 17,
                exit: ExitInfo::Code(3),
                current_run: 0,
            }),
        ),
        (
            "too-large",
            TaskError::TooLarge {
                what: Payload::Output,
                len: 1 << 31,
                limit: 1 << 30,
            },
        ),
        (
            "encode",
            TaskError::Encode("cannot encode a closure".to_owned()),
        ),
        (
            "decode",
            TaskError::Decode("invalid UTF-8 in a string".to_owned()),
        ),
    ]
}

/// Timers as a finished process sends them: a window, samples in some sections.
fn timers_with_samples() -> ProcessTimers {
    let timers = ProcessTimers::default();
    for timer in [&timers.run, &timers.full_run] {
        timer.set_max_times(Some(4)).expect("a window of 4");
        for t in [0.25, 0.5, 0.125, 1.0, 0.75] {
            timer.add_time(t);
        }
    }
    timers.prerun.add_time(0.001);
    timers.result.add_time(2.0);
    timers
}

fn full_config() -> ProcessConfig {
    let mut config = ProcessConfig::default();
    config.runs = Some(10);
    config.join_in = Some(Duration::new(30, 500_000_000));
    config.lives = 3;
    let mut timeouts = TimeoutConfig::default();
    timeouts.prerun = Some(Duration::from_millis(100));
    timeouts.run = Some(Duration::from_secs(5));
    timeouts.postrun = Some(Duration::from_micros(1));
    timeouts.onfinish = Some(Duration::from_secs(1));
    timeouts.result = Some(Duration::from_secs(2));
    timeouts.error = Some(Duration::from_nanos(999_999_999));
    config.timeouts = timeouts;
    config.timer_window = 5;
    config.frame_limit = 64 * 1024;
    config
}

// ----- the corpora -----------------------------------------------------------------------------

type Seeds = Vec<(String, Vec<u8>)>;

fn seed(name: &str, bytes: Vec<u8>) -> (String, Vec<u8>) {
    (name.to_owned(), bytes)
}

fn handshake_payloads() -> ([u8; 32], Vec<u8>, [u8; 32]) {
    let hello = [0x11; 32];
    // token[16] | client_nonce[32] | mac[32]: the right length, not the right MAC.
    let mut auth = vec![1u8; 16];
    auth.extend_from_slice(&[0x22; 32]);
    auth.extend_from_slice(&[0x33; 32]);
    let welcome = [0x44; 32];
    (hello, auth, welcome)
}

fn frames() -> Seeds {
    let (hello, auth, welcome) = handshake_payloads();
    let body = process_start(&ProcessConfig::default(), &enc(&(1u32, "state")));
    let start = start_message("demo::Counter", &[0xAB; 32], 1 << 30, &body);
    let task = task_payload(1, -4096, &[enc(&7u64), enc(&9u64)]);
    let results = results_payload(1, 0, &[enc(&Ok::<String, TaskError>("a".to_owned()))]);
    let mut session = Vec::new();
    for (kind, payload) in [
        (kind::HELLO, &hello[..]),
        (kind::AUTH, &auth[..]),
        (kind::WELCOME, &welcome[..]),
        (kind::STATUS, &[][..]),
        (kind::START, &start[..]),
        (kind::READY, &[][..]),
        (kind::TELL, &enc("ping")[..]),
        (kind::STOP, &[][..]),
    ] {
        session.extend(frame(kind, payload));
    }
    let mut result = enc(&ProcessTimers::default());
    result.extend(enc("done"));
    session.extend(frame(kind::RESULT, &result));
    let mut pool = Vec::new();
    pool.extend(frame(kind::TASK, &task));
    pool.extend(frame(kind::RESULTS, &results));
    pool.extend(frame(kind::SKIPPED, &2u64.to_le_bytes()));
    let mut error = enc(&ProcessTimers::default());
    error.extend(enc(&ProcessError::ResultTaken));
    vec![
        seed("seed-hello", frame(kind::HELLO, &hello)),
        seed("seed-auth", frame(kind::AUTH, &auth)),
        seed("seed-empty-frames", {
            let mut v = frame(kind::STATUS, &[]);
            v.extend(frame(kind::READY, &[]));
            v.extend(frame(kind::STOP, &[]));
            v
        }),
        seed("seed-tell", frame(kind::TELL, &enc("hello"))),
        seed("seed-session", session),
        seed("seed-pool", pool),
        seed("seed-error", frame(kind::ERROR, &error)),
        seed(
            "seed-setup-failed",
            frame(kind::SETUP_FAILED, &enc("no entry `x`")),
        ),
        // Over the small limit (256), under the others.
        seed("seed-large-tell", frame(kind::TELL, &enc(&"x".repeat(300)))),
        // Two frames, the second cut short.
        seed("seed-truncated", {
            let mut v = frame(kind::TELL, &enc("a"));
            let mut cut = frame(kind::TELL, &enc("abcdef"));
            cut.truncate(9);
            v.extend(cut);
            v
        }),
    ]
}

fn handshake() -> Seeds {
    let (hello, auth, welcome) = handshake_payloads();
    let cat = |parts: &[Vec<u8>]| parts.concat();
    vec![
        // The server's view of a client: one Auth frame.
        seed("seed-auth", frame(kind::AUTH, &auth)),
        // The client's view of a server: Hello, then Welcome.
        seed(
            "seed-hello-welcome",
            cat(&[frame(kind::HELLO, &hello), frame(kind::WELCOME, &welcome)]),
        ),
        seed("seed-hello", frame(kind::HELLO, &hello)),
        seed(
            "seed-hello-auth-welcome",
            cat(&[
                frame(kind::HELLO, &hello),
                frame(kind::AUTH, &auth),
                frame(kind::WELCOME, &welcome),
            ]),
        ),
        seed(
            "seed-auth-short",
            frame(kind::AUTH, &auth[..auth.len() - 1]),
        ),
        seed("seed-welcome-first", frame(kind::WELCOME, &welcome)),
        seed(
            "seed-hello-status",
            cat(&[frame(kind::HELLO, &hello), frame(kind::STATUS, &[])]),
        ),
        seed("seed-auth-oversized", frame(kind::AUTH, &[5; 257])),
    ]
}

fn start() -> Seeds {
    let state = enc(&(7u32, "counter", vec![1u64, 2, 3]));
    let default_body = process_start(&ProcessConfig::default(), &state);
    let full_body = process_start(&full_config(), &[]);
    let seeds = vec![
        seed(
            "seed-process-default",
            start_message("demo::Counter", &[0xAB; 32], 1 << 30, &default_body),
        ),
        seed(
            "seed-process-full-config",
            start_message("demo::Batch", &[0x01; 32], 64 * 1024, &full_body),
        ),
        seed(
            "seed-worker",
            start_message("skprocess::pool::worker", &[0xCD; 32], 1 << 20, &[]),
        ),
        seed("seed-empty", start_message("", &[], 0, &[])),
        seed("seed-process-start-default", default_body.clone()),
        seed("seed-process-start-full", full_body.clone()),
        seed(
            "seed-process-start-runs-zero",
            process_start(
                &{
                    let mut c = ProcessConfig::default();
                    c.runs = Some(0);
                    c.timeouts.run = Some(Duration::from_millis(10));
                    c
                },
                &enc("s"),
            ),
        ),
        seed(
            "seed-process-unicode-entry",
            start_message("démo::Zähler", &[0; 8], u32::MAX, &default_body),
        ),
    ];
    for (name, bytes) in &seeds {
        let ok = if name.starts_with("seed-process-start") {
            decode::<ProcessStartMirror>(bytes).is_ok()
        } else {
            match decode::<StartMirror>(bytes) {
                Ok(start) => {
                    start.body.is_empty() || decode::<ProcessStartMirror>(&start.body).is_ok()
                }
                Err(_) => false,
            }
        };
        assert!(ok, "start seed {name} does not decode");
    }
    seeds
}

fn task() -> Seeds {
    let text = |s: &str, b: &[u8]| enc(&(s.to_owned(), b.to_vec()));
    let opts = |v: &[Option<i32>]| enc(&v.to_vec());
    vec![
        seed("seed-u64-one", task_payload(1, 0, &[enc(&42u64)])),
        seed(
            "seed-u64-three",
            task_payload(2, -4096, &[enc(&1u64), enc(&u64::MAX), enc(&0u64)]),
        ),
        seed(
            "seed-pair-one",
            task_payload(3, 123_456, &[text("hello", b"\x00\x01\x02")]),
        ),
        seed(
            "seed-pair-two",
            task_payload(4, i64::MIN, &[text("", b""), text("ünïcode", &[0xFF; 5])]),
        ),
        seed(
            "seed-options-two",
            task_payload(5, 8, &[opts(&[Some(1), None, Some(-7)]), opts(&[])]),
        ),
        seed(
            "seed-mixed-three",
            task_payload(6, 0, &[enc(&5u64), text("k", b"v"), opts(&[None])]),
        ),
        seed("seed-empty-chunk", task_payload(7, 0, &[])),
        seed("seed-empty-item", task_payload(8, 0, &[Vec::new()])),
        seed(
            "seed-blocks-three",
            task_payload(
                9,
                0,
                &[
                    enc(&vec![1.5f64, -0.0, f64::MAX]),
                    enc(&(3u8, vec![7u32, 8], Some(vec![-1i16]))),
                    enc(&vec![vec![1i64], vec![]]),
                ],
            ),
        ),
    ]
}

fn results() -> Seeds {
    let ok_s = |s: &str| enc(&Ok::<String, TaskError>(s.to_owned()));
    let ok_v = |v: &[u64]| enc(&Ok::<Vec<u64>, TaskError>(v.to_vec()));
    let err = |e: TaskError| enc(&Err::<String, TaskError>(e));
    let mut seeds = vec![
        seed("seed-string-one", results_payload(1, 0, &[ok_s("result")])),
        seed(
            "seed-string-three",
            results_payload(2, 10, &[ok_s("a"), ok_s(""), ok_s("ünïcode")]),
        ),
        seed(
            "seed-vec-two",
            results_payload(3, 0, &[ok_v(&[1, 2, 3]), ok_v(&[])]),
        ),
        seed("seed-skipped", 9u64.to_le_bytes().to_vec()),
        seed("seed-empty", results_payload(4, 0, &[])),
    ];
    let mut all = vec![ok_s("first")];
    for (name, error) in task_errors() {
        all.push(err(error));
        seeds.push(seed(
            &format!("seed-err-{name}"),
            results_payload(5, 1, &[ok_s("x"), err_for(name)]),
        ));
    }
    seeds.push(seed("seed-every-error", results_payload(6, 0, &all)));
    seeds
}

/// One of [`task_errors`], encoded as an `Err` result, by name.
fn err_for(name: &str) -> Vec<u8> {
    let (_, error) = task_errors()
        .into_iter()
        .find(|(n, _)| *n == name)
        .expect("a known error");
    enc(&Err::<String, TaskError>(error))
}

fn outcome() -> Seeds {
    let mut seeds = Vec::new();
    let result = |timers: &ProcessTimers, value: &str| {
        let mut out = enc(timers);
        out.extend(enc(value));
        out
    };
    seeds.push(seed(
        "seed-result-default",
        result(&ProcessTimers::default(), "done"),
    ));
    seeds.push(seed(
        "seed-result-samples",
        result(&timers_with_samples(), "42"),
    ));
    for (name, error) in process_errors() {
        let timers = if name == "section" {
            timers_with_samples()
        } else {
            ProcessTimers::default()
        };
        seeds.push(seed(&format!("seed-error-{name}"), enc(&(timers, error))));
    }
    for (name, error) in task_errors().into_iter().take(4) {
        seeds.push(seed(&format!("seed-task-error-{name}"), enc(&error)));
    }
    // `SetupFailed` and `Log` payloads, laid out as the runtime's private types are.
    #[derive(Serialize, Deserialize)]
    #[serde(crate = "skprocess::serde")]
    enum SetupFailure {
        Message(String),
        ChildInit { hook: String, failure: Failure },
    }
    #[derive(Serialize, Deserialize)]
    #[serde(crate = "skprocess::serde")]
    enum Facade {
        Log,
        Tracing,
    }
    #[derive(Serialize, Deserialize)]
    #[serde(crate = "skprocess::serde")]
    struct LogRecord {
        facade: Facade,
        level: u8,
        target: String,
        message: String,
        module_path: Option<String>,
        file: Option<String>,
        line: Option<u32>,
        fields: Vec<(String, String)>,
    }
    seeds.push(seed(
        "seed-setup-failed",
        enc(&SetupFailure::Message(
            "entry `demo::X` is not registered".into(),
        )),
    ));
    seeds.push(seed(
        "seed-setup-hook",
        enc(&SetupFailure::ChildInit {
            hook: "demo::load_config".into(),
            failure: Failure::msg("no config file"),
        }),
    ));
    for (facade, name) in [(Facade::Log, "seed-log"), (Facade::Tracing, "seed-tracing")] {
        seeds.push(seed(
            name,
            enc(&LogRecord {
                facade,
                level: 3,
                target: "demo".into(),
                message: "hello from a child".into(),
                module_path: Some("demo::worker".into()),
                file: Some("src/worker.rs".into()),
                line: Some(12),
                fields: vec![("item".into(), "3".into())],
            }),
        ));
    }
    for (name, bytes) in &seeds {
        let ok = if name.starts_with("seed-result") {
            decode::<(ProcessTimers, String)>(bytes).is_ok()
        } else if name.starts_with("seed-error") {
            decode::<(ProcessTimers, ProcessError)>(bytes).is_ok()
        } else if name.starts_with("seed-task-error") {
            decode::<TaskError>(bytes).is_ok()
        } else if name.starts_with("seed-setup") {
            decode::<SetupFailure>(bytes).is_ok()
        } else {
            decode::<LogRecord>(bytes).is_ok()
        };
        assert!(ok, "outcome seed {name} does not decode");
    }
    seeds
}

fn tell() -> Seeds {
    let map: HashMap<String, Vec<u64>> =
        [("a".to_owned(), vec![1, 2]), ("bb".to_owned(), vec![])].into();
    let tree: BTreeMap<u64, Vec<String>> = [
        (1, vec!["x".to_owned()]),
        (u64::MAX, vec![String::new(), "yz".to_owned()]),
    ]
    .into();
    vec![
        seed("seed-string", enc("hello, child")),
        seed("seed-bytes", enc(&vec![0u8, 1, 2, 255])),
        seed(
            "seed-tuple-some",
            enc(&(7u32, 1.5f64, Some("note".to_owned()))),
        ),
        seed("seed-tuple-none", enc(&(0u32, f64::NAN, None::<String>))),
        seed("seed-hashmap", enc(&map)),
        seed("seed-btreemap", enc(&tree)),
        seed(
            "seed-units",
            enc(&vec![vec![(); 3], vec![], vec![(); 1000]]),
        ),
        seed(
            "seed-ok-chars",
            enc(&Ok::<Vec<char>, ProcessError>(vec!['a', 'é', '🦀'])),
        ),
        seed(
            "seed-err-process",
            enc(&Err::<Vec<char>, ProcessError>(ProcessError::Timeout {
                section: Section::Onfinish,
                timeout: Duration::from_secs(3),
                current_run: 2,
            })),
        ),
        seed(
            "seed-err-nested",
            enc(&Err::<Vec<char>, ProcessError>(
                process_errors().swap_remove(2).1,
            )),
        ),
        seed("seed-block-f32", enc(&vec![0.5f32, f32::NAN, -1.0])),
        seed("seed-block-i128", enc(&vec![i128::MIN, 0, 1])),
        seed(
            "seed-block-record",
            enc(&(9u8, (0..40u32).collect::<Vec<_>>(), None::<Vec<i16>>)),
        ),
        seed(
            "seed-block-result",
            enc(&Err::<Vec<u8>, Vec<usize>>(vec![1, usize::MAX])),
        ),
    ]
}

fn write(root: &Path, target: &str, seeds: Seeds) {
    let dir = root.join(target);
    std::fs::create_dir_all(&dir).expect("create the corpus directory");
    for entry in std::fs::read_dir(&dir).expect("read the corpus directory") {
        let path = entry.expect("a directory entry").path();
        let ours = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("seed-"));
        if ours {
            std::fs::remove_file(&path).expect("remove an old seed");
        }
    }
    let count = seeds.len();
    for (name, bytes) in seeds {
        assert!(name.starts_with("seed-"), "{name}");
        std::fs::write(dir.join(&name), bytes).expect("write a seed");
    }
    println!("{target}: {count} seeds");
}

fn main() {
    let root: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    write(&root, "frames", frames());
    write(&root, "handshake", handshake());
    write(&root, "start", start());
    write(&root, "task", task());
    write(&root, "results", results());
    write(&root, "outcome", outcome());
    write(&root, "tell", tell());
    write(&root, "share", skprocess::__testing::fuzz::share_seeds());
    write(&root, "pipe", pipe());
}

/// A pipe's ring as a peer left it: the published tail (8 bytes, little endian), then the
/// ring's bytes, records of an 8-byte header (length, tag: 1 end, 2 part, 3 abort) and payload.
fn pipe() -> Seeds {
    fn record(tag: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_le_bytes().to_vec();
        out.extend(tag.to_le_bytes());
        out.extend(payload);
        out
    }
    fn ring(records: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = records.concat();
        let mut out = (body.len() as u64).to_le_bytes().to_vec();
        out.extend(body);
        out
    }
    let mut cut = ring(&[record(1, &enc(&vec![1u8; 300]))]);
    cut[..8].copy_from_slice(&100u64.to_le_bytes());
    vec![
        seed(
            "seed-one",
            ring(&[record(1, &enc(&(1u32, "x".to_owned())))]),
        ),
        seed(
            "seed-two",
            ring(&[record(1, &enc(&7u64)), record(1, &enc("hello"))]),
        ),
        seed("seed-empty-message", ring(&[record(1, &[])])),
        seed(
            "seed-streamed",
            ring(&[record(2, &[1; 40]), record(2, &[2; 40]), record(1, &[3; 8])]),
        ),
        seed(
            "seed-aborted",
            ring(&[record(2, &[1; 40]), record(3, &[]), record(1, &enc(&1u8))]),
        ),
        seed(
            "seed-over-small-limit",
            ring(&[record(1, &enc(&vec![0u8; 600]))]),
        ),
        seed("seed-cut", cut),
        seed("seed-unknown-tag", ring(&[record(9, &enc(&1u8))])),
    ]
}
