//! Scenarios: history you keep ([BEHAVIOUR §18](crate::behaviour#18-history-you-keep)) — an edit takes the later messages out of the
//! history without destroying them: they, and the edited message's replaced content, stay
//! readable on request with the revision they belonged to; a fork copies a history up to a
//! message into a new chat that is independent of its source in both directions.

use serde_json::json;

use super::{Fixture, StoreRef};
use crate::store::{MessageQuery, Step};
use crate::{Message, MessageId, NewMessage, Part, Role};

fn call(id: &str) -> Part {
    Part::ToolCall {
        tool_call_id: id.into(),
        tool_name: "clock".into(),
        args: json!({}),
        provider_executed: false,
        provider_metadata: None,
    }
}

/// `(text, revision)` of each message, `None` for the history as it stands.
fn revisions(messages: &[Message]) -> Vec<(String, Option<i64>)> {
    messages.iter().map(|m| (m.text(), m.deleted.map(|d| d.revision))).collect()
}

/// An edit moves the messages after the edited one, and its replaced content, out of the
/// history: reads, prompts and streams no longer see them, a read with deleted messages
/// does — each marked with the revision (the history version) it belonged to, in id order,
/// an earlier content before the current one. A second edit adds a second revision.
pub async fn an_edit_keeps_what_it_cut_with_its_revision(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.chat("q1").await;
    fx.run_turn(chat.id, "a1").await;
    fx.send(chat.id, "q2").await;
    fx.run_turn(chat.id, "a2").await;
    let before = fx.get(chat.id).await.history_version;
    let q1 = fx.store.list_messages(chat.id, MessageQuery::all()).await.expect("list")[0].id;
    let edited = fx.store.edit_message(chat.id, q1, vec![Part::text("q1'")]).await.expect("edit");
    assert_eq!(edited.deleted_messages, 3);
    assert_eq!(fx.texts(chat.id).await, ["q1'"]);
    let prompt = fx.store.prompt_messages(chat.id).await.expect("prompt");
    assert_eq!(prompt.iter().map(Message::text).collect::<Vec<_>>(), ["q1'"]);
    let all =
        fx.store.list_messages(chat.id, MessageQuery::all().with_deleted()).await.expect("all");
    let v = Some(before);
    assert_eq!(
        revisions(&all),
        [
            ("q1".into(), v),
            ("q1'".into(), None),
            ("a1".into(), v),
            ("q2".into(), v),
            ("a2".into(), v)
        ]
    );
    assert_eq!(all[0].id, all[1].id, "the replaced content keeps the message's id");
    assert!(all.iter().filter_map(|m| m.deleted).all(|d| d.at >= all[0].created_at));
    assert_eq!(all[2].role, Role::Assistant);

    // The chat goes on, and the edited message is edited again: a second revision.
    fx.run_turn(chat.id, "a1'").await;
    fx.store.edit_message(chat.id, q1, vec![Part::text("q1''")]).await.expect("edit again");
    assert_eq!(fx.get(chat.id).await.history_version, before + 2);
    let all =
        fx.store.list_messages(chat.id, MessageQuery::all().with_deleted()).await.expect("all");
    let w = Some(before + 1);
    assert_eq!(
        revisions(&all),
        [
            ("q1".into(), v),
            ("q1'".into(), w),
            ("q1''".into(), None),
            ("a1".into(), v),
            ("q2".into(), v),
            ("a2".into(), v),
            ("a1'".into(), w),
        ]
    );
    assert_eq!(fx.texts(chat.id).await, ["q1''"]);
}

/// A read with deleted messages takes the same filters as any other: after an id, a
/// visibility, a limit.
pub async fn deleted_messages_are_read_with_the_usual_filters(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.chat("q1").await;
    fx.run_turn(chat.id, "a1").await;
    fx.send(chat.id, "q2").await;
    fx.run_turn(chat.id, "a2").await;
    let q1 = fx.store.list_messages(chat.id, MessageQuery::all()).await.expect("list")[0].id;
    fx.store.edit_message(chat.id, q1, vec![Part::text("q1'")]).await.expect("edit");
    let after = MessageQuery::all().with_deleted().after(q1);
    let read = fx.store.list_messages(chat.id, after).await.expect("after");
    assert_eq!(revisions(&read).into_iter().map(|r| r.0).collect::<Vec<_>>(), ["a1", "q2", "a2"]);
    let limited = MessageQuery::all().with_deleted().with_limit(2);
    let read = fx.store.list_messages(chat.id, limited).await.expect("limit");
    assert_eq!(revisions(&read).into_iter().map(|r| r.0).collect::<Vec<_>>(), ["q1", "q1'"]);
    let visible = MessageQuery::user_visible_after(Some(MessageId(0))).with_deleted();
    let read = fx.store.list_messages(chat.id, visible).await.expect("visible");
    assert_eq!(read.len(), 5, "every row of this chat is user-visible");
    let none = MessageQuery::all().with_deleted().after(MessageId(i64::MAX - 1));
    assert!(fx.store.list_messages(chat.id, none).await.expect("none").is_empty());
}

