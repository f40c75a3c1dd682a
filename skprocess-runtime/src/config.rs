//! A process's configuration: how many runs, how long, how many lives, which timeouts.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The default frame limit (1 GiB): see [`ProcessConfig::frame_limit`].
pub const DEFAULT_FRAME_LIMIT: usize = 1 << 30;

/// Checks a configured frame limit: at least 64 KiB, and it must fit the `u32` length of a
/// frame.
pub(crate) fn check_frame_limit(limit: usize) -> Result<u32, String> {
    let min = crate::wire::frame::MIN_FRAME_LIMIT;
    u32::try_from(limit)
        .ok()
        .filter(|limit| *limit >= min)
        .ok_or_else(|| {
            format!(
                "`frame_limit` must be between {min} and {} bytes, not {limit}",
                u32::MAX
            )
        })
}

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
    /// The largest message, in bytes, either side accepts: the encoded process state, each
    /// `tell`, the result with its timers. Default 1 GiB; at least 64 KiB and below 4 GiB.
    /// Anything larger is refused where it is sent, with a typed error
    /// ([`ProcessError::Encode`](crate::ProcessError::Encode) for the state and the result,
    /// [`TellError::Encode`](crate::TellError::Encode) for a message), and never reaches the
    /// other process.
    pub frame_limit: usize,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        ProcessConfig {
            runs: None,
            join_in: None,
            lives: 1,
            timeouts: TimeoutConfig::default(),
            timer_window: 1000,
            frame_limit: DEFAULT_FRAME_LIMIT,
        }
    }
}

impl ProcessConfig {
    /// Checks the configuration before anything is spawned; returns the frame limit.
    pub(crate) fn validate(&self) -> Result<u32, String> {
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
        check_frame_limit(self.frame_limit)
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
