//! Example 15, "`imap` for Memory Efficiency": results one at a time, in order, as they arrive.
//!
//! Run: `cargo run -p examples --example pool_imap`

use sha2::{Digest, Sha256};
use skprocess::pool::Pool;
use skprocess::serde::{Deserialize, Serialize};

/// A heavy item's result.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Heavy {
    input: u64,
    hash: String,
    derived: Vec<String>,
}

/// 1000 rounds of SHA-256, then the hash and 16 chunks of it.
fn heavy_computation(item: u64) -> Heavy {
    let mut data = Sha256::digest(item.to_string().as_bytes());
    for _ in 1..1000 {
        data = Sha256::digest(data);
    }
    let hash: String = Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let derived = (0..64)
        .step_by(4)
        .map(|i| hash[i..i + 4].to_owned())
        .collect();
    Heavy {
        input: item,
        hash,
        derived,
    }
}

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Pool::new(4)?;
    // imap yields results one at a time, in order: memory stays bounded for large inputs
    let mut processed = 0;
    for result in pool.imap(heavy_computation, 0..100) {
        let result = result?;
        processed += 1;
        if processed % 20 == 0 {
            println!(
                "Processed {processed} items, latest hash: {}...",
                &result.hash[..16]
            );
        }
    }
    println!("Done! Processed {processed} total items");
    Ok(())
}
// ANCHOR_END: main
