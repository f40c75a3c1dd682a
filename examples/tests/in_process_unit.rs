//! Runs the unit tests of `examples/in_process.rs` (its `#[cfg(test)]` module is what that
//! example shows) with the rest of `cargo test -p examples`. The example itself stays an
//! ordinary example, whose output `run_examples.rs` checks.

#[allow(dead_code)] // its `main` runs as the example, not here
#[path = "../examples/in_process.rs"]
mod in_process;
