//! Example 4, "Indefinite Process with `stop()`": a process that runs until the parent stops
//! it, then shuts down gracefully. (The Python original crashes here: it loses private helper
//! methods in the child. Here a helper is just a method.)
//!
//! Run: `cargo run -p examples --example indefinite_stop`

// ANCHOR: all
use sha2::{Digest, Sha256};
use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};
use skprocess::timing;

/// One recorded event.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Event {
    run: usize,
    time: f64,
    pid: u32,
    memory_mb: f64,
    hash: String,
}

/// A process that runs indefinitely until stopped (`runs` is `None` by default).
#[skprocess]
struct MonitorProcess {
    events: Vec<Event>,
}

#[skprocess]
impl MonitorProcess {
    fn new() -> Self {
        MonitorProcess { events: Vec::new() }
    }

    // ANCHOR: run
    // record a timestamp and system info each iteration
    fn __run__(&mut self, cx: &mut Context) {
        let run = cx.current_run();
        let pid = std::process::id();
        let digest = hex(&Sha256::digest(format!("{run}:{pid}").as_bytes()));
        self.events.push(Event {
            run,
            time: timing::time(),
            pid,
            memory_mb: self.memory_usage(),
            hash: digest[..12].to_owned(),
        });
    }

    /// Current peak memory of this process in MB (a private helper: it works in the child).
    fn memory_usage(&self) -> f64 {
        // SAFETY: getrusage fills the struct we pass; a zeroed rusage is a valid starting point.
        let usage = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_SELF, &mut usage);
            usage
        };
        usage.ru_maxrss as f64 / 1024.0
    }
    // ANCHOR_END: run

    // ANCHOR: onfinish
    // called when the stop signal arrives
    fn __onfinish__(&mut self) {
        println!("Monitor shutting down after {} events", self.events.len());
    }
    // ANCHOR_END: onfinish

    fn __result__(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    // start the monitor
    let process = Skprocess::new(MonitorProcess::new());
    process.start()?;

    // do some work while it collects data
    let mut data = b"monitor_work".to_vec();
    for _ in 0..2000 {
        data = Sha256::digest(&data).to_vec();
    }

    // signal a graceful stop
    timing::sleep(0.05);
    process.stop();

    // wait for it to finish
    process.wait()?;

    // get the results
    let events = process.result()?;
    println!("Captured {} events", events.len());
    Ok(())
}
// ANCHOR_END: main
// ANCHOR_END: all
