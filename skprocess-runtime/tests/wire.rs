//! The wire and the registry under bad input: wrong secrets, malformed and oversized frames,
//! values that do not decode, unregistered and duplicated types. Each is a typed error; nothing
//! hangs and nothing else is disturbed.

use std::time::Duration;

use skprocess::__private::{Lifecycle, ProcessEntry, Registered};
use skprocess::__testing;
use skprocess::prelude::*;
use skprocess::{Failure, IpcError};

mod common;
use common::{LIMIT, within};

/// Echoes what the parent tells it, until told `0`.
#[skprocess]
struct Echo {
    seen: u64,
}

#[skprocess]
impl Echo {
    fn __run__(
        &mut self,
        cx: &mut Context,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let value: u64 = cx.listen()?;
        if value == 0 {
            cx.stop();
        } else {
            self.seen += 1;
            cx.tell(value * 2)?;
        }
        Ok(())
    }

    fn __result__(&mut self) -> u64 {
        self.seen
    }
}

#[test]
fn a_wrong_secret_is_refused_and_the_process_is_unaffected() {
    let process = Skprocess::new(Echo { seen: 0 });
    process.start().unwrap();
    process.tell(21u64).unwrap();
    assert_eq!(process.listen_timeout::<u64>(LIMIT).unwrap(), 42);

    let hub = __testing::hub_name().expect("a hub exists once a process started");
    let mut wrong = __testing::hub_secret().unwrap();
    wrong[0] ^= 1;
    match __testing::connect_to_hub(&hub, wrong, [0; 16]) {
        Err(IpcError::Auth(_)) => {}
        other => panic!("a wrong secret was not refused: {other:?}"),
    }
    // The right secret with a token nobody expects is refused too.
    let right = __testing::hub_secret().unwrap();
    match __testing::connect_to_hub(&hub, right, [7; 16]) {
        Err(IpcError::Auth(_)) => {}
        other => panic!("an unknown token was not refused: {other:?}"),
    }

    // The process never noticed.
    process.tell(5u64).unwrap();
    assert_eq!(process.listen_timeout::<u64>(LIMIT).unwrap(), 10);
    process.tell(0u64).unwrap();
    assert_eq!(process.timeout(LIMIT).result().unwrap(), 2);
}

/// Sends the given raw bytes to the parent, then keeps running.
#[skprocess]
struct SendsGarbage {
    bytes: Vec<u8>,
}

