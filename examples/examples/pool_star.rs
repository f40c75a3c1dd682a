//! Example 13, "Using `star()` for Tuple Unpacking": tuple items become the task's arguments.
//!
//! Run: `cargo run -p examples --example pool_star`

// ANCHOR: all
use skprocess::pool::Pool;

/// Adds two numbers.
fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// Multiplies three numbers.
fn multiply(x: i64, y: i64, z: i64) -> i64 {
    x * y * z
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Pool::new(4)?;

    // without star(), each item is the single argument: `add` takes two, so
    // `pool.map(add, [(1, 2), (3, 4)])` does not compile

    // with star(), tuples are unpacked into positional arguments
    let pairs = [(1, 2), (3, 4), (5, 6), (7, 8)];
    let sums = pool.star().map(add, pairs)?;
    println!("Sums: {sums:?}"); // Sums: [3, 7, 11, 15]

    // any number of arguments (up to 12)
    let triples = [(1, 2, 3), (4, 5, 6), (7, 8, 9)];
    let products = pool.star().map(multiply, triples)?;
    println!("Products: {products:?}"); // Products: [6, 120, 504]
    Ok(())
}
// ANCHOR_END: all
