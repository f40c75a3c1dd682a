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
        "__run__: 100 samples",
        "full iterations: 100",
    ]);
}
