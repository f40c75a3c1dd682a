//! Example 10, "Background Execution with Future": `run()` on a background thread while the
//! main thread works. (The Python original crashes here: its private helper is lost in the
//! child.)
//!
//! Run: `cargo run -p examples --example background_run`

// ANCHOR: all
use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};

/// A number and its prime factors.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Factorization {
    number: u64,
    factors: Vec<u64>,
}

/// Computes the prime factorization of each number, one per run.
#[skprocess]
struct BackgroundProcess {
    numbers: Vec<u64>,
    results: Vec<Factorization>,
}

#[skprocess]
impl BackgroundProcess {
    fn new(numbers: Vec<u64>) -> Self {
        BackgroundProcess {
            numbers,
            results: Vec::new(),
        }
    }

    fn __config__(&self, config: &mut ProcessConfig) {
        config.runs = Some(self.numbers.len());
    }

    // ANCHOR: run
    fn __run__(&mut self, cx: &mut Context) {
        let n = self.numbers[cx.current_run()];
        let factors = Self::prime_factors(n);
        self.results.push(Factorization { number: n, factors });
    }

    /// Finds the prime factors of `n` (a private helper; it works in the child).
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
    // ANCHOR_END: run

    fn __result__(&mut self) -> Vec<Factorization> {
        std::mem::take(&mut self.results)
    }
}

/// `n!` as a decimal string (big-number multiplication on base-10^9 limbs).
fn factorial_digits(n: u32) -> usize {
    let mut limbs: Vec<u64> = vec![1];
    for k in 2..=u64::from(n) {
        let mut carry = 0;
        for limb in &mut limbs {
            let value = *limb * k + carry;
            *limb = value % 1_000_000_000;
            carry = value / 1_000_000_000;
        }
        while carry > 0 {
            limbs.push(carry % 1_000_000_000);
            carry /= 1_000_000_000;
        }
    }
    let top = limbs.last().copied().unwrap_or(0);
    (limbs.len() - 1) * 9 + top.to_string().len()
}

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    // start the process and get a handle to its result at once
    let numbers = vec![123456789, 987654321, 1000000007, 999999937, 2147483647];
    let process = Skprocess::new(BackgroundProcess::new(numbers));
    let future = process.background().run();

    // do other work while the process runs
    println!("Process running in background...");
    for i in 0..5 {
        let digits = factorial_digits(100 + i);
        println!(
            "  Main thread computed factorial({}) ({digits} digits)",
            100 + i
        );
    }

    // now get the result (blocks if it is not done)
    let result = future.result()?;
    println!("\nProcess computed {} factorizations", result.len());
    for r in &result[..3] {
        println!("  {} = {:?}", r.number, r.factors);
    }
    Ok(())
}
// ANCHOR_END: main
// ANCHOR_END: all
