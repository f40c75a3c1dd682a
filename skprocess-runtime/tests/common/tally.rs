//! `Tally`, the shared counter of the Share tests (`#[path = "common/tally.rs"] mod tally;`).

// Each test crate uses some of these methods, not all.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};

/// Set by `Tally::slow_add(.., marker)` on the coordinator (the test process) when it starts;
/// each test passes its own marker, as tests run in parallel.
pub(crate) static SLOW_CALL_ENTERED: [AtomicBool; 4] = [const { AtomicBool::new(false) }; 4];

/// A counter with methods of every shape: fast, slow, failing, panicking.
#[derive(Serialize, Deserialize, Default)]
#[serde(crate = "skprocess::serde")]
pub(crate) struct Tally {
    pub(crate) n: u64,
}

#[shared]
impl Tally {
    pub(crate) fn add(&mut self, k: u64) -> u64 {
        self.n += k;
        self.n
    }

    pub(crate) fn get(&self) -> u64 {
        self.n
    }

    /// Takes a (large) argument; adds a million, so that a call that ran shows.
    pub(crate) fn weigh(&mut self, text: String) -> u64 {
        self.n += 1_000_000;
        text.len() as u64
    }

    /// Adds after `millis`; marks `SLOW_CALL_ENTERED[marker]` when it starts.
    pub(crate) fn slow_add(&mut self, k: u64, millis: u64, marker: usize) -> u64 {
        SLOW_CALL_ENTERED[marker].store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(millis));
        self.n += k;
        self.n
    }

    /// Holds the shared lock for `millis`.
    pub(crate) fn hold(&self, millis: u64) {
        std::thread::sleep(Duration::from_millis(millis));
    }

    /// The method's own error when over `limit`.
    pub(crate) fn check(&self, limit: u64) -> Result<u64, String> {
        if self.n > limit {
            Err(format!("{} is over the limit of {limit}", self.n))
        } else {
            Ok(self.n)
        }
    }

    /// Changes the state, then panics.
    pub(crate) fn boom(&mut self) {
        self.n += 1000;
        panic!("boom at {}", self.n);
    }
}
