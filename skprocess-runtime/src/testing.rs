//! Hooks for the crate's own robustness tests and fuzz targets: talk to the hub and the wire
//! directly, the way an attacker or a broken peer would, and force racing orders. Not an API:
//! only the project's own tests enable the `__testing` feature.

use std::time::Duration;

use crate::error::IpcError;
use crate::lifecycle::Context;
use crate::wire::auth::Secret;

/// The name of this process's hub, if it has one (it does once a process was started).
pub fn hub_name() -> Option<String> {
    crate::wire::hub::existing_hub_name()
}

/// The session secret of this process's hub.
pub fn hub_secret() -> Option<[u8; 32]> {
    crate::wire::hub::hub().ok().map(|hub| hub.secret().0)
}

/// Connects to the hub `name` proving `secret` and presenting `token`; `Ok` only if the hub
/// welcomed the connection.
pub fn connect_to_hub(name: &str, secret: [u8; 32], token: [u8; 16]) -> Result<(), IpcError> {
    crate::wire::hub::connect(name, &Secret(secret), &token).map(drop)
}

/// A copy of `share` whose calls go through the coordinator's socket even in the owner process
/// (the path every other process takes).
pub fn share_remote_copy(share: &crate::share::Share) -> crate::share::Share {
    share.remote_copy(None)
}

/// A copy of `share` that presents `secret` instead of the Share's own.
pub fn share_with_secret(share: &crate::share::Share, secret: [u8; 32]) -> crate::share::Share {
    share.remote_copy(Some(secret))
}

/// The abstract socket name of `share`'s coordinator.
pub fn share_socket_name(share: &crate::share::Share) -> String {
    share.socket_name().to_owned()
}

/// Sends raw bytes to the parent from a child, bypassing framing.
pub fn send_raw(cx: &Context, bytes: &[u8]) -> Result<(), IpcError> {
    cx.send_raw(bytes)
}

/// The environment variable that makes pool workers wait this many microseconds between
/// claiming a chunk and checking whether it was taken back: the racing step of work stealing.
pub const CLAIM_DELAY_ENV: &str = "SKPROCESS_TEST_CLAIM_DELAY_US";

static CHILD_ENV: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// Sets an environment variable for every child started from now on (never in this process:
/// changing this process's environment while threads run is undefined behaviour).
pub fn set_child_env(key: &str, value: &str) {
    let mut env = crate::sync::lock(&CHILD_ENV);
    env.retain(|(k, _)| k != key);
    env.push((key.to_owned(), value.to_owned()));
}

/// Removes a variable set with [`set_child_env`].
pub fn clear_child_env(key: &str) {
    crate::sync::lock(&CHILD_ENV).retain(|(k, _)| k != key);
}

/// Applies [`set_child_env`]'s variables to a child's command.
pub(crate) fn apply_child_env(command: &mut std::process::Command) {
    for (key, value) in crate::sync::lock(&CHILD_ENV).iter() {
        command.env(key, value);
    }
}

/// Sleeps for [`CLAIM_DELAY_ENV`] microseconds, if set (read once).
pub(crate) fn claim_delay() {
    static DELAY: std::sync::OnceLock<Option<Duration>> = std::sync::OnceLock::new();
    let delay = DELAY.get_or_init(|| {
        std::env::var(CLAIM_DELAY_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_micros)
    });
    if let Some(delay) = delay {
        std::thread::sleep(*delay);
    }
}

/// Encodes a value with the wire's codec.
pub fn encode<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    crate::wire::encode(value)
}

/// Decodes a value with the wire's codec (the whole slice).
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    crate::wire::decode(bytes)
}

/// Fuzz entry points: each feeds bytes from another process to one decoder of the runtime, the
/// way the runtime itself does. None may panic, abort or allocate without bound; errors are
/// fine.
pub mod fuzz {
    use std::collections::{BTreeMap, HashMap};
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use std::time::{Duration, Instant};

