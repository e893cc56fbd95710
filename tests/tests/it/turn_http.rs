//! A whole turn through a real adapter: the in-memory store, the registry-built
//! `openai-compat` adapter, and a fake Chat Completions server replaying recorded streams.

use std::sync::Arc;

use async_trait::async_trait;
use chatd_core::runtime::tools::{Tool, ToolContext, ToolError, ToolSet};
use chatd_core::runtime::turn::{TurnEnd, TurnRunner, TurnSignal};
use chatd_core::store::{ChatStore, MessageQuery};
use chatd_core::{
    NewChat, NewModelConfig, NewProvider, Part, ProviderKind, Role, TurnOutcome, UserId, WorkerId,
};
use chatd_providers::testing::{FakeResponse, FakeServer};
use chatd_providers::{ProviderRegistry, StoreProviderSource};
use chatd_store_memory::InMemoryChatStore;
use serde_json::{Value, json};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../chatd-providers/tests/fixtures/chat-completions/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
}

struct ReadFile;

#[async_trait]
impl Tool for ReadFile {
    fn name(&self) -> &str {
        "read_file"
    }
    fn description(&self) -> &str {
        "Read a file"
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {"path": {"type": "string"}}})
    }
    async fn run(&self, _ctx: &ToolContext, args: Value) -> Result<Value, ToolError> {
        Ok(json!({"content": format!("contents of {}", args["path"].as_str().unwrap_or("?"))}))
    }
}

/// A fresh in-memory store with an `openai-compat` provider at `url`, a chat whose first
/// message is `text`, acquired; and a runner with the `read_file` tool (titles as given).
async fn world(
    url: &str,
    text: &str,
    titles: bool,
) -> (Arc<dyn ChatStore>, chatd_core::ChatId, chatd_core::store::Lease, TurnRunner) {
    let store: Arc<dyn ChatStore> = Arc::new(InMemoryChatStore::new());
    store
        .create_provider(NewProvider::new(ProviderKind::OpenAiCompat).with_base_url(url))
        .await
        .expect("provider");
    store
        .create_model_config(NewModelConfig::new(ProviderKind::OpenAiCompat, "local-model", 32_000))
        .await
        .expect("config");
    let chat = store.create_chat(NewChat::new(UserId::new()).with_text(text)).await.expect("chat");
    let lease = store.acquire(WorkerId::new(), 1).await.expect("acquire")[0];
    let source =
        StoreProviderSource::new(Arc::clone(&store), ProviderRegistry::new().with_env(|_| None));
    let runner = TurnRunner::new(
        Arc::clone(&store),
        Arc::new(source),
        ToolSet::new().with(Arc::new(ReadFile)),
    )
    .with_titles(titles);
    (store, chat.id, lease, runner)
}

#[tokio::test]
async fn a_tool_calling_turn_through_the_real_adapter() {
    let server = FakeServer::start(vec![
        FakeResponse::sse(fixture("tool-call.sse")),
        FakeResponse::sse(fixture("text.sse")),
    ])
    .await
    .expect("server");
    let (store, chat, lease, runner) = world(server.url(), "read main.rs", false).await;
    assert_eq!(runner.run(lease, TurnSignal::new()).await, TurnEnd::Release(TurnOutcome::Finished));
    let released = store.release(&lease, TurnOutcome::Finished).await.expect("release");
    assert_eq!(released.status, chatd_core::ChatStatus::Waiting);

    let messages = store.list_messages(chat, MessageQuery::all()).await.expect("messages");
    assert_eq!(
        messages.iter().map(|m| m.role).collect::<Vec<_>>(),
        vec![Role::User, Role::Assistant, Role::Tool, Role::Assistant]
    );
    assert_eq!(
        messages[1].content,
        vec![Part::tool_call("call_abc", "read_file", json!({"path": "src/main.rs"}))]
    );
    assert_eq!(messages[3].text(), "Hello, wörld ✓");
    assert_eq!(messages[3].usage.map(|u| u.cache_read_tokens), Some(100));

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let second = requests[1].json();
    assert_eq!(second["model"], "local-model");
    assert_eq!(
        second["messages"][2],
        json!({"role": "tool", "tool_call_id": "call_abc",
        "content": "{\"content\":\"contents of src/main.rs\"}"})
    );
    assert_eq!(second["tools"][0]["function"]["name"], "read_file");
}

