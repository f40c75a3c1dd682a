//! Example 20, "Using `Skprocess` with `Pool`": the pool builds a process from each item and
//! runs its whole lifecycle in a worker.
//!
//! Run: `cargo run -p examples --example pool_skprocess`

use sha2::{Digest, Sha256};
use skprocess::pool::Pool;
use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};

/// One input record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Input {
    id: u32,
    value: i64,
}

/// A transformed record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Transformed {
    original_id: u32,
    original_value: i64,
    doubled: i64,
    squared: i64,
    hash: String,
    processed: bool,
}

// ANCHOR: struct
/// A process type used with a pool: one run per item.
#[skprocess(runs = 1)]
struct DataTransformer {
    input_data: Input,
    transformed: Option<Transformed>,
}

#[skprocess]
impl DataTransformer {
    // receives its input through the constructor
    fn new(input_data: Input) -> Self {
        DataTransformer {
            input_data,
            transformed: None,
        }
    }

    fn __run__(&mut self) {
        let data = &self.input_data;
        // a hash of the input, as Python's json.dumps(data, sort_keys=True) writes it
        let json = format!("{{\"id\": {}, \"value\": {}}}", data.id, data.value);
        let hash: String = Sha256::digest(json.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.transformed = Some(Transformed {
            original_id: data.id,
            original_value: data.value,
            doubled: data.value * 2,
            squared: data.value * data.value,
            hash: hash[..12].to_owned(),
            processed: true,
        });
    }

    fn __result__(&mut self) -> Option<Transformed> {
        self.transformed.clone()
    }
}
// ANCHOR_END: struct

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let items = (1..=4).map(|id| Input {
        id,
        value: i64::from(id) * 10,
    });

    let pool = Pool::new(2)?;
    // the pool builds DataTransformer::new(item) for each item and runs it
    let results = pool.processes().map(DataTransformer::new, items)?;

    for r in results.into_iter().flatten() {
        println!(
            "ID {}: {} -> doubled={}, squared={}",
            r.original_id, r.original_value, r.doubled, r.squared
        );
    }
    Ok(())
}
// ANCHOR_END: main
