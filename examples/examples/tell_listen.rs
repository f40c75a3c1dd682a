//! Example 33, "`tell()` / `listen()` basic usage": two-way messages between a parent and its
//! child, without a Pipe.
//!
//! Run: `cargo run -p examples --example tell_listen`

// ANCHOR: all
use std::time::Duration;

use sha2::{Digest, Sha256};
use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};

// ANCHOR: messages
/// What the parent tells the child.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
enum Command {
    SetMultiplier(u32),
    Stop,
}

/// What the child tells the parent.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Progress {
    progress: usize,
    latest: u32,
}
// ANCHOR_END: messages

/// One run's value.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct RunValue {
    run: usize,
    value: u32,
}

/// A process that takes commands through `listen()` and reports progress with `tell()`.
#[skprocess] // runs indefinitely (runs = None)
struct CommandableProcess {
    multiplier: u32,
    results: Vec<RunValue>,
}

#[skprocess]
impl CommandableProcess {
    fn new() -> Self {
        CommandableProcess {
            multiplier: 1,
            results: Vec::new(),
        }
    }

    // ANCHOR: prerun
    // check for commands (waits at most 0.1 s)
    fn __prerun__(&mut self, cx: &mut Context) {
        match cx.listen_timeout::<Command>(Duration::from_millis(100)) {
            Ok(Command::SetMultiplier(value)) => {
                self.multiplier = value;
                println!("[Child] Multiplier set to {}", self.multiplier);
            }
            Ok(Command::Stop) => cx.stop(),
            Err(_) => {} // no command this time
        }
    }
    // ANCHOR_END: prerun

    // do some real work: hash chains
    fn __run__(&mut self, cx: &mut Context) {
        let run = cx.current_run();
        let mut data = Sha256::digest(format!("run_{run}_mult_{}", self.multiplier).as_bytes());
        for _ in 1..100 * self.multiplier {
            data = Sha256::digest(data);
        }
        let value = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) % 1000;
        self.results.push(RunValue { run, value });

        // ANCHOR: tell
        // notify the parent of progress
        if run.is_multiple_of(5) {
            let _ = cx.tell(Progress {
                progress: run,
                latest: value,
            });
        }
        // ANCHOR_END: tell
    }

    fn __result__(&mut self) -> Vec<RunValue> {
        std::mem::take(&mut self.results)
    }
}

fn parent_work(seed: &[u8]) {
    let mut data = seed.to_vec();
    for _ in 0..1500 {
        data = Sha256::digest(&data).to_vec();
    }
}

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let process = Skprocess::new(CommandableProcess::new());
    process.start()?;

    // let it run while doing work in the parent
    parent_work(b"parent_work");

    // send a command to change the multiplier
    process.tell(Command::SetMultiplier(10))?;

    // listen for progress updates for a short window
    parent_work(b"parent_work_2");
    for _ in 0..20 {
        if let Ok(msg) = process.listen_timeout::<Progress>(Duration::from_millis(100)) {
            println!("[Parent] Progress: {msg:?}");
        }
    }

    // ANCHOR: drain
    // stop the process, then drain any remaining messages
    process.tell(Command::Stop)?;
    process.wait()?;
    while let Ok(msg) = process.listen_timeout::<Progress>(Duration::from_millis(100)) {
        println!("[Parent] Progress (late): {msg:?}");
    }
    // ANCHOR_END: drain

    let results = process.result()?;
    println!("Got {} results", results.len());
    Ok(())
}
// ANCHOR_END: main
// ANCHOR_END: all
