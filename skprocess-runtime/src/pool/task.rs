//! Tasks: what a pool runs for each item, and how a task travels to a worker.
//!
//! A task is a `fn` item, a closure that captures nothing, or a function pointer. A `fn` item's
//! or a closure's type is zero-sized, so there is nothing to send but *which code* to run. The
//! parent sends the address of a monomorphized trampoline (which decodes the inputs, calls the
//! task and encodes the outputs) as an offset from [`anchor`], a function of this crate; for a
//! function pointer it also sends the pointer, as an offset from the same anchor. Parent and
//! worker are the same executable, so an offset means the same code in both, whatever
//! address-space layout randomization did. These make it safe:
//!
//! - the worker accepts offsets only from its authenticated parent (the connection proved the
//!   session secret before the first task);
//! - the worker checks that it runs the same executable as the parent: the parent sends its
//!   executable's identity (the linker's GNU build id, or the file's identity when there is
//!   none) in the start message, and a worker whose identity differs refuses to start;
//! - the trampoline's type is fixed ([`Trampoline`]), and every offset the parent sends was
//!   computed from a function of that type, or from a function pointer of the task's exact
//!   type, which lies in the same loaded image as the anchor (a task compiled into a `dylib` or
//!   a plugin is refused with a typed error, never jumped to);
//! - a task that is not zero-sized is used as a function pointer only when its type *is* the
//!   function pointer type of the task's signature; a closure that captures data is refused (at
//!   compile time unless it captures a single reference or function pointer, which have the
//!   same size as a function pointer; those are refused at run time, before anything is sent);
//! - [`TaskFn`] is sealed: only functions and closures implement it.

use super::error::{PoolError, TaskError};
use super::worker::ResultWriter;
use crate::engine::{Engine, Outcome};
use crate::error::Failure;
use crate::lifecycle::{ChildLink, HookReturn, Lifecycle, Transferable};
use crate::shm::StatusPage;

/// How arguments reach a task, and how its return value is read. Zero-sized markers used as
/// type parameters of [`PoolCall`](super::PoolCall); you never build them.
pub mod mode {
    /// Each item is the task's single argument: `f(item)`.
    #[derive(Debug, Clone, Copy)]
    pub struct Plain;
    /// Each item is a tuple, unpacked into the task's arguments: `f(a, b, c)` (`star()`).
    #[derive(Debug, Clone, Copy)]
    pub struct Star;
    /// The task's return value is the item's result.
    #[derive(Debug, Clone, Copy)]
    pub struct Value;
    /// The task returns a `Result`; `Err` fails the item (`fallible()`).
    #[derive(Debug, Clone, Copy)]
    pub struct Fallible;
    /// The task builds a process value; its whole lifecycle runs in the worker and its result
    /// is the item's result (`processes()`).
    #[derive(Debug, Clone, Copy)]
    pub struct Processes;
    /// The task's first argument is the worker's state, of type `S`, built by the pool's
    /// initializer; the item is the second: `f(&mut state, item)` (`with_state()`).
    #[derive(Debug)]
    pub struct State<S>(std::marker::PhantomData<fn() -> S>);
    /// The worker's state first, then the item's tuple unpacked: `f(&mut state, a, b)`
    /// (`with_state().star()`).
    #[derive(Debug)]
    pub struct StarState<S>(std::marker::PhantomData<fn() -> S>);
}

use mode::{Fallible, Plain, Processes, Star, StarState, State, Value};

/// A task a pool can run on items of type `I`, with argument mode `A` and return mode `K`
/// (see [`mode`]).
///
/// Implemented for `fn` items and closures that capture nothing, of the shapes each mode
/// expects. A capturing closure is rejected at compile time (when the call is monomorphized):
/// the task travels as a code address, so it cannot carry data; pass data in the items.
///
/// The trait is sealed: its only implementations are the ones here, for functions and closures,
/// so a task is always code that takes real items (a type of your own cannot pose as one).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a pool task for these items",
    label = "expected a `fn` item or a non-capturing closure taking the item",
    note = "with `star()` the item must be a tuple of the task's arguments; with `fallible()` the \
            task returns a `Result`; with `processes()` it returns a process type"
)]
pub trait TaskFn<A, K, I>: sealed::Sealed<A, K, I> + Copy + Send + Sync + 'static {
    /// What the item's result is.
    type Output: Transferable;

    /// Whether each item goes in a chunk of its own (process tasks, whose worker may retire
    /// after an item).
    #[doc(hidden)]
    const ONE_PER_CHUNK: bool = false;

    /// Runs the task on one item (in the worker).
    #[doc(hidden)]
    fn call_task(self, input: I) -> Result<Self::Output, TaskError>;

    /// The name of the function pointer type of this task's signature: a task that is not
    /// zero-sized is sent as a function pointer only if its type has exactly this name.
    #[doc(hidden)]
    fn pointer_type() -> &'static str;

    /// The type of worker state the task takes, if it takes one.
    #[doc(hidden)]
    fn state_type() -> Option<&'static str> {
        None
    }
}

