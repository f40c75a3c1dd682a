//! `#[autoreconnect]` and `Conn` without a database server: a connector whose "connection"
//! is the secret it was opened with shows which credential reached which field in the child;
//! secrets never appear in the encoded bytes; failures are typed and name the field; `call`
//! and `idempotent` never run an operation twice unless told it is safe.
//!
//! The same against real PostgreSQL, Redis and SQLite: `tests/autoreconnect_db.rs`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use skprocess::prelude::*;
use skprocess::reconnect::{CallError, Conn, ConnectError, ConnectFailure, Connector, Secret};
use skprocess::serde::{Deserialize, Serialize};
use skprocess::{__testing, autoreconnect};

mod common;
use common::{LIMIT, within};

/// Opens a "connection" holding the secret it was given (or `<none>`); refuses with `Auth`
/// when `refuse` is set.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Echo {
    name: String,
    refuse: bool,
}

/// How many times each `Echo` (by name) was opened in this process. By name: tests run
/// concurrently in this process and open connections of their own.
static OPENS: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());

fn opens(name: &str) -> usize {
    OPENS.lock().unwrap().get(name).copied().unwrap_or(0)
}

/// The driver error of `Echo`: lost or not.
#[derive(Debug)]
struct EchoError {
    lost: bool,
}

impl std::error::Error for EchoError {}

impl std::fmt::Display for EchoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "echo error (lost: {})", self.lost)
    }
}

impl Connector for Echo {
    type Live = String;
    type Error = EchoError;
    const KIND: &'static str = "echo";

    fn target(&self) -> String {
        format!("echo://{}", self.name)
    }

    fn open(&self, secret: Option<&Secret>) -> Result<String, ConnectError> {
        *OPENS.lock().unwrap().entry(self.name.clone()).or_default() += 1;
        if self.refuse {
            return Err(ConnectError::new(ConnectFailure::Auth, "wrong password"));
        }
        Ok(secret.map_or_else(|| "<none>".to_owned(), |s| s.expose().to_owned()))
    }

    fn is_lost(error: &EchoError) -> bool {
        error.lost
    }
}

type EchoConn = Conn<Echo>;

/// A second connection type, to show that credentials go by type.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Other(Echo);

impl Connector for Other {
    type Live = String;
    type Error = EchoError;
    const KIND: &'static str = "other";

    fn target(&self) -> String {
        self.0.target()
    }

    fn open(&self, secret: Option<&Secret>) -> Result<String, ConnectError> {
        self.0.open(secret)
    }

    fn is_lost(error: &EchoError) -> bool {
        error.lost
    }
}

type OtherConn = Conn<Other>;

fn echo(name: &str) -> EchoConn {
    Conn::new(Echo {
        name: name.to_owned(),
        refuse: false,
    })
}

fn other(name: &str) -> OtherConn {
    Conn::new(Other(Echo {
        name: name.to_owned(),
        refuse: false,
    }))
}

const ENV_VAR: &str = "SKPROCESS_TEST_ECHO_SECRET";

#[skprocess(runs = 1)]
#[autoreconnect(
    start_threads = false,
    EchoConn = { "*": "star", bee: "bee-secret", sea: env("SKPROCESS_TEST_ECHO_SECRET") },
)]
struct Worker {
    ay: EchoConn,
    bee: EchoConn,
    sea: EchoConn,
    other: OtherConn,
    plain: u32,
    /// Observed in `__prerun__`: whether the fields were already open.
    open_before_prerun: bool,
}

#[skprocess]
impl Worker {
    fn __prerun__(&mut self) {
        self.open_before_prerun =
            self.ay.is_open() && self.bee.is_open() && self.sea.is_open() && self.other.is_open();
    }

    fn __run__(&mut self) {}

    fn __result__(&mut self) -> (Vec<String>, bool, u32) {
        let seen = vec![
            (*self.ay).clone(),
            (*self.bee).clone(),
            (*self.sea).clone(),
            (*self.other).clone(),
        ];
        (seen, self.open_before_prerun, self.plain)
    }
}

fn worker() -> Worker {
    Worker {
        ay: echo("a").with_secret("parent-only-secret"),
        bee: echo("b"),
        sea: echo("c"),
        other: other("d"),
        plain: 7,
        open_before_prerun: false,
    }
}

#[test]
fn credentials_from_the_attribute_reach_each_field_in_the_child() {
    __testing::set_child_env(ENV_VAR, "from-the-environment");
    let (seen, open_before_prerun, plain) = Skprocess::new(worker())
        .timeout(LIMIT)
        .run()
        .expect("the worker runs");
    assert_eq!(
        seen,
        ["star", "bee-secret", "from-the-environment", "<none>"],
        "`*` for `ay` (the parent's own secret does not cross), the override for `bee`, the \
         environment for `sea`, and nothing for a field of another connection type"
    );
    assert!(
        open_before_prerun,
        "the fields are open before the first lifecycle method"
    );
    assert_eq!(plain, 7);
}