/// One SSE chunk of a Chat Completions stream.
fn chunk(delta: Value, finish: Option<&str>) -> String {
    let body = json!({"id": "x", "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {body}\n\n")
}

/// Runs one turn of a fresh chat against `responses` and returns the stored messages and
/// the server's recorded requests.
async fn turn(
    responses: Vec<FakeResponse>,
) -> (Vec<chatd_core::Message>, Vec<chatd_providers::testing::RecordedRequest>, TurnEnd) {
    let server = FakeServer::start(responses).await.expect("server");
    let (store, chat, lease, runner) = world(server.url(), "go", false).await;
    let end = runner.run(lease, TurnSignal::new()).await;
    let messages = store.list_messages(chat, MessageQuery::all()).await.expect("messages");
    (messages, server.requests(), end)
}

fn results(messages: &[chatd_core::Message]) -> Vec<(Value, bool)> {
    messages
        .iter()
        .flat_map(|m| m.content.iter())
        .filter_map(|p| match p {
            Part::ToolResult { result, is_error, .. } => Some((result.clone(), *is_error)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn tool_calls_that_end_with_stop_are_run() {
    // vLLM, Ollama, OpenAI with a named tool choice: the calls, then finish "stop".
    let first = [
        chunk(
            json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "c1", "type": "function",
            "function": {"name": "read_file", "arguments": "{\"path\": \"a.rs\"}"}}]}),
            None,
        ),
        chunk(json!({}), Some("stop")),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    let second =
        [chunk(json!({"content": "done"}), Some("stop")), "data: [DONE]\n\n".into()].concat();
    let (messages, requests, end) =
        turn(vec![FakeResponse::sse(first), FakeResponse::sse(second)]).await;
    assert_eq!(end, TurnEnd::Release(TurnOutcome::Finished));
    assert_eq!(requests.len(), 2, "the loop went on after running the call");
    assert_eq!(results(&messages), vec![(json!({"content": "contents of a.rs"}), false)]);
    assert_eq!(messages.last().map(chatd_core::Message::text).as_deref(), Some("done"));
}

#[tokio::test]
async fn a_call_whose_arguments_are_not_an_object_is_answered_not_run() {
    let first = [
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "c1", "type": "function",
            "function": {"name": "read_file", "arguments": "[\"a.rs\"]"}}]}),
            Some("tool_calls"),
        ),
        "data: [DONE]\n\n".into(),
    ]
    .concat();
    let second =
        [chunk(json!({"content": "sorry"}), Some("stop")), "data: [DONE]\n\n".into()].concat();
    let (messages, requests, _) =
        turn(vec![FakeResponse::sse(first), FakeResponse::sse(second)]).await;
    let results = results(&messages);
    assert_eq!(results.len(), 1);
    assert!(results[0].1, "an error result");
    assert_eq!(results[0].0, json!("invalid tool arguments: expected a JSON object, got an array"));
    // The model sees `{}` for the call (BEHAVIOUR §4) and the error result with it.
    let sent = requests[1].json();
    assert_eq!(sent["messages"][1]["tool_calls"][0]["function"]["arguments"], "{}");
}

#[tokio::test]
async fn a_call_cut_by_length_is_never_run_or_invented() {
    let body = [
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "c1", "type": "function",
            "function": {"name": "read_file", "arguments": "{\"path\": \"a."}}]}),
            Some("length"),
        ),
        "data: [DONE]\n\n".into(),
    ]
    .concat();
    let (messages, requests, end) = turn(vec![FakeResponse::sse(body)]).await;
    assert_eq!(end, TurnEnd::Release(TurnOutcome::Finished));
    assert_eq!(requests.len(), 1, "no second step");
    assert!(results(&messages).is_empty(), "nothing ran");
    assert!(
        messages.iter().flat_map(|m| m.content.iter()).all(|p| !matches!(p, Part::ToolCall { .. })),
        "no call was stored as complete: {messages:#?}"
    );
}

#[tokio::test]
async fn thinking_mode_servers_get_their_reasoning_back_with_tool_calls() {
    let first = [
        chunk(json!({"reasoning_content": "I should read it."}), None),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "c1", "type": "function",
            "function": {"name": "read_file", "arguments": "{\"path\": \"a.rs\"}"}}]}),
            Some("tool_calls"),
        ),
        "data: [DONE]\n\n".into(),
    ]
    .concat();
    let second =
        [chunk(json!({"content": "ok"}), Some("stop")), "data: [DONE]\n\n".into()].concat();
    let (_, requests, _) = turn(vec![FakeResponse::sse(first), FakeResponse::sse(second)]).await;
    let assistant = &requests[1].json()["messages"][1];
    assert_eq!(assistant["role"], "assistant");
    assert_eq!(assistant["reasoning_content"], "I should read it.");
    assert_eq!(assistant["tool_calls"][0]["id"], "c1");
}

#[tokio::test]
async fn with_titles_on_the_title_request_gets_its_own_script() {
    // Titles are on (the default): the title call runs concurrently with the first step,
    // and the fake server answers it with the response meant for it, not the turn's.
    let title =
        [chunk(json!({"content": "Reading main"}), Some("stop")), "data: [DONE]\n\n".into()]
            .concat();
    let server = FakeServer::start(vec![
        FakeResponse::sse(fixture("tool-call.sse")),
        FakeResponse::sse(fixture("text.sse")),
        FakeResponse::sse(title).when_body_contains("Write a short title for the conversation"),
    ])
    .await
    .expect("server");
    let (store, chat, lease, runner) = world(server.url(), "read main.rs", true).await;
    assert_eq!(runner.run(lease, TurnSignal::new()).await, TurnEnd::Release(TurnOutcome::Finished));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while store.get_chat(chat).await.expect("chat").title != "Reading main" {
        assert!(std::time::Instant::now() < deadline, "the title never arrived");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let messages = store.list_messages(chat, MessageQuery::all()).await.expect("messages");
    assert_eq!(messages.last().map(chatd_core::Message::text).as_deref(), Some("Hello, wörld ✓"));
    assert_eq!(server.requests().len(), 3);
}
