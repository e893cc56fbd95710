//! Scenarios: the worker side — acquisition, heartbeats, fenced writes, release, recovery,
//! and the durable part log.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::{Fixture, StoreRef};
use crate::store::{Lease, LeaseStatus, MessageQuery, NewPart, PartPosition, Step, StoreError};
use crate::{ChatStatus, NewMessage, Part, Role, TurnOutcome, WorkerId};

fn part(episode: i64, seq: i64) -> NewPart {
    NewPart {
        position: PartPosition { episode, seq },
        payload: json!({"type": "text-delta", "delta": format!("{episode}.{seq}")}),
    }
}

/// Acquire claims the oldest pending chat first and records the owner.
pub async fn acquire_claims_oldest_first_and_sets_ownership(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let first = fx.chat("first").await;
    let second = fx.chat("second").await;
    let leases = fx.store.acquire(fx.worker, 1).await.expect("acquire");
    assert_eq!(leases.len(), 1);
    assert_eq!(leases[0].chat_id, first.id, "oldest updated_at first");
    let chat = fx.get(first.id).await;
    assert_eq!(chat.status, ChatStatus::Running);
    assert_eq!(chat.worker_id, Some(fx.worker));
    assert!(chat.started_at.is_some());
    assert_eq!(chat.started_at, chat.heartbeat_at);
    assert_eq!(Lease::of(&chat), Some(leases[0]));
    assert!(chat.lease_epoch > first.lease_epoch, "acquisition bumps the epoch");
    let next = fx.store.acquire(WorkerId::new(), 5).await.expect("acquire rest");
    assert_eq!(next.iter().map(|l| l.chat_id).collect::<Vec<_>>(), vec![second.id]);
}

/// Acquire returns at most `limit` leases, and nothing when nothing is pending.
pub async fn acquire_respects_the_limit(store: StoreRef) {
    let fx = Fixture::new(store).await;
    for i in 0..5 {
        fx.chat(&format!("c{i}")).await;
    }
    assert_eq!(fx.store.acquire(fx.worker, 3).await.expect("three").len(), 3);
    assert_eq!(fx.store.acquire(fx.worker, 3).await.expect("two").len(), 2);
    assert!(fx.store.acquire(fx.worker, 3).await.expect("none").is_empty());
    assert!(fx.store.acquire(fx.worker, 0).await.expect("zero").is_empty());
}

/// 16 concurrent acquirers over 500 pending chats: every chat is acquired exactly once.
pub async fn acquisition_race_claims_each_chat_once(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let mut created = HashSet::new();
    for i in 0..500 {
        created.insert(fx.chat(&format!("chat {i}")).await.id);
    }
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = Arc::clone(&fx.store);
        tasks.push(tokio::spawn(async move {
            let worker = WorkerId::new();
            let mut mine = Vec::new();
            loop {
                let leases = store.acquire(worker, 7).await.expect("acquire");
                if leases.is_empty() {
                    break;
                }
                mine.extend(leases);
            }
            mine
        }));
    }
    let mut acquired = Vec::new();
    for task in tasks {
        acquired.extend(task.await.expect("acquirer task"));
    }
    assert_eq!(acquired.len(), 500, "no chat acquired twice, none missed");
    let unique: HashSet<_> = acquired.iter().map(|l| l.chat_id).collect();
    assert_eq!(unique, created);
    for lease in acquired.iter().take(20) {
        assert_eq!(Lease::of(&fx.get(lease.chat_id).await), Some(*lease));
    }
}

/// One heartbeat call renews all of a worker's leases and reports the lost ones.
pub async fn heartbeat_is_batched_and_reports_lost_leases(store: StoreRef) {
    let fx = Fixture::new(store).await;
    fx.chat("a").await;
    fx.chat("b").await;
    let leases = fx.store.acquire(fx.worker, 2).await.expect("acquire");
    let before = fx.get(leases[0].chat_id).await.heartbeat_at;
    tokio::time::sleep(Duration::from_millis(5)).await;
    fx.finish(&leases[1]).await;
    let forged = Lease { epoch: leases[0].epoch + 1, ..leases[0] };
    let other_worker = Lease { worker_id: WorkerId::new(), ..leases[0] };
    let statuses = fx
        .store
        .heartbeat(fx.worker, &[leases[0], leases[1], forged, other_worker])
        .await
        .expect("beat");
    assert_eq!(
        statuses,
        vec![LeaseStatus::Held, LeaseStatus::Lost, LeaseStatus::Lost, LeaseStatus::Lost]
    );
    let after = fx.get(leases[0].chat_id).await.heartbeat_at;
    assert!(after > before, "heartbeat_at moved: {before:?} -> {after:?}");
    assert!(fx.store.heartbeat(fx.worker, &[]).await.expect("empty").is_empty());
}

