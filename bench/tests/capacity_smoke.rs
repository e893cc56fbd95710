//! A smoke run of `chatd-bench capacity --quick` (10 chats on one worker process, against
//! the PostgreSQL of `DATABASE_URL`, the fake model mixing in tool calls, failures and slow
//! calls): every metric line is printed and the load was served.
//! Not a timing assertion: the figures belong to `BENCHMARKS.md`.

use std::process::Command;

#[test]
fn the_quick_capacity_run_serves_every_turn_and_prints_each_metric() {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL (scripts/test sets it)");
    let out = Command::new(env!("CARGO_BIN_EXE_chatd-bench"))
        .args(["capacity", "--quick"])
        .env("DATABASE_URL", &url)
        .output()
        .expect("run chatd-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    print!("{stdout}");
    let lines: Vec<serde_json::Value> =
        stdout.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    let metric = |name: &str| {
        lines
            .iter()
            .find(|l| l["metric"] == format!("{name}_c10_w1_mix"))
            .and_then(|l| l["value"].as_f64())
            .unwrap_or_else(|| panic!("no {name} line in {stdout}"))
    };
    assert!(metric("turns_per_sec") > 0.0);
    assert!(metric("first_token_ms_p50_vs_bare") > 0.0, "the first token came after the send");
    assert!(metric("wal_bytes_per_turn_vs_minimal") > 0.0, "turns were written");
    // Tool steps and retried failures: more model requests than turns.
    assert!(metric("model_requests_per_turn") > 1.0, "the mix was served");
    for name in [
        "turn_started_ms_p50",
        "first_token_ms_p99_vs_bare",
        "inter_token_overhead_ms_p99",
        "token_lag_ms_p50",
        "token_lag_ms_p99",
        "worker_cpu_ms_per_turn",
        "worker_rss_kib_per_running_turn",
        "db_connections_peak",
        "db_rows_written_per_turn_vs_minimal",
        "db_transactions_per_turn_reads_included_vs_minimal",
    ] {
        metric(name);
    }
    // Both baselines ran: the bare clients' first token and the minimal SQL's rows.
    let baseline = |name: &str| {
        lines
            .iter()
            .find(|l| l["metric"] == format!("{name}_c10_w1_mix"))
            .and_then(|l| l["baseline"].as_f64())
            .unwrap_or(0.0)
    };
    assert!(baseline("first_token_ms_p50_vs_bare") >= 300.0, "the fake paces 300 ms");
    assert!(baseline("db_rows_written_per_turn_vs_minimal") > 0.0, "the minimal SQL ran");
}
