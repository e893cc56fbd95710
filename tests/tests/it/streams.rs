//! What a client of the streams can live on, on both stores: turn lifecycle events (also
//! for a subscriber that arrives after the turn), history rewrites on edit, `send_and_wait`,
//! one shared reader per chat with independent cursors, and the resumable chat-list view.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chatd_core::events::{ChatEvent, ChatEventKind, OwnerEventKind, Streams, SubscribeOptions};
use chatd_core::runtime::tools::ToolSet;
use chatd_core::runtime::turn::TurnRunner;
use chatd_core::runtime::worker::Worker;
use chatd_core::status::TurnEnding;
use chatd_core::store::{
    ChatStore, ListCursor, MessageQuery, NewPart, PartPosition, SendMessage, Step,
};
use chatd_core::testing::{ScriptedCall, ScriptedProvider};
use chatd_core::{
    Actor, ChatStatus, ChatUpdate, Chatd, NewChat, NewMessage, Part, ProviderKind, TurnOutcome,
    UserId, WorkerId,
};
use chatd_store_memory::InMemoryChatStore;
use chatd_tests::pg::FreshDb;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

async fn configured(store: Arc<dyn ChatStore>) -> Arc<dyn ChatStore> {
    chatd_tests::configure(store.as_ref()).await;
    store
}

async fn memory() -> Arc<dyn ChatStore> {
    configured(Arc::new(InMemoryChatStore::new())).await
}

async fn next<T>(events: &mut BoxStream<'static, T>) -> T {
    tokio::time::timeout(WAIT, events.next()).await.expect("an event in time").expect("open")
}

/// Reads until `stop` matches, returning everything read.
async fn until(
    events: &mut BoxStream<'static, ChatEvent>,
    stop: impl Fn(&ChatEventKind) -> bool,
) -> Vec<ChatEvent> {
    let mut read = Vec::new();
    loop {
        let event = next(events).await;
        let done = stop(&event.kind);
        read.push(event);
        if done {
            return read;
        }
    }
}

fn kinds(events: &[ChatEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| match &e.kind {
            ChatEventKind::Message { message } => format!("message:{}", message.text()),
            ChatEventKind::TurnStarted { turn } => format!("turn_started:{turn}"),
            ChatEventKind::TurnEnded { turn, ending } => format!("turn_ended:{turn}:{ending:?}"),
            ChatEventKind::HistoryRewritten { after_message_id } => {
                format!("rewritten:{after_message_id}")
            }
            ChatEventKind::Status { status, .. } => format!("status:{status}"),
            other => format!("{other:?}").chars().take(24).collect(),
        })
        .collect()
}

// ----- a subscriber that arrives after the turn -------------------------------------------

