//! No secret ever leaks (BEHAVIOUR §12): for every provider kind, a turn runs against a fake
//! server with a known canary key — a tool step, then a 401 whose body echoes the key — and
//! the canary appears in no `tracing` output (every level captured), no error `Display` or
//! `Debug`, no event a subscriber receives, no stored row other than the key column, and
//! no tool's environment.

use std::io::Write;
use std::sync::{Arc, Mutex};

use chatd_core::events::{SubscribeOptions, subscribe};
use chatd_core::provider::{ModelRequest, PromptMessage};
use chatd_core::runtime::tools::{ExecRequest, LocalWorkspace, ToolContext, ToolSet, Workspace};
use chatd_core::runtime::turn::{TurnEnd, TurnRunner, TurnSignal};
use chatd_core::store::{ChatStore, MessageQuery};
use chatd_core::{
    ChatId, NewChat, NewModelConfig, NewProvider, ProviderKind, TurnOutcome, UserId, WorkerId,
};
use chatd_providers::testing::{FakeResponse, FakeServer};
use chatd_providers::{ProviderRegistry, StoreProviderSource};
use chatd_store_memory::InMemoryChatStore;
use futures::StreamExt;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Everything `tracing` writes, at every level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

use chatd_tests::wire::{body, tool_call_text};

fn first_response(kind: ProviderKind) -> FakeResponse {
    FakeResponse::sse(body(kind, &tool_call_text(kind)))
}

/// A 401 whose body echoes the key, as real providers do.
fn rejection(canary: &str) -> FakeResponse {
    let body = json!({"error": {"message": format!("Incorrect API key provided: {canary}"),
        "type": "invalid_request_error", "code": "invalid_api_key"},
        "message": format!("The security token {canary} is invalid.")});
    FakeResponse::json(401, body.to_string().into_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_canary_key_leaks_from_a_turn_of_any_provider_kind() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // Global: the turn runs on the runtime's other threads. This binary has one test.
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let mut checked = Vec::new();
    for kind in ProviderKind::ALL {
        let canary = format!("canary-{}-7Qf2x9Lk", kind.as_str());
        let server =
            FakeServer::start(vec![first_response(kind), rejection(&canary), rejection(&canary)])
                .await
                .expect("server");
        let store: Arc<dyn ChatStore> = Arc::new(InMemoryChatStore::new());
        store
            .create_provider(
                NewProvider::new(kind).with_api_key(canary.as_str()).with_base_url(server.url()),
            )
            .await
            .expect("provider");
        store
            .create_model_config(NewModelConfig::new(kind, "test-model", 100_000))
            .await
            .expect("config");
        let chat = store
            .create_chat(NewChat::new(UserId::new()).with_text("read the files"))
            .await
            .expect("chat");
        let mut events = subscribe(Arc::clone(&store), chat.id, None, SubscribeOptions::default())
            .await
            .expect("subscribe");
        let dir = tempfile::tempdir().expect("workspace");
        let workspace = Arc::new(LocalWorkspace::open(dir.path()).expect("workspace"));
        let source = StoreProviderSource::new(
            Arc::clone(&store),
            ProviderRegistry::new().with_env(|_| None),
        );
        let runner = TurnRunner::new(
            Arc::clone(&store),
            Arc::new(source),
            ToolSet::workspace(workspace.clone()),
        )
        .with_titles(false);
        let lease = store.acquire(WorkerId::new(), 1).await.expect("acquire")[0];
        let end = runner.run(lease, TurnSignal::new()).await;
        let TurnEnd::Release(outcome) = &end else { panic!("{kind}: {end:?}") };
        assert!(
            matches!(outcome, TurnOutcome::Failed(_)),
            "{kind}: the 401 fails the turn: {outcome:?}"
        );
        store.release(&lease, outcome.clone()).await.expect("release");
        let mut seen = format!("{end:?} {outcome:?}");
        // Everything a subscriber received.
        while let Ok(Some(event)) =
            tokio::time::timeout(std::time::Duration::from_millis(200), events.next()).await
        {
            seen.push_str(&format!(
                "{event:?} {}",
                serde_json::to_string(&event).unwrap_or_default()
            ));
        }
        // Every stored row but the key column.
        let messages = store.list_messages(chat.id, MessageQuery::all()).await.expect("messages");
        let parts = store.read_parts(chat.id, None).await.expect("parts");
        let stored_chat = store.get_chat(chat.id).await.expect("chat");
        seen.push_str(&format!("{messages:?} {parts:?} {stored_chat:?}"));
        let providers = store.list_providers().await.expect("providers");
        seen.push_str(&format!("{providers:?}"));
        // The error of the provider itself, in Display and Debug.
        let adapter = ProviderRegistry::new()
            .with_env(|_| None)
            .build(&providers[0], &store.list_model_configs(true).await.expect("configs")[0])
            .expect("adapter");
        let err = adapter
            .generate(
                ModelRequest::new("test-model", vec![PromptMessage::user("hi")]),
                CancellationToken::new(),
            )
            .await
            .expect_err("the 401 again");
        seen.push_str(&format!("{err} {err:?}"));
        // The tool environment.
        let ctx = ToolContext::new(
            ChatId::new(),
            UserId::new(),
            chatd_core::ChatKind::Root,
            CancellationToken::new(),
        );
        let env = workspace.execute(&ctx, &ExecRequest::new("env")).await.expect("env");
        seen.push_str(&env.output);
        assert!(
            server.requests().iter().any(|r| r.headers.iter().any(|(_, v)| v.contains(&canary)))
                || kind == ProviderKind::Bedrock && !server.requests().is_empty(),
            "{kind}: the key was sent to its own server (the test must exercise it)"
        );
        assert!(!seen.contains(&canary), "{kind}: the canary leaked:\n{seen}");
        assert!(!seen.contains("7Qf2x9Lk"), "{kind}: part of the canary leaked");
        checked.push(kind);
    }
    let logs = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8 logs");
    assert!(!logs.is_empty(), "tracing captured something (the capture works)");
    assert!(!logs.contains("7Qf2x9Lk"), "a canary is in the tracing output:\n{logs}");
    println!(
        "{} provider kinds, {} bytes of tracing output: no canary anywhere",
        checked.len(),
        logs.len()
    );
    assert_eq!(checked.len(), 8);
}
