//! Procedural macros for [skprocess](https://docs.rs/skprocess-runtime): `#[skprocess]`,
//! `#[shared]` and `#[timethis]`.
//!
//! Do not depend on this crate directly: depend on `skprocess-runtime` (imported as `skprocess`),
//! which re-exports every macro here with its documentation. Generated code names only
//! `::skprocess::__private`, so users need no other dependency.

mod autoreconnect;
mod child_init;
mod ctxt;
mod item;
mod lit;
mod path;
mod process;
mod shared;
mod symbol;
mod timethis;

use proc_macro::TokenStream;

/// Times every call of a function or method into an `Sktimer`.
///
/// ```
/// use skprocess::timethis;
///
/// #[timethis]
/// fn parse(line: &str) -> usize {
///     line.split(',').count()
/// }
///
/// assert_eq!(parse("a,b,c"), 3);
/// let timer = parse_timer(); // generated next to `parse`
/// assert_eq!(timer.num_times(), 1);
/// println!("parse took {:?} s", timer.most_recent());
/// ```
///
/// It applies to free functions, methods (`&self`, `&mut self`, `self`), associated functions,
/// generic functions and `async fn`. The signature is left exactly as written. Each call is
/// measured in seconds, from entry to return (for an `async fn`: from the first poll of its
/// future to its completion), and recorded unless:
///
/// - the call panicked, or the `async fn`'s future was dropped before completing (a failed or
///   abandoned call is not a timing);
/// - it took less than the `threshold`.
///
/// Early `return`s and `?` are recorded like any other return.
///
/// # Options
///
/// ## `timer = EXPR`
///
/// Records into the given timer instead of one of the function's own; no `name_timer()` is
/// generated. `EXPR` is evaluated at the start of every call, and `&(EXPR)` must coerce to
/// `&Sktimer`: a `static`, a reference, a field such as `self.timer`, an `Arc<Sktimer>`…
/// Several functions can share one timer:
///
/// ```
/// use skprocess::timethis;
/// use skprocess::timing::Sktimer;
///
/// static DB: Sktimer = Sktimer::new();
///
/// #[timethis(timer = DB)]
/// fn read() {}
///
/// #[timethis(timer = DB)]
/// fn write() {}
///
/// read();
/// write();
/// assert_eq!(DB.num_times(), 2);
///
/// struct Cache {
///     hits: Sktimer,
/// }
///
/// impl Cache {
///     #[timethis(timer = self.hits)]
///     fn get(&self, key: u32) -> Option<u32> {
///         Some(key)
///     }
/// }
///
/// let cache = Cache { hits: Sktimer::new() };
/// cache.get(1);
/// assert_eq!(cache.hits.num_times(), 1);
/// ```
///
/// `timer = self.field` borrows `self` for the whole call. That is fine in `&self` methods and in
/// `&mut self` methods that only touch other fields, but not in a method that also calls
/// `&mut self` methods or moves `self`. For those, keep the timer in an `Arc<Sktimer>` field
/// and write `timer = self.timer.clone()`: the clone lives for the call and borrows nothing.
///
/// ## `threshold = SECONDS`
///
/// Records only calls that took at least this long. A number literal of zero or more (`0.5`,
/// `2`); the default is 0, which records every call.
///
/// ```
/// use skprocess::timethis;
///
/// #[timethis(threshold = 0.1)]
/// fn maybe_slow() {}
///
/// maybe_slow(); // far under 100 ms: not recorded
/// assert_eq!(maybe_slow_timer().num_times(), 0);
/// ```
///
/// ## `max_times = N`
///
/// Keeps only the most recent `N` samples (an integer literal of at least 1) for the median and
/// percentiles; counts, totals, mean, min, max and variance still cover every call (see
/// `Sktimer::with_max_times`). With `timer = ...`, it calls `set_max_times(Some(N))` on that
/// timer once, on the function's first call.
///
/// ```
/// use skprocess::timethis;
///
/// #[timethis(max_times = 100)]
/// fn tick() {}
///
/// for _ in 0..1_000 {
///     tick();
/// }
/// assert_eq!(tick_timer().num_times(), 1_000);
/// assert_eq!(tick_timer().times().len(), 100);
/// ```
///
/// ## `crate = "path"`
///
/// The path to the `skprocess` crate, for crates that renamed the dependency or reach it through
/// a re-export. Every path in the generated code starts with it instead of `::skprocess`.
///
/// ```
/// # extern crate skprocess as sk;
/// // With `sk = { package = "skprocess-runtime", ... }` in Cargo.toml:
/// #[sk::timethis(crate = "sk")]
/// fn renamed() {}
/// # fn main() {
/// # renamed();
/// # assert_eq!(renamed_timer().num_times(), 1);
/// # }
/// ```
///
/// # Async functions
///
/// ```
/// use skprocess::timethis;
/// use skprocess::timing;
/// # fn block_on<F: std::future::Future>(future: F) -> F::Output {
/// #     struct Unpark(std::thread::Thread);
/// #     impl std::task::Wake for Unpark {
/// #         fn wake(self: std::sync::Arc<Self>) { self.0.unpark() }
/// #     }
/// #     let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
/// #     let mut cx = std::task::Context::from_waker(&waker);
/// #     let mut future = std::pin::pin!(future);
/// #     loop {
/// #         if let std::task::Poll::Ready(v) = future.as_mut().poll(&mut cx) { return v; }
/// #         std::thread::park();
/// #     }
/// # }
///
/// #[timethis]
/// async fn fetch(id: u32) -> u32 {
///     timing::sleep_async(0.01).await;
///     id
/// }
///
/// assert_eq!(block_on(fetch(7)), 7); // any executor
/// assert!(fetch_timer().most_recent().unwrap() >= 0.009);
/// ```
///
/// The returned future stays `Send` when it was. A plain `fn` returning `impl Future` is timed
/// as a sync function: only the creation of the future is measured.
///
/// # Stacking
///
/// Several `#[timethis]` attributes on one function record every call into each of their
/// timers, for example a shared timer and the function's own:
///
/// ```
/// use skprocess::timethis;
/// use skprocess::timing::Sktimer;
///
/// static ALL_CALLS: Sktimer = Sktimer::new();
///
/// #[timethis(timer = ALL_CALLS)]
/// #[timethis]
/// fn multiply(a: u64, b: u64) -> u64 {
///     a * b
/// }
///
/// multiply(6, 7);
/// assert_eq!((ALL_CALLS.num_times(), multiply_timer().num_times()), (1, 1));
/// ```
///
/// # Generated items
///
/// - Without `timer = ...`: `fn <name>_timer() -> &'static Sktimer`, next to the function, with
///   the function's visibility and `#[cfg]`s. It returns the function's own timer, a `static`
///   registered under `"<module path>::<name>"` in `skprocess::timing::global_timers()` (reset
///   them all with `skprocess::timing::clear_global_timers()`). For a method it is an associated
///   function: `Type::<name>_timer()`.
/// - The function itself, with the same attributes and signature and a timed body.
///
/// # Equivalent code without the macro
///
/// `#[timethis(threshold = 0.001)] fn parse(line: &str) -> usize { .. }` behaves like:
///
/// ```
/// use skprocess::timing::{Sktimer, TimeThis};
///
/// /// The timer of `parse`.
/// fn parse_timer() -> &'static Sktimer {
///     static TIMER: Sktimer = Sktimer::new();
///     // ... also registered for `global_timers()` ...
///     &TIMER
/// }
///
/// fn parse(line: &str) -> usize {
///     // Records on drop, unless the call panics or takes under the threshold.
///     let _timing = TimeThis::with(parse_timer()).threshold(0.001);
///     line.split(',').count()
/// }
/// # parse("a,b");
/// ```
///
/// and an `async fn` like:
///
/// ```
/// use skprocess::timing::{Sktimer, TimeThis};
///
/// fn fetch_timer() -> &'static Sktimer {
///     static TIMER: Sktimer = Sktimer::new();
///     &TIMER
/// }
///
/// async fn fetch(id: u32) -> u32 {
///     // Recorded when the body completes; nothing if the future is dropped first.
///     TimeThis::with(fetch_timer()).run_async(async move { id }).await
/// }
/// # fn block_on<F: std::future::Future>(future: F) -> F::Output {
/// #     struct Unpark(std::thread::Thread);
/// #     impl std::task::Wake for Unpark {
/// #         fn wake(self: std::sync::Arc<Self>) { self.0.unpark() }
/// #     }
/// #     let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
/// #     let mut cx = std::task::Context::from_waker(&waker);
/// #     let mut future = std::pin::pin!(future);
/// #     loop {
/// #         if let std::task::Poll::Ready(v) = future.as_mut().poll(&mut cx) { return v; }
/// #         std::thread::park();
/// #     }
/// # }
/// # assert_eq!(block_on(fetch(3)), 3);
/// ```
///
/// (The generated code uses hidden helpers that neither box the future nor go through
/// `TimeThis`, but records the same way.)
///
/// # Caveats
///
/// - **Trait impls and trait definitions**: the generated `<name>_timer()` would be an extra
///   associated function, which a trait impl cannot have. Pass `timer = ...` there.
/// - **Associated functions without `self`**: the macro sees one function, not the `impl`
///   around it, and recognizes a method by its receiver or by `Self` in its signature. An
///   associated function with neither (`fn helper(x: u8) -> u8` inside an `impl`) needs
///   `timer = ...`.
/// - In a generic `impl`, all instantiations share the method's one timer.
/// - `const fn` cannot be timed: it may run at compile time, where there is no clock.
///
/// # Compile errors
///
/// Unknown or repeated options, a negative or non-numeric `threshold`, a `max_times` that is
/// not a positive integer, a `crate` that is not a string holding a path, and any item that is
/// not a function with a body are reported at the offending tokens, all at once. A `timer`
/// expression of the wrong type is reported at the expression.
#[proc_macro_attribute]
pub fn timethis(args: TokenStream, input: TokenStream) -> TokenStream {
    timethis::expand(args.into(), input.into()).into()
}

