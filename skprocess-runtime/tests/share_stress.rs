//! The Share under load and under stops: more client processes than CPUs call one object, add
//! to a shared-memory counter and pass items through a queue, with short deadlines, while the
//! owner stops and restarts the Share again and again. Every outcome a client sees is typed,
//! nothing hangs, and the totals add up: each add either counted (its caller saw `Ok`), or
//! failed before it ran (`Stopped`), or is one of the few whose outcome is unknown
//! (`Interrupted`, `Timeout`), never more than those.
//!
//! `SKPROCESS_STRESS_ROUNDS` sets the calls per client (default 20,000).

use std::time::{Duration, Instant};

use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};
use skprocess::share::Queue;

mod common;
use common::{LIMIT, within};
#[path = "common/tally.rs"]
mod tally;
use tally::Tally;

fn rounds() -> u64 {
    std::env::var("SKPROCESS_STRESS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

/// What one client saw.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Seen {
    ok: u64,
    not_run: u64,
    unknown: u64,
    memory_adds: u64,
    queued: u64,
}

#[skprocess(runs = 1)]
struct Client {
    share: Share,
    rounds: u64,
}

#[skprocess]
impl Client {
    fn __run__(&mut self) {}

    fn __result__(&mut self) -> Result<Seen, String> {
        let mut seen = Seen::default();
        let deadline = Instant::now() + LIMIT;
        let mut handles = None;
        for round in 0..self.rounds {
            if Instant::now() > deadline {
                return Err(format!("only {round} rounds within {LIMIT:?}"));
            }
            // Handles are taken again after a failure (the Share may be stopped right now).
            let (tally, hits, queue) = match &handles {
                Some(h) => h,
                None => match (
                    self.share.get::<Tally>("tally"),
                    self.share.get::<u64>("hits"),
                    self.share.get::<Queue<u64>>("queue"),
                ) {
                    (Ok(t), Ok(h), Ok(q)) => handles.insert((t, h, q)),
                    _ => {
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                },
            };
            let tally = if round % 10 == 0 {
                tally.within(Duration::from_millis(2))
            } else {
                tally.clone()
            };
            match tally.add(1) {
                Ok(_) => seen.ok += 1,
                Err(ShareError::Stopped) => seen.not_run += 1,
                Err(ShareError::Interrupted { .. } | ShareError::Timeout { .. }) => {
                    seen.unknown += 1;
                }
                Err(other) => return Err(format!("round {round}: {other:?}")),
            }
            match hits.fetch_add(1) {
                Ok(_) => seen.memory_adds += 1,
                Err(ShareError::Stopped) => {}
                Err(other) => return Err(format!("round {round}: {other:?}")),
            }
            if round % 7 == 0 {
                match queue.put(round, Some(Duration::ZERO)) {
                    Ok(Ok(())) => seen.queued += 1,
                    Ok(Err(_)) | Err(ShareError::Stopped) => {}
                    Err(ShareError::Interrupted { .. }) => {}
                    Err(other) => return Err(format!("round {round}: {other:?}")),
                }
            }
        }
        Ok(seen)
    }
}

#[test]
fn clients_outnumbering_cpus_through_stops_and_restarts_see_typed_outcomes_and_totals_add_up() {
    within(LIMIT * 3, || {
        let share = Share::new().unwrap();
        let tally = share.insert("tally", Tally::default()).unwrap();
        let hits = share.insert("hits", 0_u64).unwrap();
        let queue = share.insert("queue", Queue::<u64>::new(1_000_000)).unwrap();
        let clients: Vec<_> = (0..6)
            .map(|_| {
                let p = Skprocess::new(Client {
                    share: share.clone(),
                    rounds: rounds(),
                });
                p.start().unwrap();
                p
            })
            .collect();
        // Stop and restart while the clients run.
        let mut cycles = 0;
        while clients.iter().any(Skprocess::is_alive) {
            std::thread::sleep(Duration::from_millis(20));
            share.stop().unwrap();
            std::thread::sleep(Duration::from_millis(5));
            share.start().unwrap();
            cycles += 1;
        }
        let mut total = Seen::default();
        for client in clients {
            let seen = client
                .timeout(LIMIT)
                .result()
                .unwrap_or_else(|e| panic!("{e}"));
            total.ok += seen.ok;
            total.not_run += seen.not_run;
            total.unknown += seen.unknown;
            total.memory_adds += seen.memory_adds;
            total.queued += seen.queued;
        }
        let n = tally.get().unwrap();
        println!("{cycles} stop/start cycles; {total:?}; tally {n}");
        assert!(cycles > 0);
        assert!(
            (total.ok..=total.ok + total.unknown).contains(&n),
            "tally {n} outside {}..={}",
            total.ok,
            total.ok + total.unknown
        );
        assert_eq!(hits.load().unwrap(), total.memory_adds);
        // A put that was interrupted may have landed: at least the confirmed ones are there.
        assert!(queue.len().unwrap() as u64 >= total.queued);
    });
}
