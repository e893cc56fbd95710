//! Crash and fault tests (issue 6): real worker processes (`chatd-test-node`) against a
//! fresh PostgreSQL database, a fake Chat Completions server in this process, heartbeat 1 s
//! and stale 3 s. Each test kills, freezes or stops a worker mid-turn (or cuts the
//! database's connections) and checks that the turn still completes exactly once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chatd_core::events::{ChatEvent, ChatEventKind, SubscribeOptions, subscribe};
use chatd_core::store::{ChatStore, MessageQuery};
use chatd_core::{
    ChatId, ChatStatus, NewChat, NewModelConfig, NewProvider, ProviderKind, Role, UserId,
};
use chatd_providers::testing::{FakeResponse, FakeServer};
use chatd_store_postgres::PgFeedOptions;
use chatd_tests::node::Node;
use chatd_tests::pg::FreshDb;
use futures::StreamExt;
use nix::sys::signal::Signal;

const HEARTBEAT: Duration = Duration::from_secs(1);
const STALE: Duration = Duration::from_secs(3);

/// A Chat Completions stream of `words` one per event, sent `per_chunk` bytes at a time.
fn answer(words: &[String]) -> Vec<u8> {
    let chunk = |delta: &str, finish: &str| {
        format!(
            "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\
             \"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n"
        )
    };
    let mut body: String =
        words.iter().map(|w| chunk(&format!("{{\"content\":\"{w} \"}}"), "null")).collect();
    body.push_str(&chunk("{}", "\"stop\""));
    body.push_str("data: [DONE]\n\n");
    body.into_bytes()
}

/// About `seconds` of streaming, then a 600 ms pause before the finish.
fn slow(seconds: u64) -> FakeResponse {
    let words: Vec<String> = (0..seconds * 10).map(|i| format!("slow{i}")).collect();
    let body = answer(&words);
    let chunks = (body.len() / 64).max(1) as u64;
    FakeResponse::sse(body)
        .chunked(64)
        .with_chunk_delay(Duration::from_millis(seconds * 1000 / chunks))
        .with_final_pause(Duration::from_millis(600))
}

fn fast(text: &str) -> FakeResponse {
    FakeResponse::sse(answer(&[text.to_owned()]))
}

struct Cluster {
    db: FreshDb,
    store: Arc<dyn ChatStore>,
    server: FakeServer,
}

async fn cluster(responses: Vec<FakeResponse>) -> Cluster {
    let db = FreshDb::create().await;
    let server = FakeServer::start(responses).await.expect("fake server");
    let store: Arc<dyn ChatStore> = Arc::new(db.store().await.with_feed_options(
        PgFeedOptions::default().with_poll_interval(Duration::from_millis(100)),
    ));
    store
        .create_provider(NewProvider::new(ProviderKind::OpenAiCompat).with_base_url(server.url()))
        .await
        .expect("provider");
    store
        .create_model_config(
            NewModelConfig::new(ProviderKind::OpenAiCompat, "m", 32_000).as_default(),
        )
        .await
        .expect("config");
    Cluster { db, store, server }
}

impl Cluster {
    async fn chat(&self, text: &str) -> ChatId {
        self.store.create_chat(NewChat::new(UserId::new()).with_text(text)).await.expect("chat").id
    }

    async fn until(
        &self,
        chat: ChatId,
        within: Duration,
        done: impl Fn(&chatd_core::Chat) -> bool,
    ) -> chatd_core::Chat {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(current) = self.store.get_chat(chat).await
                && done(&current)
            {
                return current;
            }
            assert!(
                Instant::now() < deadline,
                "timed out; chat: {:?}",
                self.store.get_chat(chat).await.ok()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the chat's step is streaming into the part log.
    async fn until_streaming(&self, chat: ChatId) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.store.read_parts(chat, None).await.map(|p| p.len()).unwrap_or(0) < 2 {
            assert!(Instant::now() < deadline, "the turn never streamed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn texts(&self, chat: ChatId) -> Vec<(Role, String)> {
        let messages = self.store.list_messages(chat, MessageQuery::all()).await.expect("messages");
        messages.iter().map(|m| (m.role, m.text().trim().to_owned())).collect()
    }

    /// Collects the chat's events in the background.
    async fn record(&self, chat: ChatId) -> Arc<Mutex<Vec<ChatEvent>>> {
        let options = SubscribeOptions::default().with_poll(Duration::from_millis(200));
        let mut events =
            subscribe(Arc::clone(&self.store), chat, None, options).await.expect("subscribe");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                sink.lock().expect("events").push(event);
            }
        });
        seen
    }
}

