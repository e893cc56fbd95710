//! Scenarios: user intents — send, queue, edit, interrupt, pause, resume, complete.

use super::{Fixture, StoreRef};
use crate::status::StopKind;
use crate::store::{
    BusyBehavior, Delivery, LeaseStatus, MAX_QUEUED_MESSAGES, MessageQuery, SendMessage, StoreError,
};
use crate::{ChatStatus, MessageId, Part, QueuedMessageId, Role, TurnOutcome};

fn interrupting(text: &str) -> SendMessage {
    SendMessage::text(text).with_busy(BusyBehavior::Interrupt)
}

/// A message to a waiting chat is inserted and the chat becomes `pending`.
pub async fn send_to_waiting_inserts_and_pends(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.idle_chat().await;
    let sent = fx.send(chat.id, "hello").await;
    assert!(
        matches!(sent.delivery, Delivery::Inserted(ref m) if m.role == Role::User && m.text() == "hello")
    );
    assert_eq!(sent.chat.status, ChatStatus::Pending);
    assert!(sent.chat.updated_at >= chat.updated_at);
    assert_eq!(fx.texts(chat.id).await, vec!["hello"]);
}

/// A message to a chat in `error` inserts, clears `last_error` and pends.
pub async fn send_to_error_clears_last_error(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("q").await;
    let failed = fx
        .store
        .release(&lease, TurnOutcome::Failed("provider exploded".into()))
        .await
        .expect("fail");
    assert_eq!(failed.status, ChatStatus::Error);
    assert_eq!(failed.last_error.as_deref(), Some("provider exploded"));
    let sent = fx.send(chat.id, "retry please").await;
    assert_eq!(sent.chat.status, ChatStatus::Pending);
    assert_eq!(sent.chat.last_error, None);
    assert!(matches!(sent.delivery, Delivery::Inserted(_)));
}

/// A message to a completed chat re-opens it.
pub async fn send_to_completed_reopens(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.idle_chat().await;
    assert_eq!(fx.store.complete(chat.id).await.expect("complete").status, ChatStatus::Completed);
    let sent = fx.send(chat.id, "one more thing").await;
    assert_eq!(sent.chat.status, ChatStatus::Pending);
    assert!(matches!(sent.delivery, Delivery::Inserted(_)));
}

/// A message to a running chat is queued and the status is unchanged.
pub async fn send_to_running_queues(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("q").await;
    let sent = fx.send(chat.id, "later").await;
    let Delivery::Queued(queued) = sent.delivery else {
        panic!("expected queued: {:?}", sent.delivery)
    };
    assert_eq!(queued.content, vec![Part::text("later")]);
    assert_eq!(sent.chat.status, ChatStatus::Running);
    assert_eq!(
        crate::store::Lease::of(&sent.chat),
        Some(lease),
        "queueing does not disturb the lease"
    );
    assert_eq!(fx.store.list_queued(chat.id).await.expect("queue"), vec![queued]);
    assert_eq!(fx.texts(chat.id).await, vec!["q"]);
    let beat = fx.store.heartbeat(fx.worker, &[lease]).await.expect("heartbeat");
    assert_eq!(beat, vec![LeaseStatus::Held], "a queued send does not stop the turn");
}

/// With `interrupt` on a pending chat nothing runs yet: the message goes straight into
/// history and the chat stays `pending`.
pub async fn send_interrupt_to_pending_inserts_directly(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.chat("first").await;
    let sent = fx.store.send_message(chat.id, interrupting("second")).await.expect("send");
    assert!(matches!(sent.delivery, Delivery::Inserted(_)));
    assert_eq!(sent.chat.status, ChatStatus::Pending);
    assert_eq!(fx.texts(chat.id).await, vec!["first", "second"]);
    let queued = fx.send(chat.id, "third").await;
    assert!(matches!(queued.delivery, Delivery::Queued(_)), "the default still queues on pending");
}

