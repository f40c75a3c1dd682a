//! Example 9, "Async Process Execution": several processes awaited together from async code.
//!
//! Run: `cargo run -p examples --example async_wait`

// ANCHOR: all
use futures::future::join_all;
use sha2::{Digest, Sha256};
use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};

/// One chunk's hash.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct ChunkHash {
    process: usize,
    run: usize,
    hash: String,
}

/// Running processes in async code: `asynced()` on `wait()`, several processes at once.
#[skprocess]
struct AsyncFriendlyProcess {
    process_id: usize,
    data_chunks: Vec<String>,
    results: Vec<ChunkHash>,
}

#[skprocess]
impl AsyncFriendlyProcess {
    fn new(process_id: usize, data_chunks: Vec<String>) -> Self {
        AsyncFriendlyProcess {
            process_id,
            data_chunks,
            results: Vec::new(),
        }
    }

    fn __config__(&self, config: &mut ProcessConfig) {
        config.runs = Some(self.data_chunks.len());
    }

    // process a data chunk: compute its hash
    fn __run__(&mut self, cx: &mut Context) {
        let run = cx.current_run();
        let digest = Sha256::digest(self.data_chunks[run].as_bytes());
        let hash: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        self.results.push(ChunkHash {
            process: self.process_id,
            run,
            hash: hash[..16].to_owned(),
        });
    }

    fn __result__(&mut self) -> Vec<ChunkHash> {
        std::mem::take(&mut self.results)
    }
}

// ANCHOR: concurrent
/// Runs several processes and waits for all of them concurrently.
async fn run_processes_concurrently() -> Result<Vec<Vec<ChunkHash>>, ProcessError> {
    // data for each process
    let all_data: Vec<Vec<String>> = (0..3)
        .map(|p| (0..5).map(|i| format!("process_{p}_chunk_{i}")).collect())
        .collect();

    // create and start the processes
    let mut processes = Vec::new();
    for (i, data) in all_data.into_iter().enumerate() {
        let process = Skprocess::new(AsyncFriendlyProcess::new(i, data));
        process.start()?;
        processes.push(process);
    }

    // wait for all of them concurrently with asynced()
    let waits = processes.iter().map(|p| p.asynced().wait());
    for waited in join_all(waits).await {
        waited?;
    }

    // collect the results
    processes.iter().map(Skprocess::result).collect()
}
// ANCHOR_END: concurrent

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    // any executor will do; this one comes with the `futures` crate
    let results = futures::executor::block_on(run_processes_concurrently())?;
    for (i, result) in results.iter().enumerate() {
        println!("Process {i}: {} results", result.len());
    }
    Ok(())
}
// ANCHOR_END: main
// ANCHOR_END: all
