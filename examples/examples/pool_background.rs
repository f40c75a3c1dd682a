//! Example 18, "Background Execution with `Pool`": a `map` on a background thread while the
//! main thread works.
//!
//! Run: `cargo run -p examples --example pool_background`

use skprocess::pool::Pool;
use skprocess::serde::{Deserialize, Serialize};

/// A factorization.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Factored {
    input: u64,
    number: u64,
    factors: Vec<u64>,
}

/// Prime factors of a large number: CPU-bound work.
fn compute(x: u64) -> Factored {
    fn prime_factors(mut n: u64) -> Vec<u64> {
        let mut factors = Vec::new();
        let mut d = 2;
        while d * d <= n {
            while n.is_multiple_of(d) {
                factors.push(d);
                n /= d;
            }
            d += 1;
        }
        if n > 1 {
            factors.push(n);
        }
        factors
    }
    let number = 1_000_000_000 + x * 1000 + 7;
    Factored {
        input: x,
        number,
        factors: prime_factors(number),
    }
}

/// The number of decimal digits of `n!`.
fn factorial_digits(n: u32) -> usize {
    (2..=n).map(|k| f64::from(k).log10()).sum::<f64>().floor() as usize + 1
}

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Pool::new(4)?;

    // start the map in the background: a handle comes back at once
    let future = pool.background().map(compute, 0..20);

    // do other work while the pool works
    println!("Pool working in background...");
    for i in 0..3 {
        let digits = factorial_digits(500 + i * 100);
        println!("  Main thread computed factorial, {digits} digits");
    }

    // get the results (blocks if they are not ready)
    let results = future.result()?;
    println!("Got {} factorizations", results.len());
    println!("First result: {:?}", results[0]);
    Ok(())
}
// ANCHOR_END: main