/// With `interrupt` on a running chat the message is queued, the turn is asked to stop, and
/// after the partial answer is committed and released the message is promoted — ahead of
/// older queued messages — and the chat is `pending` again.
pub async fn send_interrupt_to_running_queues_and_stops_the_turn(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("q").await;
    fx.send(chat.id, "older queued").await;
    let sent =
        fx.store.send_message(chat.id, interrupting("stop and do this")).await.expect("send");
    assert!(matches!(sent.delivery, Delivery::Queued(_)));
    assert_eq!(sent.chat.status, ChatStatus::Running);
    assert_eq!(sent.chat.stop_request.map(|s| s.kind), Some(StopKind::Interrupt));
    let beat = fx.store.heartbeat(fx.worker, &[lease]).await.expect("heartbeat");
    assert_eq!(beat, vec![LeaseStatus::StopRequested(StopKind::Interrupt)]);
    fx.answer(&lease, "partial answer").await;
    let released = fx.store.release(&lease, TurnOutcome::Interrupted).await.expect("release");
    assert_eq!(released.status, ChatStatus::Pending);
    assert_eq!(released.stop_request, None);
    assert_eq!(released.worker_id, None);
    assert_eq!(fx.texts(chat.id).await, vec!["q", "partial answer", "stop and do this"]);
    let queue = fx.store.list_queued(chat.id).await.expect("queue");
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].content, vec![Part::text("older queued")]);
}

/// A message to a paused chat is queued (whatever the busy behaviour).
pub async fn send_to_paused_queues(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.idle_chat().await;
    fx.store.pause(chat.id).await.expect("pause");
    let sent = fx.send(chat.id, "a").await;
    assert!(matches!(sent.delivery, Delivery::Queued(_)));
    let sent = fx.store.send_message(chat.id, interrupting("b")).await.expect("send");
    assert!(matches!(sent.delivery, Delivery::Queued(_)));
    assert_eq!(sent.chat.status, ChatStatus::Paused);
    assert!(
        fx.store.acquire(fx.worker, 5).await.expect("acquire").is_empty(),
        "paused chats are not work"
    );
}

/// Empty content is refused with the documented texts and nothing changes.
pub async fn send_rejects_empty_content(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.idle_chat().await;
    let err = fx.store.send_message(chat.id, SendMessage::new(vec![])).await.expect_err("empty");
    assert_eq!(err.to_string(), "Content is required.");
    let err = fx
        .store
        .send_message(chat.id, SendMessage::new(vec![Part::text("ok"), Part::text(" ")]))
        .await
        .expect_err("blank");
    assert_eq!(err.to_string(), "content[1].text cannot be empty.");
    assert_eq!(fx.status(chat.id).await, ChatStatus::Waiting);
    let err = fx
        .store
        .send_message(crate::ChatId::new(), SendMessage::text("x"))
        .await
        .expect_err("unknown chat");
    assert!(err.is_not_found());
}

/// The queue holds 20; the 21st is refused with the documented text and changes nothing.
pub async fn queue_cap_refuses_the_twenty_first(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, _lease) = fx.running("q").await;
    for i in 0..MAX_QUEUED_MESSAGES {
        fx.send(chat.id, &format!("m{i}")).await;
    }
    let err =
        fx.store.send_message(chat.id, SendMessage::text("one too many")).await.expect_err("full");
    assert!(matches!(err, StoreError::QueueFull { max: 20 }), "{err:?}");
    assert_eq!(err.to_string(), "Message queue is full. Maximum 20 messages can be queued.");
    let err = fx.store.send_message(chat.id, interrupting("urgent")).await.expect_err("full too");
    assert!(matches!(err, StoreError::QueueFull { .. }));
    assert_eq!(fx.store.list_queued(chat.id).await.expect("queue").len(), 20);
    assert_eq!(fx.get(chat.id).await.stop_request, None, "a refused send requests nothing");
}

/// Releasing a finished turn promotes the queue head (FIFO) and pends the chat again.
pub async fn queue_promotes_fifo_on_release(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("q").await;
    fx.send(chat.id, "first").await;
    fx.send(chat.id, "second").await;
    fx.answer(&lease, "a").await;
    let released = fx.finish(&lease).await;
    assert_eq!(released.status, ChatStatus::Pending);
    assert_eq!(fx.texts(chat.id).await, vec!["q", "a", "first"]);
    let released = fx.run_turn(chat.id, "b").await;
    assert_eq!(released.status, ChatStatus::Pending);
    assert_eq!(fx.texts(chat.id).await, vec!["q", "a", "first", "b", "second"]);
    let released = fx.run_turn(chat.id, "c").await;
    assert_eq!(released.status, ChatStatus::Waiting, "empty queue: idle");
    assert!(fx.store.list_queued(chat.id).await.expect("queue").is_empty());
}

