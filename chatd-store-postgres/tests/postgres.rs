//! PostgreSQL-only behaviour: several processes (pools) sharing one database, connections
//! killed mid-workload, statements failing midway, and the change feed across pools.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chatd_core::store::{ChatStore, MessageQuery, Step, StoreError};
use chatd_core::{
    ChangeKind, ChatId, ChatStatus, ModelConfigId, NewChat, NewMessage, NewModelConfig,
    NewProvider, Part, ProviderKind, Role, TurnOutcome, UserId, WorkerId,
};
use chatd_store_postgres::{PgFeedOptions, PostgresChatStore};
use futures::StreamExt;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// A store on its own pool, as a separate process would have.
async fn process(
    pool_opts: &PgPoolOptions,
    conn: &PgConnectOptions,
    name: &str,
) -> PostgresChatStore {
    let pool = pool_opts
        .clone()
        .max_connections(20)
        .connect_with(conn.clone().application_name(name))
        .await
        .expect("connect");
    PostgresChatStore::new(pool)
}

async fn configure(store: &PostgresChatStore) {
    store.create_provider(NewProvider::new(ProviderKind::OpenAi)).await.expect("provider");
    store
        .create_model_config(NewModelConfig::new(ProviderKind::OpenAi, "gpt-test", 100_000))
        .await
        .expect("config");
}

async fn pending_chats(store: &PostgresChatStore, n: usize) -> HashSet<ChatId> {
    let owner = UserId::new();
    let mut ids = HashSet::new();
    for i in 0..n {
        let chat = store
            .create_chat(NewChat::new(owner).with_text(format!("task {i}")))
            .await
            .expect("create");
        ids.insert(chat.id);
    }
    ids
}

/// Two pools (as two processes would have), 16 acquirers each, over 2 000 pending chats:
/// every chat is acquired exactly once and no chat ever has two live leases.
#[sqlx::test(migrator = "chatd_store_postgres::MIGRATOR")]
async fn two_processes_acquire_every_chat_exactly_once(
    pool_opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let a = process(&pool_opts, &conn, "chatd-a").await;
    let b = process(&pool_opts, &conn, "chatd-b").await;
    configure(&a).await;
    let created = pending_chats(&a, 2000).await;
    let mut tasks = Vec::new();
    for store in [a.clone(), b.clone()] {
        for _ in 0..16 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let worker = WorkerId::new();
                let mut mine = Vec::new();
                loop {
                    let leases = store.acquire(worker, 5).await.expect("acquire");
                    if leases.is_empty() {
                        return mine;
                    }
                    mine.extend(leases);
                }
            }));
        }
    }
    let mut leases = Vec::new();
    for task in tasks {
        leases.extend(task.await.expect("acquirer"));
    }
    assert_eq!(leases.len(), 2000, "each chat acquired once");
    let unique: HashSet<ChatId> = leases.iter().map(|l| l.chat_id).collect();
    assert_eq!(unique, created);
    let epochs: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE lease_epoch = 1 AND status = 'running') FROM chats",
    )
    .fetch_all(a.pool())
    .await
    .expect("epochs");
    assert_eq!(epochs, vec![(2000, 2000)], "exactly one acquisition per chat: epoch 1, running");
    for lease in leases.iter().take(50) {
        assert_eq!(
            chatd_core::store::Lease::of(&b.get_chat(lease.chat_id).await.expect("chat")),
            Some(*lease)
        );
    }
}

