//! Example 16, "`unordered_imap` for Fastest Results": results as they complete.
//!
//! Run: `cargo run -p examples --example pool_unordered_imap`

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

/// Work that takes a time that depends on the item: larger items, more rounds.
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
    println!("Using unordered_imap - fastest results first:");
    let mut results = Vec::new();
    for result in pool.unordered_imap(variable_work, 0..20) {
        // results arrive as they complete, not in order
        let result = result?;
        println!(
            "  Got item {:2} ({:4} iters)",
            result.item, result.iterations
        );
        results.push(result);
    }
    let order: Vec<u64> = results.iter().map(|r| r.item).collect();
    println!("\nOrder received: {order:?}");
    Ok(())
}
// ANCHOR_END: main
