//! Example 38, "Full-on data streaming pipeline": three endless workers receive a stream of
//! items with `tell`, store their results in a Share, report their status back, and stop
//! gracefully when told to.
//!
//! Run: `cargo run -p examples --example streaming_pipeline`

use std::time::Duration;

use sha2::{Digest, Sha256};
use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};
use skprocess::timing::{self, Sktimer};

/// One processed item.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Processed {
    worker: u32,
    input: String,
    output: String,
    timestamp: f64,
}

// ANCHOR: results
/// Accumulates processed items, kept by the Share.
#[derive(Serialize, Deserialize, Default)]
#[serde(crate = "skprocess::serde")]
struct Results {
    items: Vec<Processed>,
    count: usize,
}

#[shared]
impl Results {
    fn add(&mut self, item: Processed) {
        self.items.push(item);
        self.count += 1;
    }

    fn count(&self) -> usize {
        self.count
    }

    /// The first `n` items, in the order they were added.
    fn first(&self, n: usize) -> Vec<Processed> {
        self.items.iter().take(n).cloned().collect()
    }
}
// ANCHOR_END: results

/// Parent -> worker.
#[derive(Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
enum Command {
    Data { payload: String, checksum: String },
    Stop,
}

/// Worker -> parent.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Status {
    worker: u32,
    processed: usize,
    status: String,
}

/// What a worker delivers at the end.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct WorkerStats {
    worker_id: u32,
    total_processed: usize,
}

// ANCHOR: worker
/// Runs until told to stop: takes an item per iteration, hashes it, stores the result.
#[skprocess]
struct DataPipelineWorker {
    shared: Share,
    worker_id: u32,
    processed: usize,
    pending: Option<String>,
}

#[skprocess]
impl DataPipelineWorker {
    fn new(shared: Share, worker_id: u32) -> Self {
        DataPipelineWorker {
            shared,
            worker_id,
            processed: 0,
            pending: None,
        }
    }

    fn __prerun__(&mut self, cx: &mut Context) {
        // a stop command, or an item to process, or nothing yet
        self.pending = match cx.listen_timeout::<Command>(Duration::from_millis(100)) {
            Ok(Command::Stop) => {
                cx.stop(); // graceful: __onfinish__ and __result__ still run
                None
            }
            Ok(Command::Data { payload, .. }) => Some(payload),
            Err(_) => None,
        };
    }

    fn __run__(&mut self) -> Result<(), ShareError> {
        let Some(data) = self.pending.take() else {
            return Ok(()); // nothing to process
        };
        let run_timer = TimeThis::new();
        let mut bytes = data.as_bytes().to_vec();
        for _ in 0..500 {
            bytes = Sha256::digest(&bytes).to_vec();
        }
        let output: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let result = Processed {
            worker: self.worker_id,
            input: data,
            output: output[..16].to_owned(),
            timestamp: timing::time(),
        };
        let seconds = run_timer.finish().unwrap_or_default();

        // store the result in the Share
        self.shared.get::<Results>("results")?.add(result)?;
        self.shared.get::<Sktimer>("timer")?.add_time(seconds)?;
        self.processed += 1;
        Ok(())
    }

    fn __postrun__(&mut self, cx: &mut Context) -> Result<(), TellError> {
        // periodic status updates
        if self.processed > 0 && self.processed.is_multiple_of(10) {
            cx.tell(self.status("running"))?;
        }
        Ok(())
    }

    fn __onfinish__(&mut self, cx: &mut Context) -> Result<(), TellError> {
        cx.tell(self.status("finished"))
    }

    fn __result__(&mut self) -> WorkerStats {
        WorkerStats {
            worker_id: self.worker_id,
            total_processed: self.processed,
        }
    }
}

impl DataPipelineWorker {
    fn status(&self, status: &str) -> Status {
        Status {
            worker: self.worker_id,
            processed: self.processed,
            status: status.to_owned(),
        }
    }
}
// ANCHOR_END: worker

/// What a pipeline run gives back.
struct Output {
    count: usize,
    samples: Vec<Processed>,
    worker_stats: Vec<WorkerStats>,
    total: f64,
    mean: f64,
    statuses: Vec<Status>,
}

// ANCHOR: pipeline
fn run_pipeline(
    data_stream: impl Iterator<Item = String>,
    num_workers: u32,
    timeout: f64,
) -> Result<Output, Box<dyn std::error::Error>> {
    Share::scope(|share| {
        let results = share.insert("results", Results::default())?;
        let timer = share.insert("timer", Sktimer::new())?;

        // start the workers
        let workers: Vec<_> = (0..num_workers)
            .map(|i| {
                let worker = Skprocess::new(DataPipelineWorker::new(share.clone(), i));
                worker.start().map(|()| worker)
            })
            .collect::<Result<_, _>>()?;

        // distribute the items round-robin
        let start_time = timing::time();
        for (index, item) in data_stream.enumerate() {
            if timing::elapsed(start_time) > timeout {
                break;
            }
            let checksum: String = Sha256::digest(item.as_bytes())
                .iter()
                .take(4)
                .map(|b| format!("{b:02x}"))
                .collect();
            workers[index % workers.len()].tell(Command::Data {
                payload: item,
                checksum,
            })?;
        }

        // signal the workers to stop
        for worker in &workers {
            worker.tell(Command::Stop)?;
        }

        // collect status messages until each worker falls silent
        let mut statuses = Vec::new();
        for worker in &workers {
            while let Ok(status) = worker.listen_timeout::<Status>(Duration::from_millis(500)) {
                statuses.push(status);
            }
        }

        let mut worker_stats = Vec::new();
        for worker in &workers {
            worker_stats.push(worker.timeout(Duration::from_secs(60)).result()?);
        }

        Ok(Output {
            count: results.count()?,
            samples: results.first(5)?,
            worker_stats,
            total: timer.total_time()?,
            mean: timer.mean()?.unwrap_or_default(),
            statuses,
        })
    })?
}
// ANCHOR_END: pipeline

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("Starting pipeline...");
    let output = run_pipeline((0..100).map(|i| format!("item_{i}")), 3, 10.0)?;

    println!("\nPipeline Results:");
    println!("  Total processed: {}", output.count);
    println!("  Total time: {:.2}s", output.total);
    println!("  Mean per item: {:.4}s", output.mean);

    println!("\nWorker Stats:");
    for ws in &output.worker_stats {
        println!("  Worker {}: {} items", ws.worker_id, ws.total_processed);
    }
    println!("\nStatus messages: {}", output.statuses.len());

    println!("\nSample Results:");
    for r in &output.samples {
        println!("  {} -> {} (worker {})", r.input, r.output, r.worker);
    }
    Ok(())
}