/// The same without a field read from the environment (an in-process run reads this
/// process's environment, which a test must not change while other tests run).
#[skprocess(runs = 1)]
#[autoreconnect(EchoConn = { "*": "star", bee: "bee-secret" })]
struct Local {
    ay: EchoConn,
    bee: EchoConn,
    other: OtherConn,
    open_before_prerun: bool,
}

#[skprocess]
impl Local {
    fn __prerun__(&mut self) {
        self.open_before_prerun = self.ay.is_open() && self.bee.is_open() && self.other.is_open();
    }

    fn __run__(&mut self) {}

    fn __result__(&mut self) -> (Vec<String>, bool) {
        let seen = vec![
            (*self.ay).clone(),
            (*self.bee).clone(),
            (*self.other).clone(),
        ];
        (seen, self.open_before_prerun)
    }
}

#[test]
fn an_in_process_run_opens_the_fields_the_same_way() {
    let local = Local {
        ay: echo("a"),
        bee: echo("b"),
        other: other("d"),
        open_before_prerun: false,
    };
    let (seen, open_before_prerun) =
        within(LIMIT, || InProcess::new(local).run()).expect("the process runs");
    assert_eq!(seen, ["star", "bee-secret", "<none>"]);
    assert!(open_before_prerun);
}

#[test]
fn secrets_never_appear_in_the_encoded_bytes() {
    let mut w = worker();
    w.bee = echo("b").with_secret("hunter2-bee");
    w.other = other("d").secret_from_env("SOME_VARIABLE_NAME");
    // An open connection: its live value holds the secret, and must not travel either.
    w.sea = echo("c").with_secret("hunter2-sea");
    w.sea.open().expect("opens");
    let bytes = __testing::encode(&w).expect("encodes");
    let text = String::from_utf8_lossy(&bytes);
    for secret in ["parent-only-secret", "hunter2-bee", "hunter2-sea"] {
        assert!(
            !text.contains(secret),
            "the secret {secret:?} is in the bytes: {text:?}"
        );
    }
    assert!(
        text.contains("SOME_VARIABLE_NAME"),
        "the name of the variable holding a secret does cross"
    );
    let back: Worker = __testing::decode(&bytes).expect("decodes");
    assert!(!back.sea.is_open(), "a decoded connection is not open");
    assert_eq!(back.ay.params().name, "a");
}

#[skprocess(runs = 1)]
#[autoreconnect(EchoConn = { "*": env("SKPROCESS_TEST_UNSET_VARIABLE") })]
struct NeedsEnv {
    db: EchoConn,
}

#[skprocess]
impl NeedsEnv {
    fn __run__(&mut self) {
        panic!("no lifecycle method runs when a field cannot be opened");
    }
}

#[test]
fn a_missing_environment_variable_is_a_typed_error_naming_the_field() {
    let error = Skprocess::new(NeedsEnv { db: echo("x") })
        .timeout(LIMIT)
        .run()
        .expect_err("cannot connect");
    let ProcessError::Connect(error) = error else {
        panic!("expected ProcessError::Connect, got {error:?}");
    };
    assert_eq!(error.field(), Some("db"));
    assert_eq!(error.kind(), "echo");
    assert_eq!(
        error.failure(),
        &ConnectFailure::MissingEnv {
            var: "SKPROCESS_TEST_UNSET_VARIABLE".to_owned()
        }
    );
    let text = error.to_string();
    assert!(
        text.contains("field `db`") && text.contains("SKPROCESS_TEST_UNSET_VARIABLE"),
        "{text}"
    );
}

// Written above `#[skprocess]`: the same expansion.
#[autoreconnect(EchoConn = { "*": "pw" })]
#[skprocess(runs = 1)]
struct Refused {
    first: EchoConn,
    second: EchoConn,
    handled: bool,
}

#[skprocess]
impl Refused {
    fn __run__(&mut self) {
        panic!("no lifecycle method runs when a field cannot be opened");
    }

    fn __result__(&mut self) -> String {
        "ran".to_owned()
    }

    fn __error__(&mut self, error: &ProcessError) -> String {
        format!("handled: {error}")
    }
}

#[test]
fn a_refused_connection_names_its_field_and_reaches_error() {
    let refused = Refused {
        first: echo("fine"),
        second: Conn::new(Echo {
            name: "refusing".to_owned(),
            refuse: true,
        }),
        handled: false,
    };
    let handled = Skprocess::new(refused)
        .timeout(LIMIT)
        .run()
        .expect("__error__ turns it into a value");
    assert!(
        handled.starts_with("handled: cannot connect field `second` (echo echo://refusing)"),
        "{handled}"
    );
    assert!(handled.contains("refused the credentials"), "{handled}");
}

