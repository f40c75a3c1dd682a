//! Example 7, "Timeouts on Lifecycle Methods": a run that overruns its timeout is abandoned,
//! and `__error__` sees the state as of the start of that run.
//!
//! Run: `cargo run -p examples --example section_timeouts`

// ANCHOR: all
use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};

// ANCHOR: struct
/// A process with timeout protection on lifecycle methods.
///
/// - timeouts for individual lifecycle sections
/// - `ProcessError::Timeout` when a timeout is exceeded
#[skprocess(runs = 5, timeouts(prerun = 1.0, run = 2.0, postrun = 1.0))]
struct SlowProcess {
    completed_runs: u32,
}
// ANCHOR_END: struct

/// The outcome, from `__result__` or `__error__`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Report {
    status: String,
    completed_runs: u32,
}

/// Recursive fibonacci: intentionally slow for large `n`.
fn fibonacci(n: u64) -> u64 {
    if n <= 1 {
        return n;
    }
    fibonacci(n - 1) + fibonacci(n - 2)
}

#[skprocess]
impl SlowProcess {
    fn new() -> Self {
        SlowProcess { completed_runs: 0 }
    }

    // quick prerun, well within its timeout
    fn __prerun__(&mut self) {}

    // ANCHOR: run
    fn __run__(&mut self, cx: &mut Context) {
        if cx.current_run() == 3 {
            // This run exceeds its timeout. Rust computes fib(40) in well under a second, so
            // the port makes the slow run slow on every machine: far beyond the 2 s limit.
            let mut total = 0;
            for n in 0.. {
                total += fibonacci(30 + n % 5);
                std::hint::black_box(total);
            }
        } else {
            // normal quick computation
            std::hint::black_box(fibonacci(25));
        }
        self.completed_runs += 1;
    }
    // ANCHOR_END: run

    // ANCHOR: error
    fn __error__(&mut self, error: &ProcessError) -> Report {
        // handle the timeout error
        if let ProcessError::Timeout {
            section, timeout, ..
        } = error
        {
            println!("Timeout in {section} after {:.1}s", timeout.as_secs_f64());
        }
        Report {
            status: "timeout".into(),
            completed_runs: self.completed_runs,
        }
    }
    // ANCHOR_END: error

    fn __result__(&mut self) -> Report {
        Report {
            status: "success".into(),
            completed_runs: self.completed_runs,
        }
    }
}

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let process = Skprocess::new(SlowProcess::new());
    let result = process.run()?;
    println!("Result: {result:?}");
    // Timeout in __run__ after 2.0s
    // Result: Report { status: "timeout", completed_runs: 3 }
    Ok(())
}
// ANCHOR_END: main
// ANCHOR_END: all