mod sealed {
    /// Implemented exactly where [`TaskFn`](super::TaskFn) is; not nameable outside the crate.
    #[diagnostic::on_unimplemented(
        message = "`TaskFn` cannot be implemented outside skprocess",
        label = "`{Self}` is not a function or closure",
        note = "`TaskFn` is implemented for every `fn` item and non-capturing closure of the \
                right shape; pass one to the pool instead of a type of your own"
    )]
    pub trait Sealed<A, K, I> {}
}

impl<F, I, O> sealed::Sealed<Plain, Value, I> for F
where
    F: Fn(I) -> O + Copy + Send + Sync + 'static,
    O: Transferable,
{
}

impl<F, I, T, E> sealed::Sealed<Plain, Fallible, I> for F
where
    F: Fn(I) -> Result<T, E> + Copy + Send + Sync + 'static,
    T: Transferable,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
}

impl<F, I, P> sealed::Sealed<Plain, Processes, I> for F
where
    F: Fn(I) -> P + Copy + Send + Sync + 'static,
    P: Lifecycle,
{
}

impl<F, I, O> TaskFn<Plain, Value, I> for F
where
    F: Fn(I) -> O + Copy + Send + Sync + 'static,
    O: Transferable,
{
    type Output = O;

    fn call_task(self, input: I) -> Result<O, TaskError> {
        Ok(self(input))
    }

    fn pointer_type() -> &'static str {
        std::any::type_name::<fn(I) -> O>()
    }
}

impl<F, I, T, E> TaskFn<Plain, Fallible, I> for F
where
    F: Fn(I) -> Result<T, E> + Copy + Send + Sync + 'static,
    T: Transferable,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Output = T;

    fn call_task(self, input: I) -> Result<T, TaskError> {
        self(input).into_hook_result().map_err(TaskError::Failed)
    }

    fn pointer_type() -> &'static str {
        std::any::type_name::<fn(I) -> Result<T, E>>()
    }
}

impl<F, I, P> TaskFn<Plain, Processes, I> for F
where
    F: Fn(I) -> P + Copy + Send + Sync + 'static,
    P: Lifecycle,
{
    type Output = P::Output;
    const ONE_PER_CHUNK: bool = true;

    fn call_task(self, input: I) -> Result<P::Output, TaskError> {
        run_process_inline(self(input))
    }

    fn pointer_type() -> &'static str {
        std::any::type_name::<fn(I) -> P>()
    }
}