/// A live connection whose operations are counted; an operation fails as told.
#[test]
fn call_reconnects_only_before_sending_and_idempotent_repeats_once() {
    let mut conn = echo("calls").with_secret("s");
    let mut sent = 0;

    // Lost mid-operation: `call` does not run it again, and says so.
    let result = conn.call(|_| -> Result<(), EchoError> {
        sent += 1;
        Err(EchoError { lost: true })
    });
    assert!(matches!(result, Err(CallError::Lost(_))), "{result:?}");
    assert_eq!(sent, 1, "a lost operation is never sent again by `call`");
    assert!(!conn.is_open(), "the lost connection is dropped");

    // The next call opens a new connection before sending.
    let value = conn.call(|live| -> Result<String, EchoError> { Ok(live.clone()) });
    assert_eq!(value.expect("reconnected"), "s");
    assert_eq!(
        opens("calls"),
        2,
        "opened once, then once more after the loss"
    );

    // A server's error on a healthy connection: not retried, connection kept.
    let mut failed = 0;
    let result = conn.idempotent(|_| -> Result<(), EchoError> {
        failed += 1;
        Err(EchoError { lost: false })
    });
    assert!(matches!(result, Err(CallError::Failed(_))), "{result:?}");
    assert_eq!(failed, 1);
    assert!(conn.is_open());

    // Idempotent: lost once, reconnected, run again, fine.
    let mut attempts = 0;
    let result = conn.idempotent(|live| -> Result<String, EchoError> {
        attempts += 1;
        if attempts == 1 {
            Err(EchoError { lost: true })
        } else {
            Ok(live.clone())
        }
    });
    assert_eq!(result.expect("the second attempt runs"), "s");
    assert_eq!(attempts, 2);

    // Lost twice: the error comes back, after exactly two attempts.
    let mut attempts = 0;
    let result = conn.idempotent(|_| -> Result<(), EchoError> {
        attempts += 1;
        Err(EchoError { lost: true })
    });
    assert!(result.as_ref().is_err_and(CallError::is_lost), "{result:?}");
    assert_eq!(attempts, 2);
}

#[test]
fn a_connection_in_a_pool_item_opens_lazily_with_its_environment_secret() {
    __testing::set_child_env("SKPROCESS_TEST_ITEM_SECRET", "item-secret");
    let pool = Pool::new(2).expect("a pool");
    let items: Vec<EchoConn> = (0..4)
        .map(|i| echo(&format!("item{i}")).secret_from_env("SKPROCESS_TEST_ITEM_SECRET"))
        .collect();
    let seen: Vec<String> = pool
        .timeout(LIMIT)
        .map(
            |conn: EchoConn| format!("{}={}", conn.params().name, *conn),
            items,
        )
        .expect("the items run");
    assert_eq!(
        seen,
        [
            "item0=item-secret",
            "item1=item-secret",
            "item2=item-secret",
            "item3=item-secret"
        ]
    );
}

#[test]
fn a_connection_that_cannot_open_panics_on_deref_with_the_reason_and_errs_on_open() {
    let mut conn = Conn::new(Echo {
        name: "nope".to_owned(),
        refuse: true,
    });
    let error = conn.open().expect_err("refused");
    assert_eq!(error.failure(), &ConnectFailure::Auth);
    assert_eq!(error.field(), None);
    let panic = std::panic::catch_unwind(|| conn.len()).expect_err("deref panics");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("cannot connect (echo echo://nope)"),
        "{message}"
    );
}

/// Locks and atomics pass the field check and cross as copies of their values.
#[skprocess(runs = 1)]
struct Copies {
    counter: std::sync::Mutex<u64>,
    hits: std::sync::atomic::AtomicU64,
}

#[skprocess]
impl Copies {
    fn __run__(&mut self) {
        *self.counter.get_mut().expect("not poisoned") += 1;
        self.hits.fetch_add(10, Ordering::SeqCst);
    }

    fn __result__(&mut self) -> (u64, u64) {
        (
            *self.counter.get_mut().expect("not poisoned"),
            self.hits.load(Ordering::SeqCst),
        )
    }
}

#[test]
fn locks_and_atomics_cross_as_copies_of_their_values() {
    let copies = Copies {
        counter: std::sync::Mutex::new(41),
        hits: std::sync::atomic::AtomicU64::new(5),
    };
    let (counter, hits) = Skprocess::new(copies).timeout(LIMIT).run().expect("runs");
    assert_eq!((counter, hits), (42, 15));
}
