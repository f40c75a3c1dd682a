//! Example 1, "Simple Counter Process": a minimal process that counts its iterations.
//!
//! Run: `cargo run -p examples --example simple_counter`

// ANCHOR: all
use skprocess::prelude::*;

// ANCHOR: struct
/// A process that counts up to a target.
#[skprocess]
struct CounterProcess {
    target: usize,
    counter: usize,
}
// ANCHOR_END: struct

#[skprocess]
impl CounterProcess {
    fn new(target: usize) -> Self {
        CounterProcess { target, counter: 0 }
    }

    // ANCHOR: config
    // configure: run exactly `target` iterations
    fn __config__(&self, config: &mut ProcessConfig) {
        config.runs = Some(self.target);
    }
    // ANCHOR_END: config

    // ANCHOR: run_result
    // increment the counter each iteration
    fn __run__(&mut self) {
        self.counter += 1;
    }

    // return the final count when the process completes
    fn __result__(&mut self) -> usize {
        self.counter
    }
    // ANCHOR_END: run_result
}

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    // create a process with a target of 100
    let process = Skprocess::new(CounterProcess::new(100));

    // start the child process
    process.start()?;

    // wait for completion (blocks until done)
    process.wait()?;

    // get the result
    let result = process.result()?;
    println!("Final count: {result}"); // Final count: 100
    Ok(())
}
// ANCHOR_END: main
// ANCHOR_END: all
