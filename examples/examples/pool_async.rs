//! Example 19, "Async `Pool` Operations": three maps awaited concurrently from async code.
//!
//! Run: `cargo run -p examples --example pool_async`

use sha2::{Digest, Sha256};
use skprocess::pool::{Pool, PoolError};
use skprocess::serde::{Deserialize, Serialize};

/// A hash chain's result.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Chained {
    input: u64,
    hash: String,
}

/// CPU-bound work: a 1000-round hash chain.
fn cpu_work(x: u64) -> Chained {
    let mut data = Sha256::digest(x.to_string().as_bytes());
    for _ in 1..1000 {
        data = Sha256::digest(data);
    }
    let hash: String = Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Chained {
        input: x,
        hash: hash[..16].to_owned(),
    }
}

// ANCHOR: batches
/// Runs three batches concurrently on one pool.
async fn process_batches() -> Result<[Vec<Chained>; 3], PoolError> {
    let pool = Pool::new(4)?;
    let (batch1, batch2, batch3) = futures::join!(
        pool.asynced().map(cpu_work, 0..10),
        pool.asynced().map(cpu_work, 10..20),
        pool.asynced().map(cpu_work, 20..30),
    );
    Ok([batch1?, batch2?, batch3?])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // any executor will do; this one comes with the `futures` crate
    let results = futures::executor::block_on(process_batches())?;
    for (i, batch) in results.iter().enumerate() {
        println!(
            "Batch {}: {} items, first: {:?}",
            i + 1,
            batch.len(),
            batch[0]
        );
    }
    Ok(())
}
// ANCHOR_END: batches
