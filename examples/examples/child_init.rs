//! Start hooks: `#[child_init]` functions run in every child process and pool worker before any
//! user code, so the globals `main` sets up are there in children too (`main` never runs in a
//! child). A failing hook stops the child with an error that names it.
//!
//! Run: `cargo run -p examples --example child_init`

// ANCHOR: all
use std::sync::OnceLock;

use skprocess::pool::Pool;
use skprocess::prelude::*;

// ANCHOR: hook
/// The application's settings: a global, as many programs keep them.
static SETTINGS: OnceLock<Settings> = OnceLock::new();

#[derive(Debug)]
struct Settings {
    greeting: String,
    scale: u64,
}

/// Loads the settings. `main` calls it; `#[child_init]` makes every child call it too.
#[child_init]
fn load_settings() -> Result<(), String> {
    let scale = std::env::var("APP_SCALE").unwrap_or_else(|_| "10".into());
    let scale = scale
        .parse()
        .map_err(|_| format!("APP_SCALE is not a number: {scale:?}"))?;
    SETTINGS
        .set(Settings {
            greeting: "hello from".into(),
            scale,
        })
        .map_err(|_| "the settings were loaded twice".to_owned())
}

fn settings() -> &'static Settings {
    SETTINGS.get().expect("load_settings ran first")
}
// ANCHOR_END: hook

// ANCHOR: users
#[skprocess(runs = 1)]
struct Greeter {}

#[skprocess]
impl Greeter {
    fn __run__(&mut self) {}

    fn __result__(&mut self) -> String {
        format!("{} process {}", settings().greeting, std::process::id())
    }
}

/// A pool task: the worker ran the hook before its first task.
fn scaled(x: u64) -> u64 {
    x * settings().scale
}
// ANCHOR_END: users

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Hooks never run in the parent: call the function here if the parent needs it too.
    load_settings()?;
    println!("hooks: {:?}", skprocess::child_init_hooks());

    let greeting = Skprocess::new(Greeter {}).run()?;
    println!("{}", greeting.split(" process").next().unwrap_or_default());

    let pool = Pool::new(2)?;
    println!("scaled: {:?}", pool.map(scaled, [1, 2, 3])?);
    pool.close();
    Ok(())
}
// ANCHOR_END: main
// ANCHOR_END: all
