//! One running measurement: a start instant and the time spent paused since.

use std::time::{Duration, Instant};

use super::TimerError;

/// A measurement in progress, shared by [`Sktimer`](super::Sktimer)'s per-thread frames and by
/// [`TimeThis`](super::TimeThis).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stopwatch {
    start: Instant,
    /// Paused time of finished pauses.
    paused: Duration,
    /// Set while paused.
    paused_at: Option<Instant>,
}

impl Stopwatch {
    pub(crate) fn start_at(now: Instant) -> Stopwatch {
        Stopwatch {
            start: now,
            paused: Duration::ZERO,
            paused_at: None,
        }
    }

    pub(crate) fn start() -> Stopwatch {
        Stopwatch::start_at(Instant::now())
    }

    /// `(active, paused)` seconds at `now`; a pause in progress counts as paused.
    pub(crate) fn read(&self, now: Instant) -> (f64, f64) {
        let mut paused = self.paused;
        if let Some(at) = self.paused_at {
            paused += now.saturating_duration_since(at);
        }
        let total = now.saturating_duration_since(self.start);
        (
            total.saturating_sub(paused).as_secs_f64(),
            paused.as_secs_f64(),
        )
    }

    pub(crate) fn pause(&mut self, now: Instant) -> Result<(), TimerError> {
        if self.paused_at.is_some() {
            return Err(TimerError::AlreadyPaused);
        }
        self.paused_at = Some(now);
        Ok(())
    }

    pub(crate) fn resume(&mut self, now: Instant) -> Result<(), TimerError> {
        let at = self.paused_at.take().ok_or(TimerError::NotPaused)?;
        self.paused += now.saturating_duration_since(at);
        Ok(())
    }
}