/// A step is one assistant row plus one tool row per result, in order.
pub async fn commit_step_writes_assistant_and_tool_rows(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("q").await;
    let step = Step::new(
        Some(NewMessage::assistant(vec![
            Part::tool_call("c1", "read_file", json!({"path": "a"})),
            Part::tool_call("c2", "read_file", json!({"path": "b"})),
        ])),
        vec![
            NewMessage::tool(Part::tool_result("c1", "read_file", json!("A"), false)),
            NewMessage::tool(Part::tool_result("c2", "read_file", json!("B"), false)),
        ],
    );
    let written = fx.store.commit_step(&lease, step).await.expect("commit");
    assert_eq!(
        written.iter().map(|m| m.role).collect::<Vec<_>>(),
        vec![Role::Assistant, Role::Tool, Role::Tool]
    );
    assert!(written.windows(2).all(|w| w[0].id < w[1].id));
    let listed = fx.store.list_messages(chat.id, MessageQuery::all()).await.expect("list");
    assert_eq!(&listed[1..], &written[..]);
    let tool_only = fx
        .store
        .commit_step(
            &lease,
            Step::new(
                None,
                vec![NewMessage::tool(Part::tool_result("c3", "x", json!(null), true))],
            ),
        )
        .await
        .expect("no assistant row");
    assert_eq!(tool_only.len(), 1);
    assert_eq!(fx.status(chat.id).await, ChatStatus::Running, "committing does not end the turn");
}

/// A step with misplaced roles is refused and nothing is written.
pub async fn commit_step_with_wrong_roles_writes_nothing(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("q").await;
    let bad = Step::new(
        Some(NewMessage::assistant(vec![Part::text("ok")])),
        vec![NewMessage::user(vec![Part::text("not a tool row")])],
    );
    let err = fx.store.commit_step(&lease, bad).await.expect_err("wrong role");
    assert!(matches!(err, StoreError::Validation { .. }), "{err:?}");
    let bad = Step::new(Some(NewMessage::user(vec![Part::text("x")])), vec![]);
    assert!(fx.store.commit_step(&lease, bad).await.is_err());
    assert_eq!(fx.texts(chat.id).await, vec!["q"]);
}

/// A finished turn releases to `waiting` and clears ownership.
pub async fn release_finished_turn_to_waiting(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("q").await;
    let released = fx.finish(&lease).await;
    assert_eq!(released.status, ChatStatus::Waiting);
    assert_eq!(
        (released.worker_id, released.started_at, released.heartbeat_at),
        (None, None, None)
    );
    assert!(released.updated_at >= chat.updated_at);
    assert!(
        fx.store.release(&lease, TurnOutcome::Finished).await.expect_err("twice").is_lease_lost()
    );
}

/// A failed turn ends in `error` with `last_error`, and keeps the queue.
pub async fn release_failure_keeps_the_queue(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("q").await;
    fx.send(chat.id, "queued").await;
    let failed = fx
        .store
        .release(&lease, TurnOutcome::Failed("rate limited too often".into()))
        .await
        .expect("fail");
    assert_eq!(failed.status, ChatStatus::Error);
    assert_eq!(failed.last_error.as_deref(), Some("rate limited too often"));
    assert_eq!(failed.worker_id, None);
    assert_eq!(fx.store.list_queued(chat.id).await.expect("queue").len(), 1);
    assert_eq!(fx.texts(chat.id).await, vec!["q"]);
}

/// A shutdown returns the chat to `pending` without `last_error`; another worker takes it.
pub async fn release_shutdown_returns_to_pending_without_error(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("q").await;
    let back = fx.store.release(&lease, TurnOutcome::Shutdown).await.expect("shutdown");
    assert_eq!(back.status, ChatStatus::Pending);
    assert_eq!(back.last_error, None);
    assert_eq!(back.worker_id, None);
    let other = WorkerId::new();
    let leases = fx.store.acquire(other, 1).await.expect("reacquire");
    assert_eq!(leases[0].chat_id, chat.id);
    assert!(leases[0].epoch > lease.epoch);
}

/// Recovery returns only `running` chats whose heartbeat is stale to `pending`.
pub async fn recover_stale_touches_only_stale_running_chats(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let waiting = fx.chat("w").await;
    fx.run_turn(waiting.id, "done").await;
    let stale = fx.chat("stale").await;
    let fresh = fx.chat("fresh").await;
    let stale_lease = fx.acquire(stale.id).await;
    let fresh_lease = fx.acquire(fresh.id).await;
    let pending = fx.chat("pending").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    fx.store.heartbeat(fx.worker, &[fresh_lease]).await.expect("beat");
    let recovered = fx.store.recover_stale(Duration::from_millis(200)).await.expect("recover");
    assert_eq!(recovered, vec![stale.id]);
    let chat = fx.get(stale.id).await;
    assert_eq!(chat.status, ChatStatus::Pending);
    assert_eq!((chat.worker_id, chat.last_error.clone()), (None, None));
    assert_eq!(fx.status(fresh.id).await, ChatStatus::Running);
    assert_eq!(fx.status(waiting.id).await, ChatStatus::Waiting);
    assert_eq!(fx.status(pending.id).await, ChatStatus::Pending);
    assert!(
        fx.store.heartbeat(fx.worker, &[stale_lease]).await.expect("beat")[0] == LeaseStatus::Lost
    );
    assert!(fx.store.recover_stale(Duration::from_secs(3600)).await.expect("none").is_empty());
}

