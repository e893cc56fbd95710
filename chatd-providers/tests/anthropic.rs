//! Anthropic Messages wire tests against a local fake server replaying recorded streams
//! (`fixtures/anthropic/`).

use chatd_core::ProviderMetadata;
use chatd_core::provider::{
    FinishReason, Generation, ModelRequest, PromptMessage, ProviderError, ProviderErrorKind,
    ToolDefinition,
};
use chatd_core::{CallOptions, Part, Role, Secret, Usage};
use chatd_providers::anthropic::{ANTHROPIC_VERSION, AnthropicProvider};
use chatd_providers::testing::{FakeResponse, RecordedRequest};
use serde_json::{Value, json};

mod support;

chatd_providers::provider_conformance_tests! {
    make: |url: &str| AnthropicProvider::new(url, Secret::new(KEY)),
    key: KEY,
    request: request(),
    text: FakeResponse::sse(fixture("text.sse")),
    tool_calls: FakeResponse::sse(fixture("tool-use.sse")),
    rate_limited: FakeResponse::json(429, fixture("error-429.json")),
    auth: FakeResponse::json(401, fixture("error-401.json")),
    context_length: FakeResponse::json(400, fixture("error-context-length.json")),
    malformed: FakeResponse::sse("event: message_start\ndata: {not json\n\n"),
}

const KEY: &str = "sk-ant-test-wire-key";

fn fixture(name: &str) -> Vec<u8> {
    support::fixture("anthropic", name)
}

fn request() -> ModelRequest {
    ModelRequest::new("claude-test", vec![PromptMessage::user("Say hello")])
        .with_system("You are terse.")
        .with_tool(ToolDefinition::new(
            "read_file",
            "Read a file",
            json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        ))
}

async fn call(
    response: FakeResponse,
    request: ModelRequest,
) -> (Result<Generation, ProviderError>, RecordedRequest) {
    support::call(|url| AnthropicProvider::new(url, Secret::new(KEY)), response, request).await
}

fn signature(sig: &str) -> Option<ProviderMetadata> {
    let mut meta = ProviderMetadata::new();
    meta.insert("anthropic".into(), json!({"signature": sig}));
    Some(meta)
}

#[tokio::test]
async fn plain_text_with_cache_usage() {
    let (result, sent) = call(FakeResponse::sse(fixture("text.sse")), request()).await;
    let generation = result.expect("generation");
    assert_eq!(generation.parts, vec![Part::text("Hello, wörld ✓")]);
    assert_eq!(generation.finish_reason, Some(FinishReason::Stop));
    assert_eq!(
        generation.usage,
        Some(Usage {
            input_tokens: 25,
            output_tokens: 12,
            total_tokens: 25 + 1000 + 4000 + 12,
            reasoning_tokens: 0,
            cache_creation_tokens: 1000,
            cache_read_tokens: 4000,
        }),
        "input_tokens excludes cached tokens; the full prompt is input + cache read + cache write"
    );
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some(KEY));
    assert_eq!(sent.header("anthropic-version"), Some(ANTHROPIC_VERSION));
    assert_eq!(sent.header("authorization"), None);
    let body = sent.json();
    assert_eq!(body["model"], "claude-test");
    assert_eq!(body["max_tokens"], 32000);
    assert_eq!(body["stream"], true);
    assert_eq!(
        body["system"],
        json!([{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}])
    );
    assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
}

#[tokio::test]
async fn one_byte_chunks_give_the_same_result() {
    let whole = call(FakeResponse::sse(fixture("thinking.sse")), request()).await.0.expect("whole");
    let bytewise = call(FakeResponse::sse(fixture("thinking.sse")).chunked(1), request())
        .await
        .0
        .expect("bytes");
    assert_eq!(bytewise, whole);
}

#[tokio::test]
async fn two_tool_calls_with_input_json_deltas() {
    let (result, _) = call(FakeResponse::sse(fixture("tool-use.sse")), request()).await;
    let generation = result.expect("generation");
    assert_eq!(
        generation.parts,
        vec![
            Part::text("Let me read both."),
            Part::tool_call("toolu_01A", "read_file", json!({"path": "a.rs"})),
            Part::tool_call("toolu_01B", "read_file", json!({"path": "b.rs"})),
        ]
    );
    assert_eq!(generation.finish_reason, Some(FinishReason::ToolCalls));
}

#[tokio::test]
async fn thinking_keeps_signatures_and_redacted_blocks() {
    let (result, _) = call(FakeResponse::sse(fixture("thinking.sse")), request()).await;
    let generation = result.expect("generation");
    let mut redacted = ProviderMetadata::new();
    redacted.insert("anthropic".into(), json!({"redacted_data": "EmwKAhgBEgy3va3pzix/LafPsn4a"}));
    assert_eq!(
        generation.parts,
        vec![
            Part::Reasoning {
                text: "Let me think step by step.".into(),
                provider_metadata: signature("EqQBCgIYAhIM1gbcDa9GJwZA2b3h")
            },
            Part::Reasoning { text: String::new(), provider_metadata: Some(redacted) },
            Part::text("42"),
        ]
    );
}

