//! The `tracing` facade: the child's forwarding subscriber, and the parent's re-emission.
//!
//! A tracing event's metadata (its target, file and line) is static, fixed where the event is
//! written, so the parent cannot re-emit a child's event under the child's target. It does
//! what `tracing-log` does for `log` records: it asks the subscriber whether it wants an event
//! with the child's real metadata (so filters by target and level apply as they would in the
//! child), and if so emits it from one callsite per level of its own, target
//! `skprocess::child`, with the child's target, module, file and line as fields.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing_core::field::{Field, FieldSet, Value, Visit};
use tracing_core::metadata::Kind;
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::subscriber::Interest;
use tracing_core::{
    Callsite, Dispatch, Event, Level, LevelFilter, Metadata, Subscriber, dispatcher,
};

use super::{
    Bounded, Facade, LogRecord, MAX_FIELDS, MAX_KEY, MAX_MESSAGE, MAX_PATH, MAX_TARGET, MAX_VALUE,
    Source, clip,
};
use crate::wire::Conn;

/// `LevelFilter::current()` (the most verbose level any subscriber of this process wants) as
/// a level number.
pub(super) fn level_now() -> u8 {
    match LevelFilter::current().into_level() {
        None => 0,
        Some(level) => level_number(level),
    }
}

fn level_number(level: Level) -> u8 {
    match level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

fn level_from(number: u8) -> Level {
    match number {
        1 => Level::ERROR,
        2 => Level::WARN,
        3 => Level::INFO,
        4 => Level::DEBUG,
        _ => Level::TRACE,
    }
}

/// Makes the forwarder this process's global subscriber with the parent's maximum level.
/// Nothing when the parent's level was off, or when this process already has a global
/// subscriber.
pub(super) fn install(conn: &Arc<Conn>, level: u8) {
    if level == 0 {
        return;
    }
    let forwarder = Forwarder {
        conn: Arc::clone(conn),
        max: LevelFilter::from_level(level_from(level)),
        next_span: AtomicU64::new(1),
    };
    let _ = dispatcher::set_global_default(Dispatch::new(forwarder));
}

/// The child's subscriber: sends every event at or under `max` to the parent. Spans are
/// disabled (they are not forwarded, so they cost what a disabled span costs).
struct Forwarder {
    conn: Arc<Conn>,
    max: LevelFilter,
    next_span: AtomicU64,
}

impl Subscriber for Forwarder {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if self.enabled(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.is_event() && *metadata.level() <= self.max
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.max)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        // Never called while `enabled` refuses spans; ids must still be non-zero.
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed).max(1))
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let metadata = event.metadata();
        if !self.enabled(metadata) {
            return;
        }
        let mut fields = Fields {
            message: String::new(),
            fields: Vec::new(),
        };
        event.record(&mut fields);
        let record = LogRecord {
            facade: Facade::Tracing,
            level: level_number(*metadata.level()),
            target: clip(metadata.target(), MAX_TARGET),
            message: fields.message,
            module_path: metadata.module_path().map(|m| clip(m, MAX_PATH)),
            file: metadata.file().map(|f| clip(f, MAX_PATH)),
            line: metadata.line(),
            fields: fields.fields,
        };
        super::send(&self.conn, &record);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Collects an event's message and its other fields as text (up to [`MAX_FIELDS`]).
struct Fields {
    message: String,
    fields: Vec<(String, String)>,
}

impl Fields {
    fn push(&mut self, field: &Field, write: impl FnOnce(&mut Bounded) -> fmt::Result) {
        if field.name() == "message" {
            self.message = Bounded::format(MAX_MESSAGE, write);
        } else if self.fields.len() < MAX_FIELDS {
            let value = Bounded::format(MAX_VALUE, write);
            self.fields.push((clip(field.name(), MAX_KEY), value));
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, |w| fmt::Write::write_str(w, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, |w| fmt::write(w, format_args!("{value:?}")));
    }
}

/// What a re-emitted event holds, in the order of [`FIELD_NAMES`].
const FIELD_NAMES: &[&str] = &[
    "message",
    "pid",
    "process",
    "child.target",
    "child.module_path",
    "child.file",
    "child.line",
    "child.fields",
];

/// The target of re-emitted events.
const TARGET: &str = "skprocess::child";

macro_rules! level_callsite {
    ($level:expr, $callsite:ident, $metadata:ident, $ty:ident) => {
        struct $ty;
        static $callsite: $ty = $ty;
        static $metadata: Metadata<'static> = Metadata::new(
            "event from a child process",
            TARGET,
            $level,
            None,
            None,
            None,
            FieldSet::new(FIELD_NAMES, tracing_core::identify_callsite!(&$callsite)),
            Kind::EVENT,
        );
        impl Callsite for $ty {
            fn set_interest(&self, _: Interest) {}
            fn metadata(&self) -> &Metadata<'_> {
                &$metadata
            }
        }
    };
}

level_callsite!(Level::ERROR, ERROR_CS, ERROR_META, ErrorCallsite);
level_callsite!(Level::WARN, WARN_CS, WARN_META, WarnCallsite);
level_callsite!(Level::INFO, INFO_CS, INFO_META, InfoCallsite);
level_callsite!(Level::DEBUG, DEBUG_CS, DEBUG_META, DebugCallsite);
level_callsite!(Level::TRACE, TRACE_CS, TRACE_META, TraceCallsite);

fn metadata_for(level: Level) -> &'static Metadata<'static> {
    match level {
        Level::ERROR => &ERROR_META,
        Level::WARN => &WARN_META,
        Level::INFO => &INFO_META,
        Level::DEBUG => &DEBUG_META,
        Level::TRACE => &TRACE_META,
    }
}

/// Re-emits a child's event through this process's default subscriber (the global one: this
/// runs on a reader thread of the runtime).
pub(super) fn emit(record: &LogRecord, source: Source<'_>) {
    let level = level_from(record.level);
    if level > LevelFilter::current() {
        return;
    }
    let metadata = metadata_for(level);
    // The child's own metadata, for the subscriber's filters.
    let as_written = Metadata::new(
        metadata.name(),
        &record.target,
        level,
        record.file.as_deref(),
        record.line,
        record.module_path.as_deref(),
        FieldSet::new(FIELD_NAMES, metadata.callsite()),
        Kind::EVENT,
    );
    dispatcher::get_default(|dispatch| {
        if !dispatch.enabled(&as_written) {
            return;
        }
        let fields = metadata.fields();
        let field = |name: &str| fields.field(name).expect("a declared field");
        let names: Vec<Field> = FIELD_NAMES.iter().map(|name| field(name)).collect();
        let joined = record
            .fields
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join(" ");
        let message = format_args!("{}", record.message);
        let target = record.target.as_str();
        let module_path = record.module_path.as_deref();
        let file = record.file.as_deref();
        let joined = (!joined.is_empty()).then_some(joined.as_str());
        let values: [(&Field, Option<&dyn Value>); 8] = [
            (&names[0], Some(&message)),
            (&names[1], Some(&source.pid)),
            (&names[2], Some(&source.process)),
            (&names[3], Some(&target)),
            (&names[4], module_path.as_ref().map(|v| v as &dyn Value)),
            (&names[5], file.as_ref().map(|v| v as &dyn Value)),
            (&names[6], record.line.as_ref().map(|v| v as &dyn Value)),
            (&names[7], joined.as_ref().map(|v| v as &dyn Value)),
        ];
        dispatch.event(&Event::new(metadata, &fields.value_set(&values)));
    });
}