macro_rules! star_tasks {
    ($($arg:ident)+) => {
        impl<F, $($arg,)+ O> sealed::Sealed<Star, Value, ($($arg,)+)> for F
        where
            F: Fn($($arg),+) -> O + Copy + Send + Sync + 'static,
            O: Transferable,
        {
        }

        impl<F, $($arg,)+ T, E> sealed::Sealed<Star, Fallible, ($($arg,)+)> for F
        where
            F: Fn($($arg),+) -> Result<T, E> + Copy + Send + Sync + 'static,
            T: Transferable,
            E: Into<Box<dyn std::error::Error + Send + Sync>>,
        {
        }

        impl<F, $($arg,)+ P> sealed::Sealed<Star, Processes, ($($arg,)+)> for F
        where
            F: Fn($($arg),+) -> P + Copy + Send + Sync + 'static,
            P: Lifecycle,
        {
        }

        impl<F, $($arg,)+ O> TaskFn<Star, Value, ($($arg,)+)> for F
        where
            F: Fn($($arg),+) -> O + Copy + Send + Sync + 'static,
            O: Transferable,
        {
            type Output = O;

            #[allow(non_snake_case)]
            fn call_task(self, ($($arg,)+): ($($arg,)+)) -> Result<O, TaskError> {
                Ok(self($($arg),+))
            }

            fn pointer_type() -> &'static str {
                std::any::type_name::<fn($($arg),+) -> O>()
            }
        }

        impl<F, $($arg,)+ T, E> TaskFn<Star, Fallible, ($($arg,)+)> for F
        where
            F: Fn($($arg),+) -> Result<T, E> + Copy + Send + Sync + 'static,
            T: Transferable,
            E: Into<Box<dyn std::error::Error + Send + Sync>>,
        {
            type Output = T;

            #[allow(non_snake_case)]
            fn call_task(self, ($($arg,)+): ($($arg,)+)) -> Result<T, TaskError> {
                self($($arg),+).into_hook_result().map_err(TaskError::Failed)
            }

            fn pointer_type() -> &'static str {
                std::any::type_name::<fn($($arg),+) -> Result<T, E>>()
            }
        }

        impl<F, $($arg,)+ P> TaskFn<Star, Processes, ($($arg,)+)> for F
        where
            F: Fn($($arg),+) -> P + Copy + Send + Sync + 'static,
            P: Lifecycle,
        {
            type Output = P::Output;
            const ONE_PER_CHUNK: bool = true;

            #[allow(non_snake_case)]
            fn call_task(self, ($($arg,)+): ($($arg,)+)) -> Result<P::Output, TaskError> {
                run_process_inline(self($($arg),+))
            }

            fn pointer_type() -> &'static str {
                std::any::type_name::<fn($($arg),+) -> P>()
            }
        }
    };
}

star_tasks!(A1);
star_tasks!(A1 A2);
star_tasks!(A1 A2 A3);
star_tasks!(A1 A2 A3 A4);
star_tasks!(A1 A2 A3 A4 A5);
star_tasks!(A1 A2 A3 A4 A5 A6);
star_tasks!(A1 A2 A3 A4 A5 A6 A7);
star_tasks!(A1 A2 A3 A4 A5 A6 A7 A8);
star_tasks!(A1 A2 A3 A4 A5 A6 A7 A8 A9);
star_tasks!(A1 A2 A3 A4 A5 A6 A7 A8 A9 A10);
star_tasks!(A1 A2 A3 A4 A5 A6 A7 A8 A9 A10 A11);
star_tasks!(A1 A2 A3 A4 A5 A6 A7 A8 A9 A10 A11 A12);

impl<F, S, I, O> sealed::Sealed<State<S>, Value, I> for F
where
    F: Fn(&mut S, I) -> O + Copy + Send + Sync + 'static,
    S: 'static,
    O: Transferable,
{
}

impl<F, S, I, T, E> sealed::Sealed<State<S>, Fallible, I> for F
where
    F: Fn(&mut S, I) -> Result<T, E> + Copy + Send + Sync + 'static,
    S: 'static,
    T: Transferable,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
}

impl<F, S, I, O> TaskFn<State<S>, Value, I> for F
where
    F: Fn(&mut S, I) -> O + Copy + Send + Sync + 'static,
    S: 'static,
    O: Transferable,
{
    type Output = O;

    fn call_task(self, input: I) -> Result<O, TaskError> {
        super::worker::with_state(|state: &mut S| self(state, input))
    }

    fn pointer_type() -> &'static str {
        std::any::type_name::<fn(&mut S, I) -> O>()
    }

    fn state_type() -> Option<&'static str> {
        Some(std::any::type_name::<S>())
    }
}

impl<F, S, I, T, E> TaskFn<State<S>, Fallible, I> for F
where
    F: Fn(&mut S, I) -> Result<T, E> + Copy + Send + Sync + 'static,
    S: 'static,
    T: Transferable,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Output = T;

    fn call_task(self, input: I) -> Result<T, TaskError> {
        super::worker::with_state(|state: &mut S| self(state, input))?
            .into_hook_result()
            .map_err(TaskError::Failed)
    }

    fn pointer_type() -> &'static str {
        std::any::type_name::<fn(&mut S, I) -> Result<T, E>>()
    }

    fn state_type() -> Option<&'static str> {
        Some(std::any::type_name::<S>())
    }
}