/// The store's connections are terminated (`pg_terminate_backend`) several times while
/// workers run turns. The store recovers (the pool replaces dead connections), every turn
/// finishes, and no intent is half-applied: each chat ends with exactly its question, one
/// assistant row and its tool row.
#[sqlx::test(migrator = "chatd_store_postgres::MIGRATOR")]
async fn killed_connections_recover_without_half_applied_intents(
    pool_opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let admin = process(&pool_opts, &conn, "chatd-admin").await;
    let store = process(&pool_opts, &conn, "chatd-victim").await;
    configure(&store).await;
    let chats = pending_chats(&store, 60).await;
    let mut workers = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        workers.push(tokio::spawn(async move { run_turns_with_retries(store).await }));
    }
    let done = Arc::new(AtomicBool::new(false));
    let killer = {
        let admin = admin.clone();
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let mut killed = 0;
            while !done.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(30)).await;
                let n: Vec<bool> = sqlx::query_scalar(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE application_name = 'chatd-victim' AND pid <> pg_backend_pid()",
                )
                .fetch_all(admin.pool())
                .await
                .expect("terminate");
                killed += n.len();
            }
            killed
        })
    };
    let mut errors = 0;
    for worker in workers {
        errors += worker.await.expect("worker");
    }
    done.store(true, Ordering::Relaxed);
    let killed = killer.await.expect("killer");
    assert!(killed > 0, "the test killed no connection");
    assert!(errors > 0, "no operation was interrupted: the test proved nothing");
    eprintln!("killed {killed} connections; workers saw {errors} errors and retried");
    for chat in chats {
        let messages = admin.list_messages(chat, MessageQuery::all()).await.expect("messages");
        let roles: Vec<Role> = messages.iter().map(|m| m.role).collect();
        assert_eq!(roles, vec![Role::User, Role::Assistant, Role::Tool], "chat {chat}");
        let state = admin.get_chat(chat).await.expect("chat");
        assert_eq!(state.status, ChatStatus::Waiting, "chat {chat}");
        assert_eq!(state.worker_id, None);
    }
}

/// A worker loop that survives connection errors: it retries each step, and before
/// re-committing checks whether an ambiguous commit (connection lost after the server
/// committed) already landed. Returns how many errors it saw.
async fn run_turns_with_retries(store: PostgresChatStore) -> usize {
    let worker = WorkerId::new();
    let mut errors = 0;
    let mut idle_rounds = 0;
    while idle_rounds < 20 {
        let leases = match store.acquire(worker, 1).await {
            Ok(leases) => leases,
            Err(_) => {
                errors += 1;
                continue;
            }
        };
        let Some(lease) = leases.first().copied() else {
            // An acquisition whose reply was lost leaves a chat running under this worker:
            // hand such chats back.
            idle_rounds += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = store.recover_stale(Duration::from_millis(500)).await;
            continue;
        };
        idle_rounds = 0;
        loop {
            let done = match store.list_messages(lease.chat_id, MessageQuery::all()).await {
                Ok(messages) => messages.iter().any(|m| m.role == Role::Assistant),
                Err(_) => {
                    errors += 1;
                    continue;
                }
            };
            if done {
                break;
            }
            let step = Step::new(
                Some(NewMessage::assistant(vec![Part::tool_call(
                    "c1",
                    "read_file",
                    json!({"path": "a"}),
                )])),
                vec![NewMessage::tool(Part::tool_result("c1", "read_file", json!("A"), false))],
            );
            match store.commit_step(&lease, step).await {
                Ok(_) => break,
                Err(StoreError::LeaseLost { .. }) => break,
                Err(_) => errors += 1,
            }
        }
        loop {
            match store.release(&lease, TurnOutcome::Finished).await {
                Ok(_) | Err(StoreError::LeaseLost { .. }) => break,
                Err(_) => errors += 1,
            }
        }
    }
    errors
}

/// A statement that fails midway — the second row of a step names a model config that does
/// not exist — leaves nothing behind: not the first row, not the heartbeat update.
#[sqlx::test(migrator = "chatd_store_postgres::MIGRATOR")]
async fn a_statement_failing_midway_leaves_no_partial_rows(
    pool_opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let store = process(&pool_opts, &conn, "chatd").await;
    configure(&store).await;
    let chat = store.create_chat(NewChat::new(UserId::new()).with_text("q")).await.expect("chat");
    let lease = store.acquire(WorkerId::new(), 1).await.expect("acquire")[0];
    let before = store.get_chat(chat.id).await.expect("chat");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let step = Step::new(
        Some(NewMessage::assistant(vec![Part::text("first row is fine")])),
        vec![
            NewMessage::tool(Part::tool_result("c", "t", json!(1), false))
                .with_model_config(ModelConfigId::new()),
        ],
    );
    let err = store.commit_step(&lease, step).await.expect_err("unknown model config");
    assert!(err.is_not_found(), "{err:?}");
    let messages = store.list_messages(chat.id, MessageQuery::all()).await.expect("messages");
    assert_eq!(messages.len(), 1, "only the question: {messages:?}");
    let after = store.get_chat(chat.id).await.expect("chat");
    assert_eq!(after.heartbeat_at, before.heartbeat_at, "the fence update was rolled back too");
    assert_eq!(after.last_model_config_id, before.last_model_config_id);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM chat_messages")
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert_eq!(count, 1);
}

