//! Gemini wire tests against a local fake server replaying recorded streams
//! (`fixtures/google/`).

use chatd_core::ProviderMetadata;
use chatd_core::provider::{
    FinishReason, Generation, ModelRequest, PromptMessage, ProviderError, ProviderErrorKind,
    ToolDefinition,
};
use chatd_core::{CallOptions, Part, Role, Secret, Usage};
use chatd_providers::google::GoogleProvider;
use chatd_providers::testing::{FakeResponse, RecordedRequest};
use serde_json::json;

mod support;

chatd_providers::provider_conformance_tests! {
    make: |url: &str| GoogleProvider::new(url, Secret::new(KEY)),
    key: KEY,
    request: request(),
    text: FakeResponse::sse(fixture("text.sse")),
    tool_calls: FakeResponse::sse(fixture("function-calls.sse")),
    rate_limited: FakeResponse::json(429, fixture("error-429.json")),
    auth: FakeResponse::json(403, fixture("error-403.json")),
    context_length: FakeResponse::json(400, fixture("error-context-length.json")),
    malformed: FakeResponse::sse("data: {not json\n\n"),
}

const KEY: &str = "AIza-test-wire-key";

fn fixture(name: &str) -> Vec<u8> {
    support::fixture("google", name)
}

fn request() -> ModelRequest {
    ModelRequest::new("gemini-test", vec![PromptMessage::user("Say hello")])
        .with_system("You are terse.")
        .with_tool(ToolDefinition::new("read_file", "Read a file", json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
                                 "properties": {"path": {"type": "string"}}, "additionalProperties": false})))
}

async fn call(
    response: FakeResponse,
    request: ModelRequest,
) -> (Result<Generation, ProviderError>, RecordedRequest) {
    support::call(|url| GoogleProvider::new(url, Secret::new(KEY)), response, request).await
}

fn signature(sig: &str) -> Option<ProviderMetadata> {
    let mut meta = ProviderMetadata::new();
    meta.insert("google".into(), json!({"thought_signature": sig}));
    Some(meta)
}

#[tokio::test]
async fn plain_text_with_cached_usage() {
    let (result, sent) = call(FakeResponse::sse(fixture("text.sse")), request()).await;
    let generation = result.expect("generation");
    assert_eq!(generation.parts, vec![Part::text("Hello, wörld ✓")]);
    assert_eq!(generation.finish_reason, Some(FinishReason::Stop));
    assert_eq!(
        generation.usage,
        Some(Usage {
            input_tokens: 200,
            output_tokens: 8,
            total_tokens: 1208,
            reasoning_tokens: 0,
            cache_creation_tokens: 0,
            cache_read_tokens: 1000
        })
    );
    assert_eq!(sent.path, "/v1beta/models/gemini-test:streamGenerateContent?alt=sse");
    assert_eq!(sent.header("x-goog-api-key"), Some(KEY));
    let body = sent.json();
    assert_eq!(body["systemInstruction"], json!({"parts": [{"text": "You are terse."}]}));
    assert_eq!(body["contents"], json!([{"role": "user", "parts": [{"text": "Say hello"}]}]));
    assert_eq!(body["generationConfig"]["maxOutputTokens"], 32000);
    let parameters = &body["tools"][0]["functionDeclarations"][0]["parameters"];
    assert_eq!(
        parameters,
        &json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        "schema normalised for Gemini"
    );
}