    use crate::error::ProcessError;
    use crate::lifecycle::ProcessTimers;
    use crate::pool::TaskError;
    use crate::wire::auth::{Secret, client_handshake, server_handshake};
    use crate::wire::codec::Decoder;
    use crate::wire::frame::read_frame;
    use crate::wire::protocol::{
        ProcessStart, RESULTS_HEAD, ResultsHead, StartMessage, TaskFrame, WorkerStart,
        decode_skipped,
    };
    use crate::wire::{Conn, decode, encode};

    /// The frame reader: reads frames from `bytes` until the end or an error, with a small
    /// limit and a large one.
    pub fn frames(bytes: &[u8]) {
        for limit in [256, 1 << 20, u32::MAX] {
            let mut reader = bytes;
            while let Ok(Some(_)) = read_frame(&mut reader, limit) {}
        }
    }

    /// Both sides of the handshake, each facing a peer that sends `bytes` (then hangs up).
    pub fn handshake(bytes: &[u8]) {
        let secret = Secret([7; 32]);
        for server in [true, false] {
            let (ours, theirs) = UnixStream::pair().expect("a socket pair");
            let mut theirs = theirs;
            let _ = theirs.write_all(bytes);
            let _ = theirs.shutdown(std::net::Shutdown::Write);
            let conn = Conn::new(ours);
            let deadline = Instant::now() + Duration::from_millis(200);
            if server {
                let _ = server_handshake(&conn, &secret, deadline, |_| true);
            } else {
                let _ = client_handshake(&conn, &secret, &[1; 16], deadline);
            }
        }
    }

    /// Start messages: the `Start` frame's payload, and the bodies of both entries.
    pub fn start(bytes: &[u8]) {
        if let Ok(start) = decode::<StartMessage>(bytes) {
            let _ = decode::<ProcessStart>(&start.body);
            let _ = decode::<WorkerStart>(&start.body);
        }
        let _ = decode::<ProcessStart>(bytes);
    }

    /// Task frames, and the items in them decoded as a few item types (vectors of numbers both
    /// ways, which must agree).
    pub fn task(bytes: &[u8]) {
        let Ok(task) = TaskFrame::decode(bytes) else {
            return;
        };
        let mut start = 0usize;
        for &len in &task.lengths {
            let end = start + len as usize;
            let item = &task.items[start..end];
            let _ = decode::<u64>(item);
            let _ = decode::<(String, Vec<u8>)>(item);
            let _ = decode::<Vec<Option<i32>>>(item);
            blocks(item);
            start = end;
        }
    }

    /// `Results` and `Skipped` frames from a worker, the results decoded as the pool does.
    pub fn results(bytes: &[u8]) {
        let _ = decode_skipped(bytes);
        let Ok(head) = ResultsHead::decode(bytes) else {
            return;
        };
        let rest = &bytes[RESULTS_HEAD.min(bytes.len())..];
        let count = (head.count as usize).min(rest.len());
        crate::pool::decode_results_for_fuzzing::<String>(rest, count);
        crate::pool::decode_results_for_fuzzing::<Vec<u64>>(rest, count);
    }

    /// A child's outcome frames: `Result` (timers, then the value), `Error` and `SetupFailed`,
    /// and its `Log` frames.
    pub fn outcome(bytes: &[u8]) {
        let mut decoder = Decoder::new(bytes);
        if decoder.next::<ProcessTimers>().is_ok() {
            let _ = decode::<String>(decoder.remaining());
        }
        let _ = decode::<(ProcessTimers, ProcessError)>(bytes);
        let _ = decode::<TaskError>(bytes);
        let _ = decode::<crate::error::SetupFailure>(bytes);
        let _ = crate::logs::decode_record(bytes);
    }

    /// A Share's connection: a request as the coordinator reads and serves it (against a
    /// coordinator holding a timer and a counter), a reply as a client reads it, and an encoded
    /// Share or handle.
    pub fn share(bytes: &[u8]) {
        crate::share::fuzzing::run(bytes);
    }

