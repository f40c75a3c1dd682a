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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long the server takes to answer each request.
const LATENCY: Duration = Duration::from_millis(20);

// ANCHOR: server
/// A minimal HTTP/1.1 server: answers `GET /item/N` with `item N` after [`LATENCY`], one
/// connection per request. Counts the requests in flight, and the most at once.
async fn serve(listener: TcpListener, in_flight: Arc<AtomicUsize>, most: Arc<AtomicUsize>) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            continue;
        };
        let (in_flight, most) = (Arc::clone(&in_flight), Arc::clone(&most));
        tokio::spawn(async move {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let path = String::from_utf8_lossy(&request)
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .to_owned();
            tokio::time::sleep(LATENCY).await;
            let body = path.trim_start_matches("/item/").to_owned();
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            in_flight.fetch_sub(1, Ordering::SeqCst);
        });
    }
}
// ANCHOR_END: server

// ANCHOR: fetch
/// Fetches `/item/{n}` and returns the body, or why it failed.
async fn fetch(port: u16, n: usize) -> Result<String, String> {
    let mut socket = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let request = format!("GET /item/{n} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    socket
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    socket
        .read_to_string(&mut response)
        .await
        .map_err(|e| e.to_string())?;
    if !response.starts_with("HTTP/1.1 200") {
        return Err(format!("unexpected response: {response:?}"));
    }
    let (_, body) = response.split_once("\r\n\r\n").ok_or("no end of headers")?;
    Ok(body.to_owned())
}
// ANCHOR_END: fetch

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
