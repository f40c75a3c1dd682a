//! The registry: every process type of the executable, by stable name, in a linkme slice.
//!
//! `#[skprocess]` (or [`register!`](crate::register)) adds one [`ProcessEntry`] per type. The
//! name is built from the module path, the type and the file/line/column of the registration,
//! so two fn-local `Worker` types in one module get different names. A duplicated name is an
//! error only when that name is spawned. The child looks its entry up by name; a name it cannot
//! find makes it report and exit, never run `main`.

use std::sync::Arc;

use linkme::distributed_slice;

use crate::error::{ProcessError, SetupFailure};
use crate::logs::LogLevels;
use crate::shm::StatusPage;
use crate::wire::{Conn, Kind};

/// What an entry gets in the child: its connection to the parent, its status page and its own
/// start message. The entry returns the process's exit code.
#[derive(Debug)]
pub(crate) struct ChildSession {
    pub(crate) conn: Arc<Conn>,
    pub(crate) status: Arc<StatusPage>,
    /// The entry's own start message.
    pub(crate) body: Vec<u8>,
    /// The parent's log levels when it started this child.
    pub(crate) log_levels: LogLevels,
}

impl ChildSession {
    /// Tells the parent why this child cannot do its work; returns the exit code to leave with.
    pub(crate) fn setup_failed(&self, error: ProcessError) -> i32 {
        Self::report_setup_failure(&self.conn, error)
    }

    /// [`setup_failed`](ChildSession::setup_failed) before a session exists.
    pub(crate) fn report_setup_failure(conn: &Conn, error: ProcessError) -> i32 {
        report_setup_failure_with(|kind, bytes| conn.send(kind, bytes), error)
    }

    /// Prepares this child for user code, once, before the entry runs any: installs the
    /// forwarding of log records to the parent (with the `log` and `tracing` features), then
    /// runs the `#[child_init]` hooks in their order. `Err` names the hook that failed.
    pub(crate) fn before_user_code(&self) -> Result<(), ProcessError> {
        crate::logs::install(&self.conn, self.log_levels);
        crate::child_init::run_all()
    }
}

/// Sends the `SetupFailed` frame for `error` with `send` (which writes one frame); returns the
/// exit code to leave with.
pub(crate) fn report_setup_failure_with(
    send: impl FnOnce(Kind, &[u8]) -> Result<(), crate::error::IpcError>,
    error: ProcessError,
) -> i32 {
    if let Ok(bytes) = crate::wire::encode(&SetupFailure::from_error(error)) {
        let _ = send(Kind::SetupFailed, &bytes);
    }
    crate::exit::code::SETUP_FAILED
}

/// One registered process type: its stable name and the child-side entry point.
#[derive(Debug)]
pub struct ProcessEntry {
    name: &'static str,
    run: fn(ChildSession) -> i32,
}

impl ProcessEntry {
    /// An entry for `T` under `name` (used by generated code and `register!`).
    pub const fn new<T: crate::Lifecycle>(name: &'static str) -> ProcessEntry {
        ProcessEntry {
            name,
            run: crate::process::entry::run_process::<T>,
        }
    }

    /// An entry with a custom child-side entry point (built-in entries such as pool workers).
    pub(crate) const fn with_entry(name: &'static str, run: fn(ChildSession) -> i32) -> Self {
        ProcessEntry { name, run }
    }

    /// The stable name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    pub(crate) fn run(&self, session: ChildSession) -> i32 {
        (self.run)(session)
    }
}

/// Every process type of the executable.
#[distributed_slice]
pub static PROCESSES: [ProcessEntry];

// The runtime's own entry: an empty slice breaks some linkers, and it is a handy self-check.
#[distributed_slice(PROCESSES)]
static SELF_CHECK: ProcessEntry = ProcessEntry::with_entry(SELF_CHECK_NAME, self_check_entry);

/// The name of the runtime's own entry.
pub(crate) const SELF_CHECK_NAME: &str = "skprocess::self-check";

/// The runtime's own entry: replies to its start message with the same bytes.
fn self_check_entry(session: ChildSession) -> i32 {
    let _ = session.conn.send(Kind::Result, &session.body);
    crate::exit::code::OK
}

