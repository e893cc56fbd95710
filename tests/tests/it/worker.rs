//! The worker and the event streams on the in-memory store: pickup on a hint, graceful
//! shutdown, lost leases, interrupts from another caller, and what subscribers see.

use std::sync::Arc;
use std::time::Duration;

use chatd_core::events::{ChatEvent, ChatEventKind, Cursor, SubscribeOptions, subscribe};
use chatd_core::provider::{ProviderError, StreamEvent};
use chatd_core::runtime::tools::ToolSet;
use chatd_core::runtime::turn::TurnRunner;
use chatd_core::runtime::worker::Worker;
use chatd_core::store::{ChatStore, MessageQuery, SendMessage};
use chatd_core::testing::{ScriptedCall, ScriptedProvider};
use chatd_core::{ChatId, ChatStatus, NewChat, Part, ProviderKind, Role, UserId};
use chatd_store_memory::InMemoryChatStore;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::support::Scripted;

struct World {
    store: Arc<dyn ChatStore>,
    provider: Arc<ScriptedProvider>,
}

async fn world(calls: Vec<ScriptedCall>) -> World {
    let store: Arc<dyn ChatStore> = Arc::new(InMemoryChatStore::new());
    chatd_tests::configure(store.as_ref()).await;
    World { store, provider: Arc::new(ScriptedProvider::new(ProviderKind::Anthropic, calls)) }
}

impl World {
    /// A worker that only finds work through hints (its poll is a minute).
    fn worker(&self) -> (CancellationToken, tokio::task::JoinHandle<()>) {
        let runner = TurnRunner::new(
            Arc::clone(&self.store),
            Arc::new(Scripted(Arc::clone(&self.provider))),
            ToolSet::new(),
        )
        .with_titles(false);
        let worker = Worker::new(Arc::clone(&self.store), runner)
            .with_poll(Duration::from_secs(60))
            .with_heartbeat(Duration::from_millis(100))
            .with_stale_after(Duration::from_secs(60));
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(worker.run(shutdown.clone()));
        (shutdown, handle)
    }

    async fn chat(&self, text: &str) -> ChatId {
        self.store.create_chat(NewChat::new(UserId::new()).with_text(text)).await.expect("chat").id
    }

