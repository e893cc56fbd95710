//! All eight provider kinds of the seed, built by the registry from stored configuration and
//! driven through the one `ModelProvider` trait: each streams a tool-calling turn from its
//! fake server (its own recorded wire format) and the accumulated message is printed.
//! Run with `cargo test -p chatd-providers --test all_kinds -- --nocapture` to see it.

use chatd_core::provider::{FinishReason, ModelRequest, PromptMessage, ToolDefinition};
use chatd_core::{
    CallOptions, ModelConfig, ModelConfigId, Part, ProviderConfig, ProviderId, ProviderKind, Secret,
};
use chatd_providers::ProviderRegistry;
use chatd_providers::testing::{FakeResponse, FakeServer};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

mod support;

fn configs(kind: ProviderKind, base_url: &str, options: Value) -> (ProviderConfig, ModelConfig) {
    let now = chrono::Utc::now();
    let provider = ProviderConfig {
        id: ProviderId::new(),
        provider: kind,
        display_name: String::new(),
        api_key: Secret::new("test-key"),
        api_key_key_id: None,
        created_by: None,
        enabled: true,
        created_at: now,
        updated_at: now,
        base_url: base_url.to_owned(),
    };
    let model = ModelConfig {
        id: ModelConfigId::new(),
        provider: kind,
        model: "test-model".into(),
        display_name: String::new(),
        created_by: None,
        updated_by: None,
        enabled: true,
        is_default: true,
        deleted: false,
        deleted_at: None,
        created_at: now,
        updated_at: now,
        context_limit: 100_000,
        compression_threshold: 70,
        options: CallOptions::from_json(&options).expect("options"),
        prices: None,
    };
    (provider, model)
}

#[tokio::test]
async fn eight_kinds_stream_a_tool_calling_turn_through_one_trait() {
    let chat_mode = json!({"provider_options": {"openai": {"api_mode": "chat_completions"}}});
    let cases: Vec<(ProviderKind, FakeResponse, Value)> = vec![
        (
            ProviderKind::OpenAi,
            FakeResponse::sse(support::fixture("openai-responses", "tool-calls.sse")),
            json!({}),
        ),
        (
            ProviderKind::Anthropic,
            FakeResponse::sse(support::fixture("anthropic", "tool-use.sse")),
            json!({}),
        ),
        (
            ProviderKind::Google,
            FakeResponse::sse(support::fixture("google", "function-calls.sse")),
            json!({}),
        ),
        (
            ProviderKind::Azure,
            FakeResponse::sse(support::fixture("chat-completions", "tool-call.sse")),
            json!({}),
        ),
        (
            ProviderKind::Bedrock,
            FakeResponse::sse(support::bedrock_frames("tool-use.jsonl")),
            json!({}),
        ),
        (
            ProviderKind::OpenAiCompat,
            FakeResponse::sse(support::fixture("chat-completions", "parallel-tools.sse")),
            json!({}),
        ),
        (
            ProviderKind::OpenRouter,
            FakeResponse::sse(support::fixture("chat-completions", "tool-call.sse")),
            json!({}),
        ),
        (
            ProviderKind::Vercel,
            FakeResponse::sse(support::fixture("chat-completions", "tool-call.sse")),
            chat_mode,
        ),
    ];
    let registry = ProviderRegistry::new().with_env(|_| None);
    let request = ModelRequest::new("test-model", vec![PromptMessage::user("Read the files.")])
        .with_tool(ToolDefinition::new(
            "read_file",
            "Read a file",
            json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        ));
    let mut seen = Vec::new();
    for (kind, response, options) in cases {
        let server = FakeServer::start(vec![response]).await.expect("server");
        let (provider, model) = configs(kind, server.url(), options);
        let adapter = registry.build(&provider, &model).expect("adapter");
        assert_eq!(adapter.kind(), kind);
        let generation = adapter
            .generate(request.clone(), CancellationToken::new())
            .await
            .unwrap_or_else(|err| panic!("{kind}: {err}"));
        assert_eq!(generation.finish_reason, Some(FinishReason::ToolCalls), "{kind}");
        let calls = generation.local_tool_calls();
        assert!(!calls.is_empty(), "{kind}: no tool call");
        for call in &calls {
            assert!(
                matches!(call, Part::ToolCall { tool_name, args, .. } if tool_name == "read_file" && args["path"].is_string()),
                "{kind}: {call:?}"
            );
        }
        println!(
            "{:>13}: {}",
            kind.as_str(),
            serde_json::to_string(&chatd_core::Part::content_to_json(&generation.parts))
                .unwrap_or_default()
        );
        assert_eq!(server.requests().len(), 1, "{kind}: exactly one request");
        seen.push(kind);
    }
    assert_eq!(seen.len(), ProviderKind::ALL.len());
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, ProviderKind::ALL.to_vec(), "every seed kind, once");
}
