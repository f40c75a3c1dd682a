//! A process's configuration: how many runs, how long, how many lives, which timeouts.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a process runs: iterations, wall-clock limit, attempts and per-section timeouts.
///
/// A process type sets its own configuration, either with attribute keys
/// (`#[skprocess(runs = 10, lives = 3)]` on the struct) or in a `__config__` hook that sees the
/// constructed value:
///
/// ```
/// use skprocess::prelude::*;
/// use std::time::Duration;
///
/// #[skprocess]
/// struct Batch {
///     items: Vec<u32>,
/// }
///
/// #[skprocess]
/// impl Batch {
///     fn __config__(&self, config: &mut ProcessConfig) {
///         config.runs = Some(self.items.len());
///         config.lives = 3;
///         config.timeouts.run = Some(Duration::from_millis(500));
///     }
///
///     fn __run__(&mut self) {}
/// }
/// ```
///
/// The handle may override any field before `start()` with
/// [`Skprocess::configure`](crate::Skprocess::configure).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProcessConfig {
    /// The number of iterations. `None` (the default) runs until `stop()` or `join_in`.
    /// `Some(0)` runs no iteration; `__onfinish__` and `__result__` still run.
    pub runs: Option<usize>,
    /// A wall-clock limit for the whole process, measured from the start of the engine in the
    /// child and checked before each iteration: it never interrupts one. When it passes, the
    /// process finishes normally (`__onfinish__`, then `__result__`).
    pub join_in: Option<Duration>,
    /// Total attempts (at least 1, the default). An error, panic or timeout in `__prerun__`,
    /// `__run__` or `__postrun__` costs a life; with lives left, the same run is entered again
    /// from `__prerun__`.
    pub lives: u32,
    /// Per-section time limits.
    pub timeouts: TimeoutConfig,
    /// How many samples each section timer keeps for medians and percentiles (counts, totals,
    /// means, minimums, maximums and variances cover every sample whatever this is). Keeps a
    /// process that loops a million times from shipping a million samples. Default 1000.
    pub timer_window: usize,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        ProcessConfig {
            runs: None,
            join_in: None,
            lives: 1,
            timeouts: TimeoutConfig::default(),
            timer_window: 1000,
        }
    }
}

impl ProcessConfig {
    /// Checks the configuration before anything is spawned.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.lives == 0 {
            return Err("`lives` must be at least 1".to_owned());
        }
        if self.timer_window == 0 {
            return Err("`timer_window` must be at least 1".to_owned());
        }
        for (name, timeout) in self.timeouts.iter() {
            if timeout == Some(Duration::ZERO) {
                return Err(format!("`timeouts.{name}` must be greater than zero"));
            }
        }
        Ok(())
    }
}

/// Per-section time limits, in any fraction of a second.
///
/// A section that runs past its limit ends with [`ProcessError::Timeout`]: in `__prerun__`,
/// `__run__` and `__postrun__` that costs a life; in `__onfinish__` and `__result__` it goes
/// straight to `__error__`. A timed section runs on a thread of its own so that it can be
/// abandoned; see the book's "How it works" for what that means for its side effects.
///
/// [`ProcessError::Timeout`]: crate::ProcessError::Timeout
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TimeoutConfig {
    /// Limit for `__prerun__`.
    pub prerun: Option<Duration>,
    /// Limit for `__run__`.
    pub run: Option<Duration>,
    /// Limit for `__postrun__`.
    pub postrun: Option<Duration>,
    /// Limit for `__onfinish__`.
    pub onfinish: Option<Duration>,
    /// Limit for `__result__`.
    pub result: Option<Duration>,
    /// Limit for `__error__`.
    pub error: Option<Duration>,
}

impl TimeoutConfig {
    /// The limit of one section.
    pub fn get(&self, section: crate::Section) -> Option<Duration> {
        use crate::Section;
        match section {
            Section::Prerun => self.prerun,
            Section::Run => self.run,
            Section::Postrun => self.postrun,
            Section::Onfinish => self.onfinish,
            Section::Result => self.result,
            Section::Error => self.error,
        }
    }

    fn iter(&self) -> impl Iterator<Item = (&'static str, Option<Duration>)> {
        [
            ("prerun", self.prerun),
            ("run", self.run),
            ("postrun", self.postrun),
            ("onfinish", self.onfinish),
            ("result", self.result),
            ("error", self.error),
        ]
        .into_iter()
    }
}
