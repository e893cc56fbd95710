use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::part::Part;

fn ctx() -> ToolContext {
    ToolContext::new(
        ChatId::new(),
        UserId::new(),
        crate::chat::ChatKind::Root,
        CancellationToken::new(),
    )
}

/// Runs `command` in `ws` with `timeout`, in `workdir`.
async fn exec(
    ws: &LocalWorkspace,
    command: &str,
    timeout: Duration,
    workdir: Option<&str>,
) -> Result<ExecOutput, ToolError> {
    let mut request = ExecRequest::new(command).with_timeout(timeout);
    request.workdir = workdir.map(str::to_owned);
    ws.execute(&ctx(), &request).await
}

fn text(window: FileWindow) -> String {
    window.content
}

/// A tool whose behaviour is a closure.
struct Scripted {
    name: &'static str,
    run: Arc<
        dyn Fn(Value) -> futures::future::BoxFuture<'static, Result<Value, ToolError>>
            + Send
            + Sync,
    >,
}

#[async_trait]
impl Tool for Scripted {
    fn name(&self) -> &str {
        self.name
    }
    fn description(&self) -> &str {
        "test tool"
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object"})
    }
    async fn run(&self, _ctx: &ToolContext, args: Value) -> Result<Value, ToolError> {
        (self.run)(args).await
    }
}

fn tool(
    name: &'static str,
    run: impl Fn(Value) -> futures::future::BoxFuture<'static, Result<Value, ToolError>>
    + Send
    + Sync
    + 'static,
) -> Arc<dyn Tool> {
    Arc::new(Scripted { name, run: Arc::new(run) })
}

fn result_of(part: &Part) -> (&Value, bool) {
    match part {
        Part::ToolResult { result, is_error, .. } => (result, *is_error),
        other => panic!("not a result: {other:?}"),
    }
}

#[tokio::test]
async fn calls_run_concurrently_and_results_keep_call_order() {
    // Both calls must be running at once to pass the barrier; sequential execution would hang.
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let (b1, b2) = (Arc::clone(&barrier), Arc::clone(&barrier));
    let set = ToolSet::new()
        .with(tool("slow", move |_| {
            let b = Arc::clone(&b1);
            Box::pin(async move {
                b.wait().await;
                tokio::time::sleep(Duration::from_millis(30)).await;
                Ok(json!("slow done"))
            })
        }))
        .with(tool("fast", move |_| {
            let b = Arc::clone(&b2);
            Box::pin(async move {
                b.wait().await;
                Ok(json!("fast done"))
            })
        }));
    let calls =
        vec![Part::tool_call("1", "slow", json!({})), Part::tool_call("2", "fast", json!({}))];
    let results = tokio::time::timeout(Duration::from_secs(5), set.run_calls(&ctx(), &calls))
        .await
        .expect("concurrent")
        .expect("not cancelled");
    assert_eq!(
        results,
        vec![
            Part::tool_result("1", "slow", json!("slow done"), false),
            Part::tool_result("2", "fast", json!("fast done"), false),
        ]
    );
}

#[tokio::test]
async fn unknown_tools_errors_and_panics_become_error_results() {
    let set = ToolSet::new()
        .with(tool("fails", |_| Box::pin(async { Err(ToolError::new("disk full")) })))
        .with(tool("panics", |_| Box::pin(async { panic!("boom") })))
        .with(tool("works", |args| Box::pin(async move { Ok(args) })));
    let calls = vec![
        Part::tool_call("a", "missing", json!({})),
        Part::tool_call("b", "fails", json!({})),
        Part::tool_call("c", "panics", json!({})),
        Part::tool_call("d", "works", json!({"x": 1})),
        Part::ToolCall {
            tool_call_id: "e".into(),
            tool_name: "web_search".into(),
            args: json!({}),
            provider_executed: true,
            provider_metadata: None,
        },
    ];
    let results = set.run_calls(&ctx(), &calls).await.expect("not cancelled");
    assert_eq!(results.len(), 4, "provider-executed calls are not run locally");
    assert_eq!(result_of(&results[0]), (&json!("Tool not found: missing"), true));
    assert_eq!(result_of(&results[1]), (&json!({"error": "disk full"}), true));
    assert_eq!(result_of(&results[2]), (&json!("tool panicked: boom"), true));
    assert_eq!(result_of(&results[3]), (&json!({"x": 1}), false), "the other calls still ran");
}