/// After recovery, the old owner (a zombie) gets `LeaseLost` on every write and changes
/// nothing.
pub async fn zombie_after_recovery_is_fenced(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, zombie) = fx.running("q").await;
    fx.store.append_parts(&zombie, vec![part(1, 1)]).await.expect("append while alive");
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(
        fx.store.recover_stale(Duration::from_millis(10)).await.expect("recover"),
        vec![chat.id]
    );
    let successor = fx.store.acquire(WorkerId::new(), 1).await.expect("acquire")[0];
    assert_eq!(
        fx.store.heartbeat(fx.worker, &[zombie]).await.expect("beat"),
        vec![LeaseStatus::Lost]
    );
    let step = Step::new(Some(NewMessage::assistant(vec![Part::text("zombie text")])), vec![]);
    assert!(fx.store.commit_step(&zombie, step).await.expect_err("commit").is_lease_lost());
    assert!(
        fx.store.append_parts(&zombie, vec![part(9, 1)]).await.expect_err("append").is_lease_lost()
    );
    assert!(
        fx.store
            .release(&zombie, TurnOutcome::Finished)
            .await
            .expect_err("release")
            .is_lease_lost()
    );
    assert_eq!(fx.texts(chat.id).await, vec!["q"]);
    let now = fx.get(chat.id).await;
    assert_eq!(Lease::of(&now), Some(successor), "the successor still owns the chat");
    assert!(
        fx.store
            .read_parts(chat.id, None)
            .await
            .expect("parts")
            .iter()
            .all(|p| p.position.episode != 9)
    );
}

/// A lease from an older epoch is fenced even when the same worker re-acquired the chat.
pub async fn zombie_after_reacquisition_is_fenced(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, old) = fx.running("q").await;
    fx.store.release(&old, TurnOutcome::Shutdown).await.expect("shutdown");
    let new = fx.acquire(chat.id).await;
    assert_eq!(new.worker_id, old.worker_id);
    assert_ne!(new.epoch, old.epoch);
    assert!(
        fx.store
            .commit_step(
                &old,
                Step::new(Some(NewMessage::assistant(vec![Part::text("old")])), vec![])
            )
            .await
            .expect_err("old")
            .is_lease_lost()
    );
    assert_eq!(
        fx.store.heartbeat(fx.worker, &[old, new]).await.expect("beat"),
        vec![LeaseStatus::Lost, LeaseStatus::Held]
    );
    fx.answer(&new, "new").await;
    assert_eq!(fx.texts(chat.id).await, vec!["q", "new"]);
}

/// Parts are read back in order after a position.
pub async fn parts_append_and_read_after_a_position(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("q").await;
    fx.store.append_parts(&lease, vec![part(1, 1), part(1, 2)]).await.expect("append");
    fx.store.append_parts(&lease, vec![part(1, 3), part(2, 1)]).await.expect("append more");
    let all = fx.store.read_parts(chat.id, None).await.expect("all");
    let positions: Vec<_> = all.iter().map(|p| (p.position.episode, p.position.seq)).collect();
    assert_eq!(positions, vec![(1, 1), (1, 2), (1, 3), (2, 1)]);
    assert_eq!(all[3].payload, part(2, 1).payload);
    assert!(all.iter().all(|p| p.chat_id == chat.id));
    let after = fx
        .store
        .read_parts(chat.id, Some(PartPosition { episode: 1, seq: 2 }))
        .await
        .expect("after");
    assert_eq!(after.iter().map(|p| p.position.seq).collect::<Vec<_>>(), vec![3, 1]);
    assert!(
        fx.store.read_parts(crate::ChatId::new(), None).await.expect_err("unknown").is_not_found()
    );
}

/// A part whose position is not after the log's last one is refused, with nothing
/// appended from that batch.
pub async fn parts_out_of_order_are_refused(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("q").await;
    fx.store.append_parts(&lease, vec![part(2, 5)]).await.expect("append");
    let err =
        fx.store.append_parts(&lease, vec![part(2, 6), part(2, 5)]).await.expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = fx.store.append_parts(&lease, vec![part(1, 9)]).await.expect_err("older episode");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(fx.store.read_parts(chat.id, None).await.expect("parts").len(), 1);
}

/// Committing a step or releasing the chat clears its part log.
pub async fn parts_are_cleared_when_the_step_commits(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("q").await;
    fx.store.append_parts(&lease, vec![part(1, 1), part(1, 2)]).await.expect("append");
    fx.answer(&lease, "a").await;
    assert!(fx.store.read_parts(chat.id, None).await.expect("after commit").is_empty());
    fx.store.append_parts(&lease, vec![part(2, 1)]).await.expect("next step");
    fx.finish(&lease).await;
    assert!(fx.store.read_parts(chat.id, None).await.expect("after release").is_empty());
}