/// A write through one pool reaches a listener on another pool as a hint.
#[sqlx::test(migrator = "chatd_store_postgres::MIGRATOR")]
async fn feed_delivers_hints_across_pools(pool_opts: PgPoolOptions, conn: PgConnectOptions) {
    let writer = process(&pool_opts, &conn, "chatd-writer").await;
    let reader = process(&pool_opts, &conn, "chatd-reader")
        .await
        .with_feed_options(PgFeedOptions::default().with_poll_interval(Duration::from_secs(3600)));
    configure(&writer).await;
    let feed = reader.change_feed().await.expect("feed");
    let mut hints = feed.subscribe();
    let chat =
        writer.create_chat(NewChat::new(UserId::new()).with_text("hello")).await.expect("chat");
    let hint = wait_for(&mut hints, chat.id, ChangeKind::Pending, Duration::from_secs(5)).await;
    assert_eq!(hint.chat_id, Some(chat.id));
}

/// With `LISTEN` disabled, the poll fallback alone surfaces changes: new messages, status
/// changes and part flushes.
#[sqlx::test(migrator = "chatd_store_postgres::MIGRATOR")]
async fn feed_poll_fallback_surfaces_changes_without_notifications(
    pool_opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let writer = process(&pool_opts, &conn, "chatd-writer").await;
    let reader = process(&pool_opts, &conn, "chatd-reader").await.with_feed_options(
        PgFeedOptions::default().with_listen(false).with_poll_interval(Duration::from_millis(100)),
    );
    configure(&writer).await;
    let feed = reader.change_feed().await.expect("feed");
    let mut hints = feed.subscribe();
    let chat =
        writer.create_chat(NewChat::new(UserId::new()).with_text("hello")).await.expect("chat");
    wait_for(&mut hints, chat.id, ChangeKind::Messages, Duration::from_secs(5)).await;
    wait_for(&mut hints, chat.id, ChangeKind::Pending, Duration::from_secs(5)).await;
    let lease = writer.acquire(WorkerId::new(), 1).await.expect("acquire")[0];
    let part = chatd_core::store::NewPart {
        position: chatd_core::store::PartPosition { episode: 1, seq: 1 },
        payload: json!({"delta": "x"}),
    };
    writer.append_parts(&lease, vec![part]).await.expect("append");
    let parts = wait_for(&mut hints, chat.id, ChangeKind::Parts, Duration::from_secs(5)).await;
    assert_eq!(parts.cursor.as_deref(), Some("1.1"));
}

/// Killing the listener's connection loses notifications only until it reconnects: the
/// feed announces a resync, and later writes are delivered again.
#[sqlx::test(migrator = "chatd_store_postgres::MIGRATOR")]
async fn feed_recovers_after_its_listener_is_killed(
    pool_opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let writer = process(&pool_opts, &conn, "chatd-writer").await;
    let reader = process(&pool_opts, &conn, "chatd-reader")
        .await
        .with_feed_options(PgFeedOptions::default().with_poll_interval(Duration::from_millis(200)));
    configure(&writer).await;
    let feed = reader.change_feed().await.expect("feed");
    let mut hints = feed.subscribe();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'chatd-reader' AND query ILIKE 'LISTEN%'",
    )
    .fetch_all(writer.pool())
    .await
    .expect("terminate");
    assert_eq!(killed, vec![true], "exactly the listener connection was killed");
    let chat = writer
        .create_chat(NewChat::new(UserId::new()).with_text("during the gap"))
        .await
        .expect("chat");
    wait_for(&mut hints, chat.id, ChangeKind::Messages, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let later =
        writer.create_chat(NewChat::new(UserId::new()).with_text("after")).await.expect("chat");
    wait_for(&mut hints, later.id, ChangeKind::Pending, Duration::from_secs(10)).await;
}

