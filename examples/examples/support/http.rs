//! A loopback HTTP server and clients for the async examples (`async_http_tasks`,
//! `async_vs_sync`): included by each with `#[path = "support/http.rs"] mod http;`.

// Each example uses part of this.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long the server takes to answer each request.
pub(crate) const LATENCY: Duration = Duration::from_millis(20);

// ANCHOR: server
/// A minimal HTTP/1.1 server: answers `GET /item/N` with `item N` after [`LATENCY`], one
/// connection per request. Counts the requests in flight, and the most at once.
pub(crate) async fn serve(
    listener: TcpListener,
    in_flight: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
) {
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
pub(crate) async fn fetch(port: u16, n: usize) -> Result<String, String> {
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

/// [`fetch`] for sync code: the same request on a blocking socket.
pub(crate) fn fetch_blocking(port: u16, n: usize) -> Result<String, String> {
    let mut socket =
        std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let request = format!("GET /item/{n} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    socket
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    socket
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    if !response.starts_with("HTTP/1.1 200") {
        return Err(format!("unexpected response: {response:?}"));
    }
    let (_, body) = response.split_once("\r\n\r\n").ok_or("no end of headers")?;
    Ok(body.to_owned())
}

/// Starts [`serve`] on a thread of its own (a single-threaded tokio runtime) and returns its
/// port and the most requests it had in flight at once so far.
pub(crate) fn serve_in_background() -> std::io::Result<(u16, Arc<AtomicUsize>)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let most = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&most);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let listener = TcpListener::from_std(listener).expect("a tokio listener");
            serve(listener, Arc::new(AtomicUsize::new(0)), seen).await;
        });
    });
    Ok((port, most))
}
