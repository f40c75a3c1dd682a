//! Example 12, "`Pool` as Context Manager": a pool used in a scope; it closes when dropped.
//!
//! Run: `cargo run -p examples --example pool_scope`

use md5::{Digest, Md5};
use skprocess::pool::Pool;
use skprocess::serde::{Deserialize, Serialize};

/// A processed item.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Processed {
    original: String,
    normalized: String,
    hash: String,
}

/// Normalizes and hashes one item.
fn process_data(data: String) -> Processed {
    // normalize the data
    let normalized = data.trim().to_lowercase();
    // compute a hash
    let digest = Md5::digest(normalized.as_bytes());
    let hash: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Processed {
        original: data,
        normalized,
        hash: hash[..8].to_owned(),
    }
}

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    {
        // the pool lives for this scope; dropping it ends and reaps its workers
        let pool = Pool::new(4)?;
        let items = ["  Apple  ", "BANANA", "Cherry", "  DATE", "elderberry"].map(String::from);

        let results = pool.map(process_data, items)?;

        for r in &results {
            println!("{:>12} -> {:<12} ({})", r.original, r.normalized, r.hash);
        }
    } // the pool is closed here
    Ok(())
}
// ANCHOR_END: main
