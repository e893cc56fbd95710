//! The multi-worker demo, run as a person runs it: it must kill a worker mid-turn and still
//! see every chat finish with its whole answer. Needs PostgreSQL as `scripts/test` provides it
//! (`DATABASE_URL`, or a server on 127.0.0.1:5432, or initdb/pg_ctl to start one).

use std::process::Command;

#[test]
fn a_worker_killed_mid_turn_does_not_stop_any_chat() {
    let output = Command::new(env!("CARGO_BIN_EXE_multi-worker"))
        .args(["--chats", "3", "--word-delay-ms", "20"])
        .output()
        .expect("the demo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the demo failed");
    assert!(stdout.contains("(SIGKILL) mid-turn; it holds chats"), "a worker was killed mid-turn");
    assert_eq!(stdout.matches(", whole").count(), 3, "every chat has its whole answer once");
    assert!(stdout.contains("every chat finished although"));
    assert!(stdout.contains("dropped schema chatd_demo_"), "the run cleans up");
    assert!(!stdout.contains("#token="), "no link that dies when the demo ends");
    assert!(stdout.contains("run with --serve to keep it"), "says how to keep the server");
}
