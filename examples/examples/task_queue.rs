//! Example 37, "Full-on distributed task queue": 50 tasks over 4 workers, each a process with
//! retries (lives) and a run timeout, recording statistics and timings in a Share.
//!
//! Run: `cargo run -p examples --example task_queue`

use std::time::Duration;

use sha2::{Digest, Sha256};
use skprocess::pool::Pool;
use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};
use skprocess::timing;

// ANCHOR: stats
/// Statistics across all workers, kept by the Share.
#[derive(Serialize, Deserialize, Default, Clone, Debug)]
#[serde(crate = "skprocess::serde")]
struct TaskStats {
    total_tasks: u32,
    completed: u32,
    failed: u32,
    retried: u32,
}

#[shared]
impl TaskStats {
    fn record_complete(&mut self) {
        self.completed += 1;
        self.total_tasks += 1;
    }

    fn record_fail(&mut self) {
        self.failed += 1;
        self.total_tasks += 1;
    }

    fn record_retry(&mut self) {
        self.retried += 1;
    }

    fn snapshot(&self) -> TaskStats {
        self.clone()
    }
}
// ANCHOR_END: stats

/// One task.
#[derive(Clone, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Task {
    id: u64,
    data: String,
}

/// What a task delivers: its output, or why it failed after every retry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct TaskResult {
    task_id: u64,
    input: String,
    output: Option<String>,
    iterations: Option<u64>,
    attempts: u32,
    status: String,
    error: Option<String>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ANCHOR: worker
/// Processes one task: a hash chain, failing deterministically for some contents; retried
/// up to 2 times (3 lives), with a 5 s limit on each run.
#[skprocess(runs = 1, lives = 3, timeouts(run = 5.0))]
struct TaskWorker {
    shared: Share,
    task: Task,
    result_data: Option<TaskResult>,
    attempts: u32,
}

#[skprocess]
impl TaskWorker {
    fn new(shared: Share, task: Task) -> Self {
        TaskWorker {
            shared,
            task,
            result_data: None,
            attempts: 0,
        }
    }

    fn __prerun__(&mut self) -> Result<(), ShareError> {
        // track retry attempts (the state survives a failed attempt)
        self.attempts += 1;
        if self.attempts > 1 {
            self.shared.get::<TaskStats>("stats")?.record_retry()?;
        }
        Ok(())
    }

    fn __run__(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let start = timing::time();
        let outcome = self.work();
        // always record the time, success or not
        self.shared
            .get::<timing::Sktimer>("timer")?
            .add_time(timing::elapsed(start))?;
        outcome
    }

    fn __error__(&mut self, error: ProcessError) -> Result<Option<TaskResult>, ProcessError> {
        // every retry used up
        self.shared
            .get::<TaskStats>("stats")
            .and_then(|stats| stats.record_fail())
            .map_err(|e| ProcessError::ChildSetup {
                message: e.to_string(),
            })?;
        Ok(Some(TaskResult {
            task_id: self.task.id,
            input: self.task.data.clone(),
            output: None,
            iterations: None,
            attempts: self.attempts,
            status: "failed".to_owned(),
            error: Some(error.to_string()),
        }))
    }

    fn __result__(&mut self) -> Option<TaskResult> {
        self.result_data.clone()
    }
}

impl TaskWorker {
    fn work(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        // real work: a hash chain of deterministic length
        let iterations = 500 + (self.task.id * 37 % 1500);
        let mut data = self.task.data.as_bytes().to_vec();
        for _ in 0..iterations {
            data = Sha256::digest(&data).to_vec();
        }
        // deterministic failure based on the task's content
        let checksum = Sha256::digest(self.task.data.as_bytes());
        if checksum[0] % 10 == 0 {
            return Err(format!("Task {} failed (content check)", self.task.id).into());
        }
        self.result_data = Some(TaskResult {
            task_id: self.task.id,
            input: self.task.data.clone(),
            output: Some(hex(&Sha256::digest(&data))[..32].to_owned()),
            iterations: Some(iterations),
            attempts: self.attempts,
            status: "success".to_owned(),
            error: None,
        });
        self.shared.get::<TaskStats>("stats")?.record_complete()?;
        Ok(())
    }
}
// ANCHOR_END: worker

/// The statistics of a run.
struct Summary {
    stats: TaskStats,
    total: f64,
    mean: f64,
    min: f64,
    max: f64,
    p95: f64,
}

// ANCHOR: queue
/// Processes the tasks on a pool of `workers`; the results in task order and the statistics.
fn run_task_queue(
    tasks: Vec<Task>,
    workers: usize,
) -> Result<(Vec<TaskResult>, Summary), Box<dyn std::error::Error>> {
    Share::scope(|share| {
        let stats = share.insert("stats", TaskStats::default())?;
        let timer = share.insert("timer", timing::Sktimer::new())?;

        // (share, task) pairs for star()
        let args: Vec<(Share, Task)> = tasks.into_iter().map(|t| (share.clone(), t)).collect();
        let pool = Pool::new(workers)?;
        let results = pool
            .star()
            .processes()
            .timeout(Duration::from_secs(120))
            .map(TaskWorker::new, args)?;

        let summary = Summary {
            stats: stats.snapshot()?,
            total: timer.total_time()?,
            mean: timer.mean()?.unwrap_or_default(),
            min: timer.min()?.unwrap_or_default(),
            max: timer.max()?.unwrap_or_default(),
            p95: timer.percentile(95.0)??.unwrap_or_default(),
        };
        Ok((results.into_iter().flatten().collect(), summary))
    })?
}
// ANCHOR_END: queue

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tasks: Vec<Task> = (0..50)
        .map(|i| Task {
            id: i,
            data: format!("task_data_{i}"),
        })
        .collect();
    println!("Processing {} tasks...", tasks.len());

    let start = timing::time();
    let (results, summary) = run_task_queue(tasks, 4)?;
    let elapsed = timing::elapsed(start);

    let rule = "=".repeat(50);
    println!("\n{rule}\nTASK QUEUE RESULTS\n{rule}");
    println!("Total time: {elapsed:.2}s");
    println!("\nTask Statistics:");
    println!("  Total processed: {}", summary.stats.total_tasks);
    println!("  Completed:       {}", summary.stats.completed);
    println!("  Failed:          {}", summary.stats.failed);
    println!("  Retried:         {}", summary.stats.retried);
    println!("\nTiming Statistics:");
    println!("  Total work time: {:.2}s", summary.total);
    println!("  Mean per task:   {:.4}s", summary.mean);
    println!("  Min:             {:.4}s", summary.min);
    println!("  Max:             {:.4}s", summary.max);
    println!("  P95:             {:.4}s", summary.p95);

    println!("\nSample Results:");
    for r in results.iter().take(5) {
        println!(
            "  Task {}: {} (attempts: {})",
            r.task_id, r.status, r.attempts
        );
    }
    Ok(())
}
