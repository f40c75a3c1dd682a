//! Logs from children (feature `log` of skprocess-runtime): records a process or a pool task
//! logs reach the parent's logger, at the parent's level, with the child's `pid` and `process`.
//!
//! Run: `cargo run -p examples --features logs --example child_logs`

// ANCHOR: all
use std::io::Write;

use skprocess::pool::Pool;
use skprocess::prelude::*;

#[skprocess(runs = 2)]
struct Downloader {
    url: String,
}

#[skprocess]
impl Downloader {
    fn __run__(&mut self, cx: &mut Context) {
        let run = cx.current_run();
        log::info!(run; "fetching {}", self.url);
        log::debug!("headers: ..."); // under the parent's level: not even formatted here
    }

    fn __result__(&mut self) -> usize {
        log::warn!("{} was slow", self.url);
        2
    }
}

fn checksum(block: u64) -> u64 {
    log::info!(block; "checking block");
    block * 31
}

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The parent's logger, as usual. Children forward to it: no set-up in them.
    env_logger::Builder::new()
        .filter_level(log::LevelFilter::Info)
        .target(env_logger::Target::Stdout)
        .format(|buf, record| {
            let kvs = record.key_values();
            let field = |key: &str| {
                kvs.get(log::kv::Key::from_str(key))
                    .map(|v| v.to_string())
                    .unwrap_or_default()
            };
            writeln!(
                buf,
                "[{} {}] {} (process={} run={} block={})",
                record.level(),
                record.target(),
                record.args(),
                field("process"),
                field("run"),
                field("block"),
            )
        })
        .init();

    log::info!("starting");
    let fetched = Skprocess::new(Downloader {
        url: "https://example.com/data".into(),
    })
    .run()?;
    log::info!("fetched {fetched} times");

    let pool = Pool::new(2)?;
    let sums = pool.map(checksum, [1, 2])?;
    log::info!("checksums {sums:?}");
    Ok(())
}
// ANCHOR_END: main
// ANCHOR_END: all