#[skprocess]
impl SendsGarbage {
    fn __run__(&mut self, cx: &mut Context) {
        if cx.current_run() == 0 {
            __testing::send_raw(cx, &self.bytes).unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn an_oversized_frame_is_an_error_and_the_child_is_put_down() {
    let frame = vec![0xFF, 0xFF, 0xFF, 0xFF, 11];
    let err = Skprocess::new(SendsGarbage { bytes: frame })
        .timeout(LIMIT)
        .run()
        .unwrap_err();
    assert!(
        matches!(
            err,
            ProcessError::Ipc(IpcError::FrameTooLarge {
                len: 0xFFFF_FFFF,
                ..
            })
        ),
        "{err:?}"
    );
}

#[test]
fn a_malformed_frame_is_an_error_and_the_child_is_put_down() {
    let frame = vec![0, 0, 0, 0, 0xEE];
    let err = Skprocess::new(SendsGarbage { bytes: frame })
        .timeout(LIMIT)
        .run()
        .unwrap_err();
    assert!(
        matches!(&err, ProcessError::Ipc(IpcError::Malformed(m)) if m.contains("kind")),
        "{err:?}"
    );
}

/// A `Log` frame's payload, laid out as the runtime lays out a log record.
#[derive(skprocess::serde::Serialize)]
#[serde(crate = "skprocess::serde")]
struct LogRecord {
    facade: LogFacade,
    level: u8,
    target: String,
    message: String,
    module_path: Option<String>,
    file: Option<String>,
    line: Option<u32>,
    fields: Vec<(String, String)>,
}

#[derive(skprocess::serde::Serialize)]
#[serde(crate = "skprocess::serde")]
enum LogFacade {
    Log,
}

fn log_frame(level: u8) -> Vec<u8> {
    let payload = __testing::encode(&LogRecord {
        facade: LogFacade::Log,
        level,
        target: "t".into(),
        message: "m".into(),
        module_path: None,
        file: None,
        line: None,
        fields: vec![("k".into(), "v".into())],
    })
    .unwrap();
    frame(23, &payload)
}

fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
    frame.push(kind);
    frame.extend_from_slice(payload);
    frame
}

/// Sends the given raw bytes to the parent once, then delivers.
#[skprocess(runs = 1)]
struct SendsOnce {
    bytes: Vec<u8>,
}

#[skprocess]
impl SendsOnce {
    fn __run__(&mut self, cx: &mut Context) {
        __testing::send_raw(cx, &self.bytes).unwrap();
    }

    fn __result__(&mut self) -> String {
        "delivered".into()
    }
}

#[test]
fn a_well_formed_log_frame_is_taken_whatever_the_features() {
    // Without the `log` feature the record has nowhere to go; with it, it is re-emitted (to no
    // logger here). Either way the process is unaffected.
    let result = Skprocess::new(SendsOnce {
        bytes: log_frame(3),
    })
    .timeout(LIMIT)
    .run();
    assert_eq!(result.unwrap(), "delivered");
}

#[test]
fn malformed_log_frames_are_errors_and_the_child_is_put_down() {
    let cases = [
        ("garbage", frame(23, &[0xFF; 10])),
        ("a level past trace", log_frame(9)),
        ("level zero", log_frame(0)),
        (
            "larger than a record can be",
            frame(23, &vec![0; 64 * 1024 + 1]),
        ),
    ];
    for (what, bytes) in cases {
        let err = Skprocess::new(SendsGarbage { bytes })
            .timeout(LIMIT)
            .run()
            .unwrap_err();
        assert!(
            matches!(&err, ProcessError::Ipc(IpcError::Malformed(m)) if m.contains("log record")),
            "{what}: {err:?}"
        );
    }
}

/// Listens for a number; reports what `listen` said.
#[skprocess(runs = 1)]
struct ListensForNumber {
    report: String,
}

#[skprocess]
impl ListensForNumber {
    fn __run__(&mut self, cx: &mut Context) {
        self.report = match cx.listen::<u64>() {
            Ok(n) => format!("got {n}"),
            Err(ListenError::Decode { bytes, .. }) => {
                // nothing is lost: the bytes hold what was really sent
                let text = b"not a number";
                let kept = bytes.windows(text.len()).any(|w| w == text);
                format!("decode error, bytes kept: {kept}")
            }
            Err(other) => format!("other error: {other}"),
        };
        cx.tell(vec![0xFFu8, 0xFE]).unwrap();
    }

    fn __result__(&mut self) -> String {
        self.report.clone()
    }
}

#[test]
fn a_message_that_does_not_decode_is_an_error_holding_its_bytes_both_ways() {
    let process = Skprocess::new(ListensForNumber {
        report: String::new(),
    });
    process.start().unwrap();
    process.tell("not a number").unwrap();
    // The child sent bytes that are not UTF-8; asking for a String fails, and the bytes stay.
    match process.listen_timeout::<String>(LIMIT) {
        Err(ListenError::Decode {
            bytes, type_name, ..
        }) => {
            assert!(bytes.ends_with(&[0xFF, 0xFE]), "{bytes:?}");
            assert!(type_name.contains("String"), "{type_name}");
        }
        other => panic!("unexpected: {other:?}"),
    }
    assert_eq!(
        process.timeout(LIMIT).result().unwrap(),
        "decode error, bytes kept: true"
    );
}

#[test]
fn listen_timeout_is_distinct_from_messages_and_from_a_gone_child() {
    let process = Skprocess::new(Echo { seen: 0 });
    assert!(matches!(
        process.listen_timeout::<u64>(Duration::ZERO),
        Err(ListenError::NotStarted)
    ));
    process.start().unwrap();
    assert!(matches!(
        process.listen_timeout::<u64>(Duration::from_millis(50)),
        Err(ListenError::Timeout)
    ));
    process.tell(0u64).unwrap();
    assert!(
        process.wait_timeout(LIMIT).unwrap(),
        "the child never ended"
    );
    assert!(matches!(
        process.listen_timeout::<u64>(Duration::from_secs(5)),
        Err(ListenError::Disconnected)
    ));
    assert!(matches!(process.tell(1u64), Err(TellError::Disconnected)));
}

/// Implements the traits by hand, with a registration that is not in the registry.
#[derive(skprocess::serde::Serialize, skprocess::serde::Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Unregistered;

impl Lifecycle for Unregistered {
    type Output = ();
    fn run(&mut self, _cx: &mut Context) -> Result<(), Failure> {
        Ok(())
    }
    fn result(&mut self, _cx: &mut Context) -> Result<(), Failure> {
        Ok(())
    }
}

impl Registered for Unregistered {
    const NAME: &'static str = "tests::Unregistered";
    fn entry() -> &'static ProcessEntry {
        static ENTRY: ProcessEntry = <Unregistered as Registered>::ENTRY;
        &ENTRY
    }
}

#[test]
fn an_unregistered_type_fails_before_spawning() {
    let process = Skprocess::new(Unregistered);
    match process.start() {
        Err(ProcessError::NotRegistered { name }) => assert_eq!(name, "tests::Unregistered"),
        other => panic!("unexpected: {other:?}"),
    }
    assert_eq!(process.pid(), None, "nothing may be spawned");
}

#[skprocess(name = "tests::duplicated", runs = 1)]
struct First;

#[skprocess]
impl First {
    fn __run__(&mut self) {}
}

#[skprocess(name = "tests::duplicated", runs = 1)]
struct Second;

#[skprocess]
impl Second {
    fn __run__(&mut self) {}
}

#[test]
fn a_duplicated_name_is_an_error_only_when_spawned() {
    match Skprocess::new(First).timeout(LIMIT).run() {
        Err(ProcessError::DuplicateName { name, count: 2 }) => {
            assert_eq!(name, "tests::duplicated")
        }
        other => panic!("unexpected: {other:?}"),
    }
    assert!(matches!(
        Skprocess::new(Second).start(),
        Err(ProcessError::DuplicateName { .. })
    ));
    // Everything else still spawns.
    let echo = Skprocess::new(Echo { seen: 0 });
    echo.start().unwrap();
    echo.tell(0u64).unwrap();
    assert_eq!(echo.timeout(LIMIT).result().unwrap(), 0);
}

#[skprocess(runs = 1)]
struct EncodesBadly;

#[skprocess]
impl EncodesBadly {
    fn __run__(&mut self) {}

