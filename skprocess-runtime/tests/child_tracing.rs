//! Logs from children with the `tracing` feature: events that a process or a pool task emits
//! reach the parent's subscriber (tracing-subscriber's registry, with a layer that collects
//! events behind a per-target filter) at the parent's level, with the child's pid and process
//! type, filtered by the child's own target.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, Once};

use skprocess::pool::Pool;
use skprocess::prelude::*;
use tracing::Level;
use tracing::field::{Field, Visit};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context as LayerContext, Layer, SubscriberExt};

mod common;
use common::LIMIT;

/// An event as the parent's subscriber saw it.
#[derive(Debug, Clone)]
struct Seen {
    target: String,
    level: Level,
    fields: BTreeMap<String, String>,
}

static SEEN: Mutex<Vec<Seen>> = Mutex::new(Vec::new());

/// A layer that keeps every event it is given.
struct Collector;

impl<S: tracing::Subscriber> Layer<S> for Collector {
    fn on_event(&self, event: &tracing::Event<'_>, _: LayerContext<'_, S>) {
        struct Fields(BTreeMap<String, String>);
        impl Visit for Fields {
            fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
                self.0.insert(field.name().to_owned(), format!("{value:?}"));
            }
            fn record_str(&mut self, field: &Field, value: &str) {
                self.0.insert(field.name().to_owned(), value.to_owned());
            }
        }
        let mut fields = Fields(BTreeMap::new());
        event.record(&mut fields);
        SEEN.lock().unwrap().push(Seen {
            target: event.metadata().target().to_owned(),
            level: *event.metadata().level(),
            fields: fields.0,
        });
    }
}

/// Installs the parent's subscriber (once): `info`, and nothing from `child_tracing::quiet`.
fn subscriber() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let filter = Targets::new()
            .with_default(LevelFilter::INFO)
            .with_target("child_tracing::quiet", LevelFilter::OFF);
        let subscriber = tracing_subscriber::registry().with(Collector.with_filter(filter));
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
}

/// The events whose message contains `tag`.
fn seen_with(tag: &str) -> Vec<Seen> {
    SEEN.lock()
        .unwrap()
        .iter()
        .filter(|seen| seen.fields.get("message").is_some_and(|m| m.contains(tag)))
        .cloned()
        .collect()
}

/// Emits in every child of this binary, before any user code.
#[child_init]
fn announce() {
    tracing::info!(target: "hooks", "hook ran in {}", std::process::id());
}

#[skprocess(runs = 2)]
struct Chatty {
    tag: String,
}

#[skprocess]
impl Chatty {
    fn __run__(&mut self, cx: &mut Context) {
        let run = cx.current_run();
        let _span = tracing::info_span!("work", run).entered();
        tracing::warn!(run, tag = %self.tag, "{} warn {run}", self.tag);
        tracing::info!("{} info {run}", self.tag);
        tracing::debug!("{} debug {run}", self.tag);
        tracing::info!(target: "child_tracing::quiet", "{} quiet {run}", self.tag);
    }

    fn __result__(&mut self) -> (u32, String, bool) {
        (
            std::process::id(),
            LevelFilter::current().to_string(),
            tracing::enabled!(Level::DEBUG),
        )
    }
}

#[test]
fn a_process_forwards_what_the_parents_filter_wants() {
    subscriber();
    let (pid, max_level, debug_enabled) = Skprocess::new(Chatty {
        tag: "chatty-process".into(),
    })
    .timeout(LIMIT)
    .run()
    .unwrap();
    // The parent's level, mirrored: debug events cost a disabled callsite there.
    assert_eq!((max_level.as_str(), debug_enabled), ("info", false));
    let seen = seen_with("chatty-process");
    let messages: Vec<&str> = seen.iter().map(|s| s.fields["message"].as_str()).collect();
    // Not the debug ones (the level), not the quiet ones (the child's target, filtered here).
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
    for event in &seen {
        assert_eq!(event.target, "skprocess::child");
        assert_eq!(event.fields["child.target"], "child_tracing", "{event:?}");
        assert_eq!(event.fields["child.module_path"], "child_tracing");
        assert!(event.fields["child.file"].ends_with("tests/child_tracing.rs"));
        assert!(event.fields["child.line"].parse::<u32>().unwrap() > 0);
        assert_eq!(event.fields["pid"], pid.to_string());
        assert_eq!(event.fields["process"], process);
    }
    assert_eq!(seen[0].level, Level::WARN);
    assert_eq!(seen[1].level, Level::INFO);
    assert_eq!(seen[2].fields["child.fields"], "run=1 tag=chatty-process");
    assert!(!seen[1].fields.contains_key("child.fields"));
    let hooks = seen_with(&format!("hook ran in {pid}"));
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].fields["child.target"], "hooks");
}

fn pool_task(item: u32) -> u32 {
    tracing::warn!(item, "pool-task warn {item}");
    tracing::info!("pool-task info {item}");
    tracing::debug!("pool-task debug {item}");
    std::process::id()
}

#[test]
fn a_pool_task_forwards_with_the_workers_pid() {
    subscriber();
    let pool = Pool::new(2).unwrap();
    let pids = pool.timeout(LIMIT).map(pool_task, 0..10).unwrap();
    let seen = seen_with("pool-task");
    assert_eq!(seen.len(), 20, "{seen:#?}");
    for item in 0..10u32 {
        let of_item: Vec<&Seen> = seen
            .iter()
            .filter(|s| s.fields["message"].ends_with(&format!(" {item}")))
            .collect();
        let levels: Vec<Level> = of_item.iter().map(|s| s.level).collect();
        assert_eq!(levels, [Level::WARN, Level::INFO], "item {item}");
        for event in of_item {
            assert_eq!(event.fields["pid"], pids[item as usize].to_string());
            assert_eq!(event.fields["process"], "pool worker");
        }
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
            // From another thread, just before the process ends.
            std::thread::spawn(move || tracing::error!("last-words before exit {code}"))
                .join()
                .unwrap();
            std::process::exit(code);
        }
    }

    fn __result__(&mut self) -> u32 {
        tracing::warn!("last-words in __result__");
        std::process::id()
    }
}

#[test]
fn events_emitted_right_before_the_child_ends_arrive() {
    subscriber();
    let pid = Skprocess::new(LastWords { exit_code: None })
        .timeout(LIMIT)
        .run()
        .unwrap();
    let seen = seen_with("last-words in __result__");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].fields["pid"], pid.to_string());

    let error = Skprocess::new(LastWords { exit_code: Some(9) })
        .timeout(LIMIT)
        .run()
        .unwrap_err();
    assert!(
        matches!(&error, ProcessError::Crashed { exit, .. } if exit.code() == Some(9)),
        "{error:?}"
    );
    assert_eq!(seen_with("last-words before exit 9").len(), 1);
}