    /// A pipe end reading a ring a peer filled with `bytes` (its published tail first, then
    /// the ring's bytes) and then closed, with a small and a large limit.
    pub fn pipe(bytes: &[u8]) {
        crate::ring::read_all_for_fuzzing(bytes);
    }

    /// Valid inputs of [`share`]: encoded requests and replies, named.
    pub fn share_seeds() -> Vec<(String, Vec<u8>)> {
        crate::share::fuzzing::seeds()
    }

    /// Tell messages, read as a few message types, and as vectors of numbers both ways (as
    /// blocks and element by element), which must agree.
    pub fn tell(bytes: &[u8]) {
        let _ = decode::<String>(bytes);
        let _ = decode::<Vec<u8>>(bytes);
        let _ = decode::<(u32, f64, Option<String>)>(bytes);
        let _ = decode::<HashMap<String, Vec<u64>>>(bytes);
        let _ = decode::<BTreeMap<u64, Vec<String>>>(bytes);
        let _ = decode::<Vec<Vec<()>>>(bytes);
        let _ = decode::<Result<Vec<char>, ProcessError>>(bytes);
        blocks(bytes);
    }

    /// A `Vec` read element by element, through a visitor of its own: the reference the codec's
    /// blocks are checked against.
    struct Elements<T>(Vec<T>);

    impl<T: serde::Serialize> serde::Serialize for Elements<T> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeSeq;
            let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
            for element in &self.0 {
                seq.serialize_element(element)?;
            }
            seq.end()
        }
    }

    impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Elements<T> {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            /// Collects the elements one by one.
            struct Collect<T>(std::marker::PhantomData<T>);
            impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Collect<T> {
                type Value = Elements<T>;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a sequence")
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(
                    self,
                    mut seq: A,
                ) -> Result<Elements<T>, A::Error> {
                    let mut out = Vec::new();
                    while let Some(element) = seq.next_element()? {
                        out.push(element);
                    }
                    Ok(Elements(out))
                }
            }
            deserializer.deserialize_seq(Collect(std::marker::PhantomData))
        }
    }

    /// Decodes `bytes` as `Fast` (whose vectors of numbers are read as blocks) and as `Slow` (the
    /// same shape, read element by element). Panics if one decodes and the other does not, or if
    /// a value does not encode back to exactly `bytes` (any bytes of a number are a number, so a
    /// decode that succeeds must be undone by an encode).
    fn agree<Fast, Slow>(bytes: &[u8])
    where
        Fast: serde::de::DeserializeOwned + serde::Serialize,
        Slow: serde::de::DeserializeOwned + serde::Serialize,
    {
        let fast = decode::<Fast>(bytes);
        let slow = decode::<Slow>(bytes);
        assert_eq!(
            fast.is_ok(),
            slow.is_ok(),
            "blocks and elements disagree on {bytes:?}: {:?} / {:?}",
            fast.as_ref().err(),
            slow.as_ref().err()
        );
        if let (Ok(fast), Ok(slow)) = (fast, slow) {
            assert_eq!(encode(&fast).as_deref(), Ok(bytes), "a block re-encodes");
            assert_eq!(encode(&slow).as_deref(), Ok(bytes), "elements re-encode");
        }
    }

    /// The codec's blocks of numbers against the element-by-element path, alone and nested.
    fn blocks(bytes: &[u8]) {
        agree::<Vec<u8>, Elements<u8>>(bytes);
        agree::<Vec<u16>, Elements<u16>>(bytes);
        agree::<Box<[f32]>, Elements<f32>>(bytes);
        agree::<Vec<f64>, Elements<f64>>(bytes);
        agree::<Vec<i128>, Elements<i128>>(bytes);
        agree::<(u8, Vec<u32>, Option<Vec<i16>>), (u8, Elements<u32>, Option<Elements<i16>>)>(
            bytes,
        );
        agree::<Vec<Vec<i64>>, Vec<Elements<i64>>>(bytes);
        agree::<Result<Vec<u8>, Vec<usize>>, Result<Elements<u8>, Elements<usize>>>(bytes);
    }
}
