//! Scenarios: message reads, prompt history and compaction.

use serde_json::json;

use super::{Fixture, StoreRef};
use crate::part::ProviderMetadata;
use crate::store::{Compaction, Fence, MessageQuery, Step, StoreError, VisibilityFilter};
use crate::{
    ChatId, Message, NewChat, NewMessage, NewModelConfig, Part, ProviderKind, Role, Usage,
    Visibility,
};

/// A compaction whose boundary says `summary`.
fn compaction(summary: &str, call_id: &str) -> Compaction {
    Compaction {
        boundary: vec![Part::text(format!("Continue from this summary: {summary}"))],
        call: Part::tool_call(call_id, "chat_summarized", json!({})),
        result: Part::tool_result(
            call_id,
            "chat_summarized",
            json!({"summary": summary, "source": "automatic"}),
            false,
        ),
        model_config_id: None,
    }
}

/// A running chat with system prompt `sys` and first message `text`.
async fn running_with_system_prompt(
    fx: &Fixture,
    text: &str,
) -> (crate::Chat, crate::store::Lease) {
    let chat = fx
        .store
        .create_chat(NewChat::new(fx.owner).with_system_prompt("sys").with_text(text))
        .await
        .expect("create");
    let lease = fx.acquire(chat.id).await;
    (chat, lease)
}

fn texts(messages: &[Message]) -> Vec<String> {
    messages.iter().map(|m| m.text()).collect()
}

/// Message ids increase in insertion order across chats.
pub async fn message_ids_increase_across_chats(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let a = fx.chat("a1").await;
    let b = fx.chat("b1").await;
    fx.send(a.id, "a2").await;
    let ids_a: Vec<_> = fx
        .store
        .list_messages(a.id, MessageQuery::all())
        .await
        .expect("a")
        .iter()
        .map(|m| m.id)
        .collect();
    let ids_b: Vec<_> = fx
        .store
        .list_messages(b.id, MessageQuery::all())
        .await
        .expect("b")
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids_a.len(), 1, "a is pending, so a2 was queued");
    assert!(ids_a[0] < ids_b[0]);
    let lease = fx.acquire(a.id).await;
    let written = fx.answer(&lease, "answer").await;
    assert!(written[0].id > ids_b[0]);
}

/// Listing after a cursor returns only later rows, filtered by visibility.
pub async fn list_messages_after_cursor_with_visibility(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("question").await;
    let step = Step::new(
        Some(NewMessage::assistant(vec![Part::text("visible")])),
        vec![
            NewMessage::tool(Part::tool_result("c", "t", json!(1), false))
                .with_visibility(Visibility::Model),
        ],
    );
    let written = fx.store.commit_step(&lease, step).await.expect("commit");
    let first = fx.store.list_messages(chat.id, MessageQuery::all()).await.expect("all")[0].id;
    let after = fx
        .store
        .list_messages(chat.id, MessageQuery { after: Some(first), ..MessageQuery::all() })
        .await
        .expect("after");
    assert_eq!(
        after.iter().map(|m| m.id).collect::<Vec<_>>(),
        written.iter().map(|m| m.id).collect::<Vec<_>>()
    );
    let user_view = fx
        .store
        .list_messages(chat.id, MessageQuery::user_visible_after(Some(first)))
        .await
        .expect("user");
    assert_eq!(texts(&user_view), vec!["visible"]);
    let model_view = fx
        .store
        .list_messages(
            chat.id,
            MessageQuery { visibility: VisibilityFilter::Model, ..MessageQuery::all() },
        )
        .await
        .expect("model");
    assert_eq!(model_view.len(), 3);
    let last = written[1].id;
    assert!(
        fx.store
            .list_messages(chat.id, MessageQuery { after: Some(last), ..MessageQuery::all() })
            .await
            .expect("tail")
            .is_empty()
    );
}

/// `limit` returns the oldest rows first.
pub async fn list_messages_respects_limit(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("q").await;
    for i in 0..5 {
        fx.answer(&lease, &format!("a{i}")).await;
    }
    let page = fx
        .store
        .list_messages(chat.id, MessageQuery { limit: Some(3), ..MessageQuery::all() })
        .await
        .expect("page");
    assert_eq!(texts(&page), vec!["q", "a0", "a1"]);
}

/// Listing an unknown chat's messages is `NotFound`.
pub async fn list_messages_of_unknown_chat_is_not_found(store: StoreRef) {
    let err = store.list_messages(ChatId::new(), MessageQuery::all()).await.expect_err("unknown");
    assert!(err.is_not_found());
    assert!(store.prompt_messages(ChatId::new()).await.expect_err("unknown").is_not_found());
}

