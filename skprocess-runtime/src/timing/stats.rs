//! Running aggregates (exact whatever the window) and the frozen [`TimerStats`] snapshot.

use serde::{Deserialize, Serialize};

use super::TimerError;

/// A compensated (Kahan–Babuška–Neumaier) sum: the total of many small samples stays within an
/// ulp or so of the exact sum instead of drifting with their number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Sum {
    sum: f64,
    compensation: f64,
}

impl Sum {
    pub(crate) const ZERO: Sum = Sum {
        sum: 0.0,
        compensation: 0.0,
    };

    pub(crate) fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.compensation += (self.sum - t) + x;
        } else {
            self.compensation += (x - t) + self.sum;
        }
        self.sum = t;
    }

    pub(crate) fn add_sum(&mut self, other: Sum) {
        self.add(other.sum);
        self.add(other.compensation);
    }

    pub(crate) fn value(self) -> f64 {
        self.sum + self.compensation
    }
}

/// Statistics over every sample since the last reset, updated in O(1) per sample.
///
/// Mean and variance use Welford's algorithm (and Chan's formula to merge two sets), the totals
/// use compensated summation; min and max keep the position of their first occurrence.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Running {
    pub(crate) count: u64,
    pub(crate) total: Sum,
    pub(crate) paused: Sum,
    pub(crate) mean: f64,
    /// Sum of squared distances from the mean.
    pub(crate) m2: f64,
    pub(crate) min: f64,
    pub(crate) min_index: u64,
    pub(crate) max: f64,
    pub(crate) max_index: u64,
    pub(crate) last: f64,
}

impl Running {
    pub(crate) const EMPTY: Running = Running {
        count: 0,
        total: Sum::ZERO,
        paused: Sum::ZERO,
        mean: 0.0,
        m2: 0.0,
        min: 0.0,
        min_index: 0,
        max: 0.0,
        max_index: 0,
        last: 0.0,
    };

    pub(crate) fn push(&mut self, x: f64, paused: f64) {
        let index = self.count;
        self.count += 1;
        self.total.add(x);
        if paused != 0.0 {
            self.paused.add(paused);
        }
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
        if index == 0 || x < self.min {
            self.min = x;
            self.min_index = index;
        }
        if index == 0 || x > self.max {
            self.max = x;
            self.max_index = index;
        }
        self.last = x;
    }

    /// Appends `other`'s samples after this one's (its indices shift by `self.count`).
    pub(crate) fn merge(&mut self, other: &Running) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        let (na, nb) = (self.count as f64, other.count as f64);
        let n = na + nb;
        let delta = other.mean - self.mean;
        self.mean += delta * nb / n;
        self.m2 += other.m2 + delta * delta * na * nb / n;
        self.total.add_sum(other.total);
        self.paused.add_sum(other.paused);
        if other.min < self.min {
            self.min = other.min;
            self.min_index = self.count + other.min_index;
        }
        if other.max > self.max {
            self.max = other.max;
            self.max_index = self.count + other.max_index;
        }
        self.last = other.last;
        self.count += other.count;
    }

    pub(crate) fn variance(&self) -> Option<f64> {
        (self.count >= 2).then(|| self.m2 / (self.count - 1) as f64)
    }
}

/// Checks a percentile argument.
pub(crate) fn check_percent(percent: f64) -> Result<(), TimerError> {
    if (0.0..=100.0).contains(&percent) {
        Ok(())
    } else {
        Err(TimerError::PercentileOutOfRange(percent))
    }
}

/// The `percent` percentile of `samples` (any order; sorted in place), by linear interpolation
/// between the two nearest ranks at `percent / 100 * (n - 1)`, like numpy's `"linear"` method.
/// `None` when `samples` is empty. `percent` must already be checked.
pub(crate) fn percentile_of(samples: &mut [f64], percent: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable_by(f64::total_cmp);
    Some(interpolate(samples, percent))
}