/// Turns a struct and its impl block into a process type whose lifecycle runs in a child
/// process.
///
/// Put `#[skprocess]` on the struct (it derives serde's traits through skprocess's re-export and
/// holds the configuration keys) and on one inherent impl block (it finds the lifecycle methods
/// by name). Everything else in the impl block, and every other impl and trait impl of the type,
/// stays ordinary Rust and works in the child.
///
/// ```
/// use skprocess::prelude::*;
/// use std::time::Duration;
///
/// #[skprocess(runs = 3, lives = 2, timeouts(run = 1.5))]
/// struct Batches {
///     size: usize,
///     done: Vec<usize>,
/// }
///
/// #[skprocess]
/// impl Batches {
///     fn __config__(&self, config: &mut ProcessConfig) {
///         config.join_in = Some(Duration::from_secs(60));
///     }
///
///     fn __prerun__(&mut self, cx: &mut Context) {
///         println!("batch {} starts", cx.current_run());
///     }
///
///     fn __run__(&mut self) -> Result<(), String> {
///         self.done.push(self.size);
///         Ok(())
///     }
///
///     fn __result__(&mut self) -> usize {
///         self.done.iter().sum()
///     }
///
///     fn __error__(&mut self, error: ProcessError) -> usize {
///         eprintln!("giving up: {error}");
///         0
///     }
/// }
///
/// # fn main() -> Result<(), ProcessError> {
/// assert_eq!(Skprocess::new(Batches { size: 4, done: vec![] }).run()?, 12);
/// # Ok(())
/// # }
/// ```
///
/// # Lifecycle methods
///
/// | method | receiver | may take | returns |
/// |---|---|---|---|
/// | `__config__` | `&self` | `config: &mut ProcessConfig` (required) | nothing |
/// | `__prerun__`, `__run__` (required), `__postrun__`, `__onfinish__` | `&mut self` or `&self` | `cx: &mut Context` or `&Context` | nothing, or `Result<(), E>` |
/// | `__result__` | `&mut self` or `&self` | `cx` | the result `T`, or `Result<T, E>` |
/// | `__error__` | `&mut self` or `&self` | `cx`, and `error: ProcessError` or `&ProcessError` | `T` (becomes the result) or `Result<T, ProcessError>` (`Err` hands an error on) |
///
/// `E` is any error that converts into `Box<dyn Error + Send + Sync>` (`String`, `&str`,
/// `io::Error`, your own error types, `anyhow::Error`, ...); its message, with its sources,
/// reaches the parent. A return type whose last path segment is `Result` is treated as
/// fallible. `T` must cross a process boundary: `Serialize`, `Deserialize`, `Send`, `'static`.
///
/// # Async lifecycle methods
///
/// Every method but `__config__` may be an `async fn` (with skprocess's `tokio` feature),
/// in the same forms, mixed freely with sync ones. Its future runs on a tokio runtime inside
/// the process that runs the lifecycle (`tokio::spawn`, tokio's timers and sockets work; spawned
/// tasks keep running between sections); `cx.tell_async`, `cx.listen_async` and `cx.stopped()`
/// wait without blocking it. A section timeout drops the future at its first await point past
/// the deadline and rolls the state back to the section's start, as for a sync section; a
/// section that never awaits is abandoned like a sync one, shortly after its deadline.
///
/// ```ignore
/// // With skprocess's `tokio` feature and tokio as a dependency (these forms are tested in
/// // the runtime's `tests/async_process.rs`).
/// use skprocess::prelude::*;
///
/// #[skprocess(runs = 3, timeouts(run = 2.0))]
/// struct Poller {
///     seen: Vec<String>,
/// }
///
/// #[skprocess]
/// impl Poller {
///     async fn __run__(&mut self, cx: &mut Context) -> Result<(), String> {
///         let job: String = cx.listen_async().await.map_err(|e| e.to_string())?;
///         tokio::time::sleep(std::time::Duration::from_millis(10)).await;
///         cx.tell_async(format!("done {job}")).await.map_err(|e| e.to_string())?;
///         self.seen.push(job);
///         Ok(())
///     }
///
///     async fn __result__(&mut self) -> Vec<String> {
///         std::mem::take(&mut self.seen)
///     }
/// }
/// ```
///
/// # Struct options
///
/// - `runs = 10`: the number of iterations (default: until stopped or `join_in`).
/// - `join_in = 2.5`: a wall-clock limit for the whole process, in seconds.
/// - `lives = 3`: total attempts for a failing iteration (default 1).
/// - `timeouts(prerun = 1, run = 0.3, postrun = .., onfinish = .., result = .., error = ..)`:
///   per-section limits in seconds.
/// - `timer_window = 1000`: samples each section timer keeps for percentiles.
/// - `name = "my-app::worker"`: the registered name (default: module path, type name, file,
///   line and column). Not empty, and not starting with `skprocess::`: those names are reserved
///   for the runtime's own entries.
/// - `crate = "path"`: where skprocess is, for renamed dependencies (also accepted on the impl).
///
/// `__config__` runs after these, and the handle's
/// [`configure`](https://docs.rs/skprocess-runtime/latest/skprocess/struct.Skprocess.html)
/// after that.
///
/// # Generated items
///
/// - on the struct: `#[derive(Serialize, Deserialize)]` (unless the struct derives them itself)
///   and a hidden implementation holding the configuration keys;
/// - on the impl block: the block itself, unchanged; an implementation of `skprocess::Lifecycle`
///   that calls the lifecycle methods; for a type without generic parameters, its entry in the
///   registry and an implementation of `skprocess::Registered`. Generic types are registered per
///   instantiation with `skprocess::register!(MyType<u32>);`, once, in any crate of the program
///   (also one that instantiates a library's generic type with its own types). A type without
///   generic parameters needs no `register!`: a second registration makes `Skprocess::new`
///   ambiguous for it.
///
/// # Equivalent code without the macro
///
/// ```
/// use skprocess::{Context, Failure, Lifecycle, ProcessConfig, Registered, ProcessEntry};
/// use skprocess::serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// #[serde(crate = "skprocess::serde")]
/// struct Counter {
///     count: u32,
/// }
///
/// impl Lifecycle for Counter {
///     type Output = u32;
///
///     fn configure(&self, config: &mut ProcessConfig) {
///         config.runs = Some(100);
///     }
///
///     fn run(&mut self, _cx: &mut Context) -> Result<(), Failure> {
///         self.count += 1;
///         Ok(())
///     }
///
///     fn result(&mut self, _cx: &mut Context) -> Result<u32, Failure> {
///         Ok(self.count)
///     }
/// }
///
/// skprocess::register!(Counter);
/// ```
#[proc_macro_attribute]
pub fn skprocess(args: TokenStream, input: TokenStream) -> TokenStream {
    process::expand(args.into(), input.into()).into()
}