async fn wait_for(
    hints: &mut futures::stream::BoxStream<'static, chatd_core::ChangeHint>,
    chat: ChatId,
    kind: ChangeKind,
    within: Duration,
) -> chatd_core::ChangeHint {
    let wait = async {
        while let Some(hint) = hints.next().await {
            if hint.chat_id == Some(chat) && hint.kind == kind {
                return hint;
            }
        }
        panic!("feed ended");
    };
    tokio::time::timeout(within, wait)
        .await
        .unwrap_or_else(|_| panic!("no {kind:?} hint for {chat} within {within:?}"))
}

/// The part log stores one row per flush (an append of several parts), not one per part —
/// most of a streaming turn's row writes were part rows (BENCHMARKS.md, capacity) — and
/// reads still see every part, in order, after any position, including one inside a flush.
#[sqlx::test(migrator = "chatd_store_postgres::MIGRATOR")]
async fn a_flush_of_parts_is_one_row_and_reads_see_each_part(
    pool_opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    use chatd_core::store::{NewPart, PartPosition};
    let store = process(&pool_opts, &conn, "chatd-parts").await;
    configure(&store).await;
    let chat = store.create_chat(NewChat::new(UserId::new()).with_text("hi")).await.expect("chat");
    let lease = store.acquire(WorkerId::new(), 1).await.expect("acquire")[0];
    let part = |episode, seq| NewPart {
        position: PartPosition { episode, seq },
        payload: json!({"delta": format!("{episode}.{seq}")}),
    };
    store.append_parts(&lease, vec![part(1, 1), part(1, 2), part(1, 3)]).await.expect("first");
    // A flush may span a preview reset (a new episode).
    store.append_parts(&lease, vec![part(1, 4), part(2, 1)]).await.expect("second");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM chat_stream_parts WHERE chat_id = $1")
        .bind(chat.id.0)
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert_eq!(rows, 2, "one row per flush");
    let seen = |records: Vec<chatd_core::store::PartRecord>| -> Vec<String> {
        records
            .iter()
            .map(|r| {
                assert_eq!(
                    r.payload["delta"],
                    format!("{}.{}", r.position.episode, r.position.seq)
                );
                format!("{}.{}", r.position.episode, r.position.seq)
            })
            .collect()
    };
    assert_eq!(
        seen(store.read_parts(chat.id, None).await.expect("all")),
        ["1.1", "1.2", "1.3", "1.4", "2.1"]
    );
    let inside = Some(PartPosition { episode: 1, seq: 2 });
    assert_eq!(
        seen(store.read_parts(chat.id, inside).await.expect("inside")),
        ["1.3", "1.4", "2.1"]
    );
    let last = Some(PartPosition { episode: 2, seq: 1 });
    assert!(store.read_parts(chat.id, last).await.expect("after last").is_empty());
    // Positions are still checked against the last part of the last flush.
    let err = store.append_parts(&lease, vec![part(1, 9)]).await.expect_err("behind");
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
}

/// Rows referring to `chat` in every table that has a `chat_id` column, by table.
async fn rows_of(pool: &sqlx::PgPool, chat: ChatId) -> std::collections::BTreeMap<String, i64> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.table_name::text FROM information_schema.columns c \
         JOIN information_schema.tables t USING (table_schema, table_name) \
         WHERE c.column_name = 'chat_id' AND c.table_schema = current_schema() \
           AND t.table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .expect("tables");
    let mut counts = std::collections::BTreeMap::new();
    for table in tables {
        let sql = format!("SELECT count(*) FROM {table} WHERE chat_id = $1");
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(chat.0)
            .fetch_one(pool)
            .await
            .expect("count");
        counts.insert(table, n);
    }
    let own: i64 = sqlx::query_scalar("SELECT count(*) FROM chats WHERE id = $1")
        .bind(chat.0)
        .fetch_one(pool)
        .await
        .expect("chat row");
    counts.insert("chats".into(), own);
    counts
}

