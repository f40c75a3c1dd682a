//! The design notes' "API rate limiting" use case, across processes: four pool workers call an
//! API that allows 8 calls per 200 ms window and answers "429, retry after N s" beyond that. All
//! workers share one circuit through a Share: a worker that gets a 429 shorts the circuit with
//! the server's retry-after, and the sleep happens in that worker; the others carry on.
//!
//! Run: `cargo run -p examples --example circuit_rate_limiter`

use std::time::Duration;

use skprocess::circuits::Circuit;
use skprocess::pool::Pool;
use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};
use skprocess::timing;

// ANCHOR: api
/// A stand-in for a rate-limited HTTP API, kept by the Share so that every process calls the
/// same one: at most `limit` calls per `window` seconds.
#[derive(Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct RateLimitedApi {
    limit: usize,
    window: f64,
    /// When the calls of the current window were accepted.
    recent: Vec<f64>,
    served: u64,
    refused: u64,
}

/// What the API answers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
enum Response {
    /// 200, with the endpoint's body.
    Ok(String),
    /// 429: come back after this many seconds.
    TooManyRequests { retry_after: f64 },
}

#[shared]
impl RateLimitedApi {
    fn get(&mut self, endpoint: String) -> Response {
        let now = timing::time();
        self.recent.retain(|&at| now - at < self.window);
        if self.recent.len() >= self.limit {
            self.refused += 1;
            let oldest = self.recent[0];
            return Response::TooManyRequests {
                retry_after: (self.window - (now - oldest)).max(0.01),
            };
        }
        self.recent.push(now);
        self.served += 1;
        Response::Ok(format!("{{\"endpoint\": \"{endpoint}\"}}"))
    }

    fn stats(&self) -> (u64, u64) {
        (self.served, self.refused)
    }
}
// ANCHOR_END: api

// ANCHOR: worker
/// Fetches its endpoints; on a 429, shorts the shared circuit with the server's retry-after
/// (one short trips it: the worker sleeps that long, in its own process) and tries again.
fn fetch_all(api: Shared<RateLimitedApi>, circuit: Shared<Circuit>, worker: u32) -> usize {
    let mut fetched = 0;
    for n in 0..10 {
        let endpoint = format!("/users/{}", worker * 100 + n);
        loop {
            match api.get(endpoint.clone()).expect("the Share answers") {
                Response::Ok(_) => {
                    fetched += 1;
                    break;
                }
                Response::TooManyRequests { retry_after } => {
                    circuit.short(Some(retry_after)).expect("the Share answers");
                }
            }
        }
    }
    fetched
}
// ANCHOR_END: worker

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let share = Share::new()?;
    let api = share.insert(
        "api",
        RateLimitedApi {
            limit: 8,
            window: 0.2,
            recent: Vec::new(),
            served: 0,
            refused: 0,
        },
    )?;
    // Trip on every 429, pausing for what the server asked; backoff would not help here.
    let circuit = share.insert("api circuit", Circuit::new(1, 0.2))?;

    let pool = Pool::new(4)?;
    let started = timing::time();
    let fetched: Vec<usize> = pool
        .star()
        .timeout(Duration::from_secs(60))
        .map(fetch_all, (0..4).map(|w| (api.clone(), circuit.clone(), w)))?;
    let took = timing::time() - started;

    let (served, refused) = api.stats()?;
    println!(
        "fetched {} of 40 endpoints in {took:.2}s",
        fetched.iter().sum::<usize>()
    );
    println!("the API served {served} calls and refused {refused} with 429");
    println!(
        "the shared circuit tripped {} times over {} failures; each pause happened in the worker that got the 429",
        circuit.total_trips()?,
        circuit.total_failures()?
    );
    share.stop()?;
    Ok(())
}
// ANCHOR_END: main