async fn late_subscriber_gets_the_turn_end(store: Arc<dyn ChatStore>) {
    let chat = store.create_chat(NewChat::new(UserId::new()).with_text("q")).await.expect("chat");
    let lease = store.acquire(WorkerId::new(), 1).await.expect("acquire")[0];
    let answer = NewMessage::assistant(vec![Part::text("a")]);
    store.commit_step(&lease, Step::new(Some(answer), vec![])).await.expect("commit");
    store.release(&lease, TurnOutcome::Finished).await.expect("release");
    // "Print until the turn ends" — from a subscriber that arrives afterwards.
    let streams = Streams::new(Arc::clone(&store), SubscribeOptions::default());
    let mut events = streams.subscribe(chat.id, None).await.expect("subscribe");
    let read = until(&mut events, |k| matches!(k, ChatEventKind::TurnEnded { .. })).await;
    assert_eq!(
        kinds(&read),
        ["status:waiting", "message:q", "turn_started:1", "message:a", "turn_ended:1:Finished"]
    );
    // Resuming after the end does not repeat it; the next turn is announced.
    let cursor = read.last().map(|e| e.cursor);
    let mut resumed = streams.subscribe(chat.id, cursor).await.expect("resume");
    assert_eq!(kinds(&[next(&mut resumed).await]), ["status:waiting"]);
    store.send_message(chat.id, SendMessage::text("q2")).await.expect("send");
    let lease = store.acquire(WorkerId::new(), 1).await.expect("acquire")[0];
    store.release(&lease, TurnOutcome::Failed("it broke".into())).await.expect("fail");
    let read = until(&mut resumed, |k| matches!(k, ChatEventKind::TurnEnded { .. })).await;
    let advancing: Vec<ChatEvent> = read.iter().filter(|e| e.kind.advances()).cloned().collect();
    assert_eq!(
        kinds(&advancing),
        ["message:q2", "turn_started:2", r#"turn_ended:2:Failed { reason: "it broke" }"#],
        "{:?}",
        kinds(&read)
    );
    assert!(kinds(&read).contains(&"status:error".to_owned()), "{:?}", kinds(&read));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_subscriber_hears_the_turn_end_in_memory() {
    late_subscriber_gets_the_turn_end(memory().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_subscriber_hears_the_turn_end_on_postgres() {
    let db = FreshDb::create().await;
    late_subscriber_gets_the_turn_end(configured(Arc::new(db.store().await)).await).await;
    db.drop().await;
}

// ----- edits -------------------------------------------------------------------------------

/// Applies events to a client-side history, as a UI would.
fn apply(history: &mut Vec<(i64, String)>, event: &ChatEvent) {
    match &event.kind {
        ChatEventKind::Message { message } => history.push((message.id.0, message.text())),
        ChatEventKind::HistoryRewritten { after_message_id } => {
            history.retain(|(id, _)| id <= after_message_id);
        }
        _ => {}
    }
}

async fn stored(store: &Arc<dyn ChatStore>, chat: chatd_core::ChatId) -> Vec<(i64, String)> {
    let messages = store.list_messages(chat, MessageQuery::user_visible_after(None)).await;
    messages.expect("messages").iter().map(|m| (m.id.0, m.text())).collect()
}

async fn edits_rewrite_what_subscribers_hold(store: Arc<dyn ChatStore>) {
    let chat = store.create_chat(NewChat::new(UserId::new()).with_text("q1")).await.expect("chat");
    let lease = store.acquire(WorkerId::new(), 1).await.expect("acquire")[0];
    for text in ["a1", "a2"] {
        let answer = NewMessage::assistant(vec![Part::text(text)]);
        store.commit_step(&lease, Step::new(Some(answer), vec![])).await.expect("commit");
    }
    store.release(&lease, TurnOutcome::Finished).await.expect("release");
    let streams = Streams::new(Arc::clone(&store), SubscribeOptions::default());
    let mut live = streams.subscribe(chat.id, None).await.expect("subscribe");
    let mut history = Vec::new();
    let before = until(&mut live, |k| matches!(k, ChatEventKind::TurnEnded { .. })).await;
    before.iter().for_each(|e| apply(&mut history, e));
    let stale_cursor = before[2].cursor; // after "q1" and the turn's start: a1, a2 unseen
    let question = history[0].0;
    store
        .edit_message(chat.id, chatd_core::MessageId(question), vec![Part::text("q1 edited")])
        .await
        .expect("edit");
    let after = until(&mut live, |k| matches!(k, ChatEventKind::Message { .. })).await;
    after.iter().for_each(|e| apply(&mut history, e));
    let rewritten = after
        .iter()
        .find_map(|e| match e.kind {
            ChatEventKind::HistoryRewritten { after_message_id } => Some(after_message_id),
            _ => None,
        })
        .expect("a history_rewritten event");
    assert_eq!(rewritten, question - 1);
    assert_eq!(history, stored(&store, chat.id).await, "the live client holds the stored history");
    // A client that resumes from before the edit converges too, and a cursor taken after
    // the rewrite never repeats it.
    for cursor in
        [Some(stale_cursor), before.last().map(|e| e.cursor), after.last().map(|e| e.cursor)]
    {
        let mut client: Vec<(i64, String)> = Vec::new();
        // What that client held at its cursor.
        for event in before.iter().chain(&after) {
            if Some(event.cursor) <= cursor && event.kind.advances() {
                apply(&mut client, event);
            }
        }
        let mut resumed = streams.subscribe(chat.id, cursor).await.expect("resume");
        let deadline = tokio::time::Instant::now() + WAIT;
        while client != stored(&store, chat.id).await {
            assert!(tokio::time::Instant::now() < deadline, "{client:?}");
            let event = tokio::time::timeout(Duration::from_millis(300), resumed.next()).await;
            match event {
                Ok(Some(event)) => {
                    if let (Some(cursor), true) = (cursor, event.kind.advances()) {
                        assert!(event.cursor > cursor, "{:?} repeats", event.kind);
                    }
                    apply(&mut client, &event);
                }
                Ok(None) => panic!("the stream ended"),
                Err(_) => {}
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_rewrite_what_subscribers_hold_in_memory() {
    edits_rewrite_what_subscribers_hold(memory().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_rewrite_what_subscribers_hold_on_postgres() {
    let db = FreshDb::create().await;
    edits_rewrite_what_subscribers_hold(configured(Arc::new(db.store().await)).await).await;
    db.drop().await;
}

// ----- send and wait -----------------------------------------------------------------------

async fn send_and_wait_follows_the_answering_turn(store: Arc<dyn ChatStore>) {
    let provider = Arc::new(ScriptedProvider::new(
        ProviderKind::Anthropic,
        vec![ScriptedCall::text("first answer", None), ScriptedCall::text("second answer", None)],
    ));
    let runner = TurnRunner::new(
        Arc::clone(&store),
        Arc::new(crate::support::Scripted(Arc::clone(&provider))),
        ToolSet::new(),
    )
    .with_titles(false);
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(
        Worker::new(Arc::clone(&store), runner)
            .with_poll(Duration::from_millis(20))
            .run(shutdown.clone()),
    );
    let owner = UserId::new();
    let actor = Actor::user(owner);
    let chatd = Chatd::new(Arc::clone(&store));
    let chat = chatd.create_chat(&actor, NewChat::new(owner)).await.expect("chat");
    let first = chatd
        .send_and_wait(&actor, chat.id, SendMessage::text("one"), WAIT)
        .await
        .expect("the first turn ends");
    assert_eq!(first.ending, TurnEnding::Finished);
    assert_eq!(first.messages.iter().map(|m| m.text()).collect::<Vec<_>>(), ["first answer"]);
    let second = chatd
        .send_and_wait(&actor, chat.id, SendMessage::text("two"), WAIT)
        .await
        .expect("the second turn ends");
    assert!(second.turn > first.turn);
    assert_eq!(second.messages.iter().map(|m| m.text()).collect::<Vec<_>>(), ["second answer"]);
    // With no answer left in the script the turn fails: the wait reports it, not a hang.
    let third = chatd
        .send_and_wait(&actor, chat.id, SendMessage::text("three"), WAIT)
        .await
        .expect("the third turn ends");
    assert!(matches!(third.ending, TurnEnding::Failed { .. }), "{:?}", third.ending);
    shutdown.cancel();
    worker.await.expect("worker");
    // Nobody runs the chat: the wait times out with a typed error.
    let err = chatd
        .send_and_wait(&actor, chat.id, SendMessage::text("four"), Duration::from_millis(200))
        .await
        .expect_err("no worker");
    assert!(matches!(err, chatd_core::ChatdError::TimedOut(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_and_wait_follows_the_answering_turn_in_memory() {
    send_and_wait_follows_the_answering_turn(memory().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_and_wait_follows_the_answering_turn_on_postgres() {
    let db = FreshDb::create().await;
    send_and_wait_follows_the_answering_turn(configured(Arc::new(db.store().await)).await).await;
    db.drop().await;
}

// ----- one shared reader -------------------------------------------------------------------

fn text_part(lease: &chatd_core::store::Lease, seq: i64) -> NewPart {
    NewPart {
        position: PartPosition { episode: lease.episode_base() + 1, seq },
        payload: serde_json::json!({"type": "stream", "event": {"type": "text-delta", "id": "t", "delta": format!("d{seq}")}}),
    }
}

/// Many subscribers share one reader; each gets every part once, in order — also one that
/// reads nothing for a while (it catches up from the store once the tail has moved past
/// it), and one that joins late from a cursor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_share_one_reader_and_keep_their_own_cursors() {
    let store = memory().await;
    let chat = store.create_chat(NewChat::new(UserId::new()).with_text("q")).await.expect("chat");
    let lease = store.acquire(WorkerId::new(), 1).await.expect("acquire")[0];
    let streams = Streams::new(Arc::clone(&store), SubscribeOptions::default());
    let mut eager = Vec::new();
    for _ in 0..20 {
        eager.push(streams.subscribe(chat.id, None).await.expect("subscribe"));
    }
    let mut sleepy = streams.subscribe(chat.id, None).await.expect("subscribe");
    assert_eq!(streams.followed_chats(), 1, "one reader for the chat");
    const PARTS: i64 = 300;
    let readers: Vec<_> = eager
        .into_iter()
        .map(|mut events| {
            tokio::spawn(async move {
                let mut deltas = Vec::new();
                while deltas.len() < PARTS as usize {
                    if let ChatEventKind::MessagePart { part } = next(&mut events).await.kind {
                        deltas.push(format!("{part:?}"));
                    }
                }
                deltas
            })
        })
        .collect();
    for seq in 1..=PARTS {
        store.append_parts(&lease, vec![text_part(&lease, seq)]).await.expect("append");
        if seq % 7 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let mut first = None;
    for reader in readers {
        let deltas = reader.await.expect("reader");
        assert_eq!(deltas.len(), PARTS as usize);
        assert!(first.get_or_insert_with(|| deltas.clone()) == &deltas, "same sequence");
    }
    // Many commits later (beyond the tail's window), the sleepy one still gets everything.
    for i in 0..300 {
        let answer = NewMessage::assistant(vec![Part::text(format!("m{i}"))]);
        store.commit_step(&lease, Step::new(Some(answer), vec![])).await.expect("commit");
    }
    let mut seen = Vec::new();
    let mut parts = 0;
    while seen.len() < 301 {
        match next(&mut sleepy).await.kind {
            ChatEventKind::Message { message } => seen.push(message.text()),
            ChatEventKind::MessagePart { .. } => parts += 1,
            _ => {}
        }
    }
    assert_eq!(seen[0], "q");
    assert_eq!(seen[1..], (0..300).map(|i| format!("m{i}")).collect::<Vec<_>>()[..]);
    assert!(parts <= PARTS, "no part twice");
    drop(sleepy);
}

// ----- the list view -----------------------------------------------------------------------

/// A client's model of its chat list.
#[derive(Debug, Default, PartialEq)]
struct ListModel(BTreeMap<chatd_core::ChatId, (String, ChatStatus, bool)>);

impl ListModel {
    fn apply(&mut self, event: &chatd_core::events::OwnerEvent) {
        let entry = self.0.get_mut(&event.chat_id);
        match (&event.kind, entry) {
            (OwnerEventKind::Created { chat }, _) => {
                self.0.insert(chat.id, (chat.title.clone(), chat.status, chat.archived));
            }
            (OwnerEventKind::Deleted, _) => {
                self.0.remove(&event.chat_id);
            }
            (OwnerEventKind::TitleChange { title }, Some(entry)) => entry.0 = title.clone(),
            (OwnerEventKind::StatusChange { status }, Some(entry)) => entry.1 = *status,
            (OwnerEventKind::Archived { archived }, Some(entry)) => entry.2 = *archived,
            (OwnerEventKind::DiffStatusChange { .. }, Some(_)) => {}
            (kind, None) => panic!("{kind:?} for a chat the client does not know"),
            (kind, _) => panic!("unexpected {kind:?}"),
        }
    }
}

async fn truth(store: &Arc<dyn ChatStore>, owner: UserId) -> ListModel {
    let mut filter = chatd_core::ChatFilter::owner(owner);
    filter.archived = None;
    filter.limit = chatd_core::ChatFilter::MAX_LIMIT;
    let page = store.list_chats(filter).await.expect("list");
    ListModel(page.items.into_iter().map(|c| (c.id, (c.title, c.status, c.archived))).collect())
}

async fn the_list_view_resumes_without_gaps_or_repeats(store: Arc<dyn ChatStore>, cases: u64) {
    let options = SubscribeOptions::default().with_poll(Duration::from_millis(50));
    for seed in 0..cases {
        let mut rng = fastrand::Rng::with_seed(seed);
        let owner = UserId::new();
        let mut chats = Vec::new();
        let mut model = ListModel::default();
        let mut cursor: Option<ListCursor> = None;
        let mut delivered: HashSet<(ListCursor, String)> = HashSet::new();
        for _round in 0..6 {
            // Some changes...
            for _ in 0..rng.usize(1..6) {
                match (rng.u8(0..6), chats.is_empty()) {
                    (0, _) | (_, true) => {
                        let chat = store.create_chat(NewChat::new(owner)).await.expect("create");
                        eprintln!("OP create {}", chat.id);
                        chats.push(chat.id);
                    }
                    (1, _) => {
                        let id = chats[rng.usize(..chats.len())];
                        store
                            .update_chat(id, ChatUpdate::title(format!("t{}", rng.u32(..4))))
                            .await
                            .expect("title");
                        eprintln!("OP title {id}");
                    }
                    (2, _) => {
                        let id = chats[rng.usize(..chats.len())];
                        store.set_archived(id, rng.bool()).await.expect("archive");
                    }
                    (3, _) => {
                        let id = chats[rng.usize(..chats.len())];
                        let _ = store.pause(id).await;
                    }
                    (4, _) => {
                        let id = chats.swap_remove(rng.usize(..chats.len()));
                        eprintln!("OP delete {id}");
                        store.delete_chat(id).await.expect("delete");
                    }
                    _ => {
                        let id = chats[rng.usize(..chats.len())];
                        let _ = store.resume(id).await;
                    }
                }
            }
            // ...then a client that reads a few events and drops the connection.
            let mut events = chatd_core::events::watch(Arc::clone(&store), owner, cursor, options)
                .await
                .expect("watch");
            let target = truth(&store, owner).await;
            let deadline = tokio::time::Instant::now() + WAIT;
            let budget = rng.usize(1..8);
            let mut read = 0;
            while model != target && read < budget {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "seed {seed}: {model:?} vs {target:?}"
                );
                let Ok(Some(event)) =
                    tokio::time::timeout(Duration::from_millis(500), events.next()).await
                else {
                    continue;
                };
                let key = (event.cursor, format!("{:?}", std::mem::discriminant(&event.kind)));
                assert!(delivered.insert(key), "seed {seed}: {event:?} delivered twice");
                if let Some(cursor) = cursor {
                    assert!(event.cursor > cursor, "seed {seed}: {event:?} is not after {cursor}");
                }
                eprintln!("EV {} {:?}", event.cursor, event.kind);
                model.apply(&event);
                cursor = Some(event.cursor);
                read += 1;
            }
        }
        // Finally catch up completely.
        let mut events = chatd_core::events::watch(Arc::clone(&store), owner, cursor, options)
            .await
            .expect("watch");
        let target = truth(&store, owner).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        while model != target {
            assert!(tokio::time::Instant::now() < deadline, "seed {seed}: {model:?} vs {target:?}");
            if let Ok(Some(event)) =
                tokio::time::timeout(Duration::from_millis(500), events.next()).await
            {
                if let Some(cursor) = cursor {
                    assert!(event.cursor > cursor, "seed {seed}: {event:?} is not after {cursor}");
                }
                eprintln!("EV {} {:?}", event.cursor, event.kind);
                model.apply(&event);
                cursor = Some(event.cursor);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_view_resumes_without_gaps_or_repeats_in_memory() {
    the_list_view_resumes_without_gaps_or_repeats(memory().await, 40).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_view_resumes_without_gaps_or_repeats_on_postgres() {
    let db = FreshDb::create().await;
    the_list_view_resumes_without_gaps_or_repeats(configured(Arc::new(db.store().await)).await, 15)
        .await;
    db.drop().await;
}

// ----- a turn that ends while a subscriber is not reading ----------------------------------

/// A subscriber that saw turn 1 start, then did not read while turn 1 ended and turn 2 (a
/// queued message's) was acquired, still hears turn 1 end, before the message that starts
/// turn 2. (Acquiring clears the chat's `last_turn`: before `previous_turn`, the follower
/// went straight from turn 1's start to turn 2's.)
async fn an_ending_overtaken_by_the_next_turn_is_told(store: Arc<dyn ChatStore>, shared: bool) {
    let chat = store.create_chat(NewChat::new(UserId::new()).with_text("q1")).await.expect("chat");
    let lease = store.acquire(WorkerId::new(), 1).await.expect("acquire")[0];
    let streams = Streams::new(Arc::clone(&store), SubscribeOptions::default());
    let mut events = if shared {
        streams.subscribe(chat.id, None).await.expect("subscribe")
    } else {
        chatd_core::events::subscribe(
            Arc::clone(&store),
            chat.id,
            None,
            SubscribeOptions::default(),
        )
        .await
        .expect("subscribe")
    };
    until(&mut events, |k| matches!(k, ChatEventKind::TurnStarted { turn: 1 })).await;
    store.append_parts(&lease, vec![text_part(&lease, 1)]).await.expect("part");
    until(&mut events, |k| matches!(k, ChatEventKind::MessagePart { .. })).await;
    // Not reading now: a message is queued behind the turn, the turn ends, and the queued
    // message starts the next one.
    store.send_message(chat.id, SendMessage::text("q2")).await.expect("queue");
    let answer = NewMessage::assistant(vec![Part::text("a1")]);
    store.commit_step(&lease, Step::new(Some(answer), vec![])).await.expect("commit");
    store.release(&lease, TurnOutcome::Finished).await.expect("release");
    let lease = store.acquire(WorkerId::new(), 1).await.expect("acquire again")[0];
    assert_eq!(lease.chat_id, chat.id);
    let read = until(&mut events, |k| matches!(k, ChatEventKind::TurnStarted { turn: 2 })).await;
    let advancing: Vec<ChatEvent> = read.iter().filter(|e| e.kind.advances()).cloned().collect();
    assert_eq!(
        kinds(&advancing),
        ["message:a1", "turn_ended:1:Finished", "message:q2", "turn_started:2"],
        "shared reader: {shared}; everything read: {:?}",
        kinds(&read)
    );
    // And a subscriber that never saw turn 1 start is not told it ended.
    let mut fresh = streams.subscribe(chat.id, None).await.expect("subscribe");
    let read = until(&mut fresh, |k| matches!(k, ChatEventKind::TurnStarted { .. })).await;
    let advancing: Vec<ChatEvent> = read.iter().filter(|e| e.kind.advances()).cloned().collect();
    assert_eq!(
        kinds(&advancing),
        ["message:q1", "message:a1", "message:q2", "turn_started:2"],
        "{:?}",
        kinds(&read)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ending_overtaken_by_the_next_turn_is_told_in_memory() {
    for shared in [false, true] {
        an_ending_overtaken_by_the_next_turn_is_told(memory().await, shared).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ending_overtaken_by_the_next_turn_is_told_on_postgres() {
    let db = FreshDb::create().await;
    let store = configured(Arc::new(db.store().await)).await;
    for shared in [false, true] {
        an_ending_overtaken_by_the_next_turn_is_told(Arc::clone(&store), shared).await;
    }
    db.drop().await;
}

/// A chat's first turn (`q1`, running), then its answer `a1` committed and the turn released
/// with `q2` queued behind it (promoted: `pending`), in memory: the real snapshots the mock
/// stores below serve.
async fn turn_then_promoted() -> (Arc<dyn ChatStore>, chatd_core::Chat, chatd_core::Chat) {
    let real = memory().await;
    let chat = real.create_chat(NewChat::new(UserId::new()).with_text("q1")).await.expect("chat");
    let lease = real.acquire(WorkerId::new(), 1).await.expect("acquire")[0];
    let running = real.get_chat(chat.id).await.expect("running");
    real.send_message(chat.id, SendMessage::text("q2")).await.expect("queue");
    let answer = NewMessage::assistant(vec![Part::text("a1")]);
    real.commit_step(&lease, Step::new(Some(answer), vec![])).await.expect("commit");
    let ended = real.release(&lease, TurnOutcome::Finished).await.expect("release");
    assert_eq!(ended.status, ChatStatus::Pending, "the queued message was promoted");
    (real, running, ended)
}

/// A mock store serving snapshots: the chat `chat` returns at each read, the history
/// `history` returns for each query, no parts, an empty queue, and a feed nobody publishes
/// to (readers refresh only when they start, or poll).
fn snapshot_store(
    mut chat: impl FnMut() -> chatd_core::Chat + Send + 'static,
    mut history: impl FnMut(MessageQuery) -> Vec<chatd_core::Message> + Send + 'static,
) -> Arc<dyn ChatStore> {
    let mut store = chatd_core::store::MockChatStore::new();
    let feed: Arc<dyn chatd_core::feed::ChangeFeed> =
        Arc::new(chatd_core::feed::BroadcastFeed::new(16));
    store.expect_change_feed().returning(move || Ok(Arc::clone(&feed)));
    store.expect_get_chat().returning(move |_| Ok(chat()));
    store.expect_list_messages().returning(move |_, query| Ok(history(query)));
    store.expect_read_parts().returning(|_, _| Ok(Vec::new()));
    store.expect_list_queued().returning(|_| Ok(Vec::new()));
    Arc::new(store)
}

/// The first `upto` of `messages` that `query` asks for (a mock store's `list_messages`).
fn listed(
    messages: &[chatd_core::Message],
    upto: usize,
    query: MessageQuery,
) -> Vec<chatd_core::Message> {
    messages[..upto]
        .iter()
        .filter(|m| query.after.is_none_or(|after| m.id > after))
        .take(query.limit.unwrap_or(usize::MAX))
        .cloned()
        .collect()
}

/// The turn ends, and the queued message is promoted, between the two chat reads of one
/// follower read: the history read between them already holds the promoted message, so the
/// turn's end cannot be taken from that read (it would come after the message, or never).
/// A mock store serving real snapshots makes the interleaving exact: the chat reads as
/// running up to its fourth read and as ended from its fifth (the second read's "after").
#[tokio::test]
async fn a_turn_that_ends_during_a_read_is_told_before_the_next_message() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (real, running, ended) = turn_then_promoted().await;
    let chat = running.clone();
    let messages =
        real.list_messages(chat.id, MessageQuery::user_visible_after(None)).await.expect("list");
    assert_eq!(messages.len(), 3);

    let reads = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&reads);
    let store = snapshot_store(
        move || {
            let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
            if n <= 4 { running.clone() } else { ended.clone() }
        },
        // The history: the question during the first read, all of it from the second on.
        move |query| {
            let upto = if reads.load(Ordering::SeqCst) <= 2 { 1 } else { messages.len() };
            listed(&messages, upto, query)
        },
    );
    let options = SubscribeOptions::default().with_poll(Duration::from_millis(5));
    let mut events =
        chatd_core::events::subscribe(store, chat.id, None, options).await.expect("subscribe");
    let read = until(
        &mut events,
        |k| matches!(k, ChatEventKind::Message { message } if message.text() == "q2"),
    )
    .await;
    let advancing: Vec<ChatEvent> = read.iter().filter(|e| e.kind.advances()).cloned().collect();
    assert_eq!(
        kinds(&advancing),
        ["message:q1", "turn_started:1", "message:a1", "turn_ended:1:Finished", "message:q2"],
        "{:?}",
        kinds(&read)
    );
}

/// A subscriber joining a shared tail whose latest refresh is older than the subscriber's
/// own first read (the tail had not been woken yet) starts from what it read, never from the
/// older state: it is not told a turn it never saw start, and its first events are as new
/// as its subscription. A mock store serving two real snapshots and a silent feed holds the
/// tail at the older one.
#[tokio::test]
async fn a_subscriber_joining_a_stale_shared_tail_starts_from_its_own_read() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let (real, first_turn, _) = turn_then_promoted().await;
    let chat = first_turn.clone();
    real.acquire(WorkerId::new(), 1).await.expect("acquire again");
    let second_turn = real.get_chat(chat.id).await.expect("turn 2");
    let messages =
        real.list_messages(chat.id, MessageQuery::user_visible_after(None)).await.expect("list");
    assert_eq!(messages.len(), 3);

    // The silent feed: the tail refreshes only when it starts (or polls).
    let later = Arc::new(AtomicBool::new(false));
    let (for_chat, for_history) = (Arc::clone(&later), Arc::clone(&later));
    let store = snapshot_store(
        move || {
            if for_chat.load(Ordering::SeqCst) { second_turn.clone() } else { first_turn.clone() }
        },
        move |query| {
            let upto = if for_history.load(Ordering::SeqCst) { messages.len() } else { 1 };
            listed(&messages, upto, query)
        },
    );
    let streams = Streams::new(store, SubscribeOptions::default());
    let mut early = streams.subscribe(chat.id, None).await.expect("subscribe");
    until(&mut early, |k| matches!(k, ChatEventKind::TurnStarted { turn: 1 })).await;
    // Let the tail's task run its first refresh (the mock answers at once, so the early
    // subscriber's own read never yielded to it), then the chat moves on, untold.
    tokio::time::sleep(Duration::from_millis(100)).await;
    later.store(true, Ordering::SeqCst);
    let mut fresh = streams.subscribe(chat.id, None).await.expect("subscribe again");
    let read = until(&mut fresh, |k| matches!(k, ChatEventKind::TurnStarted { .. })).await;
    let advancing: Vec<ChatEvent> = read.iter().filter(|e| e.kind.advances()).cloned().collect();
    assert_eq!(
        kinds(&advancing),
        ["message:q1", "message:a1", "message:q2", "turn_started:2"],
        "{:?}",
        kinds(&read)
    );
}

/// A subscriber that arrived while turn 1 ran, but whose first read comes only after turn 1
/// ended and turn 2 began (a server that subscribes, then starts the body later), still
/// hears turn 1 start and end, around its answer: it arrived during that turn. (The example
/// service's AI SDK resume follows the turn that ran when it was asked, and ended with
/// turn 2's `finish` instead of turn 1's `abort` when its first read came late.)
#[tokio::test]
async fn a_subscriber_that_arrived_during_a_turn_hears_it_end_even_when_it_reads_late() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (real, first_turn, _) = turn_then_promoted().await;
    let chat = first_turn.clone();
    real.acquire(WorkerId::new(), 1).await.expect("acquire again");
    let second_turn = real.get_chat(chat.id).await.expect("turn 2");
    let messages =
        real.list_messages(chat.id, MessageQuery::user_visible_after(None)).await.expect("list");
    // The subscription's own read sees turn 1 running; every read after it, turn 2.
    let reads = AtomicUsize::new(0);
    let store = snapshot_store(
        move || {
            let first = reads.fetch_add(1, Ordering::SeqCst) == 0;
            if first { first_turn.clone() } else { second_turn.clone() }
        },
        move |query| listed(&messages, 3, query),
    );
    let mut events =
        chatd_core::events::subscribe(store, chat.id, None, SubscribeOptions::default())
            .await
            .expect("subscribe");
    let read = until(&mut events, |k| matches!(k, ChatEventKind::TurnStarted { turn: 2 })).await;
    let advancing: Vec<ChatEvent> = read.iter().filter(|e| e.kind.advances()).cloned().collect();
    assert_eq!(
        kinds(&advancing),
        [
            "message:q1",
            "turn_started:1",
            "message:a1",
            "turn_ended:1:Finished",
            "message:q2",
            "turn_started:2"
        ],
        "{:?}",
        kinds(&read)
    );
}

// ----- a list view that stayed away longer than the deletions are kept ---------------------

/// A list view resuming from before a deletion the store has forgotten (pruned tombstones)
/// is told to start over (`reset`), then gets the whole list; resuming from the reset's own
/// cursor resets again.
async fn a_list_view_from_before_a_forgotten_deletion_starts_over(store: Arc<dyn ChatStore>) {
    let options = SubscribeOptions::default().with_poll(Duration::from_millis(50));
    let owner = UserId::new();
    let keep = store.create_chat(NewChat::new(owner)).await.expect("keep");
    let gone = store.create_chat(NewChat::new(owner)).await.expect("gone");
    let mut events =
        chatd_core::events::watch(Arc::clone(&store), owner, None, options).await.expect("watch");
    let first = [next(&mut events).await, next(&mut events).await];
    assert!(first.iter().all(|e| matches!(e.kind, OwnerEventKind::Created { .. })), "{first:?}");
    let cursor = first[1].cursor;
    drop(events);
    store.delete_chat(gone.id).await.expect("delete");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(store.prune_tombstones(Duration::ZERO).await.expect("prune") >= 1);
    let mut events = chatd_core::events::watch(Arc::clone(&store), owner, Some(cursor), options)
        .await
        .expect("resume");
    let reset = next(&mut events).await;
    assert_eq!((&reset.kind, reset.cursor), (&OwnerEventKind::Reset, cursor));
    let listed = next(&mut events).await;
    assert_eq!(listed.chat_id, keep.id);
    assert!(matches!(listed.kind, OwnerEventKind::Created { .. }), "{listed:?}");
    let mut again =
        chatd_core::events::watch(Arc::clone(&store), owner, Some(reset.cursor), options)
            .await
            .expect("resume from the reset");
    assert_eq!(next(&mut again).await.kind, OwnerEventKind::Reset);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_view_from_before_a_forgotten_deletion_starts_over_in_memory() {
    a_list_view_from_before_a_forgotten_deletion_starts_over(memory().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_view_from_before_a_forgotten_deletion_starts_over_on_postgres() {
    let db = FreshDb::create().await;
    a_list_view_from_before_a_forgotten_deletion_starts_over(
        configured(Arc::new(db.store().await)).await,
    )
    .await;
    db.drop().await;
}
