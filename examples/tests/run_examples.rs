//! Runs every example and checks the lines `../shared/EXAMPLES.md` requires of it.
//!
//! One test per example, so a failure names the example. Deadlines are generous: the checks are
//! about behaviour, not speed.

mod harness;

use std::time::Duration;

/// The deadline for one example run: generous, the machines are shared and noisy.
const DEADLINE: Duration = Duration::from_secs(60);

/// The number in `line` right after `prefix` (`"Captured 12 events"`, `"Captured "` → 12).
fn number_after(line: &str, prefix: &str) -> u64 {
    let start = line
        .find(prefix)
        .unwrap_or_else(|| panic!("{prefix:?} not in {line:?}"))
        + prefix.len();
    line[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no number after {prefix:?} in {line:?}"))
}

// ---- Skprocess (examples 1-10, 33, 34) ------------------------------------------------------

#[test]
fn simple_counter() {
    harness::run("simple_counter", DEADLINE).expect_line("Final count: 100");
}

#[test]
fn using_run() {
    harness::run("using_run", DEADLINE).expect_line("[2, 4, 6, 8, 10]");
}

#[test]
fn full_lifecycle() {
    let out = harness::run("full_lifecycle", DEADLINE);
    let mut expected = Vec::new();
    let lines: Vec<String> = (0..3)
        .flat_map(|n| {
            [
                format!("[prerun] Fetched batch {n}: 3 items"),
                "[run] Processed 3 items".to_owned(),
                format!("[postrun] Saved batch, total batches: {}", n + 1),
            ]
        })
        .collect();
    expected.extend(lines.iter().map(String::as_str));
    expected.push("[onfinish] Finished processing 9 total items");
    expected.push("Result: 3 batches, 9 items");
    out.expect_in_order(&expected);
    // the nine lifecycle lines are exactly these, nothing interleaved
    let lifecycle: Vec<&str> = out
        .lines()
        .into_iter()
        .filter(|l| l.starts_with('['))
        .collect();
    assert_eq!(lifecycle.len(), 10, "{out}");
}

#[test]
fn indefinite_stop() {
    let out = harness::run("indefinite_stop", DEADLINE);
    let shutdown = out.lines_containing("Monitor shutting down after");
    let captured = out.lines_containing("Captured");
    assert_eq!(shutdown.len(), 1, "{out}");
    assert_eq!(captured.len(), 1, "{out}");
    let n = number_after(shutdown[0], "after ");
    assert!(n >= 1, "{out}");
    assert_eq!(n, number_after(captured[0], "Captured "), "{out}");
    out.expect_in_order(&["Monitor shutting down", "Captured"]);
}

#[test]
fn join_in() {
    let started = std::time::Instant::now();
    let out = harness::run("join_in", DEADLINE);
    let line = out.lines_containing("iterations in ~1 second");
    assert_eq!(line.len(), 1, "{out}");
    assert!(number_after(line[0], "Completed ") >= 1, "{out}");
    // join_in ends the process by itself: well within 5 s (the example binary is built already)
    assert!(started.elapsed() < Duration::from_secs(5), "{out}");
}

#[test]
fn lives() {
    let out = harness::run("lives", DEADLINE);
    out.expect_in_order(&["Process failed after 4 attempts", "Result: Failed"]);
    out.expect_line("successful_runs: 1");
    out.expect_line("Content failure on run 1");
}

#[test]
fn section_timeouts() {
    let out = harness::run("section_timeouts", DEADLINE);
    out.expect_in_order(&[
        "Timeout in __run__ after 2.0s",
        "Result: Report { status: \"timeout\", completed_runs: 3 }",
    ]);
}

#[test]
fn timing_data() {
    let out = harness::run("timing_data", DEADLINE);
    out.expect_in_order(&[
        "__prerun__ timing:",
        "  mean:",
        "  min:",
        "  max:",
        "__run__ timing:",
        "  mean:",
        "  p50:",
        "  p95:",
        "__postrun__ timing:",
        "  total:",
        "Full iteration timing",
        "  mean:",
        "  total:",
        "  count:  20",
    ]);
}

#[test]
fn async_wait() {
    let out = harness::run("async_wait", DEADLINE);
    for i in 0..3 {
        out.expect_line(&format!("Process {i}: 5 results"));
    }
}

#[test]
fn background_run() {
    let out = harness::run("background_run", DEADLINE);
    out.expect_in_order(&[
        "Process computed 5 factorizations",
        "123456789 = [3, 3, 3607, 3803]",
        "987654321 = [3, 3, 17, 17, 379721]",
        "1000000007 = [1000000007]",
    ]);
}

#[test]
fn tell_listen() {
    let out = harness::run("tell_listen", DEADLINE);
    out.expect_line("[Child] Multiplier set to 10");
    out.expect_line("[Parent] Progress");
    let got = out.lines_containing("Got ");
    assert_eq!(got.len(), 1, "{out}");
    assert!(number_after(got[0], "Got ") >= 1, "{out}");
}

#[test]
fn tell_listen_async() {
    let out = harness::run("tell_listen_async", DEADLINE);
    out.expect_in_order(&[
        "run: 0, status: \"working\", last_hash: \"d352bef2\"",
        "run: 5, status: \"working\", last_hash: \"af03374b\"",
        "run: 10, status: \"working\", last_hash: \"d266f68c\"",
        "run: 15, status: \"working\", last_hash: \"3ac30b4b\"",
        "Final: 20 hashes computed",
    ]);
}

#[test]
fn timing_demo() {
    let out = harness::run("timing_demo", DEADLINE);
    out.expect_in_order(&[
        "timed 20 calls",
        "count: 20",
        "p50: 0.108 s",
        "p95: 0.338 s",
        "p99: 0.396 s",
        "slowest: 0.410 s (request 2)",
        "pause excluded: true",
        "sum = 500000500000",
        "database calls: 10",
        "checksum calls: 20",
        "slow lookups: 1 of 10",
    ]);
    out.expect_line("timing_demo::checksum: 20 calls");
}

#[test]
fn demo() {
    let out = harness::run("demo", DEADLINE);
    out.expect_in_order(&[
        "Final count: 100",
        "3 runs took 5 attempts",
        "__error__ says: __run__ timed out after 0.3s on run 1; 1 runs completed before it",
        "1 doubled in the child is 2",
        "21 doubled in the child is 42",
        "1000 doubled in the child is 2000",
        "the child answered 3 requests",
        "killed by signal 6 (SIGABRT)",
        "the longest starts at 6171 (261 steps)",
        "3 lines, 22 words counted by the workers; most common: \"the\" (5 times)",
        "__run__: 100 samples",
        "full iterations: 100",
        "200000 items scored against each worker's own table in",
        "the pool call returned: pool call interrupted (",
        "the ticker's result arrived: 60 or more ticks (Ctrl+C pressed: true)",
    ]);
    // printed by the child, whenever it runs relative to the parent's lines
    out.expect_line("[ticker] __onfinish__ after");
    out.expect_line("; total 595311");
}

// ---- Examples of the book (not ports of the seed) -------------------------------------------

#[test]
fn configuration() {
    let out = harness::run("configuration", DEADLINE);
    out.expect_in_order(&[
        "from the type: runs Some(10), lives 2, run timeout Some(100ms), timer window 100",
        "after configure: runs Some(3)",
        "readings: [0, 10, 20]",
        "configure after start: the process was already started",
        "invalid process configuration: `lives` must be at least 1 (pid: None)",
    ]);
}

#[test]
fn error_kinds() {
    let out = harness::run("error_kinds", DEADLINE);
    out.expect_in_order(&[
        "__run__ failed on run 0: cannot read /nonexistent/settings.toml: No such file or directory",
        "panic: true, message \"attempt to divide by zero\", in Some(Run) on run Some(1)",
        "at examples/examples/error_kinds.rs:",
        "run(): error in __run__ on run 0: the server answered 503",
        "its last word: rolled back after: error in __run__ on run 0: the server answered 503",
    ]);
}

#[test]
fn deadline() {
    let out = harness::run("deadline", DEADLINE);
    out.expect_in_order(&[
        "ticker: no result within 0.3s",
        "[child] __onfinish__ after",
        "ticker stopped by itself; result() still gives",
        "stuck: no result within 0.3s",
        "stuck: killed,",
    ]);
    let ticks = out.lines_containing("result() still gives");
    assert!(number_after(ticks[0], "still gives ") >= 1, "{out}");
}

#[test]
fn registration() {
    let out = harness::run("registration", DEADLINE);
    out.expect_in_order(&[
        "Heartbeat: 2",
        "Repeat: [7, 7, 7] [\"hi\", \"hi\"]",
        "Countdown: [3, 2, 1]",
        "registration::Heartbeat@examples/examples/registration.rs:",
        "examples::registration::Beacon",
        "registration::Repeat<u32>@examples/examples/registration.rs:",
        "registration::Countdown@examples/examples/registration.rs:",
    ]);
}

#[test]
fn in_process() {
    let out = harness::run("in_process", DEADLINE);
    out.expect_in_order(&[
        "In-process:    Done { totals: [6, 30, 7] }",
        "Child process: Done { totals: [6, 30, 7] }",
        "Same result: true",
        "With a bad line: Failed { totals: [3], error: \"error in __run__ on run 1: line 1: \
         invalid digit found in string\" }",
        "Told: 6",
        "Told: 30",
        "Told: 7",
    ]);
}

// ---- Pool (examples 11-22) --------------------------------------------------------------------

/// The numbers in the first `[...]` list on `line`.
fn list_after(line: &str, prefix: &str) -> Vec<u64> {
    let start = line.find(prefix).expect("prefix") + prefix.len();
    let rest = &line[start..];
    let open = rest.find('[').expect("a list");
    let close = rest.find(']').expect("a list");
    rest[open + 1..close]
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().expect("a number"))
        .collect()
}

