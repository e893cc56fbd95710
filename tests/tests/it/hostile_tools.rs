//! The tools under a hostile model (BEHAVIOUR §13): the environment a command sees, Landlock
//! confinement, cancellation of running calls by interrupt, shutdown and a lost lease,
//! non-regular files, concurrency and argument bounds, and workspace ownership between
//! users. Every confinement test prints the Landlock ABI it ran with and fails (never
//! skips) where the kernel cannot confine.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chatd_core::runtime::tools::{
    ExecOutput, ExecRequest, LocalWorkspace, SandboxStatus, Tool, ToolContext, ToolError, ToolSet,
    Workspace,
};
use chatd_core::runtime::turn::{StopReason, TurnEnd, TurnRunner, TurnSignal};
use chatd_core::testing::ScriptedCall;
use chatd_core::testing::pinned::landlock_abi;
use chatd_core::{ChatId, Part, TurnOutcome, UserId};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::*;

/// The canaries the environment test sets in the process that runs the commands.
const CANARIES: [(&str, &str); 4] = [
    ("OPENAI_API_KEY", "sk-canary-openai-7f3a"),
    ("DATABASE_URL", "postgres://canary:canary-db-9b2c@db/prod"),
    ("AWS_SECRET_ACCESS_KEY", "canary-aws-secret-41d8"),
    ("GITHUB_TOKEN", "ghp_canary_github_0e6f"),
];

fn ctx() -> ToolContext {
    ToolContext::new(
        ChatId::new(),
        UserId::new(),
        chatd_core::ChatKind::Root,
        CancellationToken::new(),
    )
}

/// A confined workspace in `dir`; fails where any layer is missing (the suite must run).
fn confined(dir: &Path) -> LocalWorkspace {
    let ws = LocalWorkspace::open(dir).expect("a confined workspace (every layer is required)");
    let SandboxStatus::Confined(layers) = ws.sandbox_status() else {
        panic!("not confined: {:?}", ws.sandbox_status());
    };
    println!("confinement: {layers} (Landlock ABI {}, euid {})", landlock_abi(), euid());
    ws
}

fn euid() -> u32 {
    std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap_or(0)
}

async fn sh(ws: &LocalWorkspace, command: &str) -> ExecOutput {
    let request = ExecRequest::new(command).with_timeout(Duration::from_secs(20));
    ws.execute(&ctx(), &request).await.expect("the command starts")
}

// ----- environment ------------------------------------------------------------------------

#[tokio::test]
async fn canary_environment_never_reaches_a_command() {
    // Setting variables in this process would need `unsafe`: run the check in a child test
    // process that inherits them.
    let exe = std::env::current_exe().expect("test binary");
    let mut child = std::process::Command::new(exe);
    child.args([
        "--exact",
        "hostile_tools::canary_environment_inner",
        "--include-ignored",
        "--nocapture",
    ]);
    for (key, value) in CANARIES {
        child.env(key, value);
    }
    let out = child.output().expect("run the inner test");
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "inner test failed:\n{text}");
    assert!(text.contains("1 passed"), "the inner test did not run:\n{text}");
    assert!(text.contains("canary check ran"), "{text}");
}

#[tokio::test]
#[ignore = "run by canary_environment_never_reaches_a_command, with the canaries set"]
async fn canary_environment_inner() {
    for (key, value) in CANARIES {
        assert_eq!(std::env::var(key).as_deref(), Ok(value), "{key} is set in the host");
    }
    let dir = tempfile::tempdir().expect("dir");
    let ws = confined(dir.path()).with_env("GREETING", "added by the host");
    let out = sh(&ws, "env; cat /proc/self/environ | tr '\\0' '\\n'").await;
    for (key, value) in CANARIES {
        assert!(!out.output.contains(value), "{key} leaked:\n{}", out.output);
        assert!(!out.output.contains(&format!("{key}=")), "{key} is set:\n{}", out.output);
    }
    let root = dir.path().canonicalize().expect("root");
    assert!(out.output.contains(&format!("HOME={}", root.display())), "{}", out.output);
    assert!(out.output.contains(&format!("TMPDIR={}/", root.display())), "{}", out.output);
    assert!(out.output.contains("GREETING=added by the host"), "{}", out.output);
    assert!(out.output.contains("GIT_TERMINAL_PROMPT=0"), "{}", out.output);
    assert!(out.output.contains("PATH="), "{}", out.output);
    println!(
        "canary check ran: {} variables, none of the host's secrets",
        out.output.lines().count()
    );
}

