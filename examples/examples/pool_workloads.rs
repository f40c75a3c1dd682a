//! A pool for real work: an initializer builds each worker's state (here a cache, in real
//! programs a database connection or a model), tasks reach it, progress is reported as results
//! arrive, and what the workers log reaches the parent's logger with their pid.
//!
//! Run: `cargo run -p examples --features logs --example pool_workloads`

// ANCHOR: all
use std::collections::HashMap;
use std::io::Write;

use skprocess::pool::{Pool, Progress};

/// Each worker's state: built once per worker, before its first task.
struct Cache {
    entries: HashMap<u64, u64>,
    lookups: u64,
}

/// The initializer: runs in each worker (never in the parent). It may fail (`Err` or a panic):
/// the pool's build then fails with `PoolError::Initializer`, naming it.
fn load_cache() -> Result<Cache, std::io::Error> {
    let entries: HashMap<u64, u64> = (0..500).map(|k| (k * 2, k * k)).collect();
    log::info!("cache loaded with {} entries", entries.len());
    Ok(Cache {
        entries,
        lookups: 0,
    })
}

/// The task: the worker's state first, then the item.
fn lookup(cache: &mut Cache, key: u64) -> Option<u64> {
    cache.lookups += 1;
    if cache.lookups == 1 {
        log::info!("a worker's first lookup: {key}");
    }
    cache.entries.get(&key).copied()
}

fn report(progress: Progress) {
    let total = progress.total.unwrap_or(0);
    if progress.done == 0 {
        println!("progress: 0 of {total} items");
    } else if Some(progress.done) == progress.total {
        println!(
            "progress: {} of {total} items, {} failed",
            progress.done, progress.failed
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The parent's logger. Workers forward their records to it (`log` feature).
    env_logger::Builder::new()
        .filter_level(log::LevelFilter::Info)
        .format(|buf, record| {
            let fields: Vec<String> = {
                struct Collect(Vec<String>);
                impl<'kvs> log::kv::VisitSource<'kvs> for Collect {
                    fn visit_pair(
                        &mut self,
                        key: log::kv::Key<'kvs>,
                        value: log::kv::Value<'kvs>,
                    ) -> Result<(), log::kv::Error> {
                        self.0.push(format!("{key}={value}"));
                        Ok(())
                    }
                }
                let mut collect = Collect(Vec::new());
                let _ = record.key_values().visit(&mut collect);
                collect.0
            };
            writeln!(
                buf,
                "[{}] {} ({})",
                record.level(),
                record.args(),
                fields.join(" ")
            )
        })
        .target(env_logger::Target::Stdout)
        .init();

    let pool = Pool::builder()
        .workers(2)
        .try_initializer(load_cache)
        .build()?;
    let found = pool.with_state().progress(report).map(lookup, 0..1000u64)?;
    let hits = found.iter().filter(|v| v.is_some()).count();
    println!("{} lookups, {hits} hits", found.len());
    Ok(())
}
// ANCHOR_END: all