fn assert_permutation_of_0_to_19(order: &[u64], out: &harness::Output) {
    let mut sorted = order.to_vec();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..20).collect::<Vec<u64>>(), "{out}");
}

#[test]
fn pool_map() {
    harness::run("pool_map", DEADLINE).expect_line("[1, 4, 9, 16, 25, 36, 49, 64, 81, 100]");
}

#[test]
fn pool_scope() {
    let out = harness::run("pool_scope", DEADLINE);
    for line in [
        "Apple -> apple (1f3870be)",
        "BANANA -> banana (72b302bf)",
        "Cherry -> cherry (c7a4476f)",
        "DATE -> date (5fc73231)",
        "elderberry -> elderberry (8625dc8c)",
    ] {
        out.expect_line_ws(line);
    }
}

#[test]
fn pool_star() {
    let out = harness::run("pool_star", DEADLINE);
    out.expect_line("Sums: [3, 7, 11, 15]");
    out.expect_line("Products: [6, 120, 504]");
}

#[test]
fn pool_unordered_map() {
    let out = harness::run("pool_unordered_map", DEADLINE);
    out.expect_line("Got 20 results");
    let order = out.lines_containing("Order received:");
    assert_eq!(order.len(), 1, "{out}");
    assert_permutation_of_0_to_19(&list_after(order[0], "Order received:"), &out);
}