#[tokio::test]
async fn two_parallel_function_calls_keep_their_thought_signature() {
    let (result, _) =
        call(FakeResponse::sse(fixture("function-calls.sse")).chunked(1), request()).await;
    let generation = result.expect("generation");
    assert_eq!(generation.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(generation.parts.len(), 2);
    assert!(
        matches!(&generation.parts[0], Part::ToolCall { tool_call_id, args, provider_metadata, .. }
        if tool_call_id == "call_0" && args == &json!({"path": "a.rs"}) && *provider_metadata == signature("CiQBVKhc7sig0"))
    );
    assert!(
        matches!(&generation.parts[1], Part::ToolCall { tool_call_id, provider_metadata: None, .. } if tool_call_id == "call_1")
    );
    let usage = generation.usage.expect("usage");
    assert_eq!(
        (usage.output_tokens, usage.reasoning_tokens),
        (90, 50),
        "thoughts count inside output"
    );
}

#[tokio::test]
async fn a_thought_signature_on_a_text_part_survives_the_round_trip() {
    let (result, _) = call(FakeResponse::sse(fixture("thinking.sse")), request()).await;
    let generation = result.expect("generation");
    let signed_text =
        Part::Text { text: "42".into(), provider_metadata: signature("CiIBVKhc7thought") };
    assert_eq!(
        generation.parts,
        vec![
            Part::Reasoning { text: "**Planning** the answer.".into(), provider_metadata: None },
            signed_text.clone(),
        ],
        "the signature rides on the text part it came with"
    );
    // Stored and read back, then replayed: the text part carries its signature again.
    let stored = serde_json::to_value(&generation.parts).expect("serialise");
    let read: Vec<Part> = serde_json::from_value(stored).expect("deserialise");
    let messages = vec![
        PromptMessage::user("q"),
        PromptMessage::new(Role::Assistant, read),
        PromptMessage::user("more"),
    ];
    let (_, sent) =
        call(FakeResponse::sse(fixture("text.sse")), ModelRequest::new("gemini-test", messages))
            .await;
    assert_eq!(
        sent.json()["contents"][1],
        json!({"role": "model", "parts": [{"text": "42", "thoughtSignature": "CiIBVKhc7thought"}]})
    );
    // A person's text never carries one.
    assert_eq!(
        serde_json::to_value(Part::text("hi")).expect("json"),
        json!({"type": "text", "text": "hi"})
    );
}

#[tokio::test]
async fn history_replays_only_gemini_signatures_and_wraps_results() {
    let messages = vec![
        PromptMessage::user("read a"),
        PromptMessage::new(
            Role::Assistant,
            vec![
                Part::Reasoning { text: "foreign".into(), provider_metadata: None },
                Part::ToolCall {
                    tool_call_id: "call_0".into(),
                    tool_name: "read_file".into(),
                    args: json!({"path": "a"}),
                    provider_executed: false,
                    provider_metadata: signature("sig-a"),
                },
            ],
        ),
        PromptMessage::new(
            Role::Tool,
            vec![Part::tool_result("call_0", "read_file", json!("A"), false)],
        ),
    ];
    let options = CallOptions::from_json(&json!({"provider_options": {"google": {
        "thinking_config": {"thinking_budget": 1024, "include_thoughts": true},
        "safety_settings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]}}}))
    .expect("options");
    let (_, sent) = call(
        FakeResponse::sse(fixture("text.sse")),
        ModelRequest::new("gemini-test", messages).with_options(options),
    )
    .await;
    let body = sent.json();
    assert_eq!(
        body["contents"],
        json!([
            {"role": "user", "parts": [{"text": "read a"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "read_file", "args": {"path": "a"}}, "thoughtSignature": "sig-a"}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "read_file", "response": {"result": "A"}}}]}
        ])
    );
    assert_eq!(
        body["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 1024, "includeThoughts": true})
    );
    assert_eq!(body["safetySettings"][0]["threshold"], "BLOCK_NONE");
}

#[tokio::test]
async fn an_error_mid_stream_is_typed() {
    let err = call(FakeResponse::sse(fixture("error-mid-stream.sse")), request())
        .await
        .0
        .expect_err("error");
    assert_eq!(err.kind, ProviderErrorKind::Overloaded);
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_field_of_an_unexpected_type_is_ignored_not_its_chunk() {
    // A compatible server's quirks: a token count as a string, a part's `thought` as a
    // string, a call's `id` as a number, a part that is not an object. Each is as if
    // absent; the rest of the chunk (the text, the call, the usage it does report) is kept.
    let sse = concat!(
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\",\"thought\":\"no\"},7]}}],",
        "\"usageMetadata\":{\"promptTokenCount\":9,\"cachedContentTokenCount\":\"n/a\"}}\n\n",
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"id\":5,\"name\":\"read_file\",\"args\":{\"path\":\"a\"}}}]},",
        "\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":9,\"candidatesTokenCount\":3}}\n\n",
    );
    let (result, _) = call(FakeResponse::sse(sse), request()).await;
    let generation = result.expect("generation");
    assert_eq!(generation.text(), "Hi");
    assert!(
        generation.parts.iter().any(|p| matches!(p, Part::ToolCall { tool_call_id, args, .. }
            if tool_call_id == "call_0" && args["path"] == "a")),
        "{:?}",
        generation.parts
    );
    assert_eq!(generation.finish_reason, Some(FinishReason::ToolCalls));
    let usage = generation.usage.expect("usage");
    assert_eq!((usage.input_tokens, usage.output_tokens, usage.cache_read_tokens), (9, 3, 0));
}