fn answered(text: &str) -> Vec<(Role, String)> {
    vec![(Role::User, "work".to_owned()), (Role::Assistant, text.to_owned())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_is_replaced_and_its_preview_reset() {
    let cl = cluster(vec![slow(8), fast("the answer")]).await;
    let chat = cl.chat("work").await;
    let events = cl.record(chat).await;
    let a = Node::worker(&cl.db, &[]);
    cl.until_streaming(chat).await;
    let mut a = a;
    a.child.start_kill().expect("SIGKILL");
    let _ = a.child.wait().await;
    let killed = Instant::now();
    let b = Node::worker(&cl.db, &[]);
    let done = cl.until(chat, Duration::from_secs(20), |c| c.status == ChatStatus::Waiting).await;
    let took = killed.elapsed();
    let budget = HEARTBEAT + STALE + STALE / 5 + Duration::from_secs(1);
    assert!(took <= budget, "took {took:?}, budget {budget:?}");
    assert_eq!(done.last_error, None);
    assert_eq!(cl.texts(chat).await, answered("the answer"), "nothing lost, nothing twice");
    b.wait_line(|l| l.starts_with(&format!("turn {chat}")), Duration::from_secs(5)).await;
    // The subscriber saw the dead worker's parts, then a reset, then the new answer.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = events.lock().expect("events").clone();
    let first_part = events
        .iter()
        .position(|e| matches!(e.kind, ChatEventKind::MessagePart { .. }))
        .expect("parts of A");
    let reset = events.iter().position(|e| e.kind == ChatEventKind::PreviewReset).expect("a reset");
    let answer = events
        .iter()
        .position(|e| matches!(&e.kind, ChatEventKind::Message { message } if message.role == Role::Assistant))
        .expect("the answer");
    assert!(first_part < reset && reset < answer, "{first_part} < {reset} < {answer}");
    cl.db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_worker_that_wakes_up_cannot_write_and_cancels_its_turn() {
    let cl = cluster(vec![slow(10), fast("the answer")]).await;
    let chat = cl.chat("work").await;
    let a = Node::worker(&cl.db, &[]);
    cl.until_streaming(chat).await;
    a.signal(Signal::SIGSTOP);
    let b = Node::worker(&cl.db, &[]);
    cl.until(chat, Duration::from_secs(20), |c| c.status == ChatStatus::Waiting).await;
    assert_eq!(cl.texts(chat).await, answered("the answer"));
    a.signal(Signal::SIGCONT);
    a.wait_line(|l| l == format!("turn {chat} lost"), Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = cl.store.get_chat(chat).await.expect("chat");
    assert_eq!((after.status, after.last_error), (ChatStatus::Waiting, None));
    assert_eq!(cl.texts(chat).await, answered("the answer"), "the zombie wrote nothing");
    assert!(cl.store.read_parts(chat, None).await.expect("parts").is_empty(), "not even parts");
    drop(b);
    cl.db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gracefully_stopped_worker_hands_its_turn_back() {
    let cl = cluster(vec![slow(8), fast("the answer")]).await;
    let chat = cl.chat("work").await;
    let mut a = Node::worker(&cl.db, &[]);
    cl.until_streaming(chat).await;
    a.signal(Signal::SIGTERM);
    let status = tokio::time::timeout(Duration::from_secs(10), a.child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(status.success());
    assert!(a.lines().contains(&"stopped".to_owned()));
    let pending = cl.store.get_chat(chat).await.expect("chat");
    assert_eq!((pending.status, pending.last_error), (ChatStatus::Pending, None));
    assert_eq!(cl.texts(chat).await, vec![(Role::User, "work".to_owned())]);
    let _b = Node::worker(&cl.db, &[]);
    let done = cl.until(chat, Duration::from_secs(10), |c| c.status == ChatStatus::Waiting).await;
    assert_eq!(done.last_error, None);
    assert_eq!(cl.texts(chat).await, answered("the answer"));
    cl.db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turns_finish_when_the_databases_connections_are_cut() {
    let responses: Vec<FakeResponse> = (0..16).map(|_| slow(1)).collect();
    let cl = cluster(responses).await;
    let mut chats = Vec::new();
    for _ in 0..4 {
        chats.push(cl.chat("work").await);
    }
    let _a = Node::worker(&cl.db, &[]);
    let admin = cl.db.store().await;
    let mut cut = 0;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let killed: Vec<(bool,)> = sqlx::query_as(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_all(admin.pool())
        .await
        .expect("terminate");
        cut += killed.len();
    }
    assert!(cut >= 4, "connections were cut ({cut})");
    for chat in &chats {
        let done =
            cl.until(*chat, Duration::from_secs(30), |c| c.status == ChatStatus::Waiting).await;
        assert_eq!(done.last_error, None);
        let texts = cl.texts(*chat).await;
        assert_eq!(texts[0], (Role::User, "work".to_owned()));
        assert!(
            texts[1..]
                .iter()
                .all(|(role, text)| *role == Role::Assistant && text.starts_with("slow0")),
            "{texts:?}"
        );
        assert!(texts.len() >= 2);
    }
    cl.db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_notifications_work_is_still_picked_up_and_streamed() {
    let cl = cluster(vec![slow(2)]).await;
    let quiet: Arc<dyn ChatStore> = Arc::new(cl.db.store().await.with_feed_options(
        PgFeedOptions::default().with_listen(false).with_poll_interval(Duration::from_millis(100)),
    ));
    let _a = Node::worker(&cl.db, &["--no-listen"]);
    let chat = cl.chat("work").await;
    let options = SubscribeOptions::default().with_poll(Duration::from_millis(300));
    let mut events = subscribe(Arc::clone(&quiet), chat, None, options).await.expect("subscribe");
    let (mut parts, mut answer) = (0, None);
    while answer.is_none() {
        let event = tokio::time::timeout(Duration::from_secs(20), events.next())
            .await
            .expect("in time")
            .expect("open");
        match event.kind {
            ChatEventKind::MessagePart { .. } => parts += 1,
            ChatEventKind::Message { message } if message.role == Role::Assistant => {
                answer = Some(message.text())
            }
            _ => {}
        }
    }
    assert!(parts > 0, "the step streamed through polling");
    assert!(answer.is_some_and(|a| a.starts_with("slow0")));
    cl.db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_in_two_processes_see_the_same_events() {
    let cl = cluster(vec![slow(2)]).await;
    let chat = cl.chat("work").await;
    let chat_arg = chat.to_string();
    let subscribers: Vec<Node> = (0..2)
        .map(|_| Node::spawn(&["subscribe", "--database-url", &cl.db.url, "--chat", &chat_arg]))
        .collect();
    for node in &subscribers {
        node.wait_line(|l| l == "ready", Duration::from_secs(10)).await;
    }
    let _a = Node::worker(&cl.db, &[]);
    cl.until(chat, Duration::from_secs(20), |c| c.status == ChatStatus::Waiting).await;
    // The turn's end is the last event of the run.
    let finished = |l: &str| l.contains("\"type\":\"turn_ended\"");
    let mut seen = Vec::new();
    for node in &subscribers {
        let deadline = Instant::now() + Duration::from_secs(10);
        while node.lines().iter().filter(|l| finished(l)).count() < 1 {
            assert!(Instant::now() < deadline, "{:?}", node.lines());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        seen.push(node.lines());
    }
    assert!(seen[0].iter().filter(|l| l.contains("message_part")).count() > 5, "{:?}", seen[0]);
    if seen[0] != seen[1] {
        let at = seen[0]
            .iter()
            .zip(&seen[1])
            .position(|(a, b)| a != b)
            .unwrap_or(seen[0].len().min(seen[1].len()));
        panic!(
            "the sequences differ at line {at}:\n  first:  {:?}\n  second: {:?}\n(lengths {} and {})",
            seen[0].get(at.saturating_sub(1)..(at + 2).min(seen[0].len())),
            seen[1].get(at.saturating_sub(1)..(at + 2).min(seen[1].len())),
            seen[0].len(),
            seen[1].len()
        );
    }
    cl.db.drop().await;
}

// ----- durable tool calls (BEHAVIOUR §16) ---------------------------------------------------

/// A Chat Completions stream that calls `calls` (`(id, tool, args)`) and finishes with
/// `tool_calls`.
fn calling(calls: &[(&str, &str, serde_json::Value)]) -> FakeResponse {
    let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
        let body = serde_json::json!({"id": "c", "object": "chat.completion.chunk", "created": 1,
            "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {body}\n\n")
    };
    let mut body = String::new();
    for (index, (id, name, args)) in calls.iter().enumerate() {
        body.push_str(&chunk(
            serde_json::json!({"tool_calls": [{"index": index, "id": id, "type": "function",
                "function": {"name": name, "arguments": args.to_string()}}]}),
            serde_json::Value::Null,
        ));
    }
    body.push_str(&chunk(serde_json::json!({}), serde_json::json!("tool_calls")));
    body.push_str("data: [DONE]\n\n");
    FakeResponse::sse(body.into_bytes())
}

/// The final answer, served only to a request that carries tool results.
fn after_tools(text: &str) -> FakeResponse {
    fast(text).when_body_contains("\"tool_call_id\"")
}

/// (a) The worker that ran a turn dies while the chat waits for an approval: nothing is
/// lost, and the approval given through another process is carried out by another worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_chat_outlives_its_worker_and_another_replica_finishes_it() {
    let marks = tempfile::tempdir().expect("marks");
    let dir = marks.path().to_str().expect("utf-8 path").to_owned();
    let cl =
        cluster(vec![calling(&[("c1", "mark", serde_json::json!({}))]), after_tools("done")]).await;
    let chat = cl.chat("work").await;
    let mut a = Node::worker(&cl.db, &["--marks", &dir, "--ask", "mark"]);
    cl.until(chat, Duration::from_secs(20), |c| c.status == ChatStatus::RequiresAction).await;
    a.child.start_kill().expect("SIGKILL");
    let _ = a.child.wait().await;
    // Waiting holds no lease: the stale sweep has nothing to recover.
    tokio::time::sleep(STALE + Duration::from_millis(500)).await;
    assert!(cl.store.recover_stale(STALE).await.expect("sweep").is_empty());
    let b = Node::worker(&cl.db, &["--marks", &dir, "--ask", "mark"]);
    let approve =
        chatd_core::tool_call::Decision::Approve { tool_call_id: "c1".into(), args: None };
    cl.store.resolve_tool_calls(chat, vec![approve]).await.expect("approve");
    let done = cl.until(chat, Duration::from_secs(20), |c| c.status == ChatStatus::Waiting).await;
    assert_eq!(done.last_error, None);
    assert_eq!(
        chatd_tests::marker::runs_in(marks.path(), chat, "mark"),
        1,
        "ran once, after approval"
    );
    let roles: Vec<Role> = cl.texts(chat).await.into_iter().map(|(role, _)| role).collect();
    assert_eq!(roles, [Role::User, Role::Assistant, Role::Tool, Role::Assistant]);
    b.wait_line(|l| l.starts_with(&format!("turn {chat}")), Duration::from_secs(5)).await;
    cl.db.drop().await;
}

/// (b) SIGKILL while a side-effecting call and an idempotent one run: the re-run on another
/// worker does not run the first again — the model gets the in-doubt result — and simply runs
/// the idempotent one again; the step is not streamed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_mid_call_never_runs_a_side_effect_twice() {
    let marks = tempfile::tempdir().expect("marks");
    let dir = marks.path().to_str().expect("utf-8 path").to_owned();
    let hang = serde_json::json!({"hang_ms": 60_000});
    let cl = cluster(vec![
        calling(&[("w", "mark", hang.clone()), ("r", "peek", hang)]),
        after_tools("checked"),
    ])
    .await;
    let chat = cl.chat("work").await;
    let mut a = Node::worker(&cl.db, &["--marks", &dir]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while chatd_tests::marker::runs_in(marks.path(), chat, "mark") == 0
        || chatd_tests::marker::runs_in(marks.path(), chat, "peek") == 0
    {
        assert!(Instant::now() < deadline, "the calls never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.child.start_kill().expect("SIGKILL");
    let _ = a.child.wait().await;
    let b = Node::worker(&cl.db, &["--marks", &dir]);
    let done = cl.until(chat, Duration::from_secs(20), |c| c.status == ChatStatus::Waiting).await;
    assert_eq!(done.last_error, None);
    assert_eq!(chatd_tests::marker::runs_in(marks.path(), chat, "mark"), 1, "never run twice");
    assert_eq!(
        chatd_tests::marker::runs_in(marks.path(), chat, "peek"),
        2,
        "idempotent: ran again"
    );
    let requests = cl.server.requests();
    assert_eq!(requests.len(), 2, "the step was not streamed again");
    let sent = requests[1].json().to_string();
    assert!(sent.contains(chatd_core::testing::pinned::IN_DOUBT_RESULT), "{sent}");
    assert!(sent.contains("\\\"runs\\\":2"), "the idempotent call's real result: {sent}");
    b.wait_line(|l| l.starts_with(&format!("turn {chat}")), Duration::from_secs(5)).await;
    cl.db.drop().await;
}

/// (c) Approvals arriving through one replica while another worker's deadline sweep runs:
/// each call is decided once — approved and run, or expired and never run — never both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_racing_the_deadline_sweep_decide_each_call_once() {
    const CHATS: usize = 16;
    let marks = tempfile::tempdir().expect("marks");
    let dir = marks.path().to_str().expect("utf-8 path").to_owned();
    let mut responses: Vec<FakeResponse> =
        (0..CHATS).map(|_| calling(&[("c1", "mark", serde_json::json!({}))])).collect();
    responses.extend((0..CHATS).map(|_| after_tools("done")));
    let cl = cluster(responses).await;
    let mut chats = Vec::new();
    for _ in 0..CHATS {
        chats.push(cl.chat("work").await);
    }
    let a = Node::worker(
        &cl.db,
        &["--marks", &dir, "--ask", "mark", "--approval-ms", "2500", "--deadline-sweep-ms", "20"],
    );
    for chat in &chats {
        cl.until(*chat, Duration::from_secs(30), |c| c.status == ChatStatus::RequiresAction).await;
    }
    // Aim at the deadline: the first calls were recorded earliest, so some approvals come
    // before their deadline passes and some after.
    let first = cl.store.get_chat(chats[0]).await.expect("chat").tool_calls[0].deadline();
    let wait =
        first.map_or(Duration::ZERO, |d| (d - chrono::Utc::now()).to_std().unwrap_or_default());
    tokio::time::sleep(wait.saturating_sub(Duration::from_millis(150))).await;
    let approvals = chats.iter().map(|chat| {
        let (store, chat) = (Arc::clone(&cl.store), *chat);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(fastrand::u64(0..400))).await;
            let approve =
                chatd_core::tool_call::Decision::Approve { tool_call_id: "c1".into(), args: None };
            (chat, store.resolve_tool_calls(chat, vec![approve]).await)
        })
    });
    let outcomes = futures::future::join_all(approvals).await;
    let (mut approved, mut expired) = (0, 0);
    for outcome in outcomes {
        let (chat, result) = outcome.expect("join");
        cl.until(chat, Duration::from_secs(30), |c| c.status == ChatStatus::Waiting).await;
        let messages = cl.store.list_messages(chat, MessageQuery::all()).await.expect("messages");
        let tool_rows: Vec<_> = messages.iter().filter(|m| m.role == Role::Tool).collect();
        assert_eq!(tool_rows.len(), 1, "the call was answered exactly once");
        let runs = chatd_tests::marker::runs_in(marks.path(), chat, "mark");
        match result {
            Ok(_) => {
                approved += 1;
                assert_eq!(runs, 1, "an approved call runs once");
            }
            Err(chatd_core::StoreError::Conflict(_)) => {
                expired += 1;
                assert_eq!(runs, 0, "an expired call never runs");
                assert!(tool_rows[0].text().is_empty());
                let chatd_core::Part::ToolResult { result, .. } = &tool_rows[0].content[0] else {
                    panic!("not a result")
                };
                assert_eq!(
                    result,
                    &serde_json::json!(chatd_core::testing::pinned::APPROVAL_EXPIRED)
                );
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
    println!("{approved} approvals won, {expired} calls expired first");
    assert_eq!(approved + expired, CHATS);
    drop(a);
    cl.db.drop().await;
}