    fn __result__(&mut self) -> NotEncodable {
        NotEncodable
    }
}

/// A value whose serialization always fails.
#[derive(Debug)]
struct NotEncodable;

impl skprocess::serde::Serialize for NotEncodable {
    fn serialize<S: skprocess::serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(skprocess::serde::ser::Error::custom(
            "this value refuses to be encoded",
        ))
    }
}

impl<'de> skprocess::serde::Deserialize<'de> for NotEncodable {
    fn deserialize<D: skprocess::serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Ok(NotEncodable)
    }
}

#[test]
fn a_result_that_cannot_be_encoded_is_a_typed_error() {
    match Skprocess::new(EncodesBadly).timeout(LIMIT).run() {
        Err(ProcessError::Encode { what, message }) => {
            assert!(what.contains("result"), "{what}");
            assert!(message.contains("refuses to be encoded"), "{message}");
        }
        other => panic!("unexpected: {other:?}"),
    }
}

#[test]
fn a_message_that_cannot_be_encoded_is_not_sent() {
    let process = Skprocess::new(Echo { seen: 0 });
    process.start().unwrap();
    assert!(matches!(
        process.tell(NotEncodable),
        Err(TellError::Encode(_))
    ));
    process.tell(0u64).unwrap();
    assert_eq!(process.timeout(LIMIT).result().unwrap(), 0);
}