/// [`percentile_of`] on samples already sorted.
fn interpolate(sorted: &[f64], percent: f64) -> f64 {
    let rank = percent / 100.0 * (sorted.len() - 1) as f64;
    let lower = rank.floor() as usize;
    let weight = rank - lower as f64;
    if weight == 0.0 {
        return sorted[lower];
    }
    let upper = (lower + 1).min(sorted.len() - 1);
    sorted[lower] * (1.0 - weight) + sorted[upper] * weight
}

/// A frozen snapshot of an [`Sktimer`](super::Sktimer)'s statistics, from
/// [`Sktimer::get_stats`](super::Sktimer::get_stats).
///
/// It is a copy: it does not change when the timer records more samples. Which samples each
/// figure covers is the same as on [`Sktimer`](super::Sktimer): `num_times`, `total_time`,
/// `total_time_paused`, `mean`, `min`, `max`, their indices, `stdev` and `variance` cover every
/// sample since the timer's last reset; `median`, [`percentile`](TimerStats::percentile),
/// [`get_time`](TimerStats::get_time) and `times` cover the kept samples (all of them unless the
/// timer has a `max_times` window). All times are in seconds.
///
/// # Examples
///
/// ```
/// use skprocess::timing::Sktimer;
///
/// let timer = Sktimer::new();
/// for t in [0.1, 0.2, 0.3] {
///     timer.add_time(t);
/// }
/// let stats = timer.get_stats().expect("three samples");
/// timer.add_time(10.0); // the snapshot does not move
/// assert_eq!(stats.num_times, 3);
/// assert!((stats.mean - 0.2).abs() < 1e-12);
/// assert_eq!(stats.slowest_index, 2);
/// assert_eq!(stats.percentile(50.0)?, Some(0.2));
/// # Ok::<(), skprocess::timing::TimerError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TimerStats {
    /// How many samples were recorded since the last reset.
    pub num_times: usize,
    /// The last sample recorded.
    pub most_recent: f64,
    /// The position of the last sample among all samples since the last reset
    /// (`num_times - 1`).
    pub most_recent_index: usize,
    /// The sum of every sample.
    pub total_time: f64,
    /// The time spent paused, summed over every sample (excluded from the samples themselves).
    pub total_time_paused: f64,
    /// The mean of every sample.
    pub mean: f64,
    /// The median of the kept samples.
    pub median: f64,
    /// The smallest sample (the fastest).
    pub min: f64,
    /// The largest sample (the slowest).
    pub max: f64,
    /// The position of the first smallest sample among all samples since the last reset.
    pub fastest_index: usize,
    /// The position of the first largest sample among all samples since the last reset.
    pub slowest_index: usize,
    /// The sample standard deviation (n − 1) of every sample; `None` with fewer than two.
    pub stdev: Option<f64>,
    /// The sample variance (n − 1) of every sample; `None` with fewer than two.
    pub variance: Option<f64>,
    /// The timer's window: how many samples it keeps (`None`: all of them).
    pub max_times: Option<usize>,
    /// The kept samples, oldest first.
    pub times: Vec<f64>,
}

impl TimerStats {
    /// Builds a snapshot; `None` when nothing was recorded.
    pub(crate) fn new(
        running: &Running,
        times: Vec<f64>,
        max_times: Option<usize>,
    ) -> Option<TimerStats> {
        if running.count == 0 {
            return None;
        }
        let mut sorted = times.clone();
        let median = percentile_of(&mut sorted, 50.0).unwrap_or(running.last);
        let variance = running.variance();
        Some(TimerStats {
            num_times: running.count as usize,
            most_recent: running.last,
            most_recent_index: running.count as usize - 1,
            total_time: running.total.value(),
            total_time_paused: running.paused.value(),
            mean: running.mean,
            median,
            min: running.min,
            max: running.max,
            fastest_index: running.min_index as usize,
            slowest_index: running.max_index as usize,
            stdev: variance.map(f64::sqrt),
            variance,
            max_times,
            times,
        })
    }

