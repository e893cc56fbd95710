//! Scenarios: retention ([BEHAVIOUR §18](crate::behaviour#18-history-you-keep)) — off by default; idle roots archived with their
//! trees, never a busy one; archived chats purged with a list tombstone, never a busy one;
//! deleted messages purged by age; every batch bounded.

use std::time::Duration;

use super::{Fixture, StoreRef};
use crate::store::{MessageQuery, RetentionPolicy};
use crate::{ChatStatus, NewChat, Part};

const NOW: Duration = Duration::ZERO;
const HOUR: Duration = Duration::from_secs(3600);

/// The default policy does nothing; periods not yet over touch nothing.
pub async fn retention_is_off_by_default_and_waits_for_its_periods(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let idle = fx.idle_chat().await;
    let archived = fx.idle_chat().await;
    fx.store.set_archived(archived.id, true).await.expect("archive");
    let off = fx.store.apply_retention(&RetentionPolicy::off(), 100).await.expect("off");
    assert_eq!(off, crate::store::RetentionPass::default());
    let later = RetentionPolicy::off()
        .with_archive_idle_after(HOUR)
        .with_purge_archived_after(HOUR)
        .with_purge_deleted_messages_after(HOUR);
    let pass = fx.store.apply_retention(&later, 100).await.expect("later");
    assert_eq!(pass, crate::store::RetentionPass::default());
    assert!(!fx.get(idle.id).await.archived);
    assert!(fx.get(archived.id).await.archived, "still there");
}

/// Idle roots are archived with their trees; a chat that runs or waits for work, or a root
/// with a busy sub-agent, is not. Batches are bounded.
pub async fn idle_roots_are_archived_with_their_trees(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let idle = fx.idle_chat().await;
    let child = fx.store.create_chat(NewChat::new(fx.owner).with_parent(idle.id)).await;
    let child = child.expect("child");
    let (running, _lease) = fx.running("running").await;
    let pending = fx.chat("waiting for a worker").await;
    let busy_root = fx.idle_chat().await;
    let busy_child = fx
        .store
        .create_chat(NewChat::new(fx.owner).with_parent(busy_root.id).with_text("work"))
        .await
        .expect("busy child");
    let second = fx.idle_chat().await;
    let policy = RetentionPolicy::off().with_archive_idle_after(NOW);
    let first = fx.store.apply_retention(&policy, 1).await.expect("first batch");
    assert_eq!(first.archived, [idle.id], "the least recently changed first, one per batch");
    assert!(fx.get(child.id).await.archived, "with its tree");
    let rest = fx.store.apply_retention(&policy, 100).await.expect("second batch");
    assert_eq!(rest.archived, [second.id]);
    for busy in [pending.id, running.id, busy_root.id, busy_child.id] {
        assert!(!fx.get(busy).await.archived, "a busy chat (or tree) stays");
    }
    assert_eq!(fx.get(running.id).await.status, ChatStatus::Running);
}

/// Archived chats are purged — every row, a list tombstone left — unless busy; unarchived
/// chats are never purged.
pub async fn archived_chats_are_purged_with_a_tombstone(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let old = fx.chat("q1").await;
    fx.run_turn(old.id, "a1").await;
    let first = fx.store.list_messages(old.id, MessageQuery::all()).await.expect("rows")[0].id;
    fx.store.edit_message(old.id, first, vec![Part::text("q1'")]).await.expect("edit");
    fx.run_turn(old.id, "a1'").await;
    fx.store.set_archived(old.id, true).await.expect("archive");
    let (busy, _lease) = fx.running("busy").await;
    fx.store.set_archived(busy.id, true).await.expect("archive busy");
    let kept = fx.chat("kept").await;
    fx.run_turn(kept.id, "kept answer").await;
    let cursor = super::lifecycle::changes(&fx, None).await.last().map(|c| c.position);
    let policy = RetentionPolicy::off().with_purge_archived_after(NOW);
    let pass = fx.store.apply_retention(&policy, 100).await.expect("purge");
    assert_eq!(pass.purged, [old.id]);
    assert!(fx.store.get_chat(old.id).await.expect_err("purged").is_not_found());
    let gone = fx.store.list_messages(old.id, MessageQuery::all().with_deleted()).await;
    assert!(gone.expect_err("no rows").is_not_found());
    let after = super::lifecycle::changes(&fx, cursor).await;
    assert!(
        after.iter().any(|c| c.chat_id == old.id && c.chat.is_none()),
        "a list view hears of the purge"
    );
    assert_eq!(fx.get(busy.id).await.status, ChatStatus::Running, "a running chat stays");
    assert_eq!(fx.texts(kept.id).await, ["kept", "kept answer"]);
}

/// Deleted messages are purged once old enough, a bounded number per batch.
pub async fn deleted_messages_are_purged_by_age(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.chat("q1").await;
    fx.run_turn(chat.id, "a1").await;
    fx.send(chat.id, "q2").await;
    fx.run_turn(chat.id, "a2").await;
    let first = fx.store.list_messages(chat.id, MessageQuery::all()).await.expect("rows")[0].id;
    fx.store.edit_message(chat.id, first, vec![Part::text("q1'")]).await.expect("edit");
    let deleted = |fx: &Fixture| {
        let store = fx.store.clone();
        async move {
            let all = store.list_messages(chat.id, MessageQuery::all().with_deleted()).await;
            all.expect("all").iter().filter(|m| m.deleted.is_some()).count()
        }
    };
    assert_eq!(deleted(&fx).await, 4, "q1's old content, a1, q2, a2");
    let policy = RetentionPolicy::off().with_purge_deleted_messages_after(NOW);
    let pass = fx.store.apply_retention(&policy, 3).await.expect("first");
    assert_eq!(pass.deleted_messages_purged, 3);
    assert!(pass.full(3));
    let pass = fx.store.apply_retention(&policy, 3).await.expect("second");
    assert_eq!(pass.deleted_messages_purged, 1);
    assert_eq!(deleted(&fx).await, 0);
    assert_eq!(fx.texts(chat.id).await, ["q1'"], "the history as it stands is untouched");
}
