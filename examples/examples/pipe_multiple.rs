//! Example 32, "Multiple `Pipe`s": commands on one pipe, data on another.
//!
//! Run: `cargo run -p examples --example pipe_multiple`

use skprocess::pipe::{Pipe, Point};
use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};

/// On the command pipe, parent -> child.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
enum Command {
    Process,
    Stop,
}

/// On the command pipe, child -> parent.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Reply {
    status: String,
    result: Option<i64>,
    error: Option<String>,
}

// ANCHOR: worker
/// Runs until told to stop: a `Process` command takes a batch from the data pipe and answers
/// its sum on the command pipe.
#[skprocess]
struct DualPipeWorker {
    cmd_pipe: Point,
    data_pipe: Point,
}

#[skprocess]
impl DualPipeWorker {
    fn __run__(&mut self, cx: &mut Context) -> Result<(), skprocess::pipe::PipeError> {
        match self.cmd_pipe.recv::<Command>()? {
            Command::Process => {
                let reply = match self.data_pipe.recv::<Vec<i64>>() {
                    Ok(data) => Reply {
                        status: "done".to_owned(),
                        result: Some(data.iter().sum()),
                        error: None,
                    },
                    Err(error) => Reply {
                        status: "error".to_owned(),
                        result: None,
                        error: Some(error.to_string()),
                    },
                };
                self.cmd_pipe.send(&reply)?;
            }
            Command::Stop => cx.stop(),
        }
        Ok(())
    }

    fn __result__(&mut self) -> String {
        "worker_stopped".to_owned()
    }
}
// ANCHOR_END: worker

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (cmd_anchor, cmd_point) = Pipe::pair()?;
    let (data_anchor, data_point) = Pipe::pair()?;

    let process = Skprocess::new(DualPipeWorker {
        cmd_pipe: cmd_point,
        data_pipe: data_point,
    });
    process.start()?;

    // a command, then its data on the other pipe
    cmd_anchor.send(&Command::Process)?;
    data_anchor.send(&vec![1_i64, 2, 3, 4, 5])?;

    // the result comes back on the command pipe
    let result: Reply = cmd_anchor.recv()?;
    println!("Result: {result:?}");

    // the seed leaves the worker running; the port stops it
    cmd_anchor.send(&Command::Stop)?;
    println!("Worker: {}", process.result()?);
    Ok(())
}
// ANCHOR_END: main
