//! Example 22, "Error Handling in `Pool`": an item that fails fails the call with its index and
//! message; the pool stays usable.
//!
//! Run: `cargo run -p examples --example pool_errors`

// ANCHOR: all
use skprocess::pool::Pool;

/// Fails on 3.
fn risky_function(x: i32) -> Result<i32, String> {
    if x == 3 {
        return Err(format!("Cannot process {x}"));
    }
    Ok(x * 2)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Pool::new(4)?;
    let items = [1, 2, 3, 4, 5];

    // an error in any item reaches the caller, with the item's index
    match pool.fallible().map(risky_function, items) {
        Ok(results) => println!("Results: {results:?}"),
        Err(e) => println!("Caught error: {}", skprocess::ErrorChain(&e)),
    }

    // the pool is still usable: process the items that don't fail
    let safe_items = [1, 2, 4, 5];
    let results = pool.fallible().map(risky_function, safe_items)?;
    println!("Safe results: {results:?}"); // [2, 4, 8, 10]
    Ok(())
}
// ANCHOR_END: all
