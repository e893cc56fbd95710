//! A smoke run of `chatd-bench soak --quick` (about 30 seconds: six chats on three worker
//! processes while workers are killed, frozen past their lease and disconnected, against the
//! PostgreSQL of `DATABASE_URL`): the audit passes — every message answered exactly once,
//! every subscriber saw each answer whole, nothing stuck or left running.

use std::process::Command;

#[test]
fn a_short_soak_under_faults_passes_its_audit() {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL (scripts/test sets it)");
    let out = Command::new(env!("CARGO_BIN_EXE_chatd-bench"))
        .args(["soak", "--quick"])
        .env("DATABASE_URL", &url)
        .output()
        .expect("run chatd-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    print!("{stdout}");
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("a JSON summary");
    assert_eq!(summary["pass"], true, "{summary}");
    let faults = &summary["faults"];
    let injected: i64 = ["sigkill", "sigstop", "terminate_backend"]
        .iter()
        .map(|f| faults[f].as_i64().unwrap_or(0))
        .sum();
    assert!(injected >= 3, "faults were injected: {summary}");
    assert!(summary["turns"].as_i64().unwrap_or(0) > 0, "turns ran: {summary}");
}