/// Makes a type's methods callable from every process through a
/// [`Share`](https://docs.rs/skprocess-runtime/latest/skprocess/share/struct.Share.html).
///
/// Put `#[shared]` on one inherent impl block of a type that crosses processes (serde both
/// ways, `Send + Sync + 'static`). Each method with a `&self` or `&mut self` receiver gets a
/// twin on the generated proxy, with the same name and arguments, returning
/// `Result<Output, ShareError>`; the handle `Shared<Type>` dereferences to that proxy.
///
/// ```
/// use skprocess::share::{Share, ShareError, shared};
/// use skprocess::serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Default)]
/// #[serde(crate = "skprocess::serde")]
/// struct Stats {
///     processed: u64,
///     errors: u64,
/// }
///
/// #[shared]
/// impl Stats {
///     /// Counts one item.
///     fn record(&mut self, ok: bool) {
///         self.processed += 1;
///         if !ok {
///             self.errors += 1;
///         }
///     }
///
///     fn summary(&self) -> (u64, u64) {
///         (self.processed, self.errors)
///     }
///
///     fn check(&self, limit: u64) -> Result<u64, String> {
///         if self.errors > limit {
///             Err(format!("{} errors", self.errors))
///         } else {
///             Ok(self.errors)
///         }
///     }
///
///     // Constructors and other functions without `self` stay on the type.
///     fn empty() -> Stats {
///         Stats::default()
///     }
/// }
///
/// # fn main() -> Result<(), ShareError> {
/// let share = Share::new()?;
/// let stats = share.insert("stats", Stats::empty())?;
/// stats.record(true)?;
/// stats.record(false)?;
/// assert_eq!(stats.summary()?, (2, 1));
/// assert_eq!(stats.check(0)?, Err("1 errors".to_owned())); // the method's own error
/// # Ok(())
/// # }
/// ```
///
/// # Receivers
///
/// Every call runs on the coordinator, on the one object the Share holds, never on a copy.
/// The receiver only says which calls may overlap: `&self` methods of one object run
/// concurrently with each other, a `&mut self` method runs alone.
///
/// # Options
///
/// - `crate = "path"`: where skprocess is, for renamed dependencies.
/// - `#[shared(skip)]` on a method: leave it off the proxy (it stays an ordinary method).
///
/// # Generated items
///
/// Next to the impl block (which is kept unchanged): `TypeProxy`, the proxy, with the
/// methods' visibility and docs; a hidden request enum `__TypeSharedCall`; implementations of
/// `skprocess::share::Shareable` and of a hidden dispatch trait; and a registry entry that lets
/// processes other than the owner insert values of the type.
///
/// # Compile errors
///
/// Reported at the offending tokens, all at once: a receiver that takes `self` by value, a
/// generic or `async` or `unsafe` method, an argument or return type holding a reference, a
/// lifetime, `impl Trait` or a trait object, an argument or return type that cannot cross
/// processes, a method named like a method of `Shared<T>` (`within`, `share`, `entry_name`), a
/// type with lifetime parameters, a trait impl, and anything that is not an impl block.
///
/// # Generic types
///
/// `#[shared] impl<T: Bound> Bag<T> { .. }` works: the generated items take the impl's
/// parameters and bounds, which must make the type cross processes (`T: Transferable + Sync`
/// usually). A generic type has no registry entry, so only its owner can insert a value of it.
#[proc_macro_attribute]
pub fn shared(args: TokenStream, input: TokenStream) -> TokenStream {
    shared::expand(args.into(), input.into()).into()
}

