//! Example 34, "`tell()` / `listen()` async usage": a parent monitors its child with async
//! `listen`, then drains what is still queued after the child ends.
//!
//! Run: `cargo run -p examples --example tell_listen_async`

// ANCHOR: all
use std::time::Duration;

use sha2::{Digest, Sha256};
use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};

/// The child's status messages.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Status {
    run: usize,
    status: String,
    last_hash: String,
}

/// A worker that reports its status with `tell()`.
#[skprocess]
struct AsyncWorker {
    data_items: Vec<String>,
    results: Vec<String>,
}

#[skprocess]
impl AsyncWorker {
    fn new(data_items: Vec<String>) -> Self {
        AsyncWorker {
            data_items,
            results: Vec::new(),
        }
    }

    fn __config__(&self, config: &mut ProcessConfig) {
        config.runs = Some(self.data_items.len());
    }

    // ANCHOR: run
    fn __run__(&mut self, cx: &mut Context) -> Result<(), TellError> {
        // process a data item: compute its hash
        let run = cx.current_run();
        let digest = Sha256::digest(self.data_items[run].as_bytes());
        let hash: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        self.results.push(hash[..16].to_owned());

        // send a status every 5 runs
        if run.is_multiple_of(5) {
            cx.tell(Status {
                run,
                status: "working".into(),
                last_hash: hash[..8].to_owned(),
            })?;
        }
        Ok(())
    }
    // ANCHOR_END: run

    fn __result__(&mut self) -> Vec<String> {
        std::mem::take(&mut self.results)
    }
}

// ANCHOR: monitor
/// Monitors a process with async listen.
async fn monitor_process() -> Result<(), Box<dyn std::error::Error>> {
    let data = (0..20).map(|i| format!("async_data_item_{i}")).collect();
    let process = Skprocess::new(AsyncWorker::new(data));
    process.start()?;

    // monitor with async listen while the child runs
    while process.is_alive() {
        let msg = process
            .asynced()
            .listen_timeout::<Status>(Duration::from_millis(200))
            .await;
        if let Ok(msg) = msg {
            println!("Status: {msg:?}");
        }
    }
    process.asynced().wait().await?;

    // the child may have finished before every message was read: drain the rest
    while let Ok(msg) = process.try_listen::<Status>() {
        println!("Status: {msg:?}");
    }

    let result = process.result()?;
    println!("Final: {} hashes computed", result.len());
    Ok(())
}
// ANCHOR_END: monitor

fn main() -> Result<(), Box<dyn std::error::Error>> {
    futures::executor::block_on(monitor_process())
}
// ANCHOR_END: all
