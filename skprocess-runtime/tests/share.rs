//! The Share's semantics, each point tested: exact counts under contention (shared memory and
//! `#[shared]` calls), values and errors back to the caller, names never resurrected, a client
//! killed mid-call, panics that poison one object, deadlines, independent objects, calls back
//! into the own Share, stop and restart, a vanished owner, wrong secrets and other users, and
//! every way a Share reaches another process.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use skprocess::__testing;
use skprocess::pool::Pool;
use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};
use skprocess::share::Flag;

mod common;
use common::{LIMIT, probe, within};
#[path = "common/tally.rs"]
mod tally;
use tally::{SLOW_CALL_ENTERED, Tally};

/// `Tally::slow_add` markers: one per test, as tests run in parallel.
const KILLED_MID_CALL: usize = 1;
const DEADLINE: usize = 2;

/// Holds its own Share and calls back into it from a method.
#[derive(Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Reenter {
    share: Share,
}

#[shared]
impl Reenter {
    fn call_back(&self) -> Result<u64, String> {
        let tally = self
            .share
            .get::<Tally>("tally")
            .map_err(|e| e.to_string())?;
        tally.add(1).map_err(|e| e.to_string())
    }
}

/// Increments `rounds` times, through shared memory or `#[shared]` calls.
#[skprocess(runs = 1)]
struct Hammer {
    share: Share,
    rounds: u64,
    memory: bool,
}

#[skprocess]
impl Hammer {
    fn __run__(&mut self) -> Result<(), ShareError> {
        if self.memory {
            let hits = self.share.get::<u64>("hits")?;
            for _ in 0..self.rounds {
                hits.fetch_add(1)?;
            }
        } else {
            let tally = self.share.get::<Tally>("tally")?;
            for _ in 0..self.rounds {
                tally.add(1)?;
            }
        }
        Ok(())
    }

    fn __result__(&mut self) {}
}

