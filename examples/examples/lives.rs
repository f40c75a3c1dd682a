//! Example 6, "Process with Retries (Lives)": a failing run is retried while lives remain, and
//! the value `__error__` returns becomes the result.
//!
//! Run: `cargo run -p examples --example lives`

// ANCHOR: all
use sha2::{Digest, Sha256};
use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};

// ANCHOR: struct
/// A process that may fail but retries automatically.
///
/// - `lives` for automatic retry on failure
/// - state preservation across retries
/// - `__error__` for handling the final failure
#[skprocess(runs = 10, lives = 3)] // 3 total attempts for a failing run (2 retries)
struct UnreliableProcess {
    successful_runs: u32,
    attempt_count: u32,
}

/// The result: `__result__` and `__error__` return the same type.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
enum Outcome {
    Success {
        successful_runs: u32,
        total_attempts: u32,
    },
    Failed {
        successful_runs: u32,
        error: String,
    },
}
// ANCHOR_END: struct

#[skprocess]
impl UnreliableProcess {
    fn new() -> Self {
        UnreliableProcess {
            successful_runs: 0,
            attempt_count: 0,
        }
    }

    // ANCHOR: prerun_run
    // track attempts
    fn __prerun__(&mut self) {
        self.attempt_count += 1;
    }

    fn __run__(&mut self, cx: &mut Context) -> Result<(), String> {
        // deterministic failure based on real work
        let run = cx.current_run();
        let digest = Sha256::digest(format!("run:{run}").as_bytes());
        if digest[0] % 5 == 0 {
            return Err(format!("Content failure on run {run}"));
        }
        // success!
        self.successful_runs += 1;
        Ok(())
    }
    // ANCHOR_END: prerun_run

    // ANCHOR: error
    // called when all lives are exhausted
    fn __error__(&mut self, error: ProcessError) -> Outcome {
        println!("Process failed after {} attempts", self.attempt_count);
        println!("Error: {error}");
        // return partial results
        Outcome::Failed {
            successful_runs: self.successful_runs,
            error: error.to_string(),
        }
    }
    // ANCHOR_END: error

    fn __result__(&mut self) -> Outcome {
        Outcome::Success {
            successful_runs: self.successful_runs,
            total_attempts: self.attempt_count,
        }
    }
}

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let process = Skprocess::new(UnreliableProcess::new());
    match process.run() {
        Ok(result) => println!("Result: {result:?}"),
        Err(e) => println!("Process ultimately failed: {e}"),
    }
    Ok(())
}
// ANCHOR_END: main
// ANCHOR_END: all
