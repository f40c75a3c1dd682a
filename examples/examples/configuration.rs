//! Configuring a process three ways, applied in this order: attribute keys on the struct, the
//! type's own `__config__`, and the handle's `configure`. A configuration is checked before
//! anything is spawned, and it is fixed once the process starts.
//!
//! Run: `cargo run -p examples --example configuration`

// ANCHOR: all
use std::time::Duration;

use skprocess::prelude::*;

// ANCHOR: attributes
/// Reads a sensor once per run. The attribute keys are the type's defaults.
#[skprocess(runs = 10, lives = 2, timeouts(run = 0.5), timer_window = 100)]
struct Sensor {
    readings: Vec<u32>,
    strict: bool,
}
// ANCHOR_END: attributes

#[skprocess]
impl Sensor {
    fn new(strict: bool) -> Self {
        Sensor {
            readings: Vec::new(),
            strict,
        }
    }

    // ANCHOR: config_hook
    // runs in the parent, in `Skprocess::new`, after the attribute keys: it sees the value
    fn __config__(&self, config: &mut ProcessConfig) {
        if self.strict {
            config.timeouts.run = Some(Duration::from_millis(100));
        }
    }
    // ANCHOR_END: config_hook

    fn __run__(&mut self, cx: &mut Context) {
        self.readings.push(cx.current_run() as u32 * 10);
    }

    fn __result__(&mut self) -> Vec<u32> {
        self.readings.clone()
    }
}

fn main() -> Result<(), ProcessError> {
    // ANCHOR: configure
    let process = Skprocess::new(Sensor::new(true));
    let config = process.config();
    println!(
        "from the type: runs {:?}, lives {}, run timeout {:?}, timer window {}",
        config.runs, config.lives, config.timeouts.run, config.timer_window
    );

    // the handle has the last word, until the process starts
    process.configure(|config| config.runs = Some(3))?;
    println!("after configure: runs {:?}", process.config().runs);
    println!("readings: {:?}", process.run()?);
    // ANCHOR_END: configure

    // ANCHOR: after_start
    // a process runs once: its configuration is fixed from `start()` on
    if let Err(error) = process.configure(|config| config.runs = Some(100)) {
        println!("configure after start: {error}");
    }

    // a configuration is checked before anything is spawned
    let broken = Skprocess::new(Sensor::new(false));
    broken.configure(|config| config.lives = 0)?;
    if let Err(error) = broken.start() {
        println!("{error} (pid: {:?})", broken.pid());
    }
    // ANCHOR_END: after_start
    Ok(())
}
// ANCHOR_END: all