macro_rules! star_state_tasks {
    ($($arg:ident)+) => {
        impl<F, S, $($arg,)+ O> sealed::Sealed<StarState<S>, Value, ($($arg,)+)> for F
        where
            F: Fn(&mut S, $($arg),+) -> O + Copy + Send + Sync + 'static,
            S: 'static,
            O: Transferable,
        {
        }

        impl<F, S, $($arg,)+ T, E> sealed::Sealed<StarState<S>, Fallible, ($($arg,)+)> for F
        where
            F: Fn(&mut S, $($arg),+) -> Result<T, E> + Copy + Send + Sync + 'static,
            S: 'static,
            T: Transferable,
            E: Into<Box<dyn std::error::Error + Send + Sync>>,
        {
        }

        impl<F, S, $($arg,)+ O> TaskFn<StarState<S>, Value, ($($arg,)+)> for F
        where
            F: Fn(&mut S, $($arg),+) -> O + Copy + Send + Sync + 'static,
            S: 'static,
            O: Transferable,
        {
            type Output = O;

            #[allow(non_snake_case)]
            fn call_task(self, ($($arg,)+): ($($arg,)+)) -> Result<O, TaskError> {
                super::worker::with_state(|state: &mut S| self(state, $($arg),+))
            }

            fn pointer_type() -> &'static str {
                std::any::type_name::<fn(&mut S, $($arg),+) -> O>()
            }

            fn state_type() -> Option<&'static str> {
                Some(std::any::type_name::<S>())
            }
        }

        impl<F, S, $($arg,)+ T, E> TaskFn<StarState<S>, Fallible, ($($arg,)+)> for F
        where
            F: Fn(&mut S, $($arg),+) -> Result<T, E> + Copy + Send + Sync + 'static,
            S: 'static,
            T: Transferable,
            E: Into<Box<dyn std::error::Error + Send + Sync>>,
        {
            type Output = T;

            #[allow(non_snake_case)]
            fn call_task(self, ($($arg,)+): ($($arg,)+)) -> Result<T, TaskError> {
                super::worker::with_state(|state: &mut S| self(state, $($arg),+))?
                    .into_hook_result()
                    .map_err(TaskError::Failed)
            }

            fn pointer_type() -> &'static str {
                std::any::type_name::<fn(&mut S, $($arg),+) -> Result<T, E>>()
            }

            fn state_type() -> Option<&'static str> {
                Some(std::any::type_name::<S>())
            }
        }
    };
}

star_state_tasks!(A1);
star_state_tasks!(A1 A2);
star_state_tasks!(A1 A2 A3);
star_state_tasks!(A1 A2 A3 A4);
star_state_tasks!(A1 A2 A3 A4 A5);
star_state_tasks!(A1 A2 A3 A4 A5 A6);
star_state_tasks!(A1 A2 A3 A4 A5 A6 A7);
star_state_tasks!(A1 A2 A3 A4 A5 A6 A7 A8);
star_state_tasks!(A1 A2 A3 A4 A5 A6 A7 A8 A9);
star_state_tasks!(A1 A2 A3 A4 A5 A6 A7 A8 A9 A10);
star_state_tasks!(A1 A2 A3 A4 A5 A6 A7 A8 A9 A10 A11);
star_state_tasks!(A1 A2 A3 A4 A5 A6 A7 A8 A9 A10 A11 A12);

/// Where an initializer's code is, its name, and the type of the state it builds.
#[derive(Debug, Clone)]
pub(crate) struct InitCode {
    pub(crate) offset: i64,
    pub(crate) data: i64,
    pub(crate) name: &'static str,
    pub(crate) state: &'static str,
}

/// Where an infallible initializer `init` (a `fn` item, a function pointer or a closure that
/// captures nothing) is.
pub(crate) fn init_code<F, S>(init: &F) -> Result<InitCode, PoolError>
where
    F: Fn() -> S + Copy + Send + Sync + 'static,
    S: 'static,
{
    let trampoline: InitTrampoline = init_trampoline::<F, S>;
    let code = code_of(
        init,
        std::any::type_name::<fn() -> S>(),
        trampoline as usize,
    )?;
    Ok(InitCode {
        offset: code.offset,
        data: code.data,
        name: std::any::type_name::<F>(),
        state: std::any::type_name::<S>(),
    })
}