/// Promoting a queued message of an idle chat inserts it now.
pub async fn promote_queued_on_idle_chat_inserts(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.idle_chat().await;
    fx.store.pause(chat.id).await.expect("pause");
    let Delivery::Queued(a) = fx.send(chat.id, "a").await.delivery else { panic!("queued") };
    let Delivery::Queued(b) = fx.send(chat.id, "b").await.delivery else { panic!("queued") };
    let promoted = fx.store.promote_queued(chat.id, b.id).await.expect("promote on paused");
    assert!(matches!(promoted.delivery, Delivery::Inserted(ref m) if m.text() == "b"));
    assert_eq!(promoted.chat.status, ChatStatus::Paused, "promotion does not resume a paused chat");
    let resumed = fx.store.resume(chat.id).await.expect("resume");
    assert_eq!(resumed.status, ChatStatus::Pending, "b is unanswered");
    let queue = fx.store.list_queued(chat.id).await.expect("queue");
    assert_eq!(queue.iter().map(|q| q.id).collect::<Vec<_>>(), vec![a.id]);
    let done = fx.run_turn(chat.id, "answer b").await;
    assert_eq!(done.status, ChatStatus::Pending, "then a is promoted");
    assert_eq!(fx.texts(chat.id).await, vec!["b", "answer b", "a"]);
}

/// Promoting on a running chat asks the turn to stop; the message is promoted at release.
pub async fn promote_queued_on_running_chat_waits_for_the_stop(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("q").await;
    fx.send(chat.id, "first").await;
    let Delivery::Queued(second) = fx.send(chat.id, "second").await.delivery else {
        panic!("queued")
    };
    let promoted = fx.store.promote_queued(chat.id, second.id).await.expect("promote");
    assert_eq!(promoted.delivery, Delivery::AfterStop);
    assert_eq!(promoted.chat.status, ChatStatus::Running);
    assert_eq!(fx.texts(chat.id).await, vec!["q"], "nothing is inserted under a running turn");
    let released = fx.store.release(&lease, TurnOutcome::Interrupted).await.expect("release");
    assert_eq!(released.status, ChatStatus::Pending);
    assert_eq!(fx.texts(chat.id).await, vec!["q", "second"]);
}

/// Promoting or deleting an unknown queued message is `NotFound`.
pub async fn promote_unknown_queued_message_is_not_found(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.idle_chat().await;
    let err =
        fx.store.promote_queued(chat.id, QueuedMessageId(424_242)).await.expect_err("unknown");
    assert!(err.is_not_found());
    assert_eq!(err.to_string(), "Queued message not found.");
    let err = fx.store.delete_queued(chat.id, QueuedMessageId(424_242)).await.expect_err("unknown");
    assert!(err.is_not_found());
    assert_eq!(fx.status(chat.id).await, ChatStatus::Waiting);
}

/// Deleting a queued message returns the remaining queue in order.
pub async fn delete_queued_returns_the_rest(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, _lease) = fx.running("q").await;
    let mut ids = Vec::new();
    for text in ["a", "b", "c"] {
        let Delivery::Queued(q) = fx.send(chat.id, text).await.delivery else { panic!("queued") };
        ids.push(q.id);
    }
    let rest = fx.store.delete_queued(chat.id, ids[1]).await.expect("delete");
    assert_eq!(rest.iter().map(|q| q.id).collect::<Vec<_>>(), vec![ids[0], ids[2]]);
    assert_eq!(fx.store.list_queued(chat.id).await.expect("queue"), rest);
    let other = fx.idle_chat().await;
    assert!(fx.store.delete_queued(other.id, ids[0]).await.expect_err("other chat").is_not_found());
}

