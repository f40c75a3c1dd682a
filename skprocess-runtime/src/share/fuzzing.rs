//! The Share's decoders under fuzzing: a request as the coordinator reads and serves it, a reply
//! as a client reads it, and an encoded Share or handle as a child reads one.

use super::coordinator::State;
use super::error::Refusal;
use super::protocol::{Answer, AtomicKind, Expect, Op, Reply, Value};
use super::{Share, ShareId, Shared};
use crate::timing::Sktimer;
use crate::timing::sktimer::__SktimerSharedCall as TimerCall;
use crate::wire::auth::Secret;
use crate::wire::{decode, encode};

/// A coordinator holding a timer (`"timer"`) and a counter (`"count"`), running, without a
/// socket.
fn state() -> State {
    let state = State::new(ShareId {
        name: "skprocess-share.fuzz".into(),
        secret: Secret([7; 32]),
        token: [1; 16],
        owner: 1,
    })
    .expect("shared memory for the fuzz state");
    state.run_without_socket();
    let timer = super::object_stored(Sktimer::new());
    if let super::Stored::Object(object) = timer.0 {
        state.insert_object("timer", object).expect("running");
    }
    state
        .insert_atomic("count", AtomicKind::I64, 5)
        .expect("running");
    state
}

/// Feeds `bytes` to each decoder.
pub(crate) fn run(bytes: &[u8]) {
    if let Ok(op) = decode::<Op>(bytes) {
        let _ = state().serve(op);
    }
    let _ = decode::<Reply>(bytes);
    let _ = decode::<Share>(bytes);
    let _ = decode::<Shared<Sktimer>>(bytes);
    let _ = decode::<Shared<i64>>(bytes);
}

/// Valid requests and replies, encoded.
pub(crate) fn seeds() -> Vec<(String, Vec<u8>)> {
    let call = |name: &str, call: TimerCall| Op::Call {
        name: name.into(),
        type_name: std::any::type_name::<Sktimer>().into(),
        call: encode(&call).expect("encodes"),
    };
    let timer = Sktimer::new();
    timer.add_time(0.25);
    timer.add_time(0.5);
    let ops = [
        ("call-add-time", call("timer", TimerCall::add_time(0.125))),
        (
            "call-percentile",
            call("timer", TimerCall::percentile(95.0)),
        ),
        ("call-stats", call("timer", TimerCall::get_stats())),
        (
            "call-max-times",
            call("timer", TimerCall::set_max_times(Some(2))),
        ),
        ("call-missing", call("nothing", TimerCall::mean())),
        (
            "insert-timer",
            Op::Insert {
                name: "t2".into(),
                value: Value::Object {
                    type_name: std::any::type_name::<Sktimer>().into(),
                    bytes: encode(&timer).expect("encodes"),
                },
            },
        ),
        (
            "insert-atomic",
            Op::Insert {
                name: "flag".into(),
                value: Value::Atomic {
                    kind: AtomicKind::Bool,
                    bits: 1,
                },
            },
        ),
        (
            "get-atomic",
            Op::Get {
                name: "count".into(),
                expect: Expect::Atomic(AtomicKind::I64),
            },
        ),
        (
            "get-object",
            Op::Get {
                name: "timer".into(),
                expect: Expect::Object(std::any::type_name::<Sktimer>().into()),
            },
        ),
        (
            "remove",
            Op::Remove {
                name: "count".into(),
            },
        ),
        ("clear", Op::Clear),
        ("names", Op::Names),
        ("ping", Op::Ping),
    ];
    let replies: [(&str, Reply); 5] = [
        (
            "reply-bytes",
            Ok(Answer::Bytes(encode(&Some(0.5f64)).expect("encodes"))),
        ),
        (
            "reply-slot",
            Ok(Answer::Slot {
                slot: 3,
                generation: 9,
            }),
        ),
        (
            "reply-names",
            Ok(Answer::Names(vec!["a".into(), "timer".into()])),
        ),
        (
            "reply-panicked",
            Err(Refusal::Panicked {
                message: "boom".into(),
            }),
        ),
        (
            "reply-wrong-type",
            Err(Refusal::WrongType {
                found: "i64".into(),
            }),
        ),
    ];
    let mut seeds: Vec<(String, Vec<u8>)> = ops
        .into_iter()
        .map(|(name, op)| (format!("seed-op-{name}"), encode(&op).expect("encodes")))
        .collect();
    seeds.extend(
        replies
            .into_iter()
            .map(|(name, reply)| (format!("seed-{name}"), encode(&reply).expect("encodes"))),
    );
    seeds
}