#[tokio::test]
async fn history_round_trips_thinking_tool_use_and_results() {
    let history = vec![
        PromptMessage::user("read a"),
        PromptMessage::new(
            Role::Assistant,
            vec![
                Part::Reasoning { text: "thought".into(), provider_metadata: signature("sig-1") },
                Part::Reasoning { text: "from another provider".into(), provider_metadata: None },
                Part::tool_call("toolu_1", "read_file", json!({"path": "a"})),
            ],
        ),
        PromptMessage::new(
            Role::Tool,
            vec![Part::tool_result("toolu_1", "read_file", json!({"content": "A"}), false)],
        ),
        PromptMessage::user("thanks"),
    ];
    let mut options = CallOptions::from_json(&json!({
        "temperature": 0.5,
        "provider_options": {"anthropic": {"thinking": {"budget_tokens": 2048}, "disable_parallel_tool_use": true}}
    }))
    .expect("options");
    options.max_output_tokens = Some(8000);
    let mut request = request().with_options(options);
    request.messages = history;
    let (_, sent) = call(FakeResponse::sse(fixture("text.sse")), request).await;
    let body = sent.json();
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "read a"}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "thought", "signature": "sig-1"},
                {"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {"path": "a"},
                 "cache_control": {"type": "ephemeral"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "{\"content\":\"A\"}", "is_error": false},
                {"type": "text", "text": "thanks", "cache_control": {"type": "ephemeral"}}]}
        ]),
        "foreign reasoning dropped, tool results merged into the next user turn, cache marks on the last two"
    );
    assert_eq!(body["thinking"], json!({"type": "enabled", "budget_tokens": 2048}));
    assert!(body.get("temperature").is_none(), "temperature is not allowed with extended thinking");
    assert_eq!(body["max_tokens"], 8000);
    assert_eq!(body["tool_choice"], json!({"type": "auto", "disable_parallel_tool_use": true}));
}

/// BEHAVIOUR §4: with prompt [sys, sys, user, asst, user] exactly indices 1, 3 and 4 are marked.
#[tokio::test]
async fn cache_marks_land_exactly_on_1_3_4_and_never_on_thinking() {
    let messages = vec![
        PromptMessage::user("first"),
        PromptMessage::new(
            Role::Assistant,
            vec![
                Part::text("answer"),
                Part::Reasoning { text: "late thought".into(), provider_metadata: signature("s") },
            ],
        ),
        PromptMessage::user("second"),
    ];
    let request =
        ModelRequest::new("claude-test", messages).with_system("sys 0").with_system("sys 1");
    let (_, sent) = call(FakeResponse::sse(fixture("text.sse")), request).await;
    let body = sent.json();
    let marked = |v: &Value| v.get("cache_control").is_some();
    let system: Vec<bool> = body["system"].as_array().expect("system").iter().map(marked).collect();
    assert_eq!(system, vec![false, true], "index 1: the last system message");
    let messages = body["messages"].as_array().expect("messages");
    let per_message: Vec<Vec<bool>> = messages
        .iter()
        .map(|m| m["content"].as_array().expect("content").iter().map(marked).collect())
        .collect();
    assert_eq!(
        per_message,
        vec![vec![false], vec![true, false], vec![true]],
        "indices 3 and 4, not the thinking block"
    );
}

#[tokio::test]
async fn an_error_event_mid_stream_is_typed() {
    let err = call(FakeResponse::sse(fixture("error-mid-stream.sse")), request())
        .await
        .0
        .expect_err("error");
    assert_eq!(err.kind, ProviderErrorKind::Overloaded);
    assert_eq!(err.error_type.as_deref(), Some("overloaded_error"));
    assert!(err.is_retryable());
}

#[tokio::test]
async fn http_529_is_overloaded() {
    let err = call(FakeResponse::json(529, fixture("error-529.json")), request())
        .await
        .0
        .expect_err("529");
    assert_eq!(err.kind, ProviderErrorKind::Overloaded);
    assert_eq!(err.status, Some(529));
}

#[tokio::test]
async fn effort_is_sent_as_output_config_and_unknown_levels_are_refused() {
    let options =
        CallOptions::from_json(&json!({"provider_options": {"anthropic": {"effort": "high"}}}))
            .expect("a known level");
    let (_, sent) = call(
        FakeResponse::sse(support::fixture("anthropic", "text.sse")),
        request().with_options(options),
    )
    .await;
    assert_eq!(sent.json()["output_config"], json!({"effort": "high"}), "never silently dropped");
    let err =
        CallOptions::from_json(&json!({"provider_options": {"anthropic": {"effort": "extreme"}}}))
            .expect_err("an unknown level");
    assert_eq!(err.path, "provider_options.anthropic.effort");
}

#[tokio::test]
async fn a_field_of_an_unexpected_type_is_ignored_not_its_event() {
    // A compatible server's quirks: a usage count as a string, a block's `signature` as a
    // number, an `index` missing. Each such field is as if absent; the rest of the event
    // (the usage it does report, the block it starts) is kept.
    let sse = concat!(
        "event: message_start\n",
        "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":7,\"cache_read_input_tokens\":\"n/a\"}}}\n\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"Hi\",\"citations\":7}}\n\n",
        "event: content_block_stop\n",
        "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":5}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hm\"}}\n\n",
        "event: content_block_stop\n",
        "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: message_delta\n",
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":3},\"usage\":{\"output_tokens\":4}}\n\n",
        "event: message_stop\n",
        "data: {\"type\":\"message_stop\"}\n\n",
    );
    let (result, _) = call(FakeResponse::sse(sse), request()).await;
    let generation = result.expect("generation");
    assert_eq!(generation.text(), "Hi");
    assert!(
        generation.parts.iter().any(|p| matches!(p, Part::Reasoning { text, .. } if text == "hm")),
        "{:?}",
        generation.parts
    );
    assert_eq!(generation.finish_reason, Some(FinishReason::Stop));
    let usage = generation.usage.expect("usage");
    assert_eq!((usage.input_tokens, usage.output_tokens, usage.cache_read_tokens), (7, 4, 0));
}
