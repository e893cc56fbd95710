//! Scenarios: change hints. Every committed intent is announced on the store's feed; a
//! failed intent is not.

use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::json;

use super::{Fixture, StoreRef};
use crate::store::{NewPart, PartPosition, SendMessage};
use crate::{ChangeHint, ChangeKind, ChatId, DiffReference, Part, TurnOutcome};

/// Reads hints until one for `chat` of `kind` arrives (5 s at most) and returns it.
async fn expect(
    stream: &mut BoxStream<'static, ChangeHint>,
    chat: ChatId,
    kind: ChangeKind,
) -> ChangeHint {
    let wait = async {
        while let Some(hint) = stream.next().await {
            if hint.chat_id == Some(chat) && hint.kind == kind {
                return hint;
            }
        }
        panic!("the feed ended before a {kind:?} hint for {chat}");
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .unwrap_or_else(|_| panic!("no {kind:?} hint for {chat} within 5 s"))
}

/// Creating, queueing, acquiring, committing, flushing parts, releasing, editing, diff
/// updates and deleting are each announced with the chat id, kind and cursor.
pub async fn feed_announces_committed_intents(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let feed = fx.store.change_feed().await.expect("feed");
    let mut hints = feed.subscribe();

    let chat = fx.chat("hello").await;
    expect(&mut hints, chat.id, ChangeKind::Pending).await;
    let first = expect(&mut hints, chat.id, ChangeKind::Messages).await;
    assert!(first.cursor.is_some(), "a messages hint carries the last message id");

    let lease = fx.acquire(chat.id).await;
    expect(&mut hints, chat.id, ChangeKind::Chat).await;
    fx.send(chat.id, "follow-up").await;
    expect(&mut hints, chat.id, ChangeKind::Queue).await;

    let part =
        NewPart { position: PartPosition { episode: 3, seq: 9 }, payload: json!({"delta": "he"}) };
    fx.store.append_parts(&lease, vec![part]).await.expect("append");
    let parts = expect(&mut hints, chat.id, ChangeKind::Parts).await;
    assert_eq!(parts.cursor.as_deref(), Some("3.9"));

    let written = fx.answer(&lease, "hi").await;
    let messages = expect(&mut hints, chat.id, ChangeKind::Messages).await;
    assert_eq!(messages.cursor, Some(written[0].id.to_string()));

    fx.store.release(&lease, TurnOutcome::Finished).await.expect("release");
    expect(&mut hints, chat.id, ChangeKind::Chat).await;
    expect(&mut hints, chat.id, ChangeKind::Pending).await; // the follow-up was promoted

    fx.store
        .upsert_diff_reference(chat.id, DiffReference::new("https://github.com/o/r", "b"))
        .await
        .expect("diff");
    expect(&mut hints, chat.id, ChangeKind::Diff).await;

    fx.store.delete_chat(chat.id).await.expect("delete");
    expect(&mut hints, chat.id, ChangeKind::Deleted).await;
}

/// A failed intent announces nothing: hints of one process arrive in order, so after a
/// marker intent's hint has arrived, nothing about the failed chat may appear before the
/// next successful intent's hint.
pub async fn feed_is_silent_about_failed_intents(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let failing = fx.idle_chat().await;
    let other = fx.idle_chat().await;
    let feed = fx.store.change_feed().await.expect("feed");
    let mut hints = feed.subscribe();
    // Hints are delivered after their intent commits, possibly after it returned: wait
    // until everything before this point has been announced.
    let marker = fx.chat("marker").await;
    expect(&mut hints, marker.id, ChangeKind::Pending).await;
    let err = fx.store.send_message(failing.id, SendMessage::new(vec![Part::text("  ")])).await;
    assert!(err.is_err());
    let err = fx.store.resume(failing.id).await;
    assert!(err.is_err());
    fx.send(other.id, "this one works").await;
    let wait = async {
        while let Some(hint) = hints.next().await {
            assert_ne!(hint.chat_id, Some(failing.id), "a failed intent was announced: {hint:?}");
            if hint.chat_id == Some(other.id) && hint.kind == ChangeKind::Pending {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .expect("the successful intent is announced");
}