#[test]
fn pool_imap() {
    let out = harness::run("pool_imap", DEADLINE);
    out.expect_in_order(&[
        "Processed 20 items, latest hash: c5dba7d209662794...",
        "Processed 40 items, latest hash: 0aad4b7f6a36ce37...",
        "Processed 60 items, latest hash: 5e1f6959fe604afa...",
        "Processed 80 items, latest hash: d6769ac649a286c2...",
        "Processed 100 items, latest hash: 82893b2c025e3d5e...",
        "Done! Processed 100 total items",
    ]);
}

#[test]
fn pool_unordered_imap() {
    let out = harness::run("pool_unordered_imap", DEADLINE);
    assert_eq!(out.lines_containing("Got item").len(), 20, "{out}");
    let order = out.lines_containing("Order received:");
    assert_eq!(order.len(), 1, "{out}");
    assert_permutation_of_0_to_19(&list_after(order[0], "Order received:"), &out);
}

#[test]
fn pool_timeout() {
    let out = harness::run("pool_timeout", DEADLINE);
    out.expect_in_order(&[
        "Operation timed out: pool call timed out after 2.0s",
        "Got: 10946",
        "Got: 17711",
        "Got: 28657",
    ]);
}

#[test]
fn pool_background() {
    let out = harness::run("pool_background", DEADLINE);
    out.expect_in_order(&[
        "Got 20 factorizations",
        "First result: Factored { input: 0, number: 1000000007, factors: [1000000007] }",
    ]);
}

