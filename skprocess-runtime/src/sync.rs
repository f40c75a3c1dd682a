//! Small synchronisation helpers used throughout the runtime: one way to take a lock, one way
//! to wait on a condition with an optional deadline, one way to print a duration.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Locks `mutex`, ignoring poisoning: the runtime's shared state stays consistent across a panic
/// (every critical section leaves it valid), and a panic in one user thread must not make every
/// later call panic too.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits on `cond` until `ready` holds or `deadline` passes (`None`: no deadline). Returns the
/// guard and whether `ready` held.
pub(crate) fn wait_until<'a, T>(
    cond: &Condvar,
    mut guard: MutexGuard<'a, T>,
    deadline: Option<Instant>,
    mut ready: impl FnMut(&mut T) -> bool,
) -> (MutexGuard<'a, T>, bool) {
    loop {
        if ready(&mut guard) {
            return (guard, true);
        }
        guard = match deadline {
            None => cond.wait(guard).unwrap_or_else(|e| e.into_inner()),
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    return (guard, false);
                }
                cond.wait_timeout(guard, deadline - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
        };
    }
}

/// A deadline `timeout` from now (`None` if it does not fit in an `Instant`: never).
pub(crate) fn deadline_in(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Seconds as the original prints them: `2.0`, `0.3`, `1.25`.
pub(crate) fn fmt_secs(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs.fract() == 0.0 {
        format!("{secs:.1}")
    } else {
        format!("{secs}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn seconds_print_like_the_original() {
        assert_eq!(fmt_secs(Duration::from_secs(2)), "2.0");
        assert_eq!(fmt_secs(Duration::from_millis(300)), "0.3");
        assert_eq!(fmt_secs(Duration::from_millis(1250)), "1.25");
    }

    #[test]
    fn wait_until_returns_on_the_condition_or_the_deadline() {
        let state = Arc::new((Mutex::new(false), Condvar::new()));
        let (mutex, cond) = &*state;
        let deadline = deadline_in(Duration::from_millis(20));
        let ready = wait_until(cond, lock(mutex), deadline, |v| *v).1;
        assert!(!ready);
        let setter = Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            *lock(&setter.0) = true;
            setter.1.notify_all();
        });
        let ready = wait_until(
            cond,
            lock(mutex),
            deadline_in(Duration::from_secs(30)),
            |v| *v,
        )
        .1;
        assert!(ready);
        thread.join().unwrap();
    }
}
