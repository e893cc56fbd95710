//! Scenarios: spend admission ([BEHAVIOUR §17](crate::behaviour#17-usage-cost-limits-and-fairness)) — one owner's admissions one at a time, holds
//! of calls in flight seen by the owner's other chats, settled by the step's record and
//! lapsed with the turn's lease.

use std::time::Duration;

use super::{Fixture, StoreRef};
use crate::store::{Held, Lease, NewSpendHold, StoreError};
use crate::usage::{CallKind, NewUsage};
use crate::{Chat, NewChat, Usage};

fn hold(chat: &Chat, lease: Lease, cost_micros: i64) -> NewSpendHold {
    NewSpendHold { lease, owner_id: chat.owner_id, root_chat_id: chat.root_id(), cost_micros }
}

/// Takes `hold` in an admission of its owner.
async fn take(fx: &Fixture, hold: NewSpendHold) -> Result<(), StoreError> {
    let admission = fx.store.begin_spend_admission(hold.owner_id).await.expect("admission");
    admission.finish(Some(hold)).await
}

/// What `chat`'s owner's other calls hold, as `chat` would be told.
async fn held(fx: &Fixture, chat: &Chat) -> Held {
    let mut admission = fx.store.begin_spend_admission(chat.owner_id).await.expect("admission");
    let held = admission.held(chat.id, chat.root_id()).await.expect("held");
    admission.finish(None).await.expect("finish");
    held
}

/// A chat's hold is seen by its owner's other chats (split by tree), never by the chat
/// itself nor by another owner; a new hold replaces the chat's last one.
pub async fn holds_are_seen_by_the_owners_other_chats(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (first, first_lease) = fx.running("one").await;
    let (second, _second_lease) = fx.running("two").await;
    let stranger = fx
        .store
        .create_chat(NewChat::new(crate::UserId::new()).with_text("other owner"))
        .await
        .expect("chat");
    assert_eq!(held(&fx, &second).await, Held::default(), "nothing held yet");

    take(&fx, hold(&first, first_lease, 700)).await.expect("hold");
    assert_eq!(held(&fx, &second).await, Held { calls: 1, owner_micros: 700, tree_micros: 0 });
    assert_eq!(held(&fx, &first).await, Held::default(), "a chat's own hold is not counted");
    assert_eq!(held(&fx, &stranger).await, Held::default(), "another owner's hold");

    take(&fx, hold(&first, first_lease, 900)).await.expect("replace");
    assert_eq!(held(&fx, &second).await.owner_micros, 900, "one hold per chat");
    // The same tree: a sub-agent's chat sees its root's hold in the tree too.
    let child = fx
        .store
        .create_chat(NewChat::new(fx.owner).with_parent(first.id).with_text("child"))
        .await
        .expect("child");
    assert_eq!(held(&fx, &child).await, Held { calls: 1, owner_micros: 900, tree_micros: 900 });
}

/// Recording a step's usage settles the chat's hold; a title's record (made beside the
/// step) does not.
pub async fn a_steps_record_settles_its_hold(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (first, lease) = fx.running("one").await;
    let (second, _) = fx.running("two").await;
    take(&fx, hold(&first, lease, 500)).await.expect("hold");
    let usage = Usage { input_tokens: 10, output_tokens: 5, total_tokens: 15, ..Usage::default() };
    let title = NewUsage::for_chat(&first, fx.config.id, CallKind::Title, usage);
    fx.store.record_usage(title).await.expect("title record");
    assert_eq!(held(&fx, &second).await.calls, 1, "a title does not settle the step");
    let step = NewUsage::for_chat(&first, fx.config.id, CallKind::Step, usage);
    fx.store.record_usage(step).await.expect("step record");
    assert_eq!(held(&fx, &second).await, Held::default(), "settled by the step's record");
}

/// A hold lapses when its turn ends; a hold for a lease that is not the chat's is refused.
pub async fn a_hold_lapses_with_its_turn(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (first, lease) = fx.running("one").await;
    let (second, _) = fx.running("two").await;
    take(&fx, hold(&first, lease, 500)).await.expect("hold");
    fx.finish(&lease).await;
    assert_eq!(held(&fx, &second).await, Held::default(), "the turn ended: nothing held");
    let stale = take(&fx, hold(&first, lease, 500)).await;
    assert!(
        matches!(stale, Err(StoreError::LeaseLost { .. })),
        "a hold needs the running turn's lease: {stale:?}"
    );
    assert_eq!(held(&fx, &second).await, Held::default());
}

/// While one admission of an owner is open, another for the same owner waits; another
/// owner's does not.
pub async fn admissions_of_one_owner_are_one_at_a_time(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let open = fx.store.begin_spend_admission(fx.owner).await.expect("first");
    let other = tokio::time::timeout(
        Duration::from_secs(5),
        fx.store.begin_spend_admission(crate::UserId::new()),
    )
    .await
    .expect("another owner's admission does not wait")
    .expect("admission");
    other.finish(None).await.expect("finish");
    let store = std::sync::Arc::clone(&fx.store);
    let owner = fx.owner;
    let second = tokio::spawn(async move {
        let admission = store.begin_spend_admission(owner).await.expect("second");
        admission.finish(None).await.expect("finish second");
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "the same owner's second admission waits for the first");
    open.finish(None).await.expect("finish first");
    tokio::time::timeout(Duration::from_secs(5), second)
        .await
        .expect("the second admission proceeds once the first finished")
        .expect("task");
}