fn workspace() -> (tempfile::TempDir, LocalWorkspace) {
    let dir = tempfile::tempdir().expect("tempdir");
    let workspace =
        LocalWorkspace::open_with(dir.path(), &SandboxPolicy::new(SandboxMode::BestEffort))
            .expect("workspace");
    (dir, workspace)
}

#[tokio::test]
async fn files_are_read_written_and_read_by_line_range() {
    let (_dir, ws) = workspace();
    ws.write_file(&ctx(), "src/lib.rs", "one\ntwo\nthree\nfour\n").await.expect("write");
    assert_eq!(
        text(ws.read_file(&ctx(), "src/lib.rs", None, None).await.expect("read")),
        "one\ntwo\nthree\nfour\n"
    );
    assert_eq!(
        text(ws.read_file(&ctx(), "src/lib.rs", Some(2), Some(2)).await.expect("range")),
        "two\nthree\n"
    );
    let err = ws.read_file(&ctx(), "missing.rs", None, None).await.expect_err("missing");
    assert!(err.message().contains("no such file"), "{err}");
}

#[tokio::test]
async fn paths_cannot_escape_the_workspace() {
    let outside = tempfile::tempdir().expect("outside");
    std::fs::write(outside.path().join("secret.txt"), "top secret").expect("secret");
    let (dir, ws) = workspace();
    #[cfg(unix)]
    std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).expect("symlink");
    let escapes = ["../secret.txt", "/etc/passwd", "a/../../secret.txt", "link/secret.txt"];
    for path in escapes {
        assert!(ws.read_file(&ctx(), path, None, None).await.is_err(), "read {path}");
        assert!(ws.write_file(&ctx(), path, "x").await.is_err(), "write {path}");
    }
    assert_eq!(
        std::fs::read_to_string(outside.path().join("secret.txt")).expect("intact"),
        "top secret"
    );
    let err = exec(&ws, "pwd", Duration::from_secs(5), Some("../")).await.expect_err("escape");
    assert!(err.message().contains("escapes") || err.message().contains("no such"), "{err}");
}

#[tokio::test]
async fn edits_apply_all_or_none_per_file() {
    let (_dir, ws) = workspace();
    ws.write_file(&ctx(), "a.txt", "alpha beta gamma beta").await.expect("write");
    let edits = vec![
        FileEdit { search: "alpha".into(), replace: "ALPHA".into() },
        FileEdit { search: "beta".into(), replace: "BETA".into() },
    ];
    let err = ws.edit_file(&ctx(), "a.txt", &edits).await.expect_err("ambiguous");
    assert!(err.message().contains("found 2 times"), "{err}");
    assert_eq!(
        text(ws.read_file(&ctx(), "a.txt", None, None).await.expect("read")),
        "alpha beta gamma beta",
        "nothing applied"
    );
    let edits = vec![
        FileEdit { search: "alpha".into(), replace: "ALPHA".into() },
        FileEdit { search: "gamma".into(), replace: "GAMMA".into() },
    ];
    ws.edit_file(&ctx(), "a.txt", &edits).await.expect("edit");
    assert_eq!(
        text(ws.read_file(&ctx(), "a.txt", None, None).await.expect("read")),
        "ALPHA beta GAMMA beta"
    );
    let missing = [FileEdit { search: "delta".into(), replace: "x".into() }];
    let err = ws.edit_file(&ctx(), "a.txt", &missing).await.expect_err("missing");
    assert!(err.message().contains("not found"), "{err}");
}