/// Finds the single entry registered under `name`.
pub(crate) fn lookup(name: &str) -> Result<&'static ProcessEntry, crate::ProcessError> {
    let mut found = PROCESSES.iter().filter(|entry| entry.name == name);
    let first = found.next();
    let extra = found.count();
    match first {
        None => Err(crate::ProcessError::NotRegistered {
            name: name.to_owned(),
        }),
        Some(_) if extra > 0 => Err(crate::ProcessError::DuplicateName {
            name: name.to_owned(),
            count: extra + 1,
        }),
        Some(entry) => Ok(entry),
    }
}

/// A process type with a registry entry, so the child can find it by name.
///
/// Implemented by `#[skprocess]` on non-generic structs and by [`register!`](crate::register)
/// for concrete instantiations of generic ones.
///
/// `M` only keeps registrations apart: [`register!`](crate::register) implements
/// `Registered<M>` with a marker type of its own, which is what lets any crate register an
/// instantiation of a generic process type defined in another crate (`register!(Echo<Point>)`
/// next to `Point`) without breaking the orphan rules. Code that needs a registered type writes
/// `P: Registered<M>` with `M` inferred; a type registered twice is ambiguous there.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a registered process type",
    label = "not a registered process type",
    note = "a process type needs `#[skprocess]` on its struct and on the impl block that defines \
            `__run__`; a generic one also needs `skprocess::register!({Self});`"
)]
pub trait Registered<M = ()>: crate::Lifecycle {
    /// The stable name the type is registered under.
    const NAME: &'static str;

    /// The registry entry for this type (what `#[skprocess]` puts in the registry).
    #[doc(hidden)]
    const ENTRY: ProcessEntry = ProcessEntry::new::<Self>(Self::NAME);

    /// The entry in the registry (referencing it also keeps it linked in).
    fn entry() -> &'static ProcessEntry;
}

/// The stable name `P` is registered under (what a child looks its type up by):
/// `skprocess::registered_name::<MyProcess, _>()`.
pub fn registered_name<P: Registered<M>, M>() -> &'static str {
    P::NAME
}

/// Registers a process type (a concrete instantiation of a generic one, or a type that
/// implements [`Lifecycle`](crate::Lifecycle) by hand) so that it can be spawned.
///
/// Works in any crate of the program, including one that instantiates a generic process type
/// of a library with its own types. Register each type once.
///
/// ```
/// use skprocess::prelude::*;
///
/// #[skprocess]
/// struct Repeat<T> {
///     value: T,
///     times: usize,
/// }
///
/// #[skprocess]
/// impl<T> Repeat<T>
/// where
///     T: Clone + Send + serde::Serialize + serde::de::DeserializeOwned + 'static,
/// {
///     fn __config__(&self, config: &mut ProcessConfig) {
///         config.runs = Some(self.times);
///     }
///     fn __run__(&mut self) {}
///     fn __result__(&mut self) -> Vec<T> {
///         vec![self.value.clone(); self.times]
///     }
/// }
///
/// skprocess::register!(Repeat<u32>);
/// # use skprocess::__private::serde;
/// ```
#[macro_export]
macro_rules! register {
    ($ty:ty $(,)?) => {
        const _: () = {
            #[doc(hidden)]
            pub struct __SkRegistration;
            #[$crate::__private::linkme::distributed_slice($crate::__private::PROCESSES)]
            #[linkme(crate = $crate::__private::linkme)]
            static __SK_ENTRY: $crate::__private::ProcessEntry =
                <$ty as $crate::__private::Registered<__SkRegistration>>::ENTRY;
            // A type registered twice is reported here, not only where it is spawned.
            const _: fn() -> &'static str = $crate::registered_name::<$ty, _>;
            impl $crate::__private::Registered<__SkRegistration> for $ty {
                const NAME: &'static str = ::core::concat!(
                    ::core::module_path!(),
                    "::",
                    ::core::stringify!($ty),
                    "@",
                    ::core::file!(),
                    ":",
                    ::core::line!(),
                    ":",
                    ::core::column!()
                );
                fn entry() -> &'static $crate::__private::ProcessEntry {
                    &__SK_ENTRY
                }
            }
        };
    };
}
