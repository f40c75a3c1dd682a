//! A tour of skprocess: a process in a child, lives, a section timeout, messages both ways, a
//! crash reported as a typed error, a pool of worker processes, a Share that every process
//! calls, the timers every process fills, and a graceful Ctrl+C.
//!
//! Run: `cargo run --release -p examples --example demo`

// ANCHOR: all
use std::time::{Duration, Instant};

use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};

// ANCHOR: counter
/// Counts its iterations, in a child process.
#[skprocess(runs = 100)]
struct Counter {
    count: u32,
}

#[skprocess]
impl Counter {
    fn __run__(&mut self) {
        self.count += 1;
    }

    fn __result__(&mut self) -> (u32, u32) {
        (self.count, std::process::id())
    }
}
// ANCHOR_END: counter

/// Fails its second run twice, then succeeds: three lives are enough.
#[skprocess(runs = 3, lives = 3)]
struct Flaky {
    failures_left: u32,
    attempts: u32,
}

#[skprocess]
impl Flaky {
    fn __prerun__(&mut self) {
        self.attempts += 1;
    }

    fn __run__(&mut self, cx: &mut Context) -> Result<(), String> {
        if cx.current_run() == 1 && self.failures_left > 0 {
            self.failures_left -= 1;
            return Err(format!("flaky failure, {} to go", self.failures_left));
        }
        Ok(())
    }

    fn __result__(&mut self) -> u32 {
        self.attempts
    }
}

/// Its second run overruns a 0.3 s timeout; `__error__` turns that into a report.
#[skprocess(runs = 3, timeouts(run = 0.3))]
struct Overrun {
    completed: u32,
}

#[skprocess]
impl Overrun {
    fn __run__(&mut self, cx: &mut Context) {
        if cx.current_run() == 1 {
            std::thread::sleep(Duration::from_secs(30));
        }
        self.completed += 1;
    }

    fn __error__(&mut self, error: &ProcessError) -> String {
        format!("{error}; {} runs completed before it", self.completed)
    }

    fn __result__(&mut self) -> String {
        "no timeout".into()
    }
}

// ANCHOR: doubler
/// What the parent asks the doubler.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
enum Request {
    Double(u64),
    Done,
}

/// Answers requests until told it is done.
#[skprocess]
struct Doubler {
    answered: u32,
}

#[skprocess]
impl Doubler {
    fn __run__(
        &mut self,
        cx: &mut Context,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        match cx.listen::<Request>()? {
            Request::Double(n) => {
                cx.tell(n * 2)?;
                self.answered += 1;
            }
            Request::Done => cx.stop(),
        }
        Ok(())
    }

    fn __result__(&mut self) -> u32 {
        self.answered
    }
}
// ANCHOR_END: doubler

/// A pool task: any `fn` item (or closure that captures nothing).
fn collatz_steps(mut n: u64) -> u32 {
    let mut steps = 0;
    while n != 1 {
        n = if n.is_multiple_of(2) {
            n / 2
        } else {
            3 * n + 1
        };
        steps += 1;
    }
    steps
}

// ANCHOR: crasher
/// Dies from an abort in its first run.
#[skprocess(runs = 1)]
struct Crasher;

#[skprocess]
impl Crasher {
    fn __run__(&mut self) {
        std::process::abort();
    }
}
// ANCHOR_END: crasher

/// Ticks until stopped; says so when it finishes.
#[skprocess]
struct Ticker {
    ticks: u64,
}

#[skprocess]
impl Ticker {
    fn __run__(&mut self) {
        std::thread::sleep(Duration::from_millis(10));
        self.ticks += 1;
    }

    fn __onfinish__(&mut self) {
        println!("[ticker] __onfinish__ after {} ticks", self.ticks);
    }

    fn __result__(&mut self) -> u64 {
        self.ticks
    }
}

// ANCHOR: share
/// Word counts kept by a Share: every process adds to the same counts.
#[derive(Serialize, Deserialize, Default)]
#[serde(crate = "skprocess::serde")]
struct WordCount {
    counts: std::collections::BTreeMap<String, u64>,
}

#[shared]
impl WordCount {
    fn add(&mut self, words: Vec<String>) -> usize {
        for word in words {
            *self.counts.entry(word).or_default() += 1;
        }
        self.counts.len()
    }

    fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The most common word (the first in alphabetical order among equals).
    fn top(&self) -> Option<(String, u64)> {
        self.counts
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(word, &n)| (word.clone(), n))
    }
}

/// A pool task: counts one line's words into the Share, and the line itself into a counter in
/// shared memory.
fn count_line(share: Share, line: String) -> Result<usize, ShareError> {
    let words = line
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect();
    share.get::<u64>("lines")?.fetch_add(1)?;
    share.get::<WordCount>("words")?.add(words)
}
// ANCHOR_END: share

/// A pool task that takes a while.
fn slow_square(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(20));
    x * x
}

/// A pool worker's state: a table built once per worker (think of a model or a connection).
struct Table {
    weights: Vec<u64>,
}

fn load_table() -> Table {
    Table {
        weights: (0..256).map(|i| i % 7).collect(),
    }
}

