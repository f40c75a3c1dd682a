//! The `log` facade: the child's forwarding logger, and the parent's re-emission.

use std::fmt;
use std::sync::Arc;

use log::kv::{self, Key, Value, VisitSource};

use super::{
    Bounded, Facade, LogRecord, MAX_FIELDS, MAX_KEY, MAX_MESSAGE, MAX_PATH, MAX_TARGET, MAX_VALUE,
    Source, clip,
};
use crate::wire::Conn;

/// `log::max_level()` as a level number.
pub(super) fn level_now() -> u8 {
    log::max_level() as u8
}

fn filter_from(level: u8) -> log::LevelFilter {
    match level {
        0 => log::LevelFilter::Off,
        1 => log::LevelFilter::Error,
        2 => log::LevelFilter::Warn,
        3 => log::LevelFilter::Info,
        4 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}

/// Makes the forwarder this process's logger with the parent's maximum level. Nothing when the
/// parent's level was off (it would forward nothing, and a start hook may then install a
/// logger of its own), or when this process already has a logger.
pub(super) fn install(conn: &Arc<Conn>, level: u8) {
    let filter = filter_from(level);
    if filter == log::LevelFilter::Off {
        return;
    }
    let forwarder = Forwarder {
        conn: Arc::clone(conn),
    };
    if log::set_boxed_logger(Box::new(forwarder)).is_ok() {
        log::set_max_level(filter);
    }
}

/// The child's logger: sends every record at or under `log::max_level()` to the parent.
struct Forwarder {
    conn: Arc<Conn>,
}

impl log::Log for Forwarder {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut fields = Fields(Vec::new());
        let _ = record.key_values().visit(&mut fields);
        let message = Bounded::format(MAX_MESSAGE, |w| fmt::write(w, *record.args()));
        let record = LogRecord {
            facade: Facade::Log,
            level: record.level() as u8,
            target: clip(record.target(), MAX_TARGET),
            message,
            module_path: record.module_path().map(|m| clip(m, MAX_PATH)),
            file: record.file().map(|f| clip(f, MAX_PATH)),
            line: record.line(),
            fields: fields.0,
        };
        super::send(&self.conn, &record);
    }

    fn flush(&self) {}
}

/// Collects a record's key-values as text, up to [`MAX_FIELDS`].
struct Fields(Vec<(String, String)>);

impl<'kvs> VisitSource<'kvs> for Fields {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), kv::Error> {
        if self.0.len() == MAX_FIELDS {
            return Err(kv::Error::msg("too many key-values"));
        }
        let value = Bounded::format(MAX_VALUE, |w| fmt::write(w, format_args!("{value}")));
        self.0.push((clip(key.as_str(), MAX_KEY), value));
        Ok(())
    }
}

/// Re-emits a child's record through this process's logger, as if it was logged here, with
/// the child's `pid` and `process` as key-values before its own.
pub(super) fn emit(record: &LogRecord, source: Source<'_>) {
    let level = match record.level {
        1 => log::Level::Error,
        2 => log::Level::Warn,
        3 => log::Level::Info,
        4 => log::Level::Debug,
        _ => log::Level::Trace,
    };
    // What `log!` checks before it calls the logger.
    if level > log::max_level() {
        return;
    }
    let kvs = Pairs {
        source,
        fields: &record.fields,
    };
    log::logger().log(
        &log::Record::builder()
            .level(level)
            .target(&record.target)
            .args(format_args!("{}", record.message))
            .module_path(record.module_path.as_deref())
            .file(record.file.as_deref())
            .line(record.line)
            .key_values(&kvs)
            .build(),
    );
}

/// The key-values of a re-emitted record.
struct Pairs<'a> {
    source: Source<'a>,
    fields: &'a [(String, String)],
}

impl kv::Source for Pairs<'_> {
    fn visit<'kvs>(&'kvs self, visitor: &mut dyn VisitSource<'kvs>) -> Result<(), kv::Error> {
        visitor.visit_pair(Key::from_str("pid"), Value::from(self.source.pid))?;
        visitor.visit_pair(Key::from_str("process"), Value::from(self.source.process))?;
        for (key, value) in self.fields {
            visitor.visit_pair(Key::from_str(key), Value::from(value.as_str()))?;
        }
        Ok(())
    }
}