/// Registers a function as a start hook: it runs in every child process and pool worker,
/// before any user code there.
///
/// A child is this same executable, re-executed, and it is caught before `main`: what `main`
/// sets up (a logger, a configuration in a global, a connection pool) is not there in a child.
/// A start hook is where that set-up goes for children.
///
/// ```
/// use skprocess::prelude::*;
/// use std::sync::OnceLock;
///
/// static CONFIG: OnceLock<String> = OnceLock::new();
///
/// #[child_init]
/// fn load_config() -> Result<(), std::io::Error> {
///     // Read a file, the environment, ...; an `Err` stops the child.
///     let _ = CONFIG.set("mode=fast".to_owned());
///     Ok(())
/// }
///
/// #[skprocess(runs = 1)]
/// struct Report {}
///
/// #[skprocess]
/// impl Report {
///     fn __run__(&mut self) {}
///
///     fn __result__(&mut self) -> String {
///         CONFIG.get().cloned().unwrap_or_default() // set by the hook, in the child
///     }
/// }
///
/// fn main() -> Result<(), ProcessError> {
///     load_config().expect("the parent's configuration"); // hooks never run in the parent
///     assert_eq!(Skprocess::new(Report {}).run()?, "mode=fast");
///     Ok(())
/// }
/// ```
///
/// # The function
///
/// A plain function, without arguments, returning `()` or `Result<(), E>` where `E` converts
/// into `Box<dyn Error + Send + Sync>` (`String`, `&str`, `io::Error`, your own error types,
/// `anyhow::Error`, ...). Any visibility, anywhere (also inside another function). Register each
/// function once: a function registered twice runs twice.
///
/// # When hooks run
///
/// Once in each child process and each pool worker, on the thread that then runs its work,
/// after the child authenticated with its parent and received its start message, and before
/// anything of the user runs there: before the process value is decoded (its `Deserialize`
/// may be yours), before `__prerun__` or any other lifecycle method, before a pool worker
/// takes its first task. With the `log` or `tracing` feature, records the hooks emit are
/// forwarded to the parent already.
///
/// **Not in the parent**: call the same functions from `main` if the parent needs them
/// ([`child_init_hooks`](https://docs.rs/skprocess-runtime/latest/skprocess/fn.child_init_hooks.html)
/// lists them).
///
/// Hooks run in order of their `order` (lower first, default 0), then of their names (module
/// path and function name), then of where they were registered.
///
/// # When a hook fails
///
/// A hook that returns `Err` or panics stops the child: the hooks after it do not run, nor does
/// any user code, and the parent gets `ProcessError::ChildInit { hook, failure }`, naming the
/// hook with the original message (and the panic's location). For a process, `wait`, `result`
/// and `run` report it. For a pool, a worker whose hook failed is not replaced (the next one
/// would fail the same way): once no worker is left, every call waiting on the pool, and every
/// later call, fails with `PoolError::Spawn(ProcessError::ChildInit { .. })`.
///
/// A hook that never returns keeps its child from starting; the deadlines of `run`, `result`
/// and pool calls (`.timeout(..)`) still apply.
///
/// # Options
///
/// - `order = N`: an `i32` literal; lower runs first. `#[child_init(order = -10)]` for a hook
///   the others rely on.
/// - `crate = "path"`: where skprocess is, for renamed dependencies.
///
/// # Generated items
///
/// The function, unchanged, and a hidden registration in an anonymous `const` (nothing is
/// added to your namespace).
///
/// # Equivalent code without the macro
///
/// `skprocess::register_child_init!(load_config, order = 0);` registers a function that
/// cannot carry the attribute (one from another crate, say).
///
/// # Compile errors
///
/// Reported at the offending tokens, all at once: an item that is not a function, arguments,
/// generics, `async`, `unsafe fn`, an unknown or repeated option, an `order` that is not an
/// `i32` literal, and a return type other than `()` or `Result<(), E>` (at the return type).
#[proc_macro_attribute]
pub fn child_init(args: TokenStream, input: TokenStream) -> TokenStream {
    child_init::expand(args.into(), input.into()).into()
}

