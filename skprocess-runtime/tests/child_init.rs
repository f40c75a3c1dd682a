//! Start hooks: `#[child_init]` and `register_child_init!` run in every child and pool worker,
//! once, in their order, before user code; never in the parent.

use std::sync::{Mutex, OnceLock};

use skprocess::pool::Pool;
use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Deserializer, Serialize, Serializer};

mod common;
use common::LIMIT;

/// What the hooks did in this process, in order.
static TRAIL: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
/// A global the first hook sets.
static CONFIG: OnceLock<String> = OnceLock::new();

fn trail() -> Vec<&'static str> {
    TRAIL.lock().unwrap().clone()
}

#[child_init]
fn b_second_by_name() {
    TRAIL.lock().unwrap().push("b_second_by_name");
}

#[child_init(order = -5)]
fn z_first_by_order() -> Result<(), String> {
    TRAIL.lock().unwrap().push("z_first_by_order");
    CONFIG
        .set(format!("configured in {}", std::process::id()))
        .map_err(|_| "set twice".to_owned())
}

#[child_init]
fn a_first_by_name() -> Result<(), std::io::Error> {
    TRAIL.lock().unwrap().push("a_first_by_name");
    Ok(())
}

/// A function that does not carry the attribute.
fn from_elsewhere() {
    TRAIL.lock().unwrap().push("from_elsewhere");
}

skprocess::register_child_init!(from_elsewhere, order = 10);

const EXPECTED: [&str; 4] = [
    "z_first_by_order",
    "a_first_by_name",
    "b_second_by_name",
    "from_elsewhere",
];

/// A field whose `Deserialize` (user code that runs in the child when its process value is
/// decoded) records whether the hooks ran before it.
struct SeesConfig(bool);

impl Serialize for SeesConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bool(self.0)
    }
}

impl<'de> Deserialize<'de> for SeesConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        bool::deserialize(deserializer)?;
        Ok(SeesConfig(CONFIG.get().is_some()))
    }
}

#[skprocess(runs = 1)]
struct Reader {
    decoded_after_hooks: SeesConfig,
    trail: Vec<String>,
}

impl Reader {
    fn fresh((): ()) -> Reader {
        Reader {
            decoded_after_hooks: SeesConfig(false),
            trail: Vec::new(),
        }
    }
}

#[skprocess]
impl Reader {
    fn __prerun__(&mut self) {
        self.trail = trail().into_iter().map(str::to_owned).collect();
    }

    fn __run__(&mut self) {}

    fn __result__(&mut self) -> (Vec<String>, Option<String>, u32, bool) {
        (
            self.trail.clone(),
            CONFIG.get().cloned(),
            std::process::id(),
            self.decoded_after_hooks.0,
        )
    }
}

#[test]
fn hooks_run_in_a_process_in_order_before_any_user_code() {
    let (trail, config, pid, decoded_after_hooks) = Skprocess::new(Reader {
        decoded_after_hooks: SeesConfig(false),
        trail: Vec::new(),
    })
    .timeout(LIMIT)
    .run()
    .unwrap();
    assert_eq!(trail, EXPECTED);
    assert_eq!(config, Some(format!("configured in {pid}")));
    assert!(
        decoded_after_hooks,
        "the state was decoded before the hooks ran"
    );
}

fn what_the_worker_saw(item: u32) -> (u32, u32, Vec<String>, Option<String>) {
    let trail = trail().into_iter().map(str::to_owned).collect();
    (item, std::process::id(), trail, CONFIG.get().cloned())
}

#[test]
fn hooks_run_once_in_each_pool_worker_before_its_tasks() {
    let pool = Pool::new(2).unwrap();
    let seen = pool
        .timeout(LIMIT)
        .map(what_the_worker_saw, 0..40u32)
        .unwrap();
    for (item, pid, trail, config) in &seen {
        // Once per worker, not once per task.
        assert_eq!(trail, &EXPECTED, "item {item}");
        assert_eq!(config, &Some(format!("configured in {pid}")), "item {item}");
    }
    // A process type run as a pool task sees them too (it runs inside a worker).
    let outcomes = pool
        .processes()
        .timeout(LIMIT)
        .map(Reader::fresh, [()])
        .unwrap();
    let (trail, config, pid, _) = &outcomes[0];
    assert_eq!(trail, &EXPECTED);
    assert_eq!(config, &Some(format!("configured in {pid}")));
}

#[test]
fn hooks_never_run_in_the_parent() {
    // Other tests of this binary start children meanwhile; none of that runs a hook here.
    let pool = Pool::new(1).unwrap();
    pool.timeout(LIMIT).map(what_the_worker_saw, [1]).unwrap();
    assert!(trail().is_empty());
    assert!(CONFIG.get().is_none());
}

#[test]
fn the_hooks_are_listed_in_the_order_they_run() {
    let names = skprocess::child_init_hooks();
    let expected: Vec<String> = EXPECTED
        .iter()
        .map(|n| format!("child_init::{n}"))
        .collect();
    assert_eq!(names, expected);
}
