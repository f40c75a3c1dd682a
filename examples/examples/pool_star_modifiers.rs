//! Example 21, "Combining `star()` with Modifiers": star composes with timeout, background,
//! async, imap and unordered_imap.
//!
//! Run: `cargo run -p examples --example pool_star_modifiers`

// ANCHOR: all
use std::time::Duration;

use skprocess::pool::{Pool, PoolError};
use skprocess::serde::{Deserialize, Serialize};

/// A pair and its combination count.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Combination {
    inputs: (u32, u32),
    comb: u128,
    digits: usize,
}

/// n choose r, exactly.
fn comb(n: u128, r: u128) -> u128 {
    (0..r).fold(1, |acc, i| acc * (n - i) / (i + 1))
}

/// Combines a pair: C(10·max, 2·min).
fn process_pair(x: u32, y: u32) -> Combination {
    let (n, r) = (x.max(y), x.min(y));
    let result = comb(u128::from(n) * 10, u128::from(r) * 2);
    Combination {
        inputs: (x, y),
        comb: result,
        digits: result.to_string().len(),
    }
}

fn digits(results: &[Combination]) -> Vec<usize> {
    results.iter().map(|r| r.digits).collect()
}

// ANCHOR: run
async fn run(pool: &Pool) -> Result<(), PoolError> {
    let pairs = [(1, 2), (3, 4), (5, 6), (7, 8)];

    // star + timeout
    let results = pool
        .star()
        .timeout(Duration::from_secs(5))
        .map(process_pair, pairs)?;
    println!("star + timeout: {:?} digits", digits(&results));

    // star + background
    let future = pool.star().background().map(process_pair, pairs);
    let results = future.result()?;
    println!("star + background: {:?} digits", digits(&results));

    // star + async
    let results = pool.star().asynced().map(process_pair, pairs).await?;
    println!("star + async: {:?} digits", digits(&results));

    // star + imap
    print!("star + imap:");
    for result in pool.star().imap(process_pair, pairs) {
        print!(" {:?}", result?.inputs);
    }
    println!();

    // star + unordered_imap
    print!("star + unordered_imap:");
    for result in pool.star().unordered_imap(process_pair, pairs) {
        print!(" {:?}", result?.inputs);
    }
    println!();
    Ok(())
}
// ANCHOR_END: run

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Pool::new(4)?;
    futures::executor::block_on(run(&pool))?;
    Ok(())
}
// ANCHOR_END: all