/// A purge removes every row of the purged chat in every table with a `chat_id` — messages,
/// deleted messages, queue, diff status (the part log and holds exist only while a turn
/// runs) — and nothing of another chat; the usage ledger keeps its records (BEHAVIOUR §17),
/// and a tombstone records the deletion.
#[sqlx::test(migrator = "chatd_store_postgres::MIGRATOR")]
async fn a_purge_removes_every_row_of_its_chat_and_nothing_else(
    pool_opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    use chatd_core::store::{NewPart, PartPosition, RetentionPolicy};
    let store = process(&pool_opts, &conn, "chatd-purge").await;
    configure(&store).await;
    let owner = UserId::new();
    let mut chats = Vec::new();
    for text in ["purged", "kept"] {
        let chat = store.create_chat(NewChat::new(owner).with_text(text)).await.expect("chat");
        let lease = store.acquire(WorkerId::new(), 1).await.expect("acquire")[0];
        assert_eq!(lease.chat_id, chat.id);
        let part = NewPart { position: PartPosition { episode: 1, seq: 1 }, payload: json!({}) };
        store.append_parts(&lease, vec![part]).await.expect("part");
        let answer = NewMessage::assistant(vec![Part::text("answer")]);
        store.commit_step(&lease, Step::new(Some(answer), vec![])).await.expect("commit");
        store.release(&lease, TurnOutcome::Finished).await.expect("release");
        let usage = chatd_core::usage::NewUsage::for_chat(
            &store.get_chat(chat.id).await.expect("read"),
            store.get_chat(chat.id).await.expect("read").last_model_config_id,
            chatd_core::usage::CallKind::Step,
            chatd_core::Usage {
                input_tokens: 1,
                output_tokens: 1,
                total_tokens: 2,
                ..Default::default()
            },
        );
        store.record_usage(usage).await.expect("usage");
        chats.push(chat.id);
    }
    for chat in &chats {
        let first = store.list_messages(*chat, MessageQuery::all()).await.expect("rows")[0].id;
        store.edit_message(*chat, first, vec![Part::text("edited")]).await.expect("edit");
    }
    let (purged, kept) = (chats[0], chats[1]);
    // The edit left each chat pending: settle both so the purge may take the archived one.
    for _ in 0..2 {
        if let Some(lease) = store.acquire(WorkerId::new(), 1).await.expect("acquire").first() {
            store.release(lease, TurnOutcome::Finished).await.expect("release");
        }
    }
    // Rows in the queue (a paused chat queues what it is sent) and a diff status, for both.
    for chat in [purged, kept] {
        store.pause(chat).await.expect("pause");
        store
            .send_message(chat, chatd_core::store::SendMessage::text("later"))
            .await
            .expect("queue");
        let reference = chatd_core::DiffReference::new("https://example.com/r.git", "main");
        store.upsert_diff_reference(chat, reference).await.expect("diff");
        let png = chatd_core::files::testing_png(1, 1);
        let limits = chatd_core::store::Limits::default();
        let file =
            chatd_core::NewFile::new(owner, Some(chat), "a.png", png, &limits).expect("file");
        chatd_core::FileStore::put_file(&store, file).await.expect("attachment");
    }
    store.set_archived(purged, true).await.expect("archive");
    let before = (rows_of(store.pool(), purged).await, rows_of(store.pool(), kept).await);
    for table in [
        "chat_messages",
        "chat_deleted_messages",
        "chat_queued_messages",
        "chat_diff_statuses",
        "chat_files",
        "chat_usage",
        "chats",
    ] {
        assert!(before.0[table] > 0, "the purged chat has rows in {table}: {:?}", before.0);
    }
    let policy = RetentionPolicy::off().with_purge_archived_after(Duration::ZERO);
    let pass = store.apply_retention(&policy, 10).await.expect("purge");
    assert_eq!(pass.purged, [purged]);
    let after = (rows_of(store.pool(), purged).await, rows_of(store.pool(), kept).await);
    for (table, count) in &after.0 {
        let expected = match table.as_str() {
            "chat_usage" => before.0[table],
            "chat_tombstones" => 1,
            _ => 0,
        };
        assert_eq!(*count, expected, "{table} after the purge: {:?}", after.0);
    }
    assert_eq!(after.1, before.1, "the other chat's rows are all still there");
    assert_eq!(before.0["chat_tombstones"], 0);
    println!("purge: rows before {:?}, after {:?}", before.0, after.0);
}
