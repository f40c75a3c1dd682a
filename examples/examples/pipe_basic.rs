//! Example 30, "Basic `Pipe` Communication": a command goes to the child through a pipe, the
//! result comes back on the same pipe.
//!
//! Run: `cargo run -p examples --example pipe_basic`

use skprocess::pipe::{Pipe, PipeError, Point};
use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};

/// Parent -> child.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Command {
    action: String,
    value: i64,
}

/// Child -> parent.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Response {
    result: i64,
    status: String,
}

// ANCHOR: worker
/// Receives a command through its pipe point and answers on the same pipe.
#[skprocess(runs = 1)]
struct PipeWorker {
    pipe: Point,
}

#[skprocess]
impl PipeWorker {
    fn __run__(&mut self) -> Result<(), PipeError> {
        // receive the command from the parent
        let command: Command = self.pipe.recv()?;
        println!("[Child] Received: {command:?}");

        // process it
        let result = command.value * 2;

        // send the result back
        self.pipe.send(&Response {
            result,
            status: "ok".to_owned(),
        })?;
        println!("[Child] Sent result: {result}");
        Ok(())
    }

    fn __result__(&mut self) -> String {
        "pipe_complete".to_owned()
    }
}
// ANCHOR_END: worker

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    // the anchor stays here, the point goes to the child
    let (anchor, point) = Pipe::pair()?;

    let process = Skprocess::new(PipeWorker { pipe: point });
    process.start()?;

    println!("[Parent] Sending command...");
    anchor.send(&Command {
        action: "compute".to_owned(),
        value: 21,
    })?;

    let response: Response = anchor.recv()?;
    println!("[Parent] Received response: {response:?}");

    process.wait()?;
    anchor.close();
    Ok(())
}
// ANCHOR_END: main
