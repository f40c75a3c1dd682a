//! Example 31, "One-Way `Pipe`": the parent sends items down a one-way pipe until a sentinel;
//! the child collects them.
//!
//! Run: `cargo run -p examples --example pipe_one_way`

use skprocess::pipe::{Pipe, PipeError, Point, RecvOnly};
use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};

/// One item.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Item {
    id: u32,
    value: u32,
}

// ANCHOR: receiver
/// Receives items until the `None` sentinel. Its end can only receive.
#[skprocess(runs = 1)]
struct DataReceiver {
    pipe: Point<RecvOnly>,
    received_data: Vec<Item>,
}

#[skprocess]
impl DataReceiver {
    fn new(pipe: Point<RecvOnly>) -> Self {
        DataReceiver {
            pipe,
            received_data: Vec::new(),
        }
    }

    fn __run__(&mut self) -> Result<(), PipeError> {
        // receive everything until the sentinel
        while let Some(data) = self.pipe.recv::<Option<Item>>()? {
            println!("[Child] Received: {data:?}");
            self.received_data.push(data);
        }
        Ok(())
    }

    fn __result__(&mut self) -> Vec<Item> {
        std::mem::take(&mut self.received_data)
    }
}
// ANCHOR_END: receiver

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    // one-way: the anchor only sends, the point only receives
    let (anchor, point) = Pipe::one_way()?;

    let process = Skprocess::new(DataReceiver::new(point));
    process.start()?;

    for i in 0..5 {
        anchor.send(&Some(Item {
            id: i,
            value: i * 10,
        }))?;
    }
    // the sentinel that ends the stream
    anchor.send(&None::<Item>)?;

    let result = process.result()?;
    println!("Received {} items", result.len());
    anchor.close();
    Ok(())
}
// ANCHOR_END: main
