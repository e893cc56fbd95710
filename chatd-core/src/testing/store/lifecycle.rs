//! Turn endings, history rewrites, and the position-ordered chat-list changes that list
//! views resume from.

use std::time::Duration;

use super::{Fixture, StoreRef};
use crate::status::TurnEnding;
use crate::store::{ChangedFields, ChatChange, ListCursor};
use crate::{ChatUpdate, DiffReference, Part, TurnOutcome, UserId};

/// The owner's chat-list changes after `after`, once nothing is held back.
pub(crate) async fn changes(fx: &Fixture, after: Option<ListCursor>) -> Vec<ChatChange> {
    // PostgreSQL lists a change once every older transaction has ended, and says when it held
    // changes back: wait (up to 10 s, for concurrent test transactions) until nothing is held
    // back, so that a listing is complete rather than just non-empty.
    let mut listed = Vec::new();
    for _ in 0..500 {
        let page = fx.store.list_chat_changes(fx.owner, after, 100).await.expect("changes");
        listed = page.changes;
        if !page.held_back {
            return listed;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    listed
}

/// A finished, failed, or shut-down turn records its ending; acquiring the next turn moves
/// it to `previous_turn`.
pub async fn turn_endings_are_recorded_and_cleared_by_the_next_turn(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("one").await;
    assert_eq!(chat.last_turn, None, "a running turn has no ending yet");
    assert_eq!(fx.finish(&lease).await.last_turn, Some(TurnEnding::Finished));
    let first_started_after = fx.get(chat.id).await.turn_started_after;
    fx.send(chat.id, "two").await;
    let lease = fx.acquire(chat.id).await;
    let second = fx.get(chat.id).await;
    assert_eq!(second.last_turn, None);
    // The first turn's ending moved aside, for followers that missed it.
    assert_eq!(second.previous_turn, Some(TurnEnding::Finished));
    assert_eq!(second.previous_turn_started_after, first_started_after);
    assert!(second.turn_started_after > first_started_after);
    let failed = fx.store.release(&lease, TurnOutcome::Failed("boom".into())).await.expect("fail");
    assert_eq!(failed.last_turn, Some(TurnEnding::Failed { reason: "boom".into() }));
    fx.send(chat.id, "three").await;
    let lease = fx.acquire(chat.id).await;
    let shut = fx.store.release(&lease, TurnOutcome::Shutdown).await.expect("shutdown");
    assert_eq!(shut.last_turn, Some(TurnEnding::Shutdown));
    let lease = fx.acquire(chat.id).await;
    assert_eq!(fx.get(chat.id).await.previous_turn, Some(TurnEnding::Shutdown));
    fx.store.interrupt(chat.id).await.expect("interrupt");
    let stopped = fx.store.release(&lease, TurnOutcome::Interrupted).await.expect("release");
    assert_eq!(stopped.last_turn, Some(TurnEnding::Interrupted));
}

/// A stale turn recovered by the sweep ended as `lost`; an edit of a running chat ends its
/// turn as `interrupted` and records the rewrite.
pub async fn lost_and_edited_turns_end_without_their_worker(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, _lease) = fx.running("one").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let recovered = fx.store.recover_stale(Duration::from_millis(1)).await.expect("recover");
    assert_eq!(recovered, vec![chat.id]);
    assert_eq!(fx.get(chat.id).await.last_turn, Some(TurnEnding::Lost));
    let _lease = fx.acquire(chat.id).await;
    let question = fx.store.list_messages(chat.id, crate::store::MessageQuery::all()).await;
    let question = question.expect("messages")[0].id;
    let edited = fx
        .store
        .edit_message(chat.id, question, vec![Part::text("one, again")])
        .await
        .expect("edit");
    assert_eq!(edited.chat.last_turn, Some(TurnEnding::Interrupted));
    assert_eq!((edited.chat.history_version, edited.chat.rewritten_after), (1, question.0 - 1));
}

fn flags(change: &ChatChange, after: Option<ListCursor>) -> ChangedFields {
    ChangedFields::since(after, change.chat_id, change.clocks)
}

/// Every chat is listed as created from the start; later changes are listed by kind, once,
/// at the chat's latest position; an archived chat is archived, never deleted.
pub async fn chat_list_changes_resume_by_position(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let a = fx.idle_chat().await;
    let b = fx.idle_chat().await;
    let other = crate::NewChat::new(UserId::new());
    fx.store.create_chat(other).await.expect("someone else's chat");
    let all = changes(&fx, None).await;
    assert_eq!(all.iter().map(|c| c.chat_id).collect::<Vec<_>>(), vec![a.id, b.id]);
    assert!(all.iter().all(|c| flags(c, None).created && c.chat.is_some()));
    assert!(all[0].position < all[1].position);
    let head = all[1].position;
    assert!(
        fx.store
            .list_chat_changes(fx.owner, Some(head), 100)
            .await
            .expect("none")
            .changes
            .is_empty()
    );

    fx.store.update_chat(a.id, ChatUpdate::title("Renamed")).await.expect("title");
    fx.store.set_archived(b.id, true).await.expect("archive");
    let listed = changes(&fx, Some(head)).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0].chat_id, a.id);
    let changed = flags(&listed[0], Some(head));
    assert!(changed.title && !changed.status && !changed.created, "{changed:?}");
    assert_eq!(listed[1].chat_id, b.id);
    let changed = flags(&listed[1], Some(head));
    assert!(changed.archived && !changed.title, "{changed:?}");
    assert!(listed[1].chat.as_ref().is_some_and(|c| c.archived), "archived, not deleted");
    // Resuming from between them lists only the second.
    let rest = fx.store.list_chat_changes(fx.owner, Some(listed[0].position), 100).await;
    assert_eq!(
        rest.expect("rest").changes.iter().map(|c| c.chat_id).collect::<Vec<_>>(),
        vec![b.id]
    );

    let head = listed[1].position;
    fx.store
        .upsert_diff_reference(a.id, DiffReference::new("https://github.com/o/r", "main"))
        .await
        .expect("diff");
    fx.store.delete_chat(b.id).await.expect("delete");
    let listed = changes(&fx, Some(head)).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(flags(&listed[0], Some(head)).diff && listed[0].diff_status.is_some());
    assert_eq!((listed[1].chat_id, listed[1].chat.is_none()), (b.id, true), "deleted");
    // A chat created and deleted after the cursor is listed with its creation clock (so a
    // reader can tell it never knew it); a first listing has no deletions.
    let head = listed[1].position;
    let ghost = fx.idle_chat().await;
    fx.store.delete_chat(ghost.id).await.expect("delete the ghost");
    fx.store.update_chat(a.id, ChatUpdate::title("Again")).await.expect("title");
    let listed = changes(&fx, Some(head)).await;
    assert_eq!(listed.iter().map(|c| c.chat_id).collect::<Vec<_>>(), vec![ghost.id, a.id]);
    assert!(listed[0].chat.is_none() && flags(&listed[0], Some(head)).created);
    let first = changes(&fx, None).await;
    assert_eq!(first.iter().map(|c| c.chat_id).collect::<Vec<_>>(), vec![a.id]);
}

