//! Tasks by name: what [`remote_tasks!`](crate::remote_tasks) registers, and how a worker runs
//! a chunk of items of a task it found by name.
//!
//! A task's name is its path (`std::any::type_name` of the `fn` item) and a hash of its
//! signature (the kind of call (`map`, `fallible`, `processes`), the argument tuple's type and
//! the output's type) and of the executable's build identity. A pool sends the name, never an
//! address; a worker runs only the code it registered under that exact name, so a worker built
//! from other code (another build of the program, another signature, a renamed function)
//! refuses the task instead of misreading its items (the codec writes no field names, so a type
//! that changed under the same name would decode into wrong values).
//!
//! Registration finds, at compile time, which kinds of call a function fits: each kind is a
//! method found by "autoref specialization" on a concrete [`Probe`] (an impl for `&Probe` whose
//! bounds hold is picked before the fallback impl for `Probe`, which does nothing).

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use linkme::distributed_slice;

use super::protocol::Outcome;
use crate::lifecycle::Transferable;
use crate::pool::mode::{Fallible, Processes, Star, Value};
use crate::pool::{Pool, PoolCall, PoolError, Stopper, TaskError, TaskFn};

/// Every `remote_tasks!` of the executable.
#[doc(hidden)]
#[distributed_slice]
pub static REMOTE_TASKS: [RemoteTasks];

/// One `remote_tasks!` invocation: registers its tasks.
#[doc(hidden)]
#[derive(Debug)]
pub struct RemoteTasks {
    /// Adds the invocation's tasks, under every kind of call each one fits.
    pub register: fn(&mut Registrar),
}

/// How one item ended in a worker's local pool.
pub(crate) enum RunOutcome {
    /// For the pool that made the call.
    Settled(Outcome),
    /// The local process running it died (the item may be delivered again).
    Crashed(String),
}

/// Runs a chunk of encoded items on the local pool, with the call's remaining time, handing
/// `started` a way to stop the local call from another thread. Each item gets an outcome,
/// unless the call stopped early (the error says why).
pub(crate) type Runner = Arc<
    dyn Fn(&Pool, &[Vec<u8>], Option<Duration>, &mut dyn FnMut(Stopper)) -> Run
        + Send
        + Sync
        + 'static,
>;

/// What a [`Runner`] did with a chunk.
pub(crate) struct Run {
    /// One per item; `None` for items the call did not get to.
    pub(crate) outcomes: Vec<Option<RunOutcome>>,
    /// Why the call stopped before every item had an outcome.
    pub(crate) stopped: Option<PoolError>,
}

/// The tasks being registered.
#[doc(hidden)]
#[derive(Default)]
pub struct Registrar {
    runners: HashMap<String, Runner>,
}

impl std::fmt::Debug for Registrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registrar")
            .field("tasks", &self.runners.len())
            .finish()
    }
}

impl Registrar {
    fn add<F, K, Args>(&mut self, task: F)
    where
        F: TaskFn<Star, K, Args>,
        K: RemoteKind,
        Args: Transferable,
    {
        let runner: Runner = Arc::new(
            move |pool: &Pool, items: &[Vec<u8>], timeout, started: &mut dyn FnMut(Stopper)| {
                run::<F, K, Args>(task, pool, items, timeout, started)
            },
        );
        self.runners.insert(task_name::<F, K, Args>(), runner);
    }
}

/// The registered tasks of this executable.
pub(crate) fn registry() -> &'static HashMap<String, Runner> {
    static REGISTRY: OnceLock<HashMap<String, Runner>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut registrar = Registrar::default();
        for tasks in REMOTE_TASKS {
            (tasks.register)(&mut registrar);
        }
        registrar.runners
    })
}

/// The kinds of call a remote task can be made with.
#[doc(hidden)]
pub trait RemoteKind: Sized + 'static {
    /// Part of the task's name.
    const NAME: &'static str;

    /// The local pool's call of this kind.
    fn local(call: PoolCall<'_, Star, Value>) -> PoolCall<'_, Star, Self>;
}

impl RemoteKind for Value {
    const NAME: &'static str = "value";