/// Deleting a chat takes its deleted messages too; another chat's are never read.
pub async fn deleted_messages_belong_to_their_chat(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.chat("q1").await;
    fx.run_turn(chat.id, "a1").await;
    let other = fx.chat("o1").await;
    fx.run_turn(other.id, "o2").await;
    for id in [chat.id, other.id] {
        let first = fx.store.list_messages(id, MessageQuery::all()).await.expect("list")[0].id;
        fx.store.edit_message(id, first, vec![Part::text("edited")]).await.expect("edit");
    }
    let mine = fx.store.list_messages(chat.id, MessageQuery::all().with_deleted()).await;
    assert_eq!(
        revisions(&mine.expect("mine")).into_iter().map(|r| r.0).collect::<Vec<_>>(),
        ["q1", "edited", "a1"]
    );
    fx.store.delete_chat(chat.id).await.expect("delete");
    let gone = fx.store.list_messages(chat.id, MessageQuery::all().with_deleted()).await;
    assert!(gone.expect_err("deleted chat").is_not_found());
    let theirs = fx.store.list_messages(other.id, MessageQuery::all().with_deleted()).await;
    assert_eq!(theirs.expect("theirs").len(), 3);
}

/// A fork copies the source's current history up to and including the message, as a new
/// root chat of the same owner: titled with a fork marker, the source's model config,
/// recording where it came from, `waiting` after an answer, with nothing of the source's
/// queue, spend or tool calls. The source is unchanged.
pub async fn a_fork_copies_the_history_up_to_its_message(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx
        .store
        .create_chat(
            crate::NewChat::new(fx.owner)
                .with_title("Plans")
                .with_system_prompt("be brief")
                .with_text("q1"),
        )
        .await
        .expect("chat");
    fx.run_turn(chat.id, "a1").await;
    fx.send(chat.id, "q2").await;
    fx.run_turn(chat.id, "a2").await;
    let source = fx.store.list_messages(chat.id, MessageQuery::all()).await.expect("source");
    let a1 = source.iter().find(|m| m.text() == "a1").expect("a1").id;
    let cursor = super::lifecycle::changes(&fx, None).await.last().map(|c| c.position);
    let fork = fx.store.fork_chat(chat.id, a1).await.expect("fork");
    let changes = super::lifecycle::changes(&fx, cursor).await;
    assert!(
        changes.iter().any(|c| c.chat_id == fork.id && c.chat.is_some()),
        "the owner's list hears of the fork"
    );
    assert_ne!(fork.id, chat.id);
    assert_eq!(fork.owner_id, fx.owner);
    assert_eq!(fork.title, "Plans (fork)");
    assert_eq!(fork.status, crate::ChatStatus::Waiting, "it ends with an answer");
    assert_eq!(fork.forked_from, Some(crate::ForkedFrom { chat_id: chat.id, message_id: a1 }));
    assert_eq!((fork.parent_chat_id, fork.root_chat_id), (None, None));
    assert_eq!(fork.last_model_config_id, fx.get(chat.id).await.last_model_config_id);
    assert_eq!(fork.spent.calls, 0);
    assert!(fork.tool_calls.is_empty());
    let copied = fx.store.list_messages(fork.id, MessageQuery::all()).await.expect("fork rows");
    let shape = |rows: &[Message]| -> Vec<(Role, String)> {
        rows.iter().map(|m| (m.role, m.text())).collect()
    };
    assert_eq!(shape(&copied), shape(&source[..3]), "the system prompt, q1 and a1");
    assert!(copied.iter().all(|m| m.chat_id == fork.id && !source.iter().any(|s| s.id == m.id)));
    let prompt = fx.store.prompt_messages(fork.id).await.expect("prompt");
    assert_eq!(prompt.len(), 3, "the fork's prompt holds the copied system prompt");
    assert_eq!(
        fx.store.list_messages(chat.id, MessageQuery::all()).await.expect("source after"),
        source
    );
    assert_eq!(fx.get(chat.id).await.forked_from, None);
}