#[test]
fn pool_submit() {
    let out = harness::run("pool_submit", DEADLINE);
    out.expect_in_order(&[
        "2 + 3 = 5",
        "task 1 done: 10 ms",
        "task 0 done: 600 ms",
        "not yet",
        "slow task: 300 ms",
        "the stuck task timed out",
        "cancelled: true",
        "its result: Err(\"the task was cancelled\")",
        "awaited: 5 ms",
    ]);
}

#[test]
fn pool_async() {
    let out = harness::run("pool_async", DEADLINE);
    out.expect_in_order(&[
        "Batch 1: 10 items, first: Chained { input: 0, hash: \"d85fe7b5a215d5e2\" }",
        "Batch 2: 10 items, first: Chained { input: 10, hash: \"e7cda5cf711072ce\" }",
        "Batch 3: 10 items, first: Chained { input: 20, hash: \"d2eb2dc310f4ff8a\" }",
    ]);
}

#[test]
fn pool_skprocess() {
    let out = harness::run("pool_skprocess", DEADLINE);
    out.expect_in_order(&[
        "ID 1: 10 -> doubled=20, squared=100",
        "ID 2: 20 -> doubled=40, squared=400",
        "ID 3: 30 -> doubled=60, squared=900",
        "ID 4: 40 -> doubled=80, squared=1600",
    ]);
}

#[test]
fn pool_star_modifiers() {
    let out = harness::run("pool_star_modifiers", DEADLINE);
    out.expect_in_order(&[
        "star + timeout: [3, 7, 11, 16] digits",
        "star + background: [3, 7, 11, 16] digits",
        "star + async: [3, 7, 11, 16] digits",
        "star + imap: (1, 2) (3, 4) (5, 6) (7, 8)",
    ]);
    let unordered = out.lines_containing("star + unordered_imap:");
    assert_eq!(unordered.len(), 1, "{out}");
    for pair in ["(1, 2)", "(3, 4)", "(5, 6)", "(7, 8)"] {
        assert_eq!(unordered[0].matches(pair).count(), 1, "{out}");
    }
}

#[test]
fn pool_errors() {
    let out = harness::run("pool_errors", DEADLINE);
    out.expect_in_order(&["Caught error:", "Safe results: [2, 4, 8, 10]"]);
    let caught = out.lines_containing("Caught error:");
    assert!(caught[0].contains("Cannot process 3"), "{out}");
}

#[test]
fn pool_tour() {
    let out = harness::run("pool_tour", DEADLINE);
    out.expect_in_order(&[
        "2 workers, 2 live pids",
        "lengths: [4, 2, 7]",
        "scaled: [3, 6, 9, 12]",
        "first squares: [1, 4, 9, 16, 25]",
        "parsed 7",
        "skipped: item 1 failed: invalid digit found in string",
        "parsed -2",
        "napped 10 ms",
        "napped 20 ms",
        "deadline: pool call timed out after 0.3s",
        "item 3 crashed its worker: killed by signal 6 (SIGABRT)",
        "after the crash: [1, 4, 9]",
        "evens: [0, 4, 16, 36, 64]",
        "odds: [1, 9, 25, 49, 81]",
        "sum of squares: 385",
        "after close(): the pool is closed",
        "after terminate(): the pool is closed",
    ]);
    // the deadline ends the imap: the item after the stuck one is never yielded
    assert!(out.lines_containing("napped 30 ms").is_empty(), "{out}");
}