/// Pruning forgets old deletions only, and a list cursor from before a forgotten deletion
/// is reported expired (one at or after it, or none, is not).
pub async fn pruned_tombstones_expire_older_list_cursors(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let a = fx.idle_chat().await;
    let b = fx.idle_chat().await;
    let head = changes(&fx, None).await.last().expect("listed").position;
    fx.store.delete_chat(b.id).await.expect("delete");
    let listed = changes(&fx, Some(head)).await;
    assert_eq!((listed.len(), listed[0].chat_id, listed[0].chat.is_none()), (1, b.id, true));
    let deletion = listed[0].position;
    assert_eq!(fx.store.prune_tombstones(Duration::from_secs(3600)).await.expect("prune"), 0);
    let kept = fx.store.list_chat_changes(fx.owner, Some(head), 100).await.expect("list");
    assert!(!kept.expired, "nothing was pruned yet");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(fx.store.prune_tombstones(Duration::ZERO).await.expect("prune"), 1);
    assert_eq!(fx.store.prune_tombstones(Duration::ZERO).await.expect("again"), 0);
    let stale = fx.store.list_chat_changes(fx.owner, Some(head), 100).await.expect("list");
    assert!(stale.expired, "the deletion after this cursor is forgotten");
    let fresh = fx.store.list_chat_changes(fx.owner, None, 100).await.expect("list");
    assert!(!fresh.expired);
    assert_eq!(fresh.changes.iter().map(|c| c.chat_id).collect::<Vec<_>>(), vec![a.id]);
    let after = fx.store.list_chat_changes(fx.owner, Some(deletion), 100).await.expect("list");
    assert!(!after.expired, "a cursor at the forgotten deletion has seen it");
}

/// A status change is listed; an unchanged title written again is not a change.
pub async fn chat_list_changes_follow_status_but_not_rewrites_of_the_same_title(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.chat("hello").await;
    let head = changes(&fx, None).await.last().expect("listed").position;
    fx.store.update_chat(chat.id, ChatUpdate::title(chat.title.clone())).await.expect("same");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let none = fx.store.list_chat_changes(fx.owner, Some(head), 100).await.expect("changes");
    assert!(none.changes.is_empty(), "{none:?}");
    let _lease = fx.acquire(chat.id).await;
    let listed = changes(&fx, Some(head)).await;
    assert_eq!(listed.len(), 1);
    let changed = flags(&listed[0], Some(head));
    assert!(changed.status && !changed.title, "{changed:?}");
    assert_eq!(listed[0].chat.as_ref().map(|c| c.status), Some(crate::ChatStatus::Running));
}
