//! Single tasks: `submit` returns a handle at once; `as_completed` yields handles as their
//! tasks finish; a handle can wait a while without side effects, be cancelled, or be awaited.
//!
//! Run: `cargo run -p examples --example pool_submit`

use std::time::Duration;

use skprocess::pool::{Pool, PoolError, as_completed};

/// Sleeps `ms` milliseconds, then returns them.
fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn add(a: u64, b: u64) -> u64 {
    a + b
}

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Pool::new(2)?;

    // One task, one handle; `result()` waits for it.
    let sum = pool.star().submit(add, (2, 3));
    println!("2 + 3 = {}", sum.result()?);

    // As they complete: the short nap comes out before the long one submitted first.
    let handles = vec![pool.submit(nap, 600), pool.submit(nap, 10)];
    for (index, handle) in as_completed(handles) {
        println!("task {index} done: {} ms", handle.result()?);
    }

    // A bounded wait that changes nothing: not yet, the handle comes back.
    let mut slow = pool.submit(nap, 300);
    let value = loop {
        match slow.result_timeout(Duration::from_millis(100)) {
            Ok(result) => break result?,
            Err(pending) => {
                println!("not yet");
                slow = pending;
            }
        }
    };
    println!("slow task: {value} ms");

    // A deadline for one task: its worker is killed when it passes.
    let stuck = pool.timeout(Duration::from_millis(200)).submit(nap, 60_000);
    match stuck.result() {
        Err(PoolError::Timeout { .. }) => println!("the stuck task timed out"),
        other => println!("unexpected: {other:?}"),
    }

    // Cancel: a running task's worker is killed and replaced.
    let unwanted = pool.submit(nap, 60_000);
    std::thread::sleep(Duration::from_millis(100));
    println!("cancelled: {}", unwanted.cancel());
    println!(
        "its result: {:?}",
        unwanted.result().map_err(|e| e.to_string())
    );

    // A handle is a future too, for any executor.
    let value = futures::executor::block_on(async { pool.submit(nap, 5).await })?;
    println!("awaited: {value} ms");
    Ok(())
}
// ANCHOR_END: main