// ---- Share (examples 23-29) -----------------------------------------------------------------

#[test]
fn share_counter() {
    harness::run("share_counter", DEADLINE).expect_line("Final counter: 50");
}

#[cfg(feature = "async")]
#[test]
fn async_http_tasks() {
    let out = harness::run("async_http_tasks", DEADLINE);
    out.expect_line("1000 of 1000 responses OK, each with its own item");
    let line = out.lines_containing("requests in flight at the server")[0];
    let most = number_after(line, "at most ");
    assert!(
        (2..=100).contains(&most),
        "concurrent, and never over the pool's bound\n{out}"
    );
    out.expect_line("(the pool's bound is 100)");
    out.expect_line("1000 requests in ");
}

#[cfg(feature = "async")]
#[test]
fn async_vs_sync() {
    let out = harness::run("async_vs_sync", DEADLINE);
    // Only that every line appears, each with every page: the ratios depend on the machine.
    out.expect_line("async process (AsyncPool(50) inside): 100 of 100 pages in ");
    out.expect_line("sequential sync process: 100 of 100 pages in ");
    out.expect_line("sync Pool of 4 workers: 100 of 100 pages in ");
    out.expect_line("AsyncPool across 2 worker processes: 100 of 100 pages in ");
    assert_eq!(
        out.lines_containing("x the async process's time)").len(),
        3,
        "{out}"
    );
}

#[test]
fn circuit_rate_limiter() {
    let out = harness::run("circuit_rate_limiter", DEADLINE);
    out.expect_line("fetched 40 of 40 endpoints");
    out.expect_line("the API served 40 calls and refused ");
    let refused = number_after(out.lines_containing("the API served")[0], "and refused ");
    // Every 429 was one short, and one short trips this circuit.
    out.expect_line(&format!(
        "the shared circuit tripped {refused} times over {refused} failures"
    ));
}

#[test]
fn share_sktimer() {
    let out = harness::run("share_sktimer", DEADLINE);
    out.expect_in_order(&[
        "num_times: 20",
        "mean:",
        "min:",
        "max:",
        "stdev:",
        "variance:",
    ]);
}

#[test]
fn share_scope() {
    let out = harness::run("share_scope", DEADLINE);
    out.expect_in_order(&["Final value: 30", "Running after the scope: false"]);
}

#[test]
fn share_multiple() {
    let out = harness::run("share_multiple", DEADLINE);
    out.expect_in_order(&["Processed: 20", "Successes: 14", "Errors: 6", "Avg time: "]);
}

#[test]
fn share_single_process() {
    let out = harness::run("share_single_process", DEADLINE);
    out.expect_line("Final progress: 100");
    // progress only grows, and never past 100
    let seen: Vec<u64> = out
        .lines_containing("Progress: ")
        .iter()
        .filter(|l| l.starts_with("Progress: "))
        .map(|l| number_after(l, "Progress: "))
        .collect();
    assert!(!seen.is_empty(), "{out}");
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert!(seen.iter().all(|&k| k <= 100), "{seen:?}");
    out.expect_in_order(&["Final progress: 100", "Total time: ", "Avg iteration: "]);
}

#[test]
fn share_start_stop() {
    let out = harness::run("share_start_stop", DEADLINE);
    out.expect_in_order(&[
        "warning: the Share is stopped",
        "Running: true",
        "Running: false",
        "Counter: 100",
    ]);
}

