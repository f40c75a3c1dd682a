//! Runs every example and checks the lines `../shared/EXAMPLES.md` requires of it.
//!
//! One test per example, so a failure names the example. Deadlines are generous: the checks are
//! about behaviour, not speed.

mod harness;

use std::time::Duration;

/// The deadline for one example run: generous, the machines are shared and noisy.
const DEADLINE: Duration = Duration::from_secs(60);