#[cfg(unix)]
#[tokio::test]
async fn execute_is_non_interactive_and_reports_exit_codes() {
    let (dir, ws) = workspace();
    std::fs::create_dir(dir.path().join("sub")).expect("sub");
    let out = exec(
        &ws,
        "echo $GIT_EDITOR $EDITOR $GIT_TERMINAL_PROMPT $PAGER $TERM $NO_COLOR; pwd; echo oops >&2; exit 3",
        Duration::from_secs(5),
        Some("sub"),
    )
    .await
    .expect("run");
    assert_eq!(out.exit_code, 3);
    let mut lines = out.output.lines();
    assert_eq!(lines.next(), Some("true true 0 cat dumb 1"));
    assert!(lines.next().is_some_and(|pwd| pwd.ends_with("/sub")));
    assert_eq!(lines.next(), Some("oops"));
    assert!(!out.truncated);
}

#[cfg(unix)]
#[tokio::test]
async fn execute_timeout_kills_the_whole_process_group() {
    let (_dir, ws) = workspace();
    let mark = format!("chatd-bg-{}", uuid::Uuid::new_v4().simple());
    let out = exec(
        &ws,
        &format!("echo started; sh -c 'sleep 30; : {mark}' & wait"),
        Duration::from_millis(500),
        None,
    )
    .await
    .expect("a timeout is an output");
    assert!(out.timed_out && out.exit_code == -1, "{out:?}");
    assert_eq!(out.output, "started\n", "the partial output is kept");
    // Inside a PID namespace `$!` means nothing here: find the child by its command line.
    let alive = || {
        std::fs::read_dir("/proc").into_iter().flatten().flatten().any(|entry| {
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            !stat.contains(") Z ") && String::from_utf8_lossy(&cmdline).contains(&mark)
        })
    };
    let mut gone = false;
    for _ in 0..50 {
        if !alive() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "the background sleep survived the timeout");
}

#[cfg(unix)]
#[tokio::test]
async fn execute_output_is_capped_on_a_utf8_boundary() {
    let (_dir, ws) = workspace();
    let out =
        exec(&ws, "for i in $(seq 1 20000); do printf 'é✓'; done", Duration::from_secs(10), None)
            .await
            .expect("run");
    assert!(out.truncated);
    assert_eq!(out.total_bytes, 20_000 * 5, "every byte is counted");
    assert!(out.output.len() <= MAX_OUTPUT_BYTES);
    assert!(out.output.len() > MAX_OUTPUT_BYTES - 4, "cut at most one character short");
    assert!(out.output.ends_with('é') || out.output.ends_with('✓'));
}

#[tokio::test]
async fn workspace_tools_offer_schemas_and_run_through_the_set() {
    let (_dir, ws) = workspace();
    let set = ToolSet::workspace(Arc::new(ws));
    assert_eq!(set.names(), vec!["read_file", "write_file", "edit_files", "execute"]);
    let without = set.clone().without("execute").without("no_such_tool");
    assert_eq!(without.names(), vec!["read_file", "write_file", "edit_files"]);
    let definitions = set.definitions();
    let read = definitions.iter().find(|d| d.name == "read_file").expect("read_file");
    assert_eq!(read.input_schema["properties"]["path"]["type"], "string");
    assert_eq!(read.input_schema["required"], json!(["path"]));
    let calls = vec![
        Part::tool_call("w", "write_file", json!({"path": "hello.txt", "content": "hi"})),
        Part::tool_call("bad", "read_file", json!({"path": "hello.txt", "unknown": 1})),
    ];
    let results = set.run_calls(&ctx(), &calls).await.expect("not cancelled");
    assert_eq!(result_of(&results[0]), (&json!({"written": "hello.txt", "bytes": 2}), false));
    let (error, is_error) = result_of(&results[1]);
    assert!(
        is_error && error["error"].as_str().is_some_and(|e| e.contains("unknown field")),
        "{error}"
    );
    let read = set
        .run_calls(&ctx(), &[Part::tool_call("r", "read_file", json!({"path": "hello.txt"}))])
        .await
        .expect("not cancelled");
    assert_eq!(result_of(&read[0]), (&json!({"content": "hi"}), false));
}