#[test]
fn share_clear() {
    let out = harness::run("share_clear", DEADLINE);
    out.expect_in_order(&["After batch 1: 20", "After clear: []", "After batch 2: 30"]);
}

// ---- full programs (examples 37, 38) --------------------------------------------------------

#[test]
fn task_queue() {
    let out = harness::run("task_queue", DEADLINE);
    out.expect_in_order(&[
        "Processing 50 tasks...",
        "Total processed: 50",
        "Completed:       47",
        "Failed:          3",
        "Retried:         6",
        "Timing Statistics:",
        "Mean per task:",
        "P95:",
        "Sample Results:",
        "Task 0: success (attempts: 1)",
    ]);
}

/// The 16-hex-digit output of the pipeline for an input: a chain of 500 SHA-256, hashed once
/// more.
fn pipeline_hash(input: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut bytes = input.as_bytes().to_vec();
    for _ in 0..500 {
        bytes = Sha256::digest(&bytes).to_vec();
    }
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..16]
        .to_owned()
}

#[test]
fn streaming_pipeline() {
    let out = harness::run("streaming_pipeline", DEADLINE);
    out.expect_line("Total processed: 100");
    let counts: u64 = out
        .lines_containing("items")
        .iter()
        .filter(|l| l.trim_start().starts_with("Worker "))
        .map(|l| number_after(l, ": "))
        .sum();
    assert_eq!(counts, 100, "{out}");
    // The seed's own samples, as the Python original computes them.
    for (input, hash) in [
        ("item_0", "f1fb196b3d03fdea"),
        ("item_3", "3c43446786aa2b54"),
        ("item_6", "28fa47544ed338ce"),
        ("item_9", "faf7f5ff13dcdfcd"),
        ("item_12", "429fc3b2725110bb"),
    ] {
        assert_eq!(pipeline_hash(input), hash);
    }
    let samples: Vec<&str> = out
        .lines_containing(" -> ")
        .into_iter()
        .filter(|l| l.trim_start().starts_with("item_"))
        .collect();
    assert_eq!(samples.len(), 5, "{out}");
    for line in samples {
        let (input, rest) = line.trim().split_once(" -> ").unwrap();
        let hash = rest.split_whitespace().next().unwrap();
        assert_eq!(hash, pipeline_hash(input), "{line}");
        assert!(rest.contains("(worker "), "{line}");
    }
}

// ---- Pipe (examples 30-32) ------------------------------------------------------------------

#[test]
fn pipe_basic() {
    let out = harness::run("pipe_basic", DEADLINE);
    out.expect_in_order(&["[Parent] Sending command...", "[Parent] Received response:"]);
    out.expect_line("[Child] Received: Command { action: \"compute\", value: 21 }");
    out.expect_line("[Child] Sent result: 42");
    let response = out.lines_containing("[Parent] Received response:");
    assert!(
        response[0].contains("result: 42") && response[0].contains("status: \"ok\""),
        "{out}"
    );
}

