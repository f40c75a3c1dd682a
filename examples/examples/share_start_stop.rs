//! Example 28, "`Share.start()` and `Share.stop()` control": a Share created stopped refuses
//! calls; once started it works; its state survives a stop and a restart.
//!
//! Run: `cargo run -p examples --example share_start_stop`

use skprocess::prelude::*;

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    // create a Share without starting it
    let share = Share::stopped()?;

    // the Share is not running: calls fail with a typed error
    if let Err(err) = share.insert("counter", 0_i64) {
        println!("warning: {err}");
    }

    // explicitly start
    share.start()?;
    println!("Running: {}", share.is_running());

    // normal operations
    share.insert("counter", 100_i64)?;

    // stop to free resources
    share.stop()?;
    println!("Running: {}", share.is_running());

    // can restart: the state is still there
    share.start()?;
    println!("Counter: {}", share.get::<i64>("counter")?.load()?);
    share.stop()?;
    Ok(())
}
// ANCHOR_END: main