fn score(table: &mut Table, x: u64) -> u64 {
    table.weights[(x % 256) as usize]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("== a process: 100 iterations in a child");
    let started = Instant::now();
    let counter = Skprocess::new(Counter { count: 0 });
    let (count, child_pid) = counter.run()?;
    println!(
        "Final count: {count} (child pid {child_pid}, parent pid {}, {:.1} ms from start to result)",
        std::process::id(),
        started.elapsed().as_secs_f64() * 1e3
    );

    println!("\n== lives: a failing run is entered again while lives remain");
    let attempts = Skprocess::new(Flaky {
        failures_left: 2,
        attempts: 0,
    })
    .run()?;
    println!("3 runs took {attempts} attempts");

    println!("\n== a 0.3 s section timeout on a run that sleeps for 30 s");
    let started = Instant::now();
    let report = Skprocess::new(Overrun { completed: 0 }).run()?;
    println!(
        "__error__ says: {report} (after {:.2} s)",
        started.elapsed().as_secs_f64()
    );

    println!("\n== tell / listen");
    let doubler = Skprocess::new(Doubler { answered: 0 });
    doubler.start()?;
    for n in [1, 21, 1000] {
        doubler.tell(Request::Double(n))?;
        let answer: u64 = doubler.listen_timeout(Duration::from_secs(10))?;
        println!("{n} doubled in the child is {answer}");
    }
    doubler.tell(Request::Done)?;
    println!("the child answered {} requests", doubler.result()?);

    // ANCHOR: crash
    println!("\n== a crash is a typed error, not a hang");
    match Skprocess::new(Crasher).run() {
        Err(error) => println!("{error}"),
        Ok(()) => println!("unexpected: the crasher survived"),
    }
    // ANCHOR_END: crash

    println!("\n== a pool of 2 worker processes");
    let pool = skprocess::pool::Pool::new(2)?;
    let started = Instant::now();
    let steps = pool.map(collatz_steps, 1..=10_000u64)?;
    let (longest, at) = steps
        .iter()
        .zip(1u64..)
        .max()
        .map(|(&s, n)| (s, n))
        .unwrap_or_default();
    println!(
        "10000 Collatz sequences in {:.1} ms; the longest starts at {at} ({longest} steps)",
        started.elapsed().as_secs_f64() * 1e3
    );

    println!("\n== a Share: one object every process calls, a counter in shared memory");
    let share = Share::new()?;
    let words = share.insert("words", WordCount::default())?;
    let lines = share.insert("lines", 0_u64)?;
    let text = "The quick brown fox jumps over the lazy dog. \n\
                The dog sleeps; the fox runs. \n\
                A fox, a dog, and the end.";
    let items: Vec<(Share, String)> = text
        .lines()
        .map(|l| (share.clone(), l.to_owned()))
        .collect();
    pool.star().fallible().map(count_line, items)?;
    let (top, n) = words.top()?.unwrap_or_default();
    println!(
        "{} lines, {} words counted by the workers; most common: {top:?} ({n} times)",
        lines.load()?,
        words.total()?
    );
    pool.close();

    println!("\n== timers, filled in the child");
    let timers = counter.timers();
    println!(
        "__run__: {} samples, mean {:.3} µs, max {:.3} µs",
        timers.run.num_times(),
        timers.run.mean().unwrap_or(0.0) * 1e6,
        timers.run.max().unwrap_or(0.0) * 1e6
    );
    println!("full iterations: {}", counter.process_timer().num_times());

    println!("\n== a pool for real work: worker state from an initializer, a progress bar");
    let pool = skprocess::pool::Pool::builder()
        .workers(2)
        .initializer(load_table)
        .build()?;
    let started = Instant::now();
    // The bar draws on stderr when it is a terminal (and stays quiet when it is not).
    let scores = pool
        .with_state()
        .progress_bar()
        .imap(score, 0..200_000u64)
        .collect::<Result<Vec<u64>, _>>()?;
    println!(
        "{} items scored against each worker's own table in {:.0} ms; total {}",
        scores.len(),
        started.elapsed().as_secs_f64() * 1e3,
        scores.iter().sum::<u64>()
    );
    drop(pool);

    // ANCHOR: ctrl_c
    println!("\n== Ctrl+C: children stop gracefully, results still arrive");
    skprocess::graceful_ctrl_c()?;
    let ticker = Skprocess::new(Ticker { ticks: 0 });
    ticker.start()?;
    let pool = skprocess::pool::Pool::new(2)?;
    let call = {
        let pool = pool.clone();
        // Far more work than the ticker needs to reach 60 runs: the call is surely in flight
        // when Ctrl+C comes.
        std::thread::spawn(move || pool.map(slow_square, 0..10_000))
    };
    while ticker.current_run() < 60 {
        std::thread::sleep(Duration::from_millis(10));
    }
    // What a terminal's Ctrl+C does to this process (here sent by the program itself).
    // SAFETY: kill with our own pid and a signal number.
    unsafe { libc::kill(libc::getpid(), libc::SIGINT) };
    match call.join().expect("the pool call's thread") {
        Err(error @ skprocess::pool::PoolError::Interrupted { .. }) => {
            println!("the pool call returned: {error}")
        }
        other => println!("unexpected: {:?}", other.map(|v| v.len())),
    }
    let ticks = ticker.result()?;
    println!(
        "the ticker's result arrived: {} ticks (Ctrl+C pressed: {})",
        if ticks >= 60 {
            "60 or more"
        } else {
            "fewer than 60"
        },
        skprocess::ctrl_c_pressed()
    );
    // ANCHOR_END: ctrl_c
    Ok(())
}
// ANCHOR_END: all
