//! The design notes' "when to use what", measured: the same I/O-bound work (fetching 100 pages
//! from an HTTP server this example starts on loopback, 20 ms per answer) done by an async
//! process, by a sync process one page after another, by a sync `Pool` of 4 workers, and by an
//! `AsyncPool` across 2 worker processes.
//!
//! The async process runs its `async fn __run__` on tokio inside the child and keeps 50
//! requests in flight with an `AsyncPool`; the sync process waits for each answer in turn; the
//! pool waits in 4 workers at once; the async worker pool keeps 50 in flight across its two
//! workers. Ratios depend on the machine; the order does not.
//!
//! Run: `cargo run -p examples --features async --example async_vs_sync`

use std::time::Instant;

use skprocess::pool::{AsyncPool, Pool};
use skprocess::prelude::*;

#[path = "support/http.rs"]
mod http;

const PAGES: usize = 100;

// ANCHOR: async_process
/// Fetches every page from its child, at most 50 requests at once.
#[skprocess(runs = 1)]
struct AsyncFetcher {
    port: u16,
    fetched: usize,
}

#[skprocess]
impl AsyncFetcher {
    async fn __run__(&mut self) -> Result<(), String> {
        let port = self.port;
        let bodies = AsyncPool::new(50)
            .map(move |n| http::fetch(port, n), 0..PAGES)
            .await
            .map_err(|e| e.to_string())?;
        self.fetched = bodies.iter().filter(|body| body.is_ok()).count();
        Ok(())
    }

    fn __result__(&mut self) -> usize {
        self.fetched
    }
}
// ANCHOR_END: async_process

/// Fetches every page from its child, one after another.
#[skprocess(runs = 1)]
struct SequentialFetcher {
    port: u16,
    fetched: usize,
}

#[skprocess]
impl SequentialFetcher {
    fn __run__(&mut self) {
        self.fetched = (0..PAGES)
            .filter(|&n| http::fetch_blocking(self.port, n).is_ok())
            .count();
    }

    fn __result__(&mut self) -> usize {
        self.fetched
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (port, _) = http::serve_in_background()?;

    let started = Instant::now();
    let fetched = Skprocess::new(AsyncFetcher { port, fetched: 0 }).run()?;
    let async_time = started.elapsed().as_secs_f64();
    println!(
        "async process (AsyncPool(50) inside): {fetched} of {PAGES} pages in {async_time:.2}s"
    );

    let started = Instant::now();
    let fetched = Skprocess::new(SequentialFetcher { port, fetched: 0 }).run()?;
    let sequential = started.elapsed().as_secs_f64();
    println!(
        "sequential sync process: {fetched} of {PAGES} pages in {sequential:.2}s ({:.1}x the async process's time)",
        sequential / async_time
    );

    let pool = Pool::new(4)?;
    let started = Instant::now();
    let bodies = pool
        .star()
        .map(http::fetch_blocking, (0..PAGES).map(|n| (port, n)))?;
    let pooled = started.elapsed().as_secs_f64();
    let fetched = bodies.iter().filter(|body| body.is_ok()).count();
    println!(
        "sync Pool of 4 workers: {fetched} of {PAGES} pages in {pooled:.2}s ({:.1}x the async process's time)",
        pooled / async_time
    );

    // ANCHOR: async_workers
    let workers = AsyncPool::with_workers(2, 50)?;
    let started = Instant::now();
    let bodies =
        workers.block_on(workers.starmap(http::fetch, (0..PAGES).map(move |n| (port, n))))?;
    let across = started.elapsed().as_secs_f64();
    // ANCHOR_END: async_workers
    let fetched = bodies.iter().filter(|body| body.is_ok()).count();
    println!(
        "AsyncPool across 2 worker processes: {fetched} of {PAGES} pages in {across:.2}s ({:.1}x the async process's time)",
        across / async_time
    );
    Ok(())
}