/// Editing a user message keeps its id, deletes every later message and the whole queue,
/// and makes the chat `pending`.
pub async fn edit_keeps_id_truncates_later_rows_and_clears_queue(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.chat("q1").await;
    fx.run_turn(chat.id, "a1").await;
    fx.send(chat.id, "q2").await;
    let lease = fx.acquire(chat.id).await;
    fx.answer(&lease, "a2").await;
    fx.send(chat.id, "queued").await;
    fx.finish(&lease).await; // promotes "queued"
    fx.run_turn(chat.id, "a3").await;
    fx.send(chat.id, "q4").await; // pending now
    let lease = fx.acquire(chat.id).await;
    fx.send(chat.id, "queued again").await;
    let messages = fx.store.list_messages(chat.id, MessageQuery::all()).await.expect("list");
    let q2 = messages.iter().find(|m| m.text() == "q2").expect("q2").clone();
    let edited =
        fx.store.edit_message(chat.id, q2.id, vec![Part::text("q2 edited")]).await.expect("edit");
    assert_eq!(edited.message.id, q2.id);
    assert_eq!(edited.message.text(), "q2 edited");
    assert_eq!(edited.chat.status, ChatStatus::Pending);
    assert_eq!(edited.deleted_messages, 4, "a2, queued, a3 and q4");
    assert_eq!(edited.deleted_queued, 1);
    assert_eq!(fx.texts(chat.id).await, vec!["q1", "a1", "q2 edited"]);
    assert!(fx.store.list_queued(chat.id).await.expect("queue").is_empty());
    assert!(
        fx.store.commit_step(&lease, Default::default()).await.expect_err("fenced").is_lease_lost()
    );
}

/// Only user messages can be edited.
pub async fn edit_refuses_non_user_messages(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.chat("q").await;
    fx.run_turn(chat.id, "a").await;
    let messages = fx.store.list_messages(chat.id, MessageQuery::all()).await.expect("list");
    let err = fx
        .store
        .edit_message(chat.id, messages[1].id, vec![Part::text("x")])
        .await
        .expect_err("assistant");
    assert_eq!(err.to_string(), "Only user messages can be edited.");
    assert_eq!(fx.texts(chat.id).await, vec!["q", "a"]);
    assert_eq!(fx.status(chat.id).await, ChatStatus::Waiting);
    let err = fx.store.edit_message(chat.id, messages[0].id, vec![]).await.expect_err("empty");
    assert_eq!(err.to_string(), "Content is required.");
}

/// A message id of another chat, or an unknown one, is `Chat message not found.`.
pub async fn edit_message_of_another_chat_is_not_found(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let a = fx.chat("a").await;
    let b = fx.idle_chat().await;
    let a_first = fx.store.list_messages(a.id, MessageQuery::all()).await.expect("list")[0].id;
    let err =
        fx.store.edit_message(b.id, a_first, vec![Part::text("x")]).await.expect_err("other chat");
    assert_eq!(err.to_string(), "Chat message not found.");
    let err = fx
        .store
        .edit_message(a.id, MessageId(i64::MAX), vec![Part::text("x")])
        .await
        .expect_err("unknown");
    assert!(err.is_not_found());
    assert_eq!(fx.texts(a.id).await, vec!["a"]);
}

/// An edit revokes a running worker's lease: its late writes are all rejected and it cannot
/// re-insert a partial step after the cut.
pub async fn edit_revokes_the_running_lease(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("q").await;
    let first = fx.store.list_messages(chat.id, MessageQuery::all()).await.expect("list")[0].id;
    let edited =
        fx.store.edit_message(chat.id, first, vec![Part::text("q edited")]).await.expect("edit");
    assert_eq!(edited.chat.status, ChatStatus::Pending);
    assert_eq!(edited.chat.worker_id, None);
    assert_eq!(
        fx.store.heartbeat(fx.worker, &[lease]).await.expect("beat"),
        vec![LeaseStatus::Lost]
    );
    let err = fx
        .store
        .commit_step(
            &lease,
            crate::store::Step::new(
                Some(crate::NewMessage::assistant(vec![Part::text("late")])),
                vec![],
            ),
        )
        .await
        .expect_err("late");
    assert!(err.is_lease_lost());
    assert!(
        fx.store
            .release(&lease, TurnOutcome::Interrupted)
            .await
            .expect_err("late release")
            .is_lease_lost()
    );
    let part = crate::store::NewPart {
        position: crate::store::PartPosition { episode: 1, seq: 1 },
        payload: serde_json::json!({"type": "text-delta", "delta": "late"}),
    };
    assert!(
        fx.store.append_parts(&lease, vec![part]).await.expect_err("late append").is_lease_lost()
    );
    assert!(fx.store.read_parts(chat.id, None).await.expect("parts").is_empty());
    assert_eq!(fx.texts(chat.id).await, vec!["q edited"]);
    assert_eq!(fx.status(chat.id).await, ChatStatus::Pending);
}

