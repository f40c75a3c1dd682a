//! A smoke run of the benchmark binary (tiny counts): it runs to the end and prints every
//! figure. Timings are not checked here.

use std::process::Command;

#[test]
fn the_benchmark_runs_and_reports_every_figure() {
    let output = Command::new(env!("CARGO_BIN_EXE_skprocess-bench"))
        .arg("--quick")
        .output()
        .expect("the benchmark binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for figure in [
        "process_start_to_result",
        "raw_reexec_connect",
        "process_start_ratio",
        "engine_overhead_per_iteration",
        "tell_listen_rtt_one_cpu",
        "raw_socket_rtt_one_cpu",
        "pool_map_square_10000_total",
        "pool_map_square_1000_per_item",
        "cpu_map_throughput_ratio",
        "share_call_ratio_unpinned",
        "share_call_ratio_one_cpu",
        "share_call_owner",
        "share_counter_add_ratio",
        "share_counter_add_contended_ratio",
        "share_calls_4_vs_1",
        "pipe_ratio_unpinned",
        "pipe_ratio_one_cpu",
        "pool_imap_ratio_2w",
        "pool_unordered_imap_ratio_2w",
        "in_process_start_ratio",
        "in_process_tell_listen_ratio",
        "bulk_1mib_ratio",
        "bulk_pool_16kib_total",
        "pool_submit_roundtrip",
        "pool_submit_vs_map1_ratio",
        "pool_submit_burst_per_task",
    ]
    .into_iter()
    .chain(
        if cfg!(feature = "nats") {
            &[
                "nats_trivial_items_per_second",
                "nats_trivial_vs_local_ratio",
                "nats_cpu_map",
                "nats_cpu_map_vs_local_ratio",
            ][..]
        } else {
            &[]
        }
        .iter()
        .copied(),
    ) {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("bench: {figure} "))),
            "missing {figure}:\n{stdout}"
        );
    }
}