    async fn until_status(&self, chat: ChatId, status: ChatStatus) -> chatd_core::Chat {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let current = self.store.get_chat(chat).await.expect("chat");
            if current.status == status {
                return current;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "still {:?}, wanted {status:?}",
                current.status
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn texts(&self, chat: ChatId) -> Vec<(Role, String)> {
        let messages = self.store.list_messages(chat, MessageQuery::all()).await.expect("messages");
        messages.iter().map(|m| (m.role, m.text())).collect()
    }
}

fn hang(text: &str) -> ScriptedCall {
    ScriptedCall::StreamThenHang(vec![
        Ok(StreamEvent::TextStart { id: "t".into() }),
        Ok::<_, ProviderError>(StreamEvent::TextDelta { id: "t".into(), delta: text.into() }),
    ])
}

async fn next(events: &mut futures::stream::BoxStream<'static, ChatEvent>) -> ChatEvent {
    tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("an event in time")
        .expect("stream open")
}

#[tokio::test]
async fn a_pending_hint_wakes_the_worker_and_subscribers_see_the_whole_turn() {
    let w = world(vec![ScriptedCall::text("hi there", None)]).await;
    let (shutdown, handle) = w.worker();
    let chat = w.chat("hello").await;
    let mut events = subscribe(Arc::clone(&w.store), chat, None, SubscribeOptions::default())
        .await
        .expect("subscribe");
    // The poll is a minute: only the hint can have started the turn this fast.
    w.until_status(chat, ChatStatus::Waiting).await;
    let mut kinds = Vec::new();
    loop {
        let event = next(&mut events).await;
        let done = matches!(&event.kind, ChatEventKind::Status { status: ChatStatus::Waiting, .. });
        kinds.push(event);
        if done {
            break;
        }
    }
    assert!(matches!(kinds[0].kind, ChatEventKind::Status { .. }), "status first: {kinds:#?}");
    let messages: Vec<String> = kinds
        .iter()
        .filter_map(|e| match &e.kind {
            ChatEventKind::Message { message } => Some(message.text()),
            _ => None,
        })
        .collect();
    assert_eq!(messages, vec!["hello", "hi there"]);
    let data: Vec<Cursor> = kinds.iter().filter(|e| e.kind.advances()).map(|e| e.cursor).collect();
    assert!(data.windows(2).all(|w| w[0] < w[1]), "cursors strictly increase: {data:?}");
    shutdown.cancel();
    handle.await.expect("worker");
}

#[tokio::test]
async fn graceful_shutdown_returns_the_turn_to_pending_without_an_error() {
    let w = world(vec![hang("half an ans")]).await;
    let (shutdown, handle) = w.worker();
    let chat = w.chat("long task").await;
    w.until_status(chat, ChatStatus::Running).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    shutdown.cancel();
    handle.await.expect("worker");
    let after = w.store.get_chat(chat).await.expect("chat");
    assert_eq!((after.status, after.last_error), (ChatStatus::Pending, None));
    assert_eq!(
        w.texts(chat).await,
        vec![(Role::User, "long task".to_owned())],
        "nothing of the step persisted"
    );
    assert!(w.store.read_parts(chat, None).await.expect("parts").is_empty(), "its preview is gone");
}

#[tokio::test]
async fn an_interrupt_from_another_caller_stops_the_turn_at_once() {
    let w = world(vec![hang("partial")]).await;
    let (shutdown, handle) = w.worker();
    let chat = w.chat("go").await;
    w.until_status(chat, ChatStatus::Running).await;
    tokio::time::sleep(Duration::from_millis(80)).await;
    w.store.interrupt(chat).await.expect("interrupt");
    let waiting = w.until_status(chat, ChatStatus::Waiting).await;
    assert_eq!(waiting.last_error, None);
    assert_eq!(
        w.texts(chat).await,
        vec![(Role::User, "go".to_owned()), (Role::Assistant, "partial".to_owned())]
    );
    shutdown.cancel();
    handle.await.expect("worker");
}

#[tokio::test]
async fn an_edit_takes_the_chat_away_and_the_old_turn_writes_nothing() {
    let w = world(vec![
        hang("about the old question"),
        ScriptedCall::text("about the new question", None),
    ])
    .await;
    let (shutdown, handle) = w.worker();
    let chat = w.chat("old question").await;
    w.until_status(chat, ChatStatus::Running).await;
    tokio::time::sleep(Duration::from_millis(80)).await;
    let first = w.store.list_messages(chat, MessageQuery::all()).await.expect("messages")[0].id;
    w.store.edit_message(chat, first, vec![Part::text("new question")]).await.expect("edit");
    // The edit made the chat pending: the worker drops the old turn and runs the new one.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while w.texts(chat).await.len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", w.texts(chat).await);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    w.until_status(chat, ChatStatus::Waiting).await;
    assert_eq!(
        w.texts(chat).await,
        vec![
            (Role::User, "new question".to_owned()),
            (Role::Assistant, "about the new question".to_owned())
        ]
    );
    shutdown.cancel();
    handle.await.expect("worker");
}

#[tokio::test]
async fn a_resubscribing_client_gets_what_it_missed_and_a_reset_for_a_dead_preview() {
    let w = world(vec![]).await;
    let chat = w.chat("question").await;
    let lease = w.store.acquire(chatd_core::WorkerId::new(), 1).await.expect("acquire")[0];
    let part = |episode: i64, seq: i64, delta: &str| chatd_core::store::NewPart {
        position: chatd_core::store::PartPosition { episode, seq },
        payload: serde_json::json!({"type": "stream", "event": {"type": "text-delta", "id": "t", "delta": delta}}),
    };
    w.store.append_parts(&lease, vec![part(5, 1, "a"), part(5, 2, "b")]).await.expect("append");
    let mut events = subscribe(Arc::clone(&w.store), chat, None, SubscribeOptions::default())
        .await
        .expect("subscribe");
    let mut cursor = Cursor::START;
    for _ in 0..4 {
        cursor = next(&mut events).await.cursor; // status, message, part a, part b
    }
    assert_eq!((cursor.episode, cursor.seq), (5, 2));
    drop(events);
    // While the client is away the worker dies; the chat is recovered and re-run.
    w.store.recover_stale(Duration::ZERO).await.expect("recover");
    let lease = w.store.acquire(chatd_core::WorkerId::new(), 1).await.expect("acquire")[0];
    w.store.append_parts(&lease, vec![part(9, 1, "c")]).await.expect("append");
    let mut events =
        subscribe(Arc::clone(&w.store), chat, Some(cursor), SubscribeOptions::default())
            .await
            .expect("resubscribe");
    let kinds: Vec<ChatEventKind> = vec![
        next(&mut events).await.kind,
        next(&mut events).await.kind,
        next(&mut events).await.kind,
    ];
    assert!(matches!(kinds[0], ChatEventKind::Status { status: ChatStatus::Running, .. }));
    assert_eq!(kinds[1], ChatEventKind::PreviewReset, "parts a and b were superseded");
    assert!(
        matches!(&kinds[2], ChatEventKind::MessagePart { part: StreamEvent::TextDelta { delta, .. } } if delta == "c")
    );
    w.store.send_message(chat, SendMessage::text("queued")).await.expect("queue");
    loop {
        // The first queue update is the (empty) queue at subscription time.
        if let ChatEventKind::QueueUpdate { queue } = next(&mut events).await.kind
            && queue.len() == 1
        {
            break;
        }
    }
}

#[tokio::test]
async fn the_health_snapshot_counts_what_the_worker_did() {
    let w = world(vec![ScriptedCall::text("one", None), ScriptedCall::text("two", None)]).await;
    let runner = TurnRunner::new(
        Arc::clone(&w.store),
        Arc::new(Scripted(Arc::clone(&w.provider))),
        ToolSet::new(),
    )
    .with_titles(false);
    let worker = Worker::new(Arc::clone(&w.store), runner).with_poll(Duration::from_millis(20));
    let health = worker.health();
    assert_eq!((health.snapshot().acquired, health.snapshot().last_poll), (0, None));
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(worker.run(shutdown.clone()));
    for text in ["a", "b"] {
        let chat = w.chat(text).await;
        w.until_status(chat, ChatStatus::Waiting).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while health.snapshot().ended < 2 {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", health.snapshot());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let snapshot = health.snapshot();
    assert_eq!((snapshot.acquired, snapshot.ended, snapshot.running), (2, 2, 0), "{snapshot:?}");
    assert_eq!((snapshot.lease_losses, snapshot.failed_polls), (0, 0));
    assert!(snapshot.last_poll.is_some());
    shutdown.cancel();
    handle.await.expect("worker");
}

/// A worker with a retention policy applies it on its own: an idle chat is archived, then
/// purged with the chat archived by hand, and a running one is left alone (BEHAVIOUR §18).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_applies_its_retention_policy() {
    use chatd_core::runtime::worker::WorkerConfig;
    use chatd_core::store::RetentionPolicy;
    let w = world(vec![hang("still going")]).await;
    let owner = UserId::new();
    let idle = w.store.create_chat(NewChat::new(owner)).await.expect("idle").id;
    let archived = w.store.create_chat(NewChat::new(owner)).await.expect("archived").id;
    w.store.set_archived(archived, true).await.expect("archive");
    let busy = w.chat("keep going").await;
    // An upload no message referred to, and one bound to the chat that is purged.
    let files = w.store.file_store().expect("files");
    let limits = chatd_core::store::Limits::default();
    let png = || chatd_core::files::testing_png(1, 1);
    let new = |chat| chatd_core::NewFile::new(owner, chat, "a.png", png(), &limits).expect("file");
    let unbound = files.put_file(new(None)).await.expect("unbound").id;
    let bound = files.put_file(new(Some(archived))).await.expect("bound").id;
    let policy = RetentionPolicy::off()
        .with_archive_idle_after(Duration::ZERO)
        .with_purge_archived_after(Duration::ZERO)
        .with_purge_unbound_files_after(Duration::ZERO);
    let config = WorkerConfig::default()
        .with_poll(Duration::from_millis(20))
        .with_retention(policy, Duration::from_millis(50));
    let runner = TurnRunner::new(
        Arc::clone(&w.store),
        Arc::new(Scripted(Arc::clone(&w.provider))),
        ToolSet::new(),
    )
    .with_titles(false);
    let worker = Worker::new(Arc::clone(&w.store), runner).with_config(config);
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(worker.run(shutdown.clone()));
    w.until_status(busy, ChatStatus::Running).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while w.store.get_chat(idle).await.is_ok() || w.store.get_chat(archived).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "retention did not run");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let running = w.store.get_chat(busy).await.expect("the running chat stays");
    assert!(!running.archived && running.status == ChatStatus::Running);
    while files.read_file(None, unbound).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "the unbound upload was not purged");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(files.read_file(None, bound).await.expect_err("purged with its chat").is_not_found());
    shutdown.cancel();
    handle.await.expect("worker");
}