/// Where a fallible initializer `init` is.
pub(crate) fn try_init_code<F, S, E>(init: &F) -> Result<InitCode, PoolError>
where
    F: Fn() -> Result<S, E> + Copy + Send + Sync + 'static,
    S: 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    let trampoline: InitTrampoline = try_init_trampoline::<F, S, E>;
    let code = code_of(
        init,
        std::any::type_name::<fn() -> Result<S, E>>(),
        trampoline as usize,
    )?;
    Ok(InitCode {
        offset: code.offset,
        data: code.data,
        name: std::any::type_name::<F>(),
        state: std::any::type_name::<S>(),
    })
}

/// The function an initializer's offset points at: builds the worker's state.
pub(crate) type InitTrampoline = fn(data: i64) -> Result<Box<dyn std::any::Any>, Failure>;

fn init_trampoline<F, S>(data: i64) -> Result<Box<dyn std::any::Any>, Failure>
where
    F: Fn() -> S + Copy + Send + Sync + 'static,
    S: 'static,
{
    // SAFETY: as for a task (`trampoline`): `F` is zero-sized, or the function pointer type
    // `fn() -> S` with `data` the offset of such a function in this executable (`code_of`).
    let init: F = unsafe { value_at::<F>(data) };
    crate::engine::call_hook(|| Ok(init())).map(|state| Box::new(state) as Box<dyn std::any::Any>)
}

fn try_init_trampoline<F, S, E>(data: i64) -> Result<Box<dyn std::any::Any>, Failure>
where
    F: Fn() -> Result<S, E> + Copy + Send + Sync + 'static,
    S: 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    // SAFETY: as in `init_trampoline`.
    let init: F = unsafe { value_at::<F>(data) };
    crate::engine::call_hook(|| init().into_hook_result())
        .map(|state| Box::new(state) as Box<dyn std::any::Any>)
}

/// Turns an initializer's offset from the authenticated parent back into its trampoline.
///
/// # Safety
///
/// As for [`trampoline_at`]: `offset` must come from [`init_code`] in a process running this
/// same executable.
pub(crate) unsafe fn init_trampoline_at(offset: i64) -> InitTrampoline {
    let address = address_from_anchor(offset);
    // SAFETY: by this function's contract, `address` is an `InitTrampoline` of this executable.
    unsafe { std::mem::transmute::<usize, InitTrampoline>(address) }
}

/// Runs a process value's whole lifecycle here (in a pool worker), with the same semantics as
/// a standalone process: lives, timeouts, `__error__`'s value as the result.
fn run_process_inline<P: Lifecycle>(process: P) -> Result<P::Output, TaskError> {
    let mut config = crate::config::ProcessConfig::default();
    process.configure(&mut config);
    if let Err(message) = config.validate() {
        return Err(TaskError::Process(
            crate::error::ProcessError::InvalidConfig { message },
        ));
    }
    let status = StatusPage::create()
        .map_err(|e| TaskError::Failed(Failure::msg(format!("cannot create a status page: {e}"))))?
        .0;
    // No parent listens to a process run inside a pool, and none tells it anything.
    let link = std::sync::Arc::new(ChildLink::new(
        None,
        crate::inbox::Mailbox::never(),
        std::sync::Arc::new(status),
    ));
    match Engine::new(process, config, link).run().0 {
        Outcome::Value(value) => Ok(value),
        Outcome::Error(error) => Err(TaskError::Process(error)),
    }
}

/// The function every task offset points at: runs `lengths.len()` items whose encodings are
/// concatenated in `items`, handing each item's `Result<Output, TaskError>` to `out` and
/// recording the index of the item in progress in `status`. `data` is the task's own offset
/// when the task is a function pointer (see [`TaskCode`]).
pub(crate) type Trampoline = for<'a, 'b> fn(
    items: &[u8],
    lengths: &[u32],
    data: i64,
    out: &mut ResultWriter<'b>,
    status: &'a StatusPage,
);

/// Where a task's code is, as offsets from [`anchor`]: its trampoline, and for a function
/// pointer the function itself (0 otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TaskCode {
    pub(crate) offset: i64,
    pub(crate) data: i64,
}