/// Every part type survives a write and a read unchanged, provider metadata included.
pub async fn content_round_trips_every_part_type(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("q").await;
    let mut meta = ProviderMetadata::new();
    meta.insert("anthropic".into(), json!({"signature": "c2ln"}));
    let parts = vec![
        Part::Reasoning { text: "thinking".into(), provider_metadata: Some(meta.clone()) },
        Part::text("answer"),
        Part::ToolCall {
            tool_call_id: "call_1".into(),
            tool_name: "web_search".into(),
            args: json!({"query": "rust"}),
            provider_executed: true,
            provider_metadata: Some(meta),
        },
        Part::ToolResult {
            tool_call_id: "call_1".into(),
            tool_name: "web_search".into(),
            result: json!([{"url": "https://www.rust-lang.org"}]),
            is_error: false,
            provider_executed: true,
            provider_metadata: None,
        },
        Part::Source {
            id: "s1".into(),
            url: "https://www.rust-lang.org".into(),
            title: Some("Rust".into()),
        },
        Part::File {
            media_type: "image/png".into(),
            data: Some("iVBORw0KGgo=".into()),
            attachment_id: None,
            file_id: None,
            name: Some("a.png".into()),
        },
        Part::tool_call("call_2", "read_file", json!({"path": "src/main.rs"})),
    ];
    let tool_row =
        NewMessage::tool(Part::tool_result("call_2", "read_file", json!({"error": "nope"}), true));
    fx.store
        .commit_step(&lease, Step::new(Some(NewMessage::assistant(parts.clone())), vec![tool_row]))
        .await
        .expect("commit");
    let messages = fx.store.list_messages(chat.id, MessageQuery::all()).await.expect("list");
    assert_eq!(messages[1].content, parts);
    assert_eq!(
        messages[2].content,
        vec![Part::tool_result("call_2", "read_file", json!({"error": "nope"}), true)]
    );
    assert_eq!(messages[2].role, Role::Tool);
}

/// Usage and context limit round-trip; a row without usage reads back as `None`.
pub async fn usage_and_context_limit_round_trip(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("q").await;
    let usage = Usage {
        input_tokens: 10,
        output_tokens: 20,
        total_tokens: 130,
        reasoning_tokens: 5,
        cache_creation_tokens: 40,
        cache_read_tokens: 60,
    };
    let with = NewMessage::assistant(vec![Part::text("a")]).with_usage(Some(usage), Some(200_000));
    fx.store.commit_step(&lease, Step::new(Some(with), vec![])).await.expect("commit");
    fx.answer(&lease, "b").await;
    let messages = fx.store.list_messages(chat.id, MessageQuery::all()).await.expect("list");
    assert_eq!(messages[1].usage, Some(usage));
    assert_eq!(messages[1].context_limit, Some(200_000));
    assert_eq!(messages[2].usage, None);
    assert_eq!(messages[2].context_limit, None);
    assert_eq!(messages[0].usage, None, "user rows carry no usage");
}

/// A message naming a model config sets the chat's `last_model_config_id`.
pub async fn message_model_config_sets_last_model_config(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let other = fx
        .store
        .create_model_config(NewModelConfig::new(ProviderKind::OpenAi, "other", 100))
        .await
        .expect("config");
    let (chat, lease) = fx.running("q").await;
    assert_eq!(chat.last_model_config_id, fx.config.id);
    let row = NewMessage::assistant(vec![Part::text("a")]).with_model_config(other.id);
    fx.store.commit_step(&lease, Step::new(Some(row), vec![])).await.expect("commit");
    assert_eq!(fx.get(chat.id).await.last_model_config_id, other.id);
    fx.finish(&lease).await;
    let sent = fx
        .store
        .send_message(
            chat.id,
            crate::store::SendMessage::text("again").with_model_config(fx.config.id),
        )
        .await
        .expect("send");
    assert_eq!(sent.chat.last_model_config_id, fx.config.id);
}

/// Without a compaction the prompt is every model-visible row, in order.
pub async fn prompt_without_compaction_keeps_model_visible_rows(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = running_with_system_prompt(&fx, "q").await;
    let step = Step::new(
        Some(
            NewMessage::assistant(vec![Part::text("for people")]).with_visibility(Visibility::User),
        ),
        vec![
            NewMessage::tool(Part::tool_result("c", "t", json!("r"), false))
                .with_visibility(Visibility::Model),
        ],
    );
    fx.store.commit_step(&lease, step).await.expect("commit");
    let prompt = fx.store.prompt_messages(chat.id).await.expect("prompt");
    assert_eq!(
        prompt.iter().map(|m| m.role).collect::<Vec<_>>(),
        vec![Role::System, Role::User, Role::Tool]
    );
    assert!(prompt.windows(2).all(|w| w[0].id < w[1].id));
}

