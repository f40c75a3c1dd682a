//! Testing a process type in-process: `InProcess` runs a lifecycle on a thread of this process
//! and returns exactly what `Skprocess::run()` returns, so lifecycle methods can be unit-tested
//! without a child process (under a debugger, with `cargo test` capturing their output).
//!
//! Run: `cargo run -p examples --example in_process`
//! Its unit tests: `cargo test -p examples --example in_process`

// ANCHOR: all
use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};

// ANCHOR: process
/// Sums the comma-separated numbers of each line, one line per run, and tells the parent each
/// line's total as soon as it has it.
#[skprocess]
struct LineSummer {
    lines: Vec<String>,
    totals: Vec<u64>,
}

/// What a run of `LineSummer` ends with.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
enum Report {
    Done { totals: Vec<u64> },
    Failed { totals: Vec<u64>, error: String },
}

#[skprocess]
impl LineSummer {
    fn new(lines: &[&str]) -> Self {
        LineSummer {
            lines: lines.iter().map(|line| line.to_string()).collect(),
            totals: Vec::new(),
        }
    }

    fn __config__(&self, config: &mut ProcessConfig) {
        config.runs = Some(self.lines.len());
    }

    fn __run__(&mut self, cx: &mut Context) -> Result<(), String> {
        let run = cx.current_run();
        let total = self.lines[run]
            .split(',')
            .map(|field| field.trim().parse::<u64>())
            .sum::<Result<u64, _>>()
            .map_err(|e| format!("line {run}: {e}"))?;
        self.totals.push(total);
        let _ = cx.tell(total);
        Ok(())
    }

    fn __error__(&mut self, error: ProcessError) -> Report {
        Report::Failed {
            totals: self.totals.clone(),
            error: error.to_string(),
        }
    }

    fn __result__(&mut self) -> Report {
        Report::Done {
            totals: self.totals.clone(),
        }
    }
}
// ANCHOR_END: process

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lines = ["1, 2, 3", "10, 20", "7"];

    // The same value, run on a thread of this process and in a child process.
    let here = InProcess::new(LineSummer::new(&lines)).run()?;
    let child = Skprocess::new(LineSummer::new(&lines)).run()?;
    println!("In-process:    {here:?}");
    println!("Child process: {child:?}");
    println!("Same result: {}", here == child);

    // A failure reaches `__error__` in-process too.
    let bad = InProcess::new(LineSummer::new(&["1, 2", "3, x"])).run()?;
    println!("With a bad line: {bad:?}");

    // tell/listen go through an in-memory channel, in order.
    let process = InProcess::new(LineSummer::new(&lines));
    process.start()?;
    for _ in 0..lines.len() {
        println!("Told: {}", process.listen::<u64>()?);
    }
    process.result()?;
    Ok(())
}
// ANCHOR_END: main

// ANCHOR: tests
#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sums_each_line() {
        let report = InProcess::new(LineSummer::new(&["1, 2, 3", "40"])).run();
        assert_eq!(
            report.unwrap(),
            Report::Done {
                totals: vec![6, 40]
            }
        );
    }

    #[test]
    fn a_bad_line_keeps_the_totals_so_far() {
        let report = InProcess::new(LineSummer::new(&["5", "oops", "6"])).run();
        assert_eq!(
            report.unwrap(),
            Report::Failed {
                totals: vec![5],
                error: "error in __run__ on run 1: line 1: invalid digit found in string".into(),
            }
        );
    }

    #[test]
    fn tells_each_total_as_it_goes() {
        let process = InProcess::new(LineSummer::new(&["1, 1", "2, 2"]));
        process.start().unwrap();
        let limit = Duration::from_secs(60);
        assert_eq!(process.listen_timeout::<u64>(limit).unwrap(), 2);
        assert_eq!(process.listen_timeout::<u64>(limit).unwrap(), 4);
        assert!(process.wait_timeout(limit).unwrap());
        assert_eq!(process.timers().run.num_times(), 2);
    }
}
// ANCHOR_END: tests
// ANCHOR_END: all