// ----- confinement ------------------------------------------------------------------------

/// Two workspaces side by side, as the local provisioner lays them out; Bob's holds a
/// secret.
fn siblings() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let parent = tempfile::tempdir().expect("parent");
    let (alice, bob) = (parent.path().join("alice"), parent.path().join("bob"));
    std::fs::create_dir(&alice).expect("alice");
    std::fs::create_dir(&bob).expect("bob");
    std::fs::write(bob.join("secret.txt"), "bob's secret 5d1e").expect("secret");
    (parent, alice, bob)
}

#[tokio::test]
async fn a_confined_command_cannot_reach_outside_its_workspace() {
    let (_parent, alice, bob) = siblings();
    let ws = confined(&alice);
    let outside = std::env::temp_dir().join(format!("chatd-outside-{}", uuid::Uuid::new_v4()));
    let planted = format!("chatd-planted-{}", uuid::Uuid::new_v4());
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let attempts = [
        ("sibling read", "cat ../bob/secret.txt".to_owned()),
        ("sibling by absolute path", format!("cat {}", bob.join("secret.txt").display())),
        ("sibling write", "echo pwned > ../bob/secret.txt".to_owned()),
        ("write to the host's world-writable /var/tmp", format!("echo x > /var/tmp/{planted}")),
        ("host home", format!("ls -a {home}")),
        ("other process environ", format!("cat /proc/{}/environ", std::process::id())),
    ];
    for (what, command) in attempts {
        let out = sh(&ws, &command).await;
        assert_ne!(out.exit_code, 0, "{what}: `{command}` succeeded:\n{}", out.output);
        assert!(!out.output.contains("bob's secret"), "{what}: {}", out.output);
        println!("refused as it should be: {what}: {}", out.output.trim());
    }
    // The command's parent is the namespace's init, which holds only the command's own
    // environment; the worker's (cargo sets CARGO_* in this test process) is out of reach.
    let out = sh(&ws, "cat /proc/$PPID/environ /proc/1/environ | tr '\\0' '\\n'").await;
    assert!(!out.output.contains("CARGO_"), "the worker's environment leaked:\n{}", out.output);
    // `/tmp` is the command's own: a write there lands in a tmpfs that dies with the call.
    let out = sh(&ws, &format!("echo x > {} && echo written", outside.display())).await;
    assert_eq!(out.output.trim(), "written", "the private /tmp is writable");
    assert!(!outside.exists(), "a file was written to the host's /tmp");
    assert!(!Path::new("/var/tmp").join(&planted).exists(), "a file was planted in /var/tmp");
    assert_eq!(std::fs::read_to_string(bob.join("secret.txt")).expect("bob"), "bob's secret 5d1e");
}

#[tokio::test]
async fn ordinary_work_still_works_when_confined() {
    let (_parent, alice, _bob) = siblings();
    let ws = confined(&alice);
    let out = sh(
        &ws,
        "mkdir -p a/b && echo hi > a/b/c && cat a/b/c && ls /usr/bin >/dev/null && echo ok",
    )
    .await;
    assert_eq!((out.exit_code, out.output.as_str()), (0, "hi\nok\n"));
    let out = sh(&ws, "echo tmp > \"$TMPDIR/t\" && cat \"$TMPDIR/t\"").await;
    assert_eq!((out.exit_code, out.output.as_str()), (0, "tmp\n"), "TMPDIR is writable");
    if std::process::Command::new("git").arg("--version").output().is_ok() {
        let out = sh(
            &ws,
            "git init -q repo && cd repo && echo x > f && git add f && \
             git -c user.name=t -c user.email=t@e commit -qm init && git log --oneline | wc -l",
        )
        .await;
        assert_eq!((out.exit_code, out.output.trim()), (0, "1"), "git works: {}", out.output);
        println!("git init/add/commit ran confined");
    } else {
        println!("git is not installed: the git check did not run");
    }
}

// ----- cancellation -----------------------------------------------------------------------