fn hammer(share: &Share, memory: bool) {
    let rounds = 10_000;
    let processes: Vec<_> = (0..4)
        .map(|_| {
            let process = Skprocess::new(Hammer {
                share: share.clone(),
                rounds,
                memory,
            });
            process.start().unwrap();
            process
        })
        .collect();
    for process in processes {
        process
            .timeout(LIMIT)
            .result()
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn four_processes_of_ten_thousand_increments_give_exactly_forty_thousand() {
    within(LIMIT * 2, || {
        let share = Share::new().unwrap();
        let hits = share.insert("hits", 0_u64).unwrap();
        let tally = share.insert("tally", Tally::default()).unwrap();
        hammer(&share, true);
        hammer(&share, false);
        assert_eq!(hits.load().unwrap(), 40_000);
        assert_eq!(tally.get().unwrap(), 40_000);
    });
}

/// Calls a few methods from a child and reports what came back.
#[skprocess(runs = 1)]
struct Caller {
    tally: Shared<Tally>,
    report: Vec<String>,
}

#[skprocess]
impl Caller {
    fn __run__(&mut self) {
        let t = &self.tally;
        self.report
            .push(format!("{:?}", t.add(5).map_err(|e| e.to_string())));
        self.report
            .push(format!("{:?}", t.check(3).map_err(|e| e.to_string())));
        self.report
            .push(format!("{:?}", t.check(10).map_err(|e| e.to_string())));
    }

    fn __result__(&mut self) -> Vec<String> {
        std::mem::take(&mut self.report)
    }
}

#[test]
fn return_values_and_method_errors_reach_a_caller_in_another_process() {
    within(LIMIT, || {
        let share = Share::new().unwrap();
        let tally = share.insert("tally", Tally::default()).unwrap();
        let report = Skprocess::new(Caller {
            tally, // a typed handle crosses like the Share
            report: Vec::new(),
        })
        .timeout(LIMIT)
        .run()
        .unwrap();
        assert_eq!(
            report,
            [
                "Ok(5)",
                "Ok(Err(\"5 is over the limit of 3\"))",
                "Ok(Ok(5))"
            ]
        );
    });
}

#[test]
fn a_panicking_method_poisons_its_object_and_no_other() {
    within(LIMIT, || {
        let share = Share::new().unwrap();
        for (label, view) in [
            ("owner", share.clone()),
            ("socket", __testing::share_remote_copy(&share)),
        ] {
            share.insert("tally", Tally::default()).unwrap();
            share.insert("other", Tally::default()).unwrap();
            let tally = view.get::<Tally>("tally").unwrap();
            match tally.boom() {
                Err(ShareError::Panicked {
                    message, method, ..
                }) => {
                    assert_eq!(method, "boom", "{label}");
                    assert!(message.contains("boom at 1000"), "{label}: {message}");
                }
                other => panic!("{label}: {other:?}"),
            }
            match tally.get() {
                Err(ShareError::Poisoned { message, .. }) => {
                    assert!(message.contains("boom at 1000"), "{label}: {message}");
                }
                other => panic!("{label}: {other:?}"),
            }
            assert_eq!(view.get::<Tally>("other").unwrap().add(1).unwrap(), 1);
            // Re-inserting the name lifts the poison.
            share.insert("tally", Tally { n: 7 }).unwrap();
            assert_eq!(tally.get().unwrap(), 7, "{label}");
        }
    });
}

#[test]
fn reassigning_a_name_never_resurrects_the_old_value() {
    within(LIMIT, || {
        let share = Share::new().unwrap();
        for view in [share.clone(), __testing::share_remote_copy(&share)] {
            let tally = view.insert("tally", Tally { n: 1 }).unwrap();
            share.insert("tally", Tally { n: 2 }).unwrap();
            assert_eq!(tally.get().unwrap(), 2);
            assert!(share.remove("tally").unwrap());
            assert!(matches!(tally.get(), Err(ShareError::NotFound { .. })));

            let count = view.insert("count", 5_i64).unwrap();
            share.insert("count", 6_i64).unwrap(); // same kind: stored in place
            assert_eq!(count.load().unwrap(), 6);
            share.remove("count").unwrap();
            assert!(matches!(count.load(), Err(ShareError::NotFound { .. })));
            share.insert("count", 9_i64).unwrap(); // a new value under the name
            assert_eq!(count.load().unwrap(), 9);
            share.insert("count", Tally { n: 3 }).unwrap(); // another kind
            assert!(matches!(count.load(), Err(ShareError::WrongType { .. })));
            assert!(matches!(
                view.get::<i64>("count"),
                Err(ShareError::WrongType { .. })
            ));
            share.clear().unwrap();
            assert!(view.names().unwrap().is_empty());
        }
    });
}

/// Makes one slow call and never returns (it is killed mid-call).
#[skprocess(runs = 1)]
struct SlowCaller {
    tally: Shared<Tally>,
    millis: u64,
}

#[skprocess]
impl SlowCaller {
    fn __run__(&mut self) -> Result<(), ShareError> {
        self.tally.slow_add(1, self.millis, KILLED_MID_CALL)?;
        Ok(())
    }

    fn __result__(&mut self) {}
}

#[test]
fn a_client_killed_mid_call_leaves_the_share_consistent_and_usable() {
    within(LIMIT, || {
        let share = Share::new().unwrap();
        let tally = share.insert("slow", Tally::default()).unwrap();
        let process = Skprocess::new(SlowCaller {
            tally: tally.clone(),
            millis: 1500,
        });
        process.start().unwrap();
        while !SLOW_CALL_ENTERED[KILLED_MID_CALL].load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        process.kill().unwrap();
        // The client died mid-call, without a result.
        assert!(process.result().is_err());
        // The call runs to its end on the coordinator, exactly once.
        assert_eq!(tally.get().unwrap(), 1);
        assert_eq!(tally.add(1).unwrap(), 2);
        assert_eq!(
            __testing::share_remote_copy(&share)
                .get::<Tally>("slow")
                .unwrap()
                .get()
                .unwrap(),
            2
        );
    });
}

#[test]
fn a_deadline_ends_a_call_with_a_typed_timeout_and_the_call_runs_at_most_once() {
    within(LIMIT, || {
        let share = Share::new().unwrap();
        share.insert("tally", Tally::default()).unwrap();
        // Through the socket: the coordinator finishes the call after the caller gave up.
        let remote = __testing::share_remote_copy(&share);
        let tally = remote.get::<Tally>("tally").unwrap();
        let started = Instant::now();
        match tally
            .within(Duration::from_millis(100))
            .slow_add(1, 1500, DEADLINE)
        {
            Err(ShareError::Timeout { method, waited, .. }) => {
                assert_eq!(method, "slow_add");
                assert_eq!(waited, Duration::from_millis(100));
            }
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < Duration::from_millis(1400));
        assert_eq!(tally.get().unwrap(), 1); // waits for the exclusive call: it ran once
        // In the owner: the lock is busy past the deadline, so the call never runs.
        let owner = share.get::<Tally>("tally").unwrap();
        let busy = {
            let owner = owner.clone();
            std::thread::spawn(move || owner.slow_add(1, 1000, DEADLINE))
        };
        while owner.within(Duration::from_millis(1)).get().is_ok() {
            std::thread::yield_now(); // until the slow call holds the lock
        }
        assert!(matches!(
            owner.within(Duration::from_millis(50)).add(100),
            Err(ShareError::Timeout { .. })
        ));
        assert_eq!(busy.join().unwrap().unwrap(), 2);
        assert_eq!(owner.get().unwrap(), 2);
    });
}

#[test]
fn a_slow_method_on_one_object_does_not_hold_up_another() {
    within(LIMIT, || {
        let share = Share::new().unwrap();
        share.insert("slow", Tally::default()).unwrap();
        share.insert("quick", Tally::default()).unwrap();
        let remote = __testing::share_remote_copy(&share);
        let slow = remote.get::<Tally>("slow").unwrap();
        let busy = std::thread::spawn(move || slow.hold(3000));
        std::thread::sleep(Duration::from_millis(100)); // the slow call is under way
        let started = Instant::now();
        let quick = remote.get::<Tally>("quick").unwrap();
        for _ in 0..10 {
            quick.add(1).unwrap();
        }
        assert!(
            !busy.is_finished(),
            "the quick calls waited for the slow one ({:?})",
            started.elapsed()
        );
        busy.join().unwrap().unwrap();
        assert_eq!(quick.get().unwrap(), 10);
    });
}

#[test]
fn a_method_calling_back_into_its_own_share_gets_an_error_not_a_deadlock() {
    within(LIMIT, || {
        let share = Share::new().unwrap();
        share.insert("tally", Tally::default()).unwrap();
        share
            .insert(
                "reenter",
                Reenter {
                    share: share.clone(),
                },
            )
            .unwrap();
        for view in [share.clone(), __testing::share_remote_copy(&share)] {
            let reenter = view.get::<Reenter>("reenter").unwrap();
            let answer = reenter.call_back().unwrap();
            let message = answer.unwrap_err();
            assert!(message.contains("called back into the Share"), "{message}");
        }
        assert_eq!(share.get::<Tally>("tally").unwrap().get().unwrap(), 0);
    });
}

/// Holds a call for a long time and reports how it ended and when.
#[skprocess(runs = 1)]
struct Holder {
    tally: Shared<Tally>,
}

#[skprocess]
impl Holder {
    fn __run__(&mut self) {}

    fn __result__(&mut self) -> (String, f64) {
        let started = Instant::now();
        let outcome = match self.tally.hold(30_000) {
            Ok(()) => "ok".to_owned(),
            Err(ShareError::Interrupted { .. }) => "interrupted".to_owned(),
            Err(other) => format!("{other:?}"),
        };
        let after = match self.tally.get() {
            Err(ShareError::Stopped) => "stopped".to_owned(),
            other => format!("{other:?}"),
        };
        (
            format!("{outcome}, then {after}"),
            started.elapsed().as_secs_f64(),
        )
    }
}

#[test]
fn stop_fails_calls_in_flight_at_once_and_a_restart_brings_clients_back() {
    within(LIMIT, || {
        let share = Share::new().unwrap();
        let tally = share.insert("tally", Tally { n: 4 }).unwrap();
        let remote = __testing::share_remote_copy(&share);
        let remote_tally = remote.get::<Tally>("tally").unwrap();
        assert_eq!(remote_tally.get().unwrap(), 4);

        // The held call keeps running on the coordinator after the stop: it holds its own
        // object, not the one used after the restart.
        let held = share.insert("held", Tally::default()).unwrap();
        let process = Skprocess::new(Holder { tally: held });
        process.start().unwrap();
        std::thread::sleep(Duration::from_millis(500)); // the hold is under way
        share.stop().unwrap();
        let (report, seconds) = process.timeout(LIMIT).result().unwrap();
        assert_eq!(report, "interrupted, then stopped");
        assert!(
            seconds < 20.0,
            "the stop took {seconds} s to reach the client"
        );

        assert!(!share.is_running());
        assert!(!remote.is_running());
        assert!(matches!(tally.get(), Err(ShareError::Stopped)));
        assert!(matches!(remote_tally.get(), Err(ShareError::Stopped)));
        share.start().unwrap();
        // The state survived; the client reconnects on its next call.
        assert_eq!(remote_tally.add(1).unwrap(), 5);
        assert!(remote.is_running());
    });
}

/// Creates a Share in a child and hands it back: the owner then exits.
#[skprocess(runs = 1)]
struct Owner;

#[skprocess]
impl Owner {
    fn __run__(&mut self) {}

    fn __result__(&mut self) -> Result<Share, ShareError> {
        let share = Share::new()?;
        share.insert("tally", Tally { n: 1 })?;
        Ok(share)
    }
}

#[test]
fn calls_fail_with_owner_gone_once_the_owner_has_exited() {
    within(LIMIT, || {
        let share = Skprocess::new(Owner).timeout(LIMIT).run().unwrap();
        match share.get::<Tally>("tally") {
            Err(ShareError::OwnerGone { pid }) => assert!(pid > 0),
            other => panic!("{other:?}"),
        }
        assert!(!share.is_running());
        assert!(matches!(share.stop(), Err(ShareError::NotOwner("stop"))));
    });
}

#[test]
fn a_wrong_secret_is_refused_and_the_share_serves_on() {
    within(LIMIT, || {
        let share = Share::new().unwrap();
        share.insert("tally", Tally::default()).unwrap();
        let forged = __testing::share_with_secret(&share, [7; 32]);
        match forged.get::<Tally>("tally") {
            Err(ShareError::Ipc(IpcError::Auth(_))) => {}
            other => panic!("{other:?}"),
        }
        let remote = __testing::share_remote_copy(&share);
        assert_eq!(remote.get::<Tally>("tally").unwrap().add(1).unwrap(), 1);
    });
}

use skprocess::IpcError;

/// Connects to the socket named in `common::PROBE_ENV` and prints what it got.
#[test]
#[ignore = "a helper run by a_peer_of_another_user_is_closed_before_a_byte"]
fn helper_probe_the_share() {
    common::probe_helper();
}

#[test]
fn a_peer_of_another_user_is_closed_before_a_byte() {
    common::assert_root();
    let share = Share::new().unwrap();
    let name = __testing::share_socket_name(&share);
    assert_eq!(probe("helper_probe_the_share", &name, None), "hello");
    assert_eq!(
        probe("helper_probe_the_share", &name, Some(65534)),
        "closed"
    );
    share.insert("n", 1_i64).unwrap();
    let remote = __testing::share_remote_copy(&share);
    assert_eq!(remote.get::<i64>("n").unwrap().load().unwrap(), 1);
}

/// Waits for a flag set by the parent.
#[skprocess(runs = 1)]
struct Waiter {
    share: Share,
}

#[skprocess]
impl Waiter {
    fn __run__(&mut self) {}

    fn __result__(&mut self) -> Result<bool, ShareError> {
        let flag = self.share.get::<bool>("go")?;
        self.share.get::<u64>("waiting")?.fetch_add(1)?;
        flag.wait(Duration::from_secs(30))
    }
}

#[test]
fn a_flag_wakes_waiters_in_other_processes() {
    within(LIMIT, || {
        let share = Share::new().unwrap();
        let go: Shared<bool> = share.insert("go", false).unwrap();
        let waiting = share.insert("waiting", 0_u64).unwrap();
        let processes: Vec<_> = (0..3)
            .map(|_| {
                let p = Skprocess::new(Waiter {
                    share: share.clone(),
                });
                p.start().unwrap();
                p
            })
            .collect();
        while waiting.load().unwrap() < 3 {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!go.wait(Duration::from_millis(20)).unwrap());
        let flag: &Flag = &go;
        flag.set().unwrap();
        for p in processes {
            assert!(p.timeout(LIMIT).result().unwrap());
        }
        assert!(go.is_set().unwrap());
    });
}

/// Spawns a grandchild that increments the Share.
#[skprocess(runs = 1)]
struct Grandparent {
    share: Share,
}

#[skprocess]
impl Grandparent {
    fn __run__(&mut self) {}

    fn __result__(&mut self) -> Result<u64, String> {
        Skprocess::new(Hammer {
            share: self.share.clone(),
            rounds: 10,
            memory: false,
        })
        .timeout(Duration::from_secs(30))
        .run()
        .map_err(|e| e.to_string())?;
        self.share
            .get::<Tally>("tally")
            .and_then(|t| t.get())
            .map_err(|e| e.to_string())
    }
}

fn bump(share: Share) -> u64 {
    let hits = share.get::<u64>("hits").expect("hits");
    hits.fetch_add(1).expect("add") + 1
}

fn bump_both(share: Share, k: u64) -> u64 {
    share
        .get::<Tally>("tally")
        .expect("tally")
        .add(k)
        .expect("add")
}

#[test]
fn a_share_reaches_grandchildren_pool_items_and_star_tuples() {
    within(LIMIT, || {
        let share = Share::new().unwrap();
        let tally = share.insert("tally", Tally::default()).unwrap();
        let hits = share.insert("hits", 0_u64).unwrap();
        let seen = Skprocess::new(Grandparent {
            share: share.clone(),
        })
        .timeout(LIMIT)
        .run()
        .unwrap();
        assert_eq!(seen, 10);

        let pool = Pool::new(2).unwrap();
        let mut counts = pool.map(bump, vec![share.clone(); 8]).unwrap();
        counts.sort_unstable();
        assert_eq!(counts, (1..=8).collect::<Vec<u64>>());
        assert_eq!(hits.load().unwrap(), 8);

        let pairs: Vec<(Share, u64)> = (1..=4).map(|k| (share.clone(), k)).collect();
        pool.star().map(bump_both, pairs).unwrap();
        assert_eq!(tally.get().unwrap(), 20);
    });
}

#[test]
fn a_forked_copy_of_the_owner_calls_through_the_socket() {
    within(LIMIT, || {
        let share = Share::new().unwrap();
        let tally = share.insert("tally", Tally::default()).unwrap();
        let hits = share.insert("hits", 0_u64).unwrap();
        // SAFETY: the child only makes Share calls (sockets, its own threads) and leaves with
        // _exit; an alarm ends it if anything in it blocks.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: alarm and _exit are async-signal-safe.
            unsafe { libc::alarm(20) };
            let ok = tally.add(1).is_ok() && hits.fetch_add(1).is_ok();
            // SAFETY: leaves the forked child at once.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "{status}"
        );
        // The owner's object changed: the child did not update a private copy.
        assert_eq!(tally.get().unwrap(), 1);
        assert_eq!(hits.load().unwrap(), 1);
    });
}

#[test]
fn a_share_refuses_to_be_encoded_by_another_serializer() {
    let share = Share::new().unwrap();
    let error = serde_json::to_string(&share).unwrap_err().to_string();
    assert!(
        error.contains("can only be sent to processes by skprocess"),
        "{error}"
    );
    let handle = share.insert("n", 1_i64).unwrap();
    assert!(serde_json::to_string(&handle).is_err());
    // skprocess's own codec encodes it (that is how it reaches children).
    assert!(skprocess::__testing::encode(&share).is_ok());
}

#[test]
fn a_handle_naming_a_slot_that_cannot_exist_is_refused_when_decoded() {
    let share = Share::new().unwrap();
    let handle = share.insert("n", 1_i64).unwrap();
    let mut bytes = skprocess::__testing::encode(&handle).unwrap();
    // The encoding ends with Some((slot u32, generation u64)): make the slot impossible.
    let at = bytes.len() - 12;
    bytes[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let error = skprocess::__testing::decode::<Shared<i64>>(&bytes).unwrap_err();
    assert!(error.contains("cannot exist"), "{error}");
    // The real encoding decodes, and the handle works.
    let good = skprocess::__testing::encode(&handle).unwrap();
    let back: Shared<i64> = skprocess::__testing::decode(&good).unwrap();
    assert_eq!(back.load().unwrap(), 1);
}
