//! A tour of the pool beyond the ported examples: `PoolBuilder`, closures and data in the items,
//! an endless `imap`, per-item errors and a deadline in `imap`, a crashing item, a pool shared by
//! threads, `close()` and `terminate()`.
//!
//! Run: `cargo run -p examples --example pool_tour`

use std::time::Duration;

use skprocess::pool::{Pool, PoolBuilder, PoolError, TaskError};

// ANCHOR: tasks
/// Squares a number.
fn square(x: u64) -> u64 {
    x * x
}

/// Parses a number: a task that can fail, for `fallible()`.
fn parse(text: String) -> Result<i64, std::num::ParseIntError> {
    text.trim().parse()
}

/// Sleeps for `ms` milliseconds, then returns it.
fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Aborts its worker process on 13.
fn unlucky(x: u64) -> u64 {
    if x == 13 {
        std::process::abort();
    }
    x
}
// ANCHOR_END: tasks

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // ANCHOR: build
    let pool = PoolBuilder::new().workers(2).build()?;
    println!(
        "{} workers, {} live pids",
        pool.workers(),
        pool.pids().len()
    );
    // ANCHOR_END: build

    // ANCHOR: closures
    // a closure that captures nothing is a task, like a `fn` item
    let words = ["pool", "of", "workers"].map(String::from);
    let lengths = pool.map(|word: String| word.len(), words)?;
    println!("lengths: {lengths:?}");

    // data the task needs travels in the items, here as a tuple unpacked by star()
    let factor = 3;
    let scaled = pool
        .star()
        .map(|x: u64, by: u64| x * by, (1..=4).map(|x| (x, factor)))?;
    println!("scaled: {scaled:?}");
    // ANCHOR_END: closures

    // ANCHOR: endless
    // the input is read only as results are taken: an endless one is fine
    let first: Vec<u64> = pool
        .imap(square, 1u64..)
        .take(5)
        .collect::<Result<_, _>>()?;
    println!("first squares: {first:?}");
    // ANCHOR_END: endless

    // ANCHOR: imap_errors
    // imap reports a failed item in its place and goes on with the next
    for result in pool
        .fallible()
        .imap(parse, ["7", "seven", "-2"].map(String::from))
    {
        match result {
            Ok(n) => println!("parsed {n}"),
            Err(e) => println!("skipped: {}", skprocess::ErrorChain(&e)),
        }
    }
    // ANCHOR_END: imap_errors

    // ANCHOR: imap_deadline
    // with a deadline, imap yields what arrived in time, then the timeout error
    for result in pool
        .timeout(Duration::from_millis(300))
        .imap(nap, [10, 20, 60_000, 30])
    {
        match result {
            Ok(ms) => println!("napped {ms} ms"),
            Err(e @ PoolError::Timeout { .. }) => println!("deadline: {e}"),
            Err(e) => return Err(e.into()),
        }
    }
    // ANCHOR_END: imap_deadline

    // ANCHOR: crash
    // an item that kills its worker fails the call; the worker is replaced
    match pool.map(unlucky, 10..16) {
        Err(PoolError::Task {
            index,
            error: TaskError::Crashed { exit, .. },
        }) => println!("item {index} crashed its worker: {exit}"),
        other => println!("unexpected: {other:?}"),
    }
    println!("after the crash: {:?}", pool.map(square, 1..=3)?);
    // ANCHOR_END: crash

    // ANCHOR: threads
    // threads share one pool: by reference in a scope, or through a clone
    let (evens, odds) = std::thread::scope(|s| {
        let evens = s.spawn(|| pool.map(square, (0..10).step_by(2)));
        let odds = s.spawn(|| pool.map(square, (1..10).step_by(2)));
        (evens.join(), odds.join())
    });
    println!("evens: {:?}", evens.expect("no panic")?);
    println!("odds: {:?}", odds.expect("no panic")?);
    let clone = pool.clone();
    let summed =
        std::thread::spawn(move || clone.map(square, 1..=10).map(|v| v.iter().sum::<u64>()));
    println!("sum of squares: {}", summed.join().expect("no panic")?);
    // ANCHOR_END: threads

    // ANCHOR: close
    // close() waits for calls in progress, then ends the workers; later calls fail
    pool.close();
    match pool.map(square, [1]) {
        Err(e @ PoolError::Closed) => println!("after close(): {e}"),
        other => println!("unexpected: {other:?}"),
    }
    // ANCHOR_END: close

    // ANCHOR: terminate
    // terminate() kills the workers now; calls in progress fail with Closed
    let pool = Pool::new(1)?;
    let call = pool.background().map(nap, [60_000]);
    std::thread::sleep(Duration::from_millis(100));
    pool.terminate();
    match call.result() {
        Err(e @ PoolError::Closed) => println!("after terminate(): {e}"),
        other => println!("unexpected: {other:?}"),
    }
    // ANCHOR_END: terminate
    Ok(())
}