/// Opens a process struct's connection fields again in the process that runs its lifecycle,
/// with the credentials given here.
///
/// Connection fields are the connection types of `skprocess::reconnect` (`Postgres`, `Redis`,
/// `Sqlite`, or `Conn<P>` for your own `P: Connector`). They cross processes as their
/// parameters, never their secrets. In the child (or pool worker, or `InProcess` run), before
/// the first lifecycle method, every such field of the struct is opened, with:
///
/// 1. the credential given for that field by name, else
/// 2. the `"*"` credential given for its type, else
/// 3. the environment variable the connection names (`Conn::secret_from_env`), else
/// 4. no secret.
///
/// A field that cannot be opened ends the process with `ProcessError::Connect`, naming the
/// field, before any lifecycle method ran (`__error__` sees it).
///
/// ```ignore
/// use skprocess::prelude::*;
/// use skprocess::autoreconnect;
/// use skprocess::reconnect::{Postgres, Redis};
///
/// #[skprocess]
/// #[autoreconnect(
///     start_threads = false,
///     Postgres = { "*": "default_pass", analytics_db: env("ANALYTICS_PASSWORD") },
///     Redis = { "*": "redis_secret" },
/// )]
/// struct MultiDbWorker {
///     main_db: Postgres,      // "default_pass"
///     analytics_db: Postgres, // $ANALYTICS_PASSWORD, read in the child when it connects
///     cache: Redis,           // "redis_secret"
/// }
/// ```
///
/// (The example needs the `postgres` and `redis` features; `examples/autoreconnect_multi.rs`
/// runs it against real servers.)
///
/// # Syntax
///
/// - `Type = { key: secret, ... }`: `Type` is the connection type as written in the fields
///   (a path; a type that is not a connection type is an error at it). A key is `"*"` (every
///   field of that type without its own entry) or a field's name (it must exist and hold that
///   type). A secret is a string literal, or `env("VAR")`: read from the environment when the
///   connection opens, so no secret needs to be in the source.
/// - `start_threads = false` is accepted, as the Python original writes it; threads never
///   cross processes here, so `true` is an error.
///
/// The attribute goes with `#[skprocess]` on the struct, above or below it. Fields are opened
/// in declaration order. Connections elsewhere (inside collections, pool items, function
/// arguments) open lazily on first use instead, with the secret from their environment
/// variable.
#[proc_macro_attribute]
pub fn autoreconnect(args: TokenStream, input: TokenStream) -> TokenStream {
    autoreconnect::expand(args.into(), input.into()).into()
}
