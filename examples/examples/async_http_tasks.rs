//! The design notes' "1,000 concurrent I/O tasks": an `AsyncPool` fetches 1,000 pages from an
//! HTTP server this example starts on loopback, at most 100 requests in flight. Each response
//! takes the server 20 ms (standing in for a slow backend), so one after another they would
//! take 20 s; concurrently, a fraction of a second.
//!
//! Run: `cargo run -p examples --features async --example async_http_tasks`

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use skprocess::pool::AsyncPool;
use tokio::net::TcpListener;

#[path = "support/http.rs"]
mod http;
use http::{fetch, serve};

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = AsyncPool::new(100).timeout(Duration::from_secs(60));
    pool.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (in_flight, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        tokio::spawn(serve(listener, in_flight, Arc::clone(&most)));

        // A few requests one after another, for comparison.
        let started = Instant::now();
        for n in 0..20 {
            fetch(port, n).await?;
        }
        let sequential = started.elapsed().as_secs_f64() / 20.0;

        // 1,000 through the pool, at most 100 at once.
        let started = Instant::now();
        let bodies = pool.map(|n| fetch(port, n), 0..1000).await?;
        let concurrent = started.elapsed().as_secs_f64();

        let ok = bodies
            .iter()
            .enumerate()
            .filter(|(n, body)| body.as_deref() == Ok(n.to_string().as_str()))
            .count();
        println!("{ok} of 1000 responses OK, each with its own item");
        println!(
            "at most {} requests in flight at the server (the pool's bound is {})",
            most.load(Ordering::SeqCst),
            pool.max_concurrent()
        );
        println!(
            "1000 requests in {concurrent:.2}s; one after another they take {:.1} ms each, so \
             {:.1}s for all: {:.0}x faster",
            sequential * 1e3,
            sequential * 1000.0,
            sequential * 1000.0 / concurrent
        );
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
// ANCHOR_END: main