#[test]
fn truncation_never_splits_a_character() {
    assert_eq!(workspace::truncate_utf8("héllo", 2), "h");
    assert_eq!(workspace::truncate_utf8("héllo", 3), "hé");
    assert_eq!(workspace::truncate_utf8("abc", 10), "abc");
}

#[tokio::test]
async fn oversized_arguments_are_answered_not_run() {
    let set = ToolSet::new()
        .with(tool("echo", |args| Box::pin(async move { Ok(args) })))
        .with_max_args_bytes(64);
    let calls = vec![
        Part::tool_call("small", "echo", json!({"x": 1})),
        Part::tool_call("big", "echo", json!({"x": "y".repeat(100)})),
    ];
    let results = set.run_calls(&ctx(), &calls).await.expect("not cancelled");
    assert_eq!(result_of(&results[0]), (&json!({"x": 1}), false));
    let (big, is_error) = result_of(&results[1]);
    assert!(is_error);
    assert!(
        big.as_str().is_some_and(
            |e| e.starts_with("invalid tool arguments:") && e.contains("more than the 64")
        ),
        "{big}"
    );
}

/// A set with a call that finishes at once, one that never does, and one refused before it
/// runs: the mix a stop meets (issue: the second await of a finished call panicked).
fn finished_and_running() -> (ToolSet, Vec<Part>) {
    let set = ToolSet::new()
        .with(tool("quick", |_| Box::pin(async { Ok(json!("quick done")) })))
        .with(tool("hangs", |_| Box::pin(futures::future::pending())));
    let calls = vec![
        Part::tool_call("1", "quick", json!({})),
        Part::tool_call("2", "hangs", json!({})),
        Part::tool_call("3", "quick", json!([])),
        Part::tool_call("4", "quick", json!({})),
    ];
    (set, calls)
}

#[tokio::test]
async fn a_stop_keeps_the_results_of_finished_calls_and_never_panics() {
    let (set, calls) = finished_and_running();
    let context = ctx();
    let cancel = context.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        cancel.cancel();
    });
    let stopped = tokio::time::timeout(Duration::from_secs(5), set.run_calls(&context, &calls))
        .await
        .expect("the stop ends the calls")
        .expect_err("cancelled");
    assert_eq!(
        stopped.finished,
        vec![
            Part::tool_result("1", "quick", json!("quick done"), false),
            Part::tool_result(
                "3",
                "quick",
                json!("invalid tool arguments: expected a JSON object, got an array"),
                true
            ),
            Part::tool_result("4", "quick", json!("quick done"), false),
        ],
        "finished calls keep their real results; the running one has none"
    );
}

#[tokio::test]
async fn a_stop_before_any_call_finishes_keeps_nothing_but_refusals() {
    let set = ToolSet::new().with(tool("hangs", |_| Box::pin(futures::future::pending())));
    let calls =
        vec![Part::tool_call("1", "hangs", json!({})), Part::tool_call("2", "nope", json!({}))];
    let context = ctx();
    context.cancel.cancel();
    let stopped = set.run_calls(&context, &calls).await.expect_err("cancelled");
    assert_eq!(
        stopped.finished,
        vec![Part::tool_result("2", "nope", json!("Tool not found: nope"), true)]
    );
}

/// A sparse file of `size` bytes with no newline at all.
fn sparse(dir: &std::path::Path, name: &str, size: u64) {
    let file = std::fs::File::create(dir.join(name)).expect("create");
    file.set_len(size).expect("a sparse file");
}