#[test]
fn pipe_one_way() {
    let out = harness::run("pipe_one_way", DEADLINE);
    let mut expected: Vec<String> = (0..5)
        .map(|i| format!("[Child] Received: Item {{ id: {i}, value: {} }}", i * 10))
        .collect();
    expected.push("Received 5 items".to_owned());
    out.expect_in_order(&expected.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn pipe_multiple() {
    let out = harness::run("pipe_multiple", DEADLINE);
    out.expect_in_order(&[
        "Result: Reply { status: \"done\", result: Some(15), error: None }",
        "Worker: worker_stopped",
    ]);
}

// ---- Start hooks and logs from children -----------------------------------------------------

#[test]
fn child_init() {
    let out = harness::run("child_init", DEADLINE);
    out.expect_in_order(&[
        "hooks: [\"child_init::load_settings\"]",
        "hello from",
        "scaled: [10, 20, 30]",
    ]);
}

#[cfg(feature = "logs")]
#[test]
fn child_logs() {
    let out = harness::run("child_logs", DEADLINE);
    out.expect_in_order(&[
        "[INFO child_logs] starting (process= run= block=)",
        "run=0 block=)",
        "run=1 block=)",
        "[WARN child_logs] https://example.com/data was slow",
        "[INFO child_logs] fetched 2 times",
        "[INFO child_logs] checksums [31, 62]",
    ]);
    // Both pool records, in either order, before the call returned.
    for block in [1, 2] {
        assert_eq!(
            out.lines_containing(&format!(
                "checking block (process=pool worker run= block={block})"
            ))
            .len(),
            1,
            "{out}"
        );
    }
    let process = "process=child_logs::Downloader@examples/examples/child_logs.rs";
    let fetching = out.lines_containing("fetching https://example.com/data");
    assert_eq!(fetching.len(), 2, "{out}");
    assert!(fetching.iter().all(|l| l.contains(process)), "{out}");
    assert!(out.lines_containing("headers").is_empty(), "{out}");
}

#[cfg(feature = "logs")]
#[test]
fn pool_workloads() {
    let out = harness::run("pool_workloads", DEADLINE);
    out.expect_in_order(&[
        "progress: 0 of 1000 items",
        "progress: 1000 of 1000 items, 0 failed",
        "1000 lookups, 500 hits",
    ]);
    // Each worker's initializer logged once, from its own process, through the parent's logger.
    let ready = out.lines_containing("cache loaded with 500 entries");
    assert_eq!(ready.len(), 2, "{out}");
    assert!(
        ready.iter().all(|l| l.contains("process=pool worker")),
        "{out}"
    );
    assert_eq!(
        out.lines_containing("a worker's first lookup").len(),
        2,
        "{out}"
    );
}

#[cfg(feature = "logs")]
#[test]
fn child_tracing() {
    let out = harness::run("child_tracing", DEADLINE);
    out.expect_in_order(&[
        "INFO skprocess::child: indexing pid=",
        "INFO child_tracing: indexed files=3",
        "WARN skprocess::child: odd line pid=",
    ]);
    out.expect_line("child.target=\"child_tracing\"");
    out.expect_line("process=\"pool worker\"");
    out.expect_line("child.fields=\"line=7\"");
    assert!(out.lines_containing("every file name").is_empty(), "{out}");
}

// ---- autoreconnect against real servers (examples 35, 36; `--features db`) -------------------

// The runtime's fixture: starts PostgreSQL and Redis once for this test binary (scripts/servers.sh)
// and stops them when it exits.
#[cfg(feature = "db")]
#[allow(
    dead_code,
    reason = "the connection strings and `restart` are for the runtime's own tests"
)]
#[path = "../../skprocess-runtime/tests/common/servers.rs"]
mod servers;

/// The runtime tests' helpers, which `servers` uses (`output_within`; the file allows the
/// rest to go unused).
#[cfg(feature = "db")]
#[path = "../../skprocess-runtime/tests/common/mod.rs"]
mod common;

#[cfg(feature = "db")]
#[test]
fn autoreconnect_basic() {
    let out = harness::run_with("autoreconnect_basic", DEADLINE, &servers::servers().vars());
    out.expect_in_order(&[
        "connected as sk_main (backend pid ",
        "query 1: SELECT name FROM users ORDER BY id LIMIT 10 -> 3 rows [alice, bob, carol]",
        "  fetched in child process ",
        "query 2: SELECT item FROM orders ORDER BY id LIMIT 10 -> 4 rows [book, lamp, tea, pen]",
        "  fetched in child process ",
        "The connection was rebuilt in each child",
    ]);
    let parent = out.lines_containing("parent process ");
    assert_eq!(parent.len(), 1, "{out}");
    let parent_pid = number_after(parent[0], "parent process ");
    let parent_backend = number_after(parent[0], "(backend pid ");
    let fetched = out.lines_containing("fetched in child process ");
    assert_eq!(fetched.len(), 2, "{out}");
    for line in fetched {
        assert_ne!(number_after(line, "child process "), parent_pid, "{out}");
        assert_eq!(number_after(line, "parent's is "), parent_backend, "{out}");
        assert_ne!(
            number_after(line, "(backend pid "),
            parent_backend,
            "the child has a connection of its own\n{out}"
        );
    }
}