    /// Returns the `percent` percentile (0–100) of the kept samples, interpolating linearly
    /// between the two nearest ranks (numpy's `"linear"` method); `Ok(None)` when no sample is
    /// kept.
    ///
    /// # Errors
    ///
    /// [`TimerError::PercentileOutOfRange`] when `percent` is not within `0.0..=100.0` (NaN
    /// included).
    ///
    /// # Examples
    ///
    /// ```
    /// let timer = skprocess::timing::Sktimer::new();
    /// for t in [1.0, 2.0, 3.0, 4.0] {
    ///     timer.add_time(t);
    /// }
    /// let stats = timer.get_stats().unwrap();
    /// assert_eq!(stats.percentile(50.0)?, Some(2.5));
    /// assert!(stats.percentile(101.0).is_err());
    /// # Ok::<(), skprocess::timing::TimerError>(())
    /// ```
    pub fn percentile(&self, percent: f64) -> Result<Option<f64>, TimerError> {
        check_percent(percent)?;
        let mut sorted = self.times.clone();
        Ok(percentile_of(&mut sorted, percent))
    }

    /// Returns the kept sample at `index` (0 is the oldest kept sample), or `None` past the end.
    ///
    /// # Examples
    ///
    /// ```
    /// let timer = skprocess::timing::Sktimer::new();
    /// timer.add_time(0.5);
    /// let stats = timer.get_stats().unwrap();
    /// assert_eq!(stats.get_time(0), Some(0.5));
    /// assert_eq!(stats.get_time(1), None);
    /// ```
    pub fn get_time(&self, index: usize) -> Option<f64> {
        self.times.get(index).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_points() {
        let mut samples = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(percentile_of(&mut samples, 0.0), Some(1.0));
        assert_eq!(percentile_of(&mut samples, 100.0), Some(4.0));
        assert_eq!(percentile_of(&mut samples, 50.0), Some(2.5));
        // rank 0.25 * 3 = 0.75: 1 * 0.25 + 2 * 0.75
        assert_eq!(percentile_of(&mut samples, 25.0), Some(1.75));
        assert_eq!(percentile_of(&mut [], 50.0), None);
        assert_eq!(percentile_of(&mut [7.0], 90.0), Some(7.0));
    }

    #[test]
    fn percent_range() {
        assert!(check_percent(0.0).is_ok());
        assert!(check_percent(100.0).is_ok());
        assert!(check_percent(-0.1).is_err());
        assert!(check_percent(100.1).is_err());
        assert!(check_percent(f64::NAN).is_err());
    }

    #[test]
    fn merge_equals_sequential_pushes() {
        let xs = [0.5, 0.25, 2.0, 0.125, 1.0, 4.0, 0.25];
        let mut all = Running::EMPTY;
        for &x in &xs {
            all.push(x, 0.0);
        }
        let (left, right) = xs.split_at(3);
        let mut a = Running::EMPTY;
        let mut b = Running::EMPTY;
        left.iter().for_each(|&x| a.push(x, 0.0));
        right.iter().for_each(|&x| b.push(x, 0.0));
        a.merge(&b);
        assert_eq!(a.count, all.count);
        assert_eq!(a.total.value(), all.total.value());
        assert!((a.mean - all.mean).abs() < 1e-12);
        assert!((a.m2 - all.m2).abs() < 1e-12);
        assert_eq!((a.min, a.min_index), (all.min, all.min_index));
        assert_eq!((a.max, a.max_index), (all.max, all.max_index));
        assert_eq!(a.last, all.last);
    }

    #[test]
    fn compensated_sum_beats_naive() {
        let mut sum = Sum::ZERO;
        let mut naive = 0.0;
        for _ in 0..1_000_000 {
            sum.add(0.1);
            naive += 0.1;
        }
        assert!((sum.value() - 100_000.0).abs() < 1e-9);
        assert!((naive - 100_000.0_f64).abs() > 1e-9, "naive sum drifts");
    }
}
