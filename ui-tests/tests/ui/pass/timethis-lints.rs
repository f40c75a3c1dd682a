#![deny(
    warnings,
    unused_qualifications,
    unused_results,
    missing_docs,
    unsafe_op_in_unsafe_fn
)]
#![deny(clippy::all, clippy::pedantic)]
//! The expansion passes strict lints.

use std::sync::Arc;

use skprocess::prelude::*;

static SHARED: Sktimer = Sktimer::new();

/// A public timed function: its public accessor gets a doc line.
#[timethis]
pub fn documented() {}

#[timethis(timer = SHARED, threshold = 0.5)]
fn private_unused_accessor_free() {}

#[timethis]
fn private_never_called_accessor() {}

/// A worker.
pub struct Worker {
    /// Per-instance timer.
    pub timer: Arc<Sktimer>,
}

impl Worker {
    /// Timed method.
    #[timethis(timer = self.timer.clone(), max_times = 5)]
    pub fn run(&mut self) -> u32 {
        self.helper()
    }

    fn helper(&mut self) -> u32 {
        u32::try_from(Arc::strong_count(&self.timer)).unwrap_or(0)
    }

    /// Timed async method.
    #[timethis]
    pub async fn run_async(&self) -> Result<u8, String> {
        let n: u8 = "7"
            .parse()
            .map_err(|e: std::num::ParseIntError| e.to_string())?;
        Ok(n)
    }

    /// Timed unsafe method.
    ///
    /// # Safety
    ///
    /// None needed.
    #[timethis]
    pub unsafe fn unsafe_method(&self) {}
}

fn main() {
    documented();
    private_unused_accessor_free();
    let mut worker = Worker {
        timer: Arc::new(Sktimer::new()),
    };
    let _ = worker.run();
    drop(worker.run_async());
    // SAFETY: nothing to uphold.
    unsafe { worker.unsafe_method() };
    assert_eq!(documented_timer().num_times(), 1);
}
