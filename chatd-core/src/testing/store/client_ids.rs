//! Scenarios: a client's own id for a user message ([BEHAVIOUR §1](crate::behaviour#1-data-model) "Client message ids") —
//! kept through a direct send, a queue and its promotion (at release and on demand), an edit,
//! and every read; refused when it is not a short printable string.

use super::{Fixture, StoreRef};
use crate::store::{BusyBehavior, Delivery, MessageQuery, SendMessage, StoreError};
use crate::{ChatStatus, Part, Role, TurnOutcome};

fn sent_as(text: &str, client_id: &str) -> SendMessage {
    SendMessage::text(text).with_client_id(client_id)
}

/// The client ids of the chat's messages, in order (`-` for a message without one).
async fn ids(fx: &Fixture, chat: crate::ChatId) -> Vec<String> {
    let messages = fx.store.list_messages(chat, MessageQuery::all()).await.expect("list");
    messages.iter().map(|m| m.client_id.clone().unwrap_or_else(|| "-".to_owned())).collect()
}

/// A client id given with a send is kept on the user message, whichever way it enters the
/// history: inserted at once, queued then promoted at release, queued behind an interrupt,
/// or promoted on demand. Messages sent without one have none; an edit keeps it.
pub async fn a_client_id_stays_with_its_message(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.idle_chat().await;
    let sent = fx.store.send_message(chat.id, sent_as("first", "ui-1")).await.expect("send");
    let Delivery::Inserted(first) = sent.delivery else { panic!("inserted") };
    assert_eq!(first.client_id.as_deref(), Some("ui-1"));

    let lease = fx.acquire(chat.id).await;
    let queued = fx.store.send_message(chat.id, sent_as("second", "ui-2")).await.expect("queue");
    let Delivery::Queued(waiting) = queued.delivery else { panic!("queued") };
    assert_eq!(waiting.client_id.as_deref(), Some("ui-2"));
    let listed = fx.store.list_queued(chat.id).await.expect("queue");
    assert_eq!(listed[0].client_id.as_deref(), Some("ui-2"), "the queue keeps it");
    fx.answer(&lease, "a1").await;
    fx.finish(&lease).await;
    assert_eq!(ids(&fx, chat.id).await, vec!["ui-1", "-", "ui-2"], "promoted at release");

    let lease = fx.acquire(chat.id).await;
    let interrupt = sent_as("third", "ui-3").with_busy(BusyBehavior::Interrupt);
    fx.store.send_message(chat.id, interrupt).await.expect("interrupt");
    fx.answer(&lease, "partial").await;
    let released = fx.store.release(&lease, TurnOutcome::Interrupted).await.expect("release");
    assert_eq!(released.status, ChatStatus::Pending);
    assert_eq!(ids(&fx, chat.id).await, vec!["ui-1", "-", "ui-2", "-", "ui-3"]);

    fx.run_turn(chat.id, "a3").await;
    fx.store.pause(chat.id).await.expect("pause");
    let Delivery::Queued(later) =
        fx.store.send_message(chat.id, sent_as("fourth", "ui-4")).await.expect("send").delivery
    else {
        panic!("queued on a paused chat")
    };
    fx.send(chat.id, "fifth, no id").await;
    let promoted = fx.store.promote_queued(chat.id, later.id).await.expect("promote");
    let Delivery::Inserted(fourth) = promoted.delivery else { panic!("inserted") };
    assert_eq!(fourth.client_id.as_deref(), Some("ui-4"), "promoted on demand");

    let edited = fx.store.edit_message(chat.id, first.id, vec![Part::text("first, edited")]).await;
    let edited = edited.expect("edit");
    assert_eq!(edited.message.client_id.as_deref(), Some("ui-1"), "an edit keeps the id");
    let messages = fx.store.list_messages(chat.id, MessageQuery::all()).await.expect("list");
    assert_eq!(messages.len(), 1);
    assert_eq!((messages[0].role, messages[0].client_id.as_deref()), (Role::User, Some("ui-1")));
}

/// A client id that is empty, longer than 128 bytes or holds a control character is refused
/// with a validation error naming the field, and nothing is sent.
pub async fn a_bad_client_id_is_refused(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.idle_chat().await;
    for bad in [String::new(), "x".repeat(129), "a\nb".to_owned(), "nul\0".to_owned()] {
        let err = fx.store.send_message(chat.id, sent_as("hello", &bad)).await;
        match err.expect_err("refused") {
            StoreError::Validation { field, reason } => {
                assert_eq!(field, "client_id", "{bad:?}: {reason}");
            }
            other => panic!("{bad:?}: not a validation error: {other}"),
        }
    }
    assert!(fx.texts(chat.id).await.is_empty(), "nothing was sent");
    assert_eq!(fx.status(chat.id).await, ChatStatus::Waiting);
    let longest = "é".repeat(64);
    let sent = fx.store.send_message(chat.id, sent_as("hello", &longest)).await.expect("128 bytes");
    assert!(matches!(sent.delivery, Delivery::Inserted(ref m) if m.client_id == Some(longest)));
}