#[cfg(feature = "db")]
#[test]
fn autoreconnect_multi() {
    let out = harness::run_with("autoreconnect_multi", DEADLINE, &servers::servers().vars());
    let parent_line = |what: &str| {
        let lines = out.lines_containing(what);
        assert_eq!(lines.len(), 1, "{what}\n{out}");
        lines[0]
    };
    let main = parent_line("main_db connected as sk_main (backend pid ");
    let analytics = parent_line("analytics_db connected as sk_analytics (backend pid ");
    let parent_pid = number_after(main, "parent process ");
    let child_line = out.lines_containing("child process ");
    assert_eq!(child_line.len(), 1, "{out}");
    let child_pid = number_after(child_line[0], "child process ");
    assert_ne!(child_pid, parent_pid, "{out}");
    out.expect_in_order(&[
        "main_db: connected in child as sk_main (backend pid ",
        "analytics_db: connected in child as sk_analytics (backend pid ",
        &format!("cache: redis SET/GET in child -> 'written by child {child_pid}'"),
        &format!("reads the child's note back -> 'hello from child {child_pid}'"),
        "Result: done",
    ]);
    out.expect_line(&format!(
        "); wrote and read back 'hello from child {child_pid}'"
    ));
    out.expect_line("); page_views total -> 42");
    // Each child connection is its own, not the parent's.
    for (parent, field) in [(main, "main_db: "), (analytics, "analytics_db: ")] {
        let child = parent_line(field);
        let parent_backend = number_after(parent, "(backend pid ");
        assert_eq!(number_after(child, "parent's is "), parent_backend, "{out}");
        assert_ne!(
            number_after(child, "(backend pid "),
            parent_backend,
            "{out}"
        );
    }
}

/// Without the servers' variables, the examples say which to set and exit with status 2.
#[cfg(feature = "db")]
#[test]
fn autoreconnect_without_servers_names_the_missing_variables() {
    use std::process::{Command, Stdio};
    use std::time::Instant;

    let vars = [
        "SKPROCESS_PG_HOST",
        "SKPROCESS_PG_PORT",
        "SKPROCESS_PG_USER",
        "SKPROCESS_PG_DB",
        "SKPROCESS_PG_PASSWORD",
        "SKPROCESS_PG_ANALYTICS_USER",
        "SKPROCESS_PG_ANALYTICS_DB",
        "SKPROCESS_PG_ANALYTICS_PASSWORD",
        "SKPROCESS_REDIS_HOST",
        "SKPROCESS_REDIS_PORT",
        "SKPROCESS_REDIS_PASSWORD",
    ];
    // target/<profile>/deps/<this test> -> target/<profile>/examples/
    let exe = std::env::current_exe().expect("current_exe");
    let examples = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .join("examples");
    for (name, needed) in [("autoreconnect_basic", 5), ("autoreconnect_multi", 11)] {
        let mut command = Command::new(examples.join(name));
        for var in vars {
            command.env_remove(var);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let started = Instant::now();
        while child.try_wait().expect("try_wait").is_none() {
            if started.elapsed() > DEADLINE {
                let _ = child.kill();
                panic!("{name} did not exit within {DEADLINE:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let out = child.wait_with_output().expect("output");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(out.stdout.is_empty(), "{name} printed to stdout");
        let missing = stderr
            .lines()
            .find_map(|l| l.strip_prefix("missing: "))
            .unwrap_or_else(|| panic!("{name} named no missing variable: {stderr}"));
        assert_eq!(
            missing.split(", ").collect::<Vec<_>>(),
            vars[..needed],
            "{stderr}"
        );
        assert!(
            stderr.contains("bash scripts/servers.sh up DIR"),
            "{stderr}"
        );
    }
}