/// A command that records its process group, then writes a file after a second.
/// The command carries `mark` in its command line, so the test can look for its processes
/// anywhere on the machine (inside a PID namespace `$$` means nothing outside).
fn late_writer(mark: &str) -> String {
    format!("echo started > started; sleep 1; echo late > late.txt # {mark}")
}

fn mark() -> String {
    format!("chatd-late-{}", uuid::Uuid::new_v4().simple())
}

fn workspace_runner(fx: &Fixture, dir: &Path) -> TurnRunner {
    TurnRunner::new(
        Arc::clone(&fx.store),
        Arc::new(Scripted(Arc::clone(&fx.provider))),
        ToolSet::workspace(Arc::new(confined(dir))),
    )
    .with_titles(false)
}

async fn stopped_turn_leaves_nothing_running(reason: StopReason) {
    let mark = mark();
    let fx = fixture(vec![ScriptedCall::tool_calls(
        &[("c1", "execute", json!({"command": late_writer(&mark)}))],
        None,
    )])
    .await;
    let dir = tempfile::tempdir().expect("dir");
    let signal = TurnSignal::new();
    let stopper = signal.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        stopper.stop(reason);
    });
    let end = workspace_runner(&fx, dir.path()).run(fx.lease, signal).await;
    let expected = match reason {
        StopReason::Interrupt => TurnOutcome::Interrupted,
        StopReason::Shutdown => TurnOutcome::Shutdown,
        other => panic!("no expectation for {other:?}"),
    };
    assert_eq!(end, TurnEnd::Release(expected));
    // When the turn returns, the whole group has already stopped.
    assert!(dir.path().join("started").exists(), "the command never ran");
    let left = processes_with(&mark);
    assert!(left.is_empty(), "processes outlived the turn: {left:?}");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(!dir.path().join("late.txt").exists(), "the cancelled command still wrote its file");
}

#[tokio::test]
async fn an_interrupt_stops_running_commands_before_the_turn_returns() {
    stopped_turn_leaves_nothing_running(StopReason::Interrupt).await;
}

#[tokio::test]
async fn a_shutdown_stops_running_commands_before_the_turn_returns() {
    stopped_turn_leaves_nothing_running(StopReason::Shutdown).await;
}

#[tokio::test]
async fn a_lost_lease_stops_running_commands() {
    use chatd_core::runtime::worker::Worker;
    let mark = mark();
    let fx = fixture(vec![
        ScriptedCall::tool_calls(
            &[("c1", "execute", json!({"command": late_writer(&mark)}))],
            None,
        ),
        // The re-run after the recovery answers without tools.
        ScriptedCall::text("done", None),
    ])
    .await;
    // The fixture acquired the chat; give it back so the worker takes it.
    fx.store.recover_stale(Duration::ZERO).await.expect("recover");
    let dir = tempfile::tempdir().expect("dir");
    let lost = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&lost);
    let worker = Worker::new(Arc::clone(&fx.store), workspace_runner(&fx, dir.path()))
        .with_poll(Duration::from_millis(50))
        .with_heartbeat(Duration::from_millis(50))
        .with_stale_after(Duration::from_secs(60))
        .with_turn_listener(Arc::new(move |report: &chatd_core::runtime::worker::TurnReport| {
            if report.lost {
                seen.fetch_add(1, Ordering::SeqCst);
            }
        }));
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(worker.run(shutdown.clone()));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !dir.path().join("started").exists() {
        assert!(Instant::now() < deadline, "the command never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Someone else takes the chat: the running turn's lease is gone.
    fx.store.recover_stale(Duration::ZERO).await.expect("take the chat away");
    while lost.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the worker never saw the lease go");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let left = processes_with(&mark);
    assert!(left.is_empty(), "processes outlived the lost turn: {left:?}");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(!dir.path().join("late.txt").exists(), "the lost turn's command still wrote");
    shutdown.cancel();
    handle.await.expect("worker");
}

/// A tool that ignores cancellation and writes a file a second after it starts.
struct LateRust(PathBuf);

#[async_trait]
impl Tool for LateRust {
    fn name(&self) -> &str {
        "late"
    }
    fn description(&self) -> &str {
        "writes late"
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object"})
    }
    async fn run(&self, _ctx: &ToolContext, _args: Value) -> Result<Value, ToolError> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        std::fs::write(&self.0, "late").map_err(|e| ToolError::new(e.to_string()))?;
        Ok(json!("wrote"))
    }
}

