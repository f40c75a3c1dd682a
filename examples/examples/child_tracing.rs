//! Events from children (feature `tracing` of skprocess-runtime): events a process or a pool
//! task emits reach the parent's subscriber, with the child's `pid` and `process` fields and
//! its own target, file and line as `child.*` fields.
//!
//! Run: `cargo run -p examples --features logs --example child_tracing`

// ANCHOR: all
use skprocess::pool::Pool;
use skprocess::prelude::*;

#[skprocess(runs = 1)]
struct Indexer {
    files: u32,
}

#[skprocess]
impl Indexer {
    fn __run__(&mut self) {
        tracing::info!(files = self.files, "indexing");
        tracing::trace!("every file name"); // under the parent's level
    }

    fn __result__(&mut self) -> u32 {
        self.files
    }
}

fn parse(line: u32) -> u32 {
    tracing::warn!(line, "odd line");
    line
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The parent's subscriber: one line per event on stdout, without colours or times.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .without_time()
        .with_writer(std::io::stdout)
        .init();

    let files = Skprocess::new(Indexer { files: 3 }).run()?;
    tracing::info!(files, "indexed");
    let pool = Pool::new(1)?;
    pool.map(parse, [7])?;
    Ok(())
}
// ANCHOR_END: all
