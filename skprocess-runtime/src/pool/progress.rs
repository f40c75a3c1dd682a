//! Progress of a pool call, reported to a callback of the caller's choosing, and a ready-made
//! terminal progress bar (feature `indicatif`).

use std::sync::Arc;
use std::time::{Duration, Instant};

/// How far a pool call has come: handed to the callback of
/// [`PoolCall::progress`](super::PoolCall::progress) once when the call begins and again each
/// time results arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Items whose outcome arrived (results and failures).
    pub done: usize,
    /// Of those, items that failed.
    pub failed: usize,
    /// How many items the call has, when that is known: always for `map`, `submit` and the
    /// deferred forms; for `imap` when the input's size hint is exact (a `Vec`, a range), and
    /// otherwise once the input ran out.
    pub total: Option<usize>,
    /// Time since the call began.
    pub elapsed: Duration,
}

/// A progress callback, shared by the forms of one call.
pub(crate) type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// Counts one call's progress and hands it to its callback (on the thread that drives the call,
/// never on the pool's own threads).
pub(crate) struct Tracker {
    callback: Option<ProgressFn>,
    started: Instant,
    done: usize,
    failed: usize,
    total: Option<usize>,
}

impl Tracker {
    pub(crate) fn new(callback: Option<ProgressFn>, total: Option<usize>) -> Tracker {
        Tracker {
            callback,
            started: Instant::now(),
            done: 0,
            failed: 0,
            total,
        }
    }

    /// Items whose outcome arrived so far.
    pub(crate) fn done(&self) -> usize {
        self.done
    }

    /// Counts `done` more outcomes, `failed` of them failures (without reporting).
    pub(crate) fn count(&mut self, done: usize, failed: usize) {
        self.done += done;
        self.failed += failed;
    }

    /// The input ran out: the total is now known.
    pub(crate) fn set_total(&mut self, total: usize) {
        self.total = Some(total);
    }

    /// Hands the current progress to the callback, if there is one.
    pub(crate) fn report(&self) {
        if let Some(callback) = &self.callback {
            callback(Progress {
                done: self.done,
                failed: self.failed,
                total: self.total,
                elapsed: self.started.elapsed(),
            });
        }
    }
}

/// A terminal progress bar (on stderr) as a progress callback.
#[cfg(feature = "indicatif")]
pub(crate) fn bar() -> ProgressFn {
    use indicatif::{ProgressBar, ProgressStyle};

    let bar = ProgressBar::no_length();
    let counted = ProgressStyle::with_template(
        "{elapsed_precise} [{wide_bar}] {pos}/{len} items ({per_sec}, {eta} left)",
    )
    .expect("a valid template")
    .progress_chars("=> ");
    let open_ended =
        ProgressStyle::with_template("{elapsed_precise} {spinner} {pos} items ({per_sec})")
            .expect("a valid template");
    bar.set_style(open_ended.clone());
    Arc::new(move |progress: Progress| {
        match progress.total {
            Some(total) if bar.length() != Some(total as u64) => {
                bar.set_style(counted.clone());
                bar.set_length(total as u64);
            }
            Some(_) => {}
            None => bar.set_style(open_ended.clone()),
        }
        bar.set_position(progress.done as u64);
        if progress.total == Some(progress.done) {
            bar.finish();
        }
    })
}