/// Forked at a user message, the fork answers it anew (`pending`); forked at an assistant
/// message that called tools, the fork keeps the results that answer the calls.
pub async fn a_fork_at_a_question_answers_it_and_keeps_calls_with_their_results(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.chat("q1").await;
    let lease = fx.acquire(chat.id).await;
    let calls = NewMessage::assistant(vec![Part::text("looking"), call("c1")]);
    let results = vec![NewMessage::tool(Part::tool_result("c1", "clock", json!({"t": 1}), false))];
    fx.store.commit_step(&lease, Step::new(Some(calls), results)).await.expect("step");
    fx.answer(&lease, "a1").await;
    fx.finish(&lease).await;
    let rows = fx.store.list_messages(chat.id, MessageQuery::all()).await.expect("rows");
    let texts = |rows: &[Message]| -> Vec<Role> { rows.iter().map(|m| m.role).collect() };
    assert_eq!(texts(&rows), [Role::User, Role::Assistant, Role::Tool, Role::Assistant]);
    let at_call = fx.store.fork_chat(chat.id, rows[1].id).await.expect("fork at the call");
    let copied = fx.store.list_messages(at_call.id, MessageQuery::all()).await.expect("copied");
    assert_eq!(texts(&copied), [Role::User, Role::Assistant, Role::Tool], "the result came along");
    assert_eq!(at_call.status, crate::ChatStatus::Waiting);
    let at_question = fx.store.fork_chat(chat.id, rows[0].id).await.expect("fork at q1");
    assert_eq!(at_question.status, crate::ChatStatus::Pending, "the question is answered anew");
    let pending = fx.store.acquire(crate::WorkerId::new(), 10).await.expect("acquire");
    assert!(pending.iter().any(|l| l.chat_id == at_question.id), "workers take the fork");
}

/// The fork and its source never see each other's later changes: an edit, a send or a
/// deletion on one side leaves the other as it was.
pub async fn a_fork_and_its_source_are_independent(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.chat("q1").await;
    fx.run_turn(chat.id, "a1").await;
    let a1 = fx.store.list_messages(chat.id, MessageQuery::all()).await.expect("rows")[1].id;
    let fork = fx.store.fork_chat(chat.id, a1).await.expect("fork");
    // The source moves on, and is edited.
    fx.send(chat.id, "q2").await;
    fx.run_turn(chat.id, "a2").await;
    let q1 = fx.store.list_messages(chat.id, MessageQuery::all()).await.expect("rows")[0].id;
    fx.store.edit_message(chat.id, q1, vec![Part::text("q1 edited")]).await.expect("edit");
    fx.run_turn(chat.id, "a1 again").await;
    assert_eq!(fx.texts(fork.id).await, ["q1", "a1"]);
    // The fork moves on, and is edited.
    fx.send(fork.id, "f2").await;
    fx.run_turn(fork.id, "fa2").await;
    let f1 = fx.store.list_messages(fork.id, MessageQuery::all()).await.expect("rows")[0].id;
    fx.store.edit_message(fork.id, f1, vec![Part::text("fork edited")]).await.expect("edit");
    assert_eq!(fx.texts(chat.id).await, ["q1 edited", "a1 again"]);
    // Deleting the source keeps the fork, and its record of where it came from.
    fx.store.delete_chat(chat.id).await.expect("delete source");
    assert_eq!(fx.texts(fork.id).await, ["fork edited"]);
    assert_eq!(fx.get(fork.id).await.forked_from.map(|f| f.chat_id), Some(chat.id));
}

/// A fork needs a message of the source's current history: another chat's, one an edit
/// took out, and an unknown chat are not found.
pub async fn a_fork_needs_a_message_of_the_current_history(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.chat("q1").await;
    fx.run_turn(chat.id, "a1").await;
    let other = fx.chat("o1").await;
    let rows = fx.store.list_messages(chat.id, MessageQuery::all()).await.expect("rows");
    let theirs = fx.store.list_messages(other.id, MessageQuery::all()).await.expect("theirs");
    let err = fx.store.fork_chat(chat.id, theirs[0].id).await.expect_err("other chat's");
    assert!(err.is_not_found(), "{err}");
    fx.store.edit_message(chat.id, rows[0].id, vec![Part::text("q1'")]).await.expect("edit");
    let err = fx.store.fork_chat(chat.id, rows[1].id).await.expect_err("deleted");
    assert!(err.is_not_found(), "{err}");
    let err = fx.store.fork_chat(crate::ChatId::new(), rows[0].id).await.expect_err("no chat");
    assert!(err.is_not_found(), "{err}");
    let before = fx.store.list_chats(crate::ChatFilter::owner(fx.owner)).await.expect("list");
    assert_eq!(before.items.len(), 2, "a refused fork creates nothing");
}