/// A fixed point of this crate's code; task offsets are relative to its address.
#[inline(never)]
pub(crate) fn anchor() {
    std::hint::black_box(());
}

/// Where task `task`'s code is. Fails to compile (when monomorphized) if `T` is neither
/// zero-sized nor the size of a function pointer with its niche (a closure that captures
/// data). Fails at run time if `T` has a function pointer's size but is not the function
/// pointer type of its signature (a closure that captures one reference or one function
/// pointer), or if the code lies in another loaded image than this crate's code (the task was
/// compiled into a `dylib` or a plugin: an offset could not find it in a worker).
pub(crate) fn task_code<T, A, K, I>(task: &T) -> Result<TaskCode, PoolError>
where
    T: TaskFn<A, K, I>,
    I: Transferable,
{
    let trampoline: Trampoline = trampoline::<T, A, K, I>;
    code_of(task, T::pointer_type(), trampoline as usize)
}

/// Whether a callable of type `T` may be a task: zero-sized (a `fn` item or a closure that
/// captures nothing), or the size of a function pointer with its niche (a function pointer; a
/// closure that captures one reference or one function pointer has that shape too, and is
/// refused at run time by [`code_of`]).
pub(crate) const fn can_travel<T>() -> bool {
    size_of::<T>() == 0
        || (size_of::<T>() == size_of::<fn()>() && size_of::<Option<T>>() == size_of::<T>())
}

/// Refuses, when monomorphized, a task or initializer type that captures data. Used in every
/// public method that takes one, so that the compiler's note ("the above error was encountered
/// while instantiating ...") points at the user's call.
macro_rules! assert_can_travel {
    ($t:ty) => {
        const {
            assert!(
                $crate::pool::task::can_travel::<$t>(),
                "pool tasks must be `fn` items, function pointers or closures that capture \
                 nothing: a task travels to the worker as a code address, so it cannot carry \
                 data (pass data in the items)"
            );
        }
    };
}
pub(crate) use assert_can_travel;

/// Where a callable of type `T` (a task or an initializer) is: its trampoline at
/// `trampoline`, and itself if it is a function pointer of type `pointer_type`.
fn code_of<T>(value: &T, pointer_type: &str, trampoline: usize) -> Result<TaskCode, PoolError> {
    if !can_travel::<T>() {
        // The public entry points refuse such a type at compile time (`assert_can_travel!`).
        return Err(PoolError::TaskCapturesData {
            task: std::any::type_name::<T>(),
        });
    }
    let outside = || PoolError::TaskOutsideExecutable {
        task: std::any::type_name::<T>(),
    };
    let data = if size_of::<T>() == 0 {
        0
    } else {
        if std::any::type_name::<T>() != pointer_type {
            return Err(PoolError::TaskCapturesData {
                task: std::any::type_name::<T>(),
            });
        }
        // SAFETY: `T` is a function pointer type (its name is the one of the function pointer
        // type of its signature), which has the size and layout of a `usize`.
        let address: usize = unsafe { std::mem::transmute_copy::<T, usize>(value) };
        if !crate::identity::in_this_image(address) {
            return Err(outside());
        }
        offset_from_anchor(address)
    };
    if !crate::identity::in_this_image(trampoline) {
        return Err(outside());
    }
    Ok(TaskCode {
        offset: offset_from_anchor(trampoline),
        data,
    })
}

/// The value of a callable sent with `data` (see [`code_of`]).
///
/// # Safety
///
/// `T` is zero-sized and inhabited (the parent held a value of it), or `T` is a function
/// pointer type and `data` the offset of a function of that type in this executable.
unsafe fn value_at<T>(data: i64) -> T {
    if size_of::<T>() == 0 {
        // SAFETY: a zero-sized, inhabited type has no bytes to read: reading one from a
        // dangling, well-aligned pointer is sound.
        unsafe { std::ptr::NonNull::<T>::dangling().as_ptr().read() }
    } else {
        // SAFETY: by this function's contract, `T` is a function pointer type.
        unsafe { std::mem::transmute_copy::<usize, T>(&address_from_anchor(data)) }
    }
}

fn offset_from_anchor(address: usize) -> i64 {
    (address as i64).wrapping_sub(anchor as fn() as usize as i64)
}

