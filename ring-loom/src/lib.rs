//! Runs the algorithm of skprocess's shared-memory ring (`skprocess-runtime/src/ring/spsc.rs`)
//! under [loom](https://docs.rs/loom), which tries every interleaving of its two threads:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p skprocess-ring-loom --release
//! ```
//!
//! The file is compiled here on its own, with loom's atomics in place of the standard ones;
//! nothing else of the runtime is built with `--cfg loom`. Without that flag this crate is
//! empty.

#[cfg(loom)]
#[path = "../../skprocess-runtime/src/ring/spsc.rs"]
#[allow(dead_code, unreachable_pub)]
mod spsc;
