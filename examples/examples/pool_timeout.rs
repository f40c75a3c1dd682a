//! Example 17, "`Pool` with Timeout": one deadline for the whole call; the worker running the
//! slow item is killed and replaced, and the pool stays usable.
//!
//! Run: `cargo run -p examples --example pool_timeout`

use std::time::{Duration, Instant};

use skprocess::pool::{Pool, PoolError};

/// Recursive fibonacci.
fn fib(n: u64) -> u64 {
    if n <= 1 {
        return n;
    }
    fib(n - 1) + fib(n - 2)
}

// ANCHOR: slow
/// Quick for most items; item 5 is slow. Rust computes fib(40) far faster than Python, so the
/// port keeps the slow item busy for 30 s (fifteen times the deadline) on every machine.
fn slow_function(x: u64) -> u64 {
    if x == 5 {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            std::hint::black_box(fib(25));
        }
        fib(40)
    } else {
        fib(20 + x)
    }
}
// ANCHOR_END: slow

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Pool::new(4)?;
    let items = [1, 2, 3, 4, 5, 6, 7, 8];

    // the deadline applies to the whole call
    match pool
        .timeout(Duration::from_secs(2))
        .map(slow_function, items)
    {
        Ok(results) => println!("{results:?}"),
        Err(e @ PoolError::Timeout { .. }) => println!("Operation timed out: {e}"),
        Err(e) => return Err(e.into()),
    }

    // a deadline works with imap too; these items complete quickly
    for result in pool
        .timeout(Duration::from_secs(5))
        .imap(slow_function, [1, 2, 3])
    {
        match result {
            Ok(value) => println!("Got: {value}"),
            Err(PoolError::Timeout { .. }) => println!("imap timed out"),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
// ANCHOR_END: main