fn address_from_anchor(offset: i64) -> usize {
    (anchor as fn() as usize as i64).wrapping_add(offset) as usize
}

/// Turns an offset from the authenticated parent back into a trampoline.
///
/// # Safety
///
/// `offset` must come from [`task_code`] in a process running this same executable (the
/// caller checked the executable's identity and the peer's authentication).
pub(crate) unsafe fn trampoline_at(offset: i64) -> Trampoline {
    let address = address_from_anchor(offset);
    // SAFETY: by this function's contract, `address` is the address of a function of type
    // `Trampoline` in this executable (the same code the parent computed the offset from).
    unsafe { std::mem::transmute::<usize, Trampoline>(address) }
}

fn trampoline<T, A, K, I>(
    items: &[u8],
    lengths: &[u32],
    data: i64,
    out: &mut ResultWriter<'_>,
    status: &StatusPage,
) where
    T: TaskFn<A, K, I>,
    I: Transferable,
{
    // SAFETY: the parent held a value of `T` when it sent this task; a task that is not
    // zero-sized is sent only when `T` is the function pointer type of its signature
    // (`task_code`), with `data` the offset of a function of that type in this same executable
    // (the authenticated parent runs it too).
    let task: T = unsafe { value_at::<T>(data) };
    let mut start = 0usize;
    for (index, &len) in lengths.iter().enumerate() {
        status.set_current_run(index);
        let end = start + len as usize;
        let outcome = match items.get(start..end) {
            Some(bytes) => match crate::wire::decode::<I>(bytes) {
                Ok(input) => run_one(task, input),
                Err(message) => Err(TaskError::Decode(message)),
            },
            None => Err(TaskError::Decode(
                "the item lengths exceed the task's bytes".into(),
            )),
        };
        start = end;
        out.push(&outcome);
    }
}

/// The function an async task's offset points at (`AsyncPool::with_workers`): decodes the
/// item, calls the task, and returns the future that runs it and encodes its output. Panics
/// (in the call or the future) are caught. `data` is as for [`Trampoline`].
#[cfg(feature = "tokio")]
pub(crate) type AsyncTrampoline = fn(input: Vec<u8>, data: i64) -> AsyncTaskRun;

/// What an [`AsyncTrampoline`] returns: the task's whole run, encoded output or failure.
#[cfg(feature = "tokio")]
pub(crate) type AsyncTaskRun = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<Vec<u8>, super::async_workers::TaskFailure>> + Send,
    >,
>;

/// Where an async task `task` is: its trampoline `trampoline` (the monomorphized one for its
/// type), and itself if it is a function pointer of type `pointer_type`. Refused as for sync
/// tasks (captured data, code outside the executable).
#[cfg(feature = "tokio")]
pub(crate) fn async_task_code<F>(
    task: &F,
    pointer_type: &str,
    trampoline: AsyncTrampoline,
) -> Result<TaskCode, PoolError> {
    code_of(task, pointer_type, trampoline as usize)
}

/// Turns an async task's offset from the authenticated parent back into its trampoline.
///
/// # Safety
///
/// As for [`trampoline_at`]: `offset` must come from [`async_task_code`] in a process running
/// this same executable.
#[cfg(feature = "tokio")]
pub(crate) unsafe fn async_trampoline_at(offset: i64) -> AsyncTrampoline {
    let address = address_from_anchor(offset);
    // SAFETY: by this function's contract, `address` is an `AsyncTrampoline` of this
    // executable.
    unsafe { std::mem::transmute::<usize, AsyncTrampoline>(address) }
}

/// The value of a task sent with `data`, for the async trampolines.
///
/// # Safety
///
/// As for [`value_at`].
#[cfg(feature = "tokio")]
pub(crate) unsafe fn task_value_at<T>(data: i64) -> T {
    // SAFETY: by this function's contract.
    unsafe { value_at::<T>(data) }
}