#[test]
fn invalid_configuration_is_rejected_before_spawning() {
    let process = Skprocess::new(Echo { seen: 0 });
    process.configure(|config| config.lives = 0).unwrap();
    assert!(matches!(
        process.start(),
        Err(ProcessError::InvalidConfig { .. })
    ));
    assert_eq!(process.pid(), None);
}

/// Tells its attempt number in `__prerun__`; `__run__` waits for a number from the parent.
/// The first attempt's `__run__` times out while waiting.
#[skprocess(runs = 1, lives = 2, timeouts(run = 0.3))]
struct WaitsForNumber {
    attempts: u32,
}

#[skprocess]
impl WaitsForNumber {
    fn __prerun__(&mut self, cx: &mut Context) -> Result<(), TellError> {
        self.attempts += 1;
        cx.tell(self.attempts)
    }

    fn __run__(&mut self, cx: &mut Context) -> Result<(), ListenError> {
        let n: u64 = cx.listen()?;
        self.attempts += u32::try_from(n).unwrap_or(0) * 100;
        Ok(())
    }

    fn __result__(&mut self) -> u32 {
        self.attempts
    }
}

#[test]
fn an_abandoned_section_does_not_take_messages_meant_for_the_retry() {
    let process = Skprocess::new(WaitsForNumber { attempts: 0 });
    process.start().unwrap();
    assert_eq!(process.listen_timeout::<u32>(LIMIT).unwrap(), 1);
    // The first attempt's `__run__` (blocked in listen) times out and is abandoned.
    assert_eq!(process.listen_timeout::<u32>(LIMIT).unwrap(), 2);
    process.tell(3u64).unwrap();
    // The retry (state rolled back to before run 0, attempts = 2) gets the message.
    assert_eq!(process.timeout(LIMIT).result().unwrap(), 302);
}

/// Tells two numbers when told to go.
#[skprocess(runs = 1)]
struct TellsTwo;

#[skprocess]
impl TellsTwo {
    fn __run__(
        &mut self,
        cx: &mut Context,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let () = cx.listen()?;
        cx.tell(1u8)?;
        cx.tell(2u8)?;
        Ok(())
    }
}

#[test]
fn a_dropped_async_listen_takes_nothing() {
    use std::future::Future;
    use std::task::{Context as TaskContext, Poll, Waker};

    let process = Skprocess::new(TellsTwo);
    process.start().unwrap();
    let mut pending = Box::pin(process.asynced().listen::<u8>());
    let mut cx = TaskContext::from_waker(Waker::noop());
    assert!(matches!(pending.as_mut().poll(&mut cx), Poll::Pending));
    drop(pending);
    process.tell(()).unwrap();
    assert!(
        process.wait_timeout(LIMIT).unwrap(),
        "the child never ended"
    );
    assert_eq!(process.listen_timeout::<u8>(LIMIT).unwrap(), 1);
    // The un-timed async listen is the point: it is awaited on a helper thread, bounded.
    let second = process.asynced().listen::<u8>();
    let second = within(LIMIT, move || futures::executor::block_on(second)).unwrap();
    assert_eq!(second, 2);
    let none = futures::executor::block_on(
        process
            .asynced()
            .listen_timeout::<u8>(Duration::from_millis(50)),
    );
    assert!(matches!(none, Err(ListenError::Disconnected)), "{none:?}");
}