/// After a compaction the prompt is: system rows, the boundary, then later rows.
pub async fn prompt_after_one_compaction(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = running_with_system_prompt(&fx, "q1").await;
    fx.answer(&lease, "a1").await;
    let rows = fx
        .store
        .write_compaction(Fence::Lease(lease), compaction("S1", "sum1"))
        .await
        .expect("compact");
    assert_eq!(rows.len(), 3);
    fx.answer(&lease, "a2").await;
    let prompt = fx.store.prompt_messages(chat.id).await.expect("prompt");
    assert_eq!(texts(&prompt), vec!["sys", "Continue from this summary: S1", "a2"]);
    assert_eq!(prompt[1].id, rows[0].id);
    assert!(prompt[1].compressed);
}

/// After two compactions only the latest boundary is used.
pub async fn prompt_after_two_compactions(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = running_with_system_prompt(&fx, "q1").await;
    fx.answer(&lease, "a1").await;
    fx.store.write_compaction(Fence::Lease(lease), compaction("S1", "sum1")).await.expect("first");
    fx.answer(&lease, "a2").await;
    fx.store.write_compaction(Fence::Lease(lease), compaction("S2", "sum2")).await.expect("second");
    fx.answer(&lease, "a3").await;
    fx.finish(&lease).await;
    fx.send(chat.id, "q2").await;
    let prompt = fx.store.prompt_messages(chat.id).await.expect("prompt");
    assert_eq!(texts(&prompt), vec!["sys", "Continue from this summary: S2", "a3", "q2"]);
    let everything = fx.store.list_messages(chat.id, MessageQuery::all()).await.expect("all");
    assert_eq!(everything.len(), 2 + 1 + 3 + 1 + 3 + 1 + 1, "history itself is never deleted");
}

/// The three compaction rows have fixed roles and visibilities and are `compressed`.
pub async fn compaction_rows_have_fixed_roles_and_visibility(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.chat("q").await;
    fx.run_turn(chat.id, "a").await;
    let mut manual = compaction("S", "sum");
    manual.model_config_id = Some(fx.config.id);
    let rows =
        fx.store.write_compaction(Fence::Idle(chat.id), manual).await.expect("manual compaction");
    let shape: Vec<_> = rows.iter().map(|m| (m.role, m.visibility, m.compressed)).collect();
    assert_eq!(
        shape,
        vec![
            (Role::System, Visibility::Model, true),
            (Role::Assistant, Visibility::User, true),
            (Role::Tool, Visibility::User, true),
        ]
    );
    assert!(rows.iter().all(|m| m.model_config_id == Some(fx.config.id)));
    let user_view = fx
        .store
        .list_messages(chat.id, MessageQuery::user_visible_after(None))
        .await
        .expect("user");
    assert_eq!(user_view.len(), 4, "q, a, and the summary call and result");
    assert_eq!(
        fx.status(chat.id).await,
        crate::ChatStatus::Waiting,
        "manual compaction keeps the status"
    );
}

/// A compaction under a lost lease writes nothing.
pub async fn compaction_with_lost_lease_writes_nothing(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("q").await;
    fx.finish(&lease).await;
    let err = fx
        .store
        .write_compaction(Fence::Lease(lease), compaction("S", "s"))
        .await
        .expect_err("fenced");
    assert!(err.is_lease_lost(), "{err:?}");
    assert_eq!(fx.texts(chat.id).await, vec!["q"]);
}

/// A manual compaction is refused while work is pending or running.
pub async fn idle_compaction_refused_while_work_is_pending(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.chat("q").await;
    let err = fx
        .store
        .write_compaction(Fence::Idle(chat.id), compaction("S", "s"))
        .await
        .expect_err("pending");
    assert!(matches!(err, StoreError::InvalidTransition { .. }), "{err:?}");
    let _lease = fx.acquire(chat.id).await;
    let err = fx
        .store
        .write_compaction(Fence::Idle(chat.id), compaction("S", "s"))
        .await
        .expect_err("running");
    assert!(matches!(err, StoreError::InvalidTransition { .. }), "{err:?}");
    assert_eq!(fx.texts(chat.id).await, vec!["q"]);
}

/// A compaction without a boundary or with a mismatched call/result is refused.
pub async fn malformed_compaction_is_rejected(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("q").await;
    let mut empty = compaction("S", "s");
    empty.boundary.clear();
    let err = fx.store.write_compaction(Fence::Lease(lease), empty).await.expect_err("empty");
    assert!(matches!(err, StoreError::Validation { .. }));
    let mut mismatched = compaction("S", "s");
    mismatched.result = Part::tool_result("other", "chat_summarized", json!({}), false);
    let err =
        fx.store.write_compaction(Fence::Lease(lease), mismatched).await.expect_err("mismatch");
    assert!(matches!(err, StoreError::Validation { .. }));
    assert_eq!(fx.texts(chat.id).await, vec!["q"]);
}