/// Interrupting a running chat asks the turn to stop; its release ends in `waiting`.
pub async fn interrupt_running_stops_the_turn_to_waiting(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("q").await;
    let after = fx.store.interrupt(chat.id).await.expect("interrupt");
    assert_eq!(after.status, ChatStatus::Running, "the worker persists its partial output first");
    assert_eq!(after.stop_request.map(|s| s.kind), Some(StopKind::Interrupt));
    assert_eq!(
        fx.store.heartbeat(fx.worker, &[lease]).await.expect("beat"),
        vec![LeaseStatus::StopRequested(StopKind::Interrupt)]
    );
    fx.answer(&lease, "partial").await;
    let released = fx.store.release(&lease, TurnOutcome::Interrupted).await.expect("release");
    assert_eq!(released.status, ChatStatus::Waiting);
    assert_eq!(
        (released.worker_id, released.started_at, released.heartbeat_at),
        (None, None, None)
    );
    assert_eq!(fx.texts(chat.id).await, vec!["q", "partial"]);
}

/// Interrupting a pending chat keeps it `pending`; interrupting an idle one changes nothing.
pub async fn interrupt_keeps_pending(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.chat("q").await;
    assert_eq!(fx.store.interrupt(chat.id).await.expect("interrupt").status, ChatStatus::Pending);
    let idle = fx.idle_chat().await;
    assert_eq!(fx.store.interrupt(idle.id).await.expect("interrupt").status, ChatStatus::Waiting);
    assert!(fx.store.interrupt(crate::ChatId::new()).await.expect_err("unknown").is_not_found());
}

/// Pause and resume of an idle chat.
pub async fn pause_idle_and_resume_idle(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.idle_chat().await;
    assert_eq!(fx.store.pause(chat.id).await.expect("pause").status, ChatStatus::Paused);
    assert_eq!(fx.store.pause(chat.id).await.expect("pause twice").status, ChatStatus::Paused);
    assert_eq!(fx.store.resume(chat.id).await.expect("resume").status, ChatStatus::Waiting);
    let pending = fx.chat("q").await;
    assert_eq!(fx.store.pause(pending.id).await.expect("pause pending").status, ChatStatus::Paused);
    assert!(fx.store.acquire(fx.worker, 5).await.expect("acquire").is_empty());
    assert_eq!(
        fx.store.resume(pending.id).await.expect("resume").status,
        ChatStatus::Pending,
        "q is unanswered"
    );
}

/// Pausing a running chat takes effect when its turn is released.
pub async fn pause_running_applies_at_release(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("q").await;
    fx.send(chat.id, "queued").await;
    let after = fx.store.pause(chat.id).await.expect("pause");
    assert_eq!(after.status, ChatStatus::Running);
    assert_eq!(
        fx.store.heartbeat(fx.worker, &[lease]).await.expect("beat"),
        vec![LeaseStatus::StopRequested(StopKind::Pause)]
    );
    fx.store.interrupt(chat.id).await.expect("an interrupt does not downgrade the pause");
    let released = fx.store.release(&lease, TurnOutcome::Interrupted).await.expect("release");
    assert_eq!(released.status, ChatStatus::Paused);
    assert_eq!(
        fx.store.list_queued(chat.id).await.expect("queue").len(),
        1,
        "the queue waits for resume"
    );
}

/// Resuming with queued messages promotes the head and pends the chat.
pub async fn resume_with_queue_promotes_the_head(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.chat("q").await;
    fx.run_turn(chat.id, "a").await;
    fx.store.pause(chat.id).await.expect("pause");
    fx.send(chat.id, "one").await;
    fx.send(chat.id, "two").await;
    let resumed = fx.store.resume(chat.id).await.expect("resume");
    assert_eq!(resumed.status, ChatStatus::Pending);
    assert_eq!(fx.texts(chat.id).await, vec!["q", "a", "one"]);
    assert_eq!(fx.store.list_queued(chat.id).await.expect("queue").len(), 1);
}

/// Resuming with an unanswered user message pends the chat without promoting.
pub async fn resume_with_unanswered_message_is_pending(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.chat("unanswered").await;
    fx.store.pause(chat.id).await.expect("pause");
    fx.send(chat.id, "queued").await;
    let resumed = fx.store.resume(chat.id).await.expect("resume");
    assert_eq!(resumed.status, ChatStatus::Pending);
    assert_eq!(fx.texts(chat.id).await, vec!["unanswered"]);
    assert_eq!(fx.store.list_queued(chat.id).await.expect("queue").len(), 1);
}

