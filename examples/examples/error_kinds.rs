//! What reaches the parent when a process fails: an error a hook returned (with its sources), a
//! panic (with its location), and an error that `__error__` hands on after a last word.
//!
//! Run: `cargo run -p examples --example error_kinds`

// ANCHOR: all
use std::fmt;

use skprocess::prelude::*;

// ANCHOR: returned
/// An error of our own, with the I/O error that caused it as its source.
#[derive(Debug)]
struct ConfigError {
    path: String,
    source: std::io::Error,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot read {}", self.path)
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Reads its settings file in its first run.
#[skprocess(runs = 1)]
struct LoadsSettings {
    path: String,
}

#[skprocess]
impl LoadsSettings {
    fn __run__(&mut self) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(&self.path).map_err(|source| ConfigError {
            path: self.path.clone(),
            source,
        })?;
        println!("[child] settings: {text}");
        Ok(())
    }
}
// ANCHOR_END: returned

// ANCHOR: panics
/// Divides 100 by each divisor, one per run.
#[skprocess(runs = 3)]
struct Divides {
    divisors: Vec<u32>,
    total: u32,
}

#[skprocess]
impl Divides {
    fn __run__(&mut self, cx: &mut Context) {
        let divisor = self.divisors[cx.current_run()];
        self.total += 100 / divisor; // panics on run 1: the divisor is 0
    }

    fn __result__(&mut self) -> u32 {
        self.total
    }
}
// ANCHOR_END: panics

// ANCHOR: handed_on
/// Fails, and has a last word for the parent before handing the error on.
#[skprocess(runs = 1)]
struct Uploads;

#[skprocess]
impl Uploads {
    fn __run__(&mut self) -> Result<(), String> {
        Err("the server answered 503".into())
    }

    fn __result__(&mut self) -> u32 {
        200
    }

    fn __error__(&mut self, cx: &mut Context, error: ProcessError) -> Result<u32, ProcessError> {
        let _ = cx.tell(format!("rolled back after: {error}"));
        Err(error) // hand it on: the parent gets this error, not a value
    }
}
// ANCHOR_END: handed_on

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // ANCHOR: match_section
    let process = Skprocess::new(LoadsSettings {
        path: "/nonexistent/settings.toml".into(),
    });
    match process.run() {
        Err(ProcessError::Section {
            section,
            current_run,
            failure,
        }) => println!(
            "{section} failed on run {current_run}: {}",
            failure.message()
        ),
        other => println!("unexpected: {other:?}"),
    }
    // ANCHOR_END: match_section

    // ANCHOR: match_panic
    let process = Skprocess::new(Divides {
        divisors: vec![4, 0, 5],
        total: 0,
    });
    let error = process.run().unwrap_err();
    if let Some(failure) = error.failure() {
        println!(
            "panic: {}, message {:?}, in {:?} on run {:?}",
            failure.is_panic(),
            failure.message(),
            error.section(),
            error.current_run()
        );
        println!(
            "at {}",
            failure.panic_location().unwrap_or("an unknown place")
        );
    }
    // ANCHOR_END: match_panic

    // ANCHOR: handed_on_main
    let process = Skprocess::new(Uploads);
    println!("run(): {}", process.run().unwrap_err());
    // the child has ended, and its last message is still there to read
    println!("its last word: {}", process.listen::<String>()?);
    // ANCHOR_END: handed_on_main
    Ok(())
}
// ANCHOR_END: all
