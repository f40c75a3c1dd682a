//! Example 11, "Basic `map`": apply a function to every item in worker processes; results in
//! input order.
//!
//! Run: `cargo run -p examples --example pool_map`

// ANCHOR: all
use skprocess::pool::Pool;

/// Squares a number.
fn square(x: u64) -> u64 {
    x * x
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // a pool with 4 workers
    let pool = Pool::new(4)?;

    // map applies the function to each item; results come back in input order
    let items = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    let results = pool.map(square, items)?;

    println!("{results:?}"); // [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]

    // always close the pool when done (dropping it does too)
    pool.close();
    Ok(())
}
// ANCHOR_END: all