/// Resume is refused unless the chat is paused.
pub async fn resume_refused_unless_paused(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.idle_chat().await;
    let err = fx.store.resume(chat.id).await.expect_err("waiting");
    assert!(
        matches!(err, StoreError::InvalidTransition { from: ChatStatus::Waiting, .. }),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "cannot resume a chat that is waiting");
}

/// Complete works on idle chats, is refused while work runs, and a message re-opens it.
pub async fn complete_and_reopen(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("q").await;
    let err = fx.store.complete(chat.id).await.expect_err("running");
    assert!(matches!(err, StoreError::InvalidTransition { from: ChatStatus::Running, .. }));
    fx.finish(&lease).await;
    let done = fx.store.complete(chat.id).await.expect("complete");
    assert_eq!(done.status, ChatStatus::Completed);
    assert_eq!(fx.store.complete(chat.id).await.expect("idempotent").status, ChatStatus::Completed);
    let err = fx.store.pause(chat.id).await.expect_err("pause completed");
    assert!(matches!(err, StoreError::InvalidTransition { .. }));
    let pending = fx.chat("other").await;
    assert!(matches!(
        fx.store.complete(pending.id).await.expect_err("pending"),
        StoreError::InvalidTransition { .. }
    ));
}

/// [BEHAVIOUR §2](crate::behaviour#2-chat-status): a message to an idle chat that still has queued messages (kept after a
/// failure, or from a pause) joins the queue's tail and the head is answered first.
pub async fn a_message_to_an_idle_chat_with_a_queue_waits_its_turn(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("first").await;
    fx.store.send_message(chat.id, SendMessage::text("queued earlier")).await.expect("queue");
    fx.store.release(&lease, TurnOutcome::Failed("boom".into())).await.expect("fail");
    assert_eq!(
        fx.get(chat.id).await.status,
        ChatStatus::Error,
        "the queue is kept after a failure"
    );
    let sent = fx.store.send_message(chat.id, SendMessage::text("sent later")).await.expect("send");
    assert!(matches!(sent.delivery, Delivery::Queued(_)), "{:?}", sent.delivery);
    assert_eq!(sent.chat.status, ChatStatus::Pending);
    let texts: Vec<String> = fx
        .store
        .list_messages(chat.id, MessageQuery::all())
        .await
        .expect("list")
        .iter()
        .map(crate::Message::text)
        .collect();
    assert_eq!(texts, vec!["first", "queued earlier"], "the older message is answered first");
    let queue = fx.store.list_queued(chat.id).await.expect("queue");
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].content, vec![Part::text("sent later")]);
    // Without a queue, an idle chat takes the message directly.
    let idle = fx.idle_chat().await;
    let direct = fx.store.send_message(idle.id, SendMessage::text("hello")).await.expect("send");
    assert!(matches!(direct.delivery, Delivery::Inserted(_)));
}

/// [BEHAVIOUR §2](crate::behaviour#2-chat-status): an idle chat whose kept queue is full still takes a message: the head enters
/// the history and the new message joins the tail, so the queue stays at its cap.
pub async fn a_full_queue_on_an_idle_chat_takes_a_message_and_stays_at_its_cap(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("first").await;
    for i in 0..MAX_QUEUED_MESSAGES {
        fx.send(chat.id, &format!("m{i}")).await;
    }
    fx.store.release(&lease, TurnOutcome::Failed("boom".into())).await.expect("fail");
    assert_eq!(fx.get(chat.id).await.status, ChatStatus::Error);
    let sent = fx.store.send_message(chat.id, SendMessage::text("later")).await.expect("taken");
    assert!(matches!(sent.delivery, Delivery::Queued(_)), "{:?}", sent.delivery);
    assert_eq!(sent.chat.status, ChatStatus::Pending);
    let queue = fx.store.list_queued(chat.id).await.expect("queue");
    assert_eq!(queue.len(), MAX_QUEUED_MESSAGES, "the queue stays at its cap");
    assert_eq!(queue[0].content, vec![Part::text("m1")]);
    assert_eq!(queue[MAX_QUEUED_MESSAGES - 1].content, vec![Part::text("later")]);
    assert_eq!(fx.texts(chat.id).await, vec!["first", "m0"], "the head is answered first");
}
