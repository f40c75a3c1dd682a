//! The forms `#[autoreconnect]` accepts: above or below `#[skprocess]`, by a path, without
//! arguments, on a tuple struct, literal and environment secrets, per-field overrides.

use skprocess::prelude::*;

#[path = "../support/conns.rs"]
mod conns;
use conns::{Cache, Db};

#[skprocess]
#[skprocess::autoreconnect(
    start_threads = false,
    Db = { "*": "default", analytics: env("ANALYTICS_PASSWORD") },
    conns::Cache = { "*": "cache", },
)]
struct Below {
    main: Db,
    analytics: Db,
    cache: Cache,
    other: u32,
}

#[skprocess]
impl Below {
    fn __run__(&mut self) {}
}

#[skprocess::autoreconnect(Db = { "*": "pw" })]
#[skprocess(runs = 1)]
struct Above {
    db: Db,
}

#[skprocess]
impl Above {
    fn __run__(&mut self) {}
}

#[skprocess]
#[skprocess::autoreconnect]
struct NoArguments(Db, Cache, String);

#[skprocess]
impl NoArguments {
    fn __run__(&mut self) {}
}

// Locks and atomics cross (as copies); a field with its own serde attribute is left alone.
#[skprocess]
struct Copies {
    counter: std::sync::Mutex<u64>,
    table: std::sync::RwLock<Vec<String>>,
    hits: std::sync::atomic::AtomicU64,
    #[serde(skip)]
    log: Option<std::fs::File>,
}

#[skprocess]
impl Copies {
    fn __run__(&mut self) {}
}

fn main() {
    let _ = |b: Below, a: Above, n: NoArguments, c: Copies| {
        let _ = (b.other, b.main, b.analytics, b.cache, a.db, n.2, c.log);
    };
}