    fn local(call: PoolCall<'_, Star, Value>) -> PoolCall<'_, Star, Value> {
        call
    }
}

impl RemoteKind for Fallible {
    const NAME: &'static str = "fallible";

    fn local(call: PoolCall<'_, Star, Value>) -> PoolCall<'_, Star, Fallible> {
        call.fallible()
    }
}

impl RemoteKind for Processes {
    const NAME: &'static str = "processes";

    fn local(call: PoolCall<'_, Star, Value>) -> PoolCall<'_, Star, Processes> {
        call.processes()
    }
}

/// The name a task travels by: its path, and a hash of the kind of call, its argument tuple
/// and its output.
pub(crate) fn task_name<F, K, Args>() -> String
where
    F: TaskFn<Star, K, Args>,
    K: RemoteKind,
{
    // The build's identity too: the codec writes no field names, so a worker whose types
    // changed under the same names would misread the items; only the same build runs them.
    let build = crate::identity::executable_identity().unwrap_or_default();
    let signature = format!(
        "{} {} -> {} {build:02x?}",
        K::NAME,
        std::any::type_name::<Args>(),
        std::any::type_name::<F::Output>()
    );
    format!(
        "{}#{:016x}",
        std::any::type_name::<F>(),
        fnv1a(signature.as_bytes())
    )
}

/// FNV-1a, 64 bits: stable across builds and platforms (unlike `std`'s hashers).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Decodes a chunk's items, runs them on the local pool (which isolates a crashing item in a
/// local process) and encodes their outputs for the trip back.
fn run<F, K, Args>(
    task: F,
    pool: &Pool,
    items: &[Vec<u8>],
    timeout: Option<Duration>,
    started: &mut dyn FnMut(Stopper),
) -> Run
where
    F: TaskFn<Star, K, Args>,
    K: RemoteKind,
    Args: Transferable,
{
    let mut outcomes: Vec<Option<RunOutcome>> =
        std::iter::repeat_with(|| None).take(items.len()).collect();
    let mut positions = Vec::with_capacity(items.len());
    let mut decoded = Vec::with_capacity(items.len());
    for (position, bytes) in items.iter().enumerate() {
        match crate::wire::codec::decode::<Args>(bytes) {
            Ok(args) => {
                positions.push(position);
                decoded.push(args);
            }
            Err(reason) => {
                outcomes[position] = Some(RunOutcome::Settled(Outcome::Failed(TaskError::Decode(
                    reason,
                ))));
            }
        }
    }
    let mut call = K::local(pool.star());
    if let Some(timeout) = timeout {
        call = call.timeout(timeout);
    }
    let mut stopped = None;
    let results = call.imap(task, decoded);
    started(results.stopper());
    for (next, result) in results.enumerate() {
        let outcome = match result {
            Ok(value) => RunOutcome::Settled(encode_output(&value)),
            Err(PoolError::Task {
                error: error @ TaskError::Crashed { .. },
                ..
            }) => RunOutcome::Crashed(error.to_string()),
            Err(PoolError::Task { error, .. }) => RunOutcome::Settled(Outcome::Failed(error)),
            Err(error) => {
                stopped = Some(error);
                break;
            }
        };
        outcomes[positions[next]] = Some(outcome);
    }
    Run { outcomes, stopped }
}

fn encode_output<O: Transferable>(value: &O) -> Outcome {
    use crate::wire::codec::HostEncodeError;
    match crate::wire::codec::encode_for_another_host(value) {
        Ok(bytes) => Outcome::Value(bytes),
        Err(HostEncodeError::Local(what)) => Outcome::Failed(TaskError::Encode(format!(
            "the result holds {what}, which cannot cross to another host"
        ))),
        Err(HostEncodeError::Other(reason)) => Outcome::Failed(TaskError::Encode(reason)),
    }
}

/// Infers a function's argument tuple from the function (one impl per arity), as a web
/// framework infers a handler's extractors.
#[doc(hidden)]
pub trait Signature<Args> {}

macro_rules! signatures {
    ($($arg:ident)+) => {
        impl<F, $($arg,)+ O> Signature<($($arg,)+)> for F where F: Fn($($arg),+) -> O {}
    };
}

signatures!(A1);
signatures!(A1 A2);
signatures!(A1 A2 A3);
signatures!(A1 A2 A3 A4);
signatures!(A1 A2 A3 A4 A5);
signatures!(A1 A2 A3 A4 A5 A6);
signatures!(A1 A2 A3 A4 A5 A6 A7);
signatures!(A1 A2 A3 A4 A5 A6 A7 A8);
signatures!(A1 A2 A3 A4 A5 A6 A7 A8 A9);
signatures!(A1 A2 A3 A4 A5 A6 A7 A8 A9 A10);
signatures!(A1 A2 A3 A4 A5 A6 A7 A8 A9 A10 A11);
signatures!(A1 A2 A3 A4 A5 A6 A7 A8 A9 A10 A11 A12);

/// A task and its argument tuple, for registration.
#[doc(hidden)]
#[derive(Debug)]
pub struct Probe<F, Args>(F, PhantomData<fn(Args)>);

impl<F, Args> Probe<F, Args> {
    /// Wraps `task`, inferring its argument tuple.
    pub fn new(task: F) -> Probe<F, Args>
    where
        F: Signature<Args>,
    {
        Probe(task, PhantomData)
    }
}

macro_rules! kinds {
    ($($kind:ident $via:ident $not:ident $method:ident;)+) => {$(
        /// Registers the task for this kind of call (picked when the task fits it).
        #[doc(hidden)]
        pub trait $via {
            /// Registers the task.
            fn $method(&self, registrar: &mut Registrar);
        }

        impl<F, Args> $via for &Probe<F, Args>
        where
            F: TaskFn<Star, $kind, Args>,
            Args: Transferable,
        {
            fn $method(&self, registrar: &mut Registrar) {
                registrar.add::<F, $kind, Args>(self.0);
            }
        }

        /// The fallback: the task does not fit this kind of call.
        #[doc(hidden)]
        pub trait $not {
            /// Does nothing.
            fn $method(&self, _registrar: &mut Registrar) {}
        }

        impl<F, Args> $not for Probe<F, Args> {}
    )+};
}

kinds! {
    Value ViaValue NotValue value;
    Fallible ViaFallible NotFallible fallible;
    Processes ViaProcesses NotProcesses processes;
}

/// Registers functions as tasks a [`NatsPool`](crate::nats::NatsPool) can send to workers on
/// other hosts, by name.
///
/// Write it once, at module level, naming each function (free functions and associated
/// functions, such as a process type's `new`). Each is registered for every kind of call it
/// fits: `map` and `star()` by its arguments, `fallible()` when it returns a `Result`,
/// `processes()` when it returns a process type.
///
/// ```
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// fn add(a: u64, b: u64) -> u64 {
///     a + b
/// }
///
/// skprocess::remote_tasks!(square, add);
/// # fn main() {}
/// ```
///
/// A closure cannot be registered (it has no name that another build of the program shares);
/// a call with a task that is not registered is
/// [`RemoteError::NotRegistered`](crate::nats::RemoteError::NotRegistered), before anything is
/// sent.
#[macro_export]
macro_rules! remote_tasks {
    ($($task:path),+ $(,)?) => {
        const _: () = {
            #[$crate::__private::linkme::distributed_slice($crate::__private::nats::REMOTE_TASKS)]
            #[linkme(crate = $crate::__private::linkme)]
            static TASKS: $crate::__private::nats::RemoteTasks = $crate::__private::nats::RemoteTasks {
                register: |registrar| {
                    #[allow(unused_imports)]
                    use $crate::__private::nats::{
                        NotFallible as _, NotProcesses as _, NotValue as _, ViaFallible as _,
                        ViaProcesses as _, ViaValue as _,
                    };
                    $({
                        let probe = $crate::__private::nats::Probe::new($task);
                        (&&probe).value(registrar);
                        (&&probe).fallible(registrar);
                        (&&probe).processes(registrar);
                    })+
                },
            };
        };
    };
}