fn run_one<T, A, K, I>(task: T, input: I) -> Result<T::Output, TaskError>
where
    T: TaskFn<A, K, I>,
{
    // A panic becomes the item's failure, with its message and location.
    match crate::engine::call_hook(|| Ok(task.call_task(input))) {
        Ok(result) => result,
        Err(failure) => Err(TaskError::Failed(failure)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn double(x: u32) -> u32 {
        x * 2
    }

    fn offsets_of<T: TaskFn<Plain, Value, u32>>(task: T) -> (TaskCode, Trampoline) {
        (
            task_code::<T, Plain, Value, u32>(&task).expect("in this image"),
            trampoline::<T, Plain, Value, u32>,
        )
    }

    fn triple(x: u32) -> u32 {
        x * 3
    }

    #[test]
    fn function_pointers_travel_with_their_own_offset() {
        for (pick, expected) in [(false, 2), (true, 3)] {
            let f: fn(u32) -> u32 = if pick { triple } else { double };
            let (code, _) = offsets_of(f);
            assert_ne!(code.data, 0);
            let (status, _fd) = StatusPage::create().unwrap();
            let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
            let conn = crate::wire::Conn::new(ours);
            let mut out = ResultWriter::new(&conn, 1);
            let item = crate::wire::encode(&7u32).unwrap();
            // SAFETY: computed in this process.
            let trampoline = unsafe { trampoline_at(code.offset) };
            trampoline(&item, &[item.len() as u32], code.data, &mut out, &status);
            out.finish().unwrap();
            let frame = crate::wire::Conn::new(theirs).read_one().unwrap().unwrap();
            let mut decoder = crate::wire::codec::Decoder::new(
                &frame.payload[crate::wire::protocol::RESULTS_HEAD..],
            );
            let result: Result<u32, TaskError> = decoder.next().unwrap();
            assert_eq!(result.unwrap(), 7 * expected);
        }
    }

    #[test]
    fn a_closure_capturing_a_function_pointer_is_refused() {
        let f: fn(u32) -> u32 = double;
        let task = move |x: u32| f(x) + 1;
        let error = task_code::<_, Plain, Value, u32>(&task).unwrap_err();
        assert!(
            matches!(error, PoolError::TaskCapturesData { .. }),
            "{error}"
        );
    }

    #[test]
    fn offsets_round_trip_to_the_same_trampoline() {
        let (code, direct) = offsets_of(double);
        assert_eq!(code.data, 0);
        // SAFETY: the offset was computed in this process from a `Trampoline`.
        let back = unsafe { trampoline_at(code.offset) };
        assert_eq!(back as usize, direct as usize);
        let (closure_code, _) = offsets_of(|x: u32| x + 1);
        assert_ne!(closure_code.offset, code.offset);
    }

    #[test]
    fn a_trampoline_runs_each_item_and_reports_failures() {
        let (code, _) = offsets_of(|x: u32| {
            assert!(x != 3, "three is not allowed");
            x * 10
        });
        let (status, _fd) = StatusPage::create().unwrap();
        let mut items = Vec::new();
        let mut lengths = Vec::new();
        for x in [1u32, 3, 5] {
            let bytes = crate::wire::encode(&x).unwrap();
            lengths.push(bytes.len() as u32);
            items.extend_from_slice(&bytes);
        }
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let conn = crate::wire::Conn::new(ours);
        let mut out = ResultWriter::new(&conn, 9);
        // SAFETY: computed in this process.
        let trampoline = unsafe { trampoline_at(code.offset) };
        trampoline(&items, &lengths, code.data, &mut out, &status);
        out.finish().unwrap();
        let reader = crate::wire::Conn::new(theirs);
        let frame = reader.read_one().unwrap().unwrap();
        assert_eq!(frame.kind, crate::wire::Kind::Results);
        let head = crate::wire::protocol::ResultsHead::decode(&frame.payload).unwrap();
        assert_eq!((head.seq, head.first, head.count), (9, 0, 3));
        let mut decoder =
            crate::wire::codec::Decoder::new(&frame.payload[crate::wire::protocol::RESULTS_HEAD..]);
        let results: Vec<Result<u32, TaskError>> =
            (0..3).map(|_| decoder.next().unwrap()).collect();
        assert!(decoder.is_empty());
        assert_eq!(results[0].as_ref().unwrap(), &10);
        let failure = results[1].as_ref().unwrap_err().failure().unwrap();
        assert_eq!(failure.message(), "three is not allowed");
        assert!(failure.is_panic());
        assert_eq!(results[2].as_ref().unwrap(), &50);
        assert_eq!(status.current_run(), 2);
    }
}
