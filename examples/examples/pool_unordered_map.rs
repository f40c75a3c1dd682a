//! Example 14, "`unordered_map` for Fastest List": all results as a list, in completion order.
//!
//! Run: `cargo run -p examples --example pool_unordered_map`

use sha2::{Digest, Sha256};
use skprocess::pool::Pool;
use skprocess::serde::{Deserialize, Serialize};

/// One item's work.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Work {
    item: u64,
    iterations: u64,
    hash: String,
}

/// Work that takes a time that depends on the item: 500 to 5000 hash rounds.
fn variable_work(item: u64) -> Work {
    let iterations = (item % 10 + 1) * 500;
    let mut data = Sha256::digest(item.to_string().as_bytes());
    for _ in 1..iterations {
        data = Sha256::digest(data);
    }
    let hash: String = Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Work {
        item,
        iterations,
        hash: hash[..12].to_owned(),
    }
}

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Pool::new(4)?;
    // unordered_map returns a list (like map), in completion order (like unordered_imap)
    let results = pool.unordered_map(variable_work, 0..20)?;

    println!("Got {} results", results.len());
    let order: Vec<u64> = results.iter().map(|r| r.item).collect();
    println!("Order received: {order:?}");
    // the order is not sequential: items with fewer rounds complete first
    Ok(())
}
// ANCHOR_END: main