#[tokio::test]
async fn a_cancelled_call_of_any_tool_never_acts_afterwards() {
    let dir = tempfile::tempdir().expect("dir");
    let target = dir.path().join("late.txt");
    let set = ToolSet::new().with(Arc::new(LateRust(target.clone())));
    let ctx = ctx();
    let cancel = ctx.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        cancel.cancel();
    });
    let started = Instant::now();
    let outcome = set.run_calls(&ctx, &[Part::tool_call("1", "late", json!({}))]).await;
    assert!(outcome.is_err(), "cancelled");
    assert!(started.elapsed() < Duration::from_millis(900), "returned at the cancellation");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(!target.exists(), "the aborted call still wrote");
}

// ----- files and bounds -------------------------------------------------------------------

#[tokio::test]
async fn read_file_refuses_a_fifo_at_once() {
    let dir = tempfile::tempdir().expect("dir");
    let fifo = dir.path().join("pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let ws = confined(dir.path());
    let started = Instant::now();
    let err =
        tokio::time::timeout(Duration::from_secs(1), ws.read_file(&ctx(), "pipe", None, None))
            .await
            .expect("an answer within a second")
            .expect_err("a FIFO is refused");
    assert!(err.message().contains("not a regular file"), "{err}");
    let err = ws.write_file(&ctx(), "pipe", "x").await.expect_err("writing a FIFO is refused");
    assert!(err.message().contains("not a regular file"), "{err}");
    println!("FIFO refused in {:?}", started.elapsed());
}

#[tokio::test]
async fn read_file_windows_are_capped_and_say_so() {
    let dir = tempfile::tempdir().expect("dir");
    let ws = confined(dir.path()).with_read_cap(10);
    std::fs::write(dir.path().join("f"), "one\ntwo\nthree-is-long\nfour\n").expect("f");
    let window = ws.read_file(&ctx(), "f", Some(3), Some(1)).await.expect("read");
    assert_eq!(window.content, "three-is-l");
    assert!(window.truncated);
    assert_eq!(window.next_offset, Some(3));
    let window = ws.read_file(&ctx(), "f", Some(2), Some(1)).await.expect("read");
    assert_eq!((window.content.as_str(), window.truncated), ("two\n", false));
}

#[tokio::test]
async fn concurrent_edits_of_one_step_never_share_a_temporary_file() {
    let dir = tempfile::tempdir().expect("dir");
    let set = ToolSet::workspace(Arc::new(confined(dir.path())));
    let calls: Vec<Part> = (0..16)
        .map(|i| {
            Part::tool_call(
                i.to_string(),
                "write_file",
                json!({"path": "same.txt", "content": format!("writer {i}\n")}),
            )
        })
        .collect();
    let results = set.run_calls(&ctx(), &calls).await.expect("not cancelled");
    for result in &results {
        let Part::ToolResult { is_error, result, .. } = result else { panic!() };
        assert!(!is_error, "{result}");
    }
    let text = std::fs::read_to_string(dir.path().join("same.txt")).expect("same");
    assert!(text.starts_with("writer "), "one whole write won: {text:?}");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".chatd-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// Counts how many of its calls run at once.
struct Counts {
    now: AtomicUsize,
    max: AtomicUsize,
}

struct Gauge(Arc<Counts>);

#[async_trait]
impl Tool for Gauge {
    fn name(&self) -> &str {
        "gauge"
    }
    fn description(&self) -> &str {
        "counts"
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object"})
    }
    async fn run(&self, _ctx: &ToolContext, args: Value) -> Result<Value, ToolError> {
        let now = self.0.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.0.max.fetch_max(now, Ordering::SeqCst);
        // Long enough that all 8 permits are surely taken at once, even on a loaded machine.
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.0.now.fetch_sub(1, Ordering::SeqCst);
        Ok(args)
    }
}

#[tokio::test]
async fn fifty_calls_never_run_more_than_eight_at_once() {
    let gauge = Arc::new(Counts { now: AtomicUsize::new(0), max: AtomicUsize::new(0) });
    let set = ToolSet::new().with(Arc::new(Gauge(Arc::clone(&gauge))));
    let calls: Vec<Part> =
        (0..50).map(|i| Part::tool_call(i.to_string(), "gauge", json!({"i": i}))).collect();
    let results = set.run_calls(&ctx(), &calls).await.expect("not cancelled");
    assert_eq!(gauge.max.load(Ordering::SeqCst), 8, "at most 8, and the 8 were used");
    let order: Vec<Value> = results
        .iter()
        .map(|r| match r {
            Part::ToolResult { result, .. } => result["i"].clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(order, (0..50).map(|i| json!(i)).collect::<Vec<_>>(), "results keep call order");
}

#[tokio::test]
async fn execute_timeouts_are_clamped_and_bad_ones_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let set = ToolSet::workspace(Arc::new(confined(dir.path())));
    let calls = vec![
        Part::tool_call("big", "execute", json!({"command": "echo fine", "timeout": 1e18})),
        Part::tool_call("neg", "execute", json!({"command": "echo no", "timeout": -1})),
        Part::tool_call(
            "slow",
            "execute",
            json!({"command": "echo partial; sleep 5", "timeout": 0.3}),
        ),
    ];
    let results = set.run_calls(&ctx(), &calls).await.expect("not cancelled");
    let get = |i: usize| match &results[i] {
        Part::ToolResult { result, is_error, .. } => (result.clone(), *is_error),
        other => panic!("{other:?}"),
    };
    assert_eq!(get(0).0["output"], "fine\n", "a huge timeout is clamped, not a panic");
    assert!(get(1).1 && get(1).0["error"].as_str().is_some_and(|e| e.contains("timeout")));
    let (slow, is_error) = get(2);
    assert!(is_error, "a timeout is an error result");
    assert_eq!(
        (slow["exit_code"].clone(), slow["output"].clone()),
        (json!(-1), json!("partial\n"))
    );
    assert!(slow["error"].as_str().is_some_and(|e| e.contains("timed out")), "{slow}");
}

#[tokio::test]
async fn the_workspace_default_and_maximum_timeouts_are_configurable() {
    let dir = tempfile::tempdir().expect("dir");
    let ws =
        confined(dir.path()).with_timeouts(Duration::from_millis(300), Duration::from_millis(500));
    let started = Instant::now();
    let out = ws.execute(&ctx(), &ExecRequest::new("sleep 5")).await.expect("runs");
    assert!(out.timed_out && started.elapsed() < Duration::from_secs(3), "the default applied");
    let asked = ExecRequest::new("sleep 5").with_timeout(Duration::from_secs(60));
    let started = Instant::now();
    let out = ws.execute(&ctx(), &asked).await.expect("runs");
    assert!(out.timed_out && started.elapsed() < Duration::from_secs(3), "clamped to the maximum");
}

/// BEHAVIOUR §15: a command that outlives its timeout gets TERM, then KILL 2 s later when it
/// ignores TERM; nothing of it is left.
#[tokio::test]
async fn a_command_that_ignores_term_is_killed_two_seconds_later() {
    let dir = tempfile::tempdir().expect("dir");
    let set = ToolSet::workspace(Arc::new(confined(dir.path())));
    let marker = format!("term-ignorer-{}", uuid::Uuid::new_v4().simple());
    let command = format!(
        ": {marker}; trap 'echo term >> got-term' TERM; echo started; while :; do sleep 0.05; done"
    );
    let calls =
        vec![Part::tool_call("stubborn", "execute", json!({"command": command, "timeout": 0.3}))];
    let started = Instant::now();
    let results = set.run_calls(&ctx(), &calls).await.expect("not cancelled");
    let waited = started.elapsed();
    let Part::ToolResult { result, is_error: true, .. } = &results[0] else {
        panic!("{:?}", results[0])
    };
    assert!(result["error"].as_str().is_some_and(|e| e.contains("timed out")), "{result}");
    let got = std::fs::read_to_string(dir.path().join("got-term")).unwrap_or_default();
    assert!(got.contains("term"), "TERM came first and was ignored: {result}");
    assert!(processes_with(&marker).is_empty(), "KILL ended it: {:?}", processes_with(&marker));
    println!("TERM at 0.3 s, ignored; the call returned after {waited:?}");
    assert!(
        waited >= Duration::from_millis(300) + chatd_core::testing::pinned::TERM_GRACE,
        "KILL only after the 2 s grace: {waited:?}"
    );
    assert!(waited < Duration::from_secs(10), "never waits for the command: {waited:?}");
}
