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

#[tokio::test]
async fn a_tool_calling_turn_through_the_real_adapter() {
    let server = FakeServer::start(vec![
        FakeResponse::sse(fixture("tool-call.sse")),
        FakeResponse::sse(fixture("text.sse")),
    ])
    .await
    .expect("server");
    let store: Arc<dyn ChatStore> = Arc::new(InMemoryChatStore::new());
    store
        .create_provider(NewProvider::new(ProviderKind::OpenAiCompat).with_base_url(server.url()))
        .await
        .expect("provider");
    store
        .create_model_config(NewModelConfig::new(ProviderKind::OpenAiCompat, "local-model", 32_000))
        .await
        .expect("config");
    let chat = store
        .create_chat(NewChat::new(UserId::new()).with_text("read main.rs"))
        .await
        .expect("chat");
    let lease = store.acquire(WorkerId::new(), 1).await.expect("acquire")[0];
    let source =
        StoreProviderSource::new(Arc::clone(&store), ProviderRegistry::new().with_env(|_| None));
    let runner = TurnRunner::new(
        Arc::clone(&store),
        Arc::new(source),
        ToolSet::new().with(Arc::new(ReadFile)),
    )
    .with_titles(false);
    assert_eq!(runner.run(lease, TurnSignal::new()).await, TurnEnd::Release(TurnOutcome::Finished));
    let released = store.release(&lease, TurnOutcome::Finished).await.expect("release");
    assert_eq!(released.status, chatd_core::ChatStatus::Waiting);

    let messages = store.list_messages(chat.id, MessageQuery::all()).await.expect("messages");
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