#[tokio::test]
async fn an_offset_past_the_scan_budget_is_answered_not_read_through() {
    let (dir, ws) = workspace();
    sparse(dir.path(), "huge.bin", 4 << 30);
    let err = ws
        .read_file(&ctx(), "huge.bin", Some(2), Some(10))
        .await
        .expect_err("line 2 lies beyond the scan budget");
    assert!(err.to_string().contains("is not within the first 256 MiB"), "{err}");
    // A small budget applies too, and an offset inside it still reads.
    let ws = ws.with_skip_cap(4);
    ws.write_file(&ctx(), "small.txt", "one\ntwo\nthree\n").await.expect("write");
    let err = ws.read_file(&ctx(), "small.txt", Some(3), None).await.expect_err("budget");
    assert!(err.to_string().contains("line 3 is not within the first 0 MiB"), "{err}");
    assert_eq!(
        text(ws.read_file(&ctx(), "small.txt", Some(2), None).await.expect("2")),
        "two\nthree\n"
    );
    // A file that ends exactly at the budget: the offset lies past its end, an empty window.
    ws.write_file(&ctx(), "four.txt", "one\n").await.expect("write");
    assert_eq!(
        text(ws.read_file(&ctx(), "four.txt", Some(2), None).await.expect("past the end")),
        ""
    );
}

#[tokio::test]
async fn a_cancelled_read_stops_scanning_at_once() {
    let (dir, ws) = workspace();
    // 1 TiB of holes: scanning it through would take about an hour.
    sparse(dir.path(), "vast.bin", 1 << 40);
    let ws = ws.with_skip_cap(u64::MAX);
    let context = ctx();
    let tracker = context.tasks.clone();
    let call = tokio::spawn(async move { ws.read_file(&context, "vast.bin", Some(2), None).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!call.is_finished(), "the scan is under way");
    call.abort();
    let _ = call.await;
    tracker.close();
    // The blocking scan is what the turn waits for: it must notice the cancellation.
    tokio::time::timeout(Duration::from_secs(20), tracker.wait())
        .await
        .expect("the cancelled scan stopped (it would otherwise read for about an hour)");
}

#[tokio::test]
async fn handing_the_workspace_over_never_follows_a_link_out() {
    use std::os::unix::fs::MetadataExt;
    let outside = tempfile::tempdir().expect("outside");
    std::fs::write(outside.path().join("precious"), "root's").expect("precious");
    let dir = tempfile::tempdir().expect("workspace");
    std::fs::create_dir(dir.path().join("sub")).expect("sub");
    std::fs::write(dir.path().join("sub/file"), "x").expect("file");
    std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).expect("dir link");
    std::os::unix::fs::symlink(outside.path().join("precious"), dir.path().join("filelink"))
        .expect("file link");
    let owner_of = |p: &std::path::Path| std::fs::symlink_metadata(p).expect("meta").uid();
    let me = owner_of(std::path::Path::new("/proc/self"));
    let _ws = LocalWorkspace::open_with(dir.path(), &SandboxPolicy::new(SandboxMode::BestEffort))
        .expect("workspace");
    let handed = if me == 0 { SandboxUser::NOBODY.uid } else { me };
    println!("worker uid {me}: the workspace belongs to uid {handed} after opening");
    for inside in ["", "sub", "sub/file", "link", "filelink"] {
        assert_eq!(owner_of(&dir.path().join(inside)), handed, "{inside:?}");
    }
    for beyond in [outside.path().to_path_buf(), outside.path().join("precious")] {
        assert_eq!(owner_of(&beyond), me, "{} was given away through a link", beyond.display());
    }
}

#[tokio::test]
async fn writes_through_dot_dot_inside_the_workspace_still_work_and_are_handed_over() {
    use std::os::unix::fs::MetadataExt;
    let (dir, ws) = workspace();
    for path in ["a/b/../c/./f.txt", "a/../g.txt"] {
        ws.write_file(&ctx(), path, "x").await.unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    let me = std::fs::metadata("/proc/self").expect("me").uid();
    let handed = if me == 0 { SandboxUser::NOBODY.uid } else { me };
    for made in ["a", "a/b", "a/c", "a/c/f.txt", "g.txt"] {
        let owner = std::fs::symlink_metadata(dir.path().join(made)).expect(made).uid();
        assert_eq!(owner, handed, "{made}");
    }
    println!("worker uid {me}: written through `..`, owned by uid {handed}");
}
