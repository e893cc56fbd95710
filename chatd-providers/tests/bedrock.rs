//! Bedrock Converse stream wire tests. Fixtures are the documented events as JSON lines
//! (`fixtures/bedrock/*.jsonl`), encoded here into real AWS event-stream frames (prelude,
//! headers, payload, CRCs) with `aws-smithy-eventstream`.

use chatd_core::ProviderMetadata;
use chatd_core::provider::{
    FinishReason, Generation, ModelRequest, PromptMessage, ProviderError, ProviderErrorKind,
    ToolDefinition,
};
use chatd_core::{CallOptions, Part, Role, Secret, Usage};
use chatd_providers::bedrock::{BedrockAuth, BedrockProvider};
use chatd_providers::testing::{FakeResponse, RecordedRequest};
use serde_json::json;

mod support;

chatd_providers::provider_conformance_tests! {
    make: |url: &str| BedrockProvider::new(url, "us-east-1", BedrockAuth::Bearer(Secret::new(KEY))),
    key: KEY,
    request: request(),
    text: stream("text.jsonl"),
    tool_calls: stream("tool-use.jsonl"),
    rate_limited: FakeResponse::json(429, support::fixture("bedrock", "error-429.json")),
    auth: FakeResponse::json(403, support::fixture("bedrock", "error-403.json")),
    context_length: FakeResponse::json(400, support::fixture("bedrock", "error-context-length.json")),
    // A frame whose payload no longer matches its CRC.
    malformed: {
        let mut frames = support::bedrock_frames("text.jsonl");
        frames[20] ^= 0xFF;
        FakeResponse::sse(frames).with_header("content-type", "application/vnd.amazon.eventstream")
    },
}

const KEY: &str = "bedrock-api-key-test";

fn stream(name: &str) -> FakeResponse {
    FakeResponse::sse(support::bedrock_frames(name))
        .with_header("content-type", "application/vnd.amazon.eventstream")
}

fn request() -> ModelRequest {
    ModelRequest::new("anthropic.claude-test-v1:0", vec![PromptMessage::user("Say hello")])
        .with_system("You are terse.")
        .with_tool(ToolDefinition::new(
            "read_file",
            "Read a file",
            json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        ))
}

async fn call_with(
    auth: BedrockAuth,
    response: FakeResponse,
    request: ModelRequest,
) -> (Result<Generation, ProviderError>, RecordedRequest) {
    support::call(|url| BedrockProvider::new(url, "us-east-1", auth), response, request).await
}

async fn call(
    response: FakeResponse,
    request: ModelRequest,
) -> (Result<Generation, ProviderError>, RecordedRequest) {
    call_with(BedrockAuth::Bearer(Secret::new(KEY)), response, request).await
}

#[tokio::test]
async fn plain_text_with_cache_usage_and_bearer_auth() {
    let (result, sent) = call(stream("text.jsonl"), request()).await;
    let generation = result.expect("generation");
    assert_eq!(generation.parts, vec![Part::text("Hello, wörld ✓")]);
    assert_eq!(generation.finish_reason, Some(FinishReason::Stop));
    assert_eq!(
        generation.usage,
        Some(Usage {
            input_tokens: 30,
            output_tokens: 9,
            total_tokens: 2539,
            reasoning_tokens: 0,
            cache_creation_tokens: 500,
            cache_read_tokens: 2000
        })
    );
    assert_eq!(sent.path, "/model/anthropic.claude-test-v1%3A0/converse-stream");
    assert_eq!(sent.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    let body = sent.json();
    assert_eq!(body["system"], json!([{"text": "You are terse."}]));
    assert_eq!(body["messages"], json!([{"role": "user", "content": [{"text": "Say hello"}]}]));
    assert_eq!(body["inferenceConfig"]["maxTokens"], 32000);
    assert_eq!(body["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["type"], "object");
}

#[tokio::test]
async fn sigv4_signs_every_request() {
    let auth = BedrockAuth::SigV4 {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        session_token: Some(Secret::new("session-token-example")),
    };
    let (result, sent) = call_with(auth.clone(), stream("text.jsonl"), request()).await;
    result.expect("generation");
    let authorization = sent.header("authorization").expect("authorization");
    assert!(
        authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
        "{authorization}"
    );
    assert!(authorization.contains("/us-east-1/bedrock/aws4_request"), "{authorization}");
    assert!(authorization.contains("SignedHeaders=") && authorization.contains("Signature="));
    assert!(sent.header("x-amz-date").is_some());
    assert_eq!(sent.header("x-amz-security-token"), Some("session-token-example"));
    assert!(!format!("{auth:?}").contains("wJalrXUtnFEMI"), "Debug hides the secret key");
}

#[tokio::test]
async fn two_tool_uses_one_byte_at_a_time() {
    let (result, _) = call(stream("tool-use.jsonl").chunked(1), request()).await;
    let generation = result.expect("generation");
    assert_eq!(
        generation.parts,
        vec![
            Part::tool_call("tooluse_A", "read_file", json!({"path": "a.rs"})),
            Part::tool_call("tooluse_B", "read_file", json!({"path": "b.rs"})),
        ]
    );
    assert_eq!(generation.finish_reason, Some(FinishReason::ToolCalls));
}

#[tokio::test]
async fn reasoning_keeps_its_signature_and_replays_only_bedrock_reasoning() {
    let generation = call(stream("reasoning.jsonl"), request()).await.0.expect("generation");
    let mut meta = ProviderMetadata::new();
    meta.insert("bedrock".into(), json!({"signature": "EqoBsig=="}));
    let reasoning = Part::Reasoning { text: "Think first.".into(), provider_metadata: Some(meta) };
    assert_eq!(generation.parts, vec![reasoning.clone(), Part::text("42")]);

    let history = vec![
        PromptMessage::user("q"),
        PromptMessage::new(
            Role::Assistant,
            vec![
                reasoning,
                Part::Reasoning { text: "foreign".into(), provider_metadata: None },
                Part::tool_call("t1", "read_file", json!({"path": "a"})),
            ],
        ),
        PromptMessage::new(
            Role::Tool,
            vec![Part::tool_result("t1", "read_file", json!({"content": "A"}), false)],
        ),
    ];
    let options = CallOptions::from_json(
        &json!({"provider_options": {"anthropic": {"thinking": {"budget_tokens": 1024}}}}),
    )
    .expect("options");
    let (_, sent) =
        call(stream("text.jsonl"), ModelRequest::new("m", history).with_options(options)).await;
    let body = sent.json();
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"text": "q"}]},
            {"role": "assistant", "content": [
                {"reasoningContent": {"reasoningText": {"text": "Think first.", "signature": "EqoBsig=="}}},
                {"toolUse": {"toolUseId": "t1", "name": "read_file", "input": {"path": "a"}}}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"json": {"content": "A"}}], "status": "success"}}]}
        ])
    );
    assert_eq!(
        body["additionalModelRequestFields"]["thinking"],
        json!({"type": "enabled", "budget_tokens": 1024})
    );
}

#[tokio::test]
async fn an_exception_frame_mid_stream_is_typed() {
    let err = call(stream("exception-mid-stream.jsonl"), request()).await.0.expect_err("exception");
    assert_eq!(err.kind, ProviderErrorKind::RateLimited);
    assert_eq!(err.error_type.as_deref(), Some("throttlingException"));
    assert!(err.is_retryable());
}

#[tokio::test]
async fn disabling_parallel_tool_use_is_refused_not_dropped() {
    // Converse's toolChoice has no way to say it: the call is refused before anything is sent.
    let server = chatd_providers::testing::FakeServer::start(vec![stream("text.jsonl")])
        .await
        .expect("server");
    let provider =
        BedrockProvider::new(server.url(), "us-east-1", BedrockAuth::Bearer(Secret::new(KEY)));
    let options = CallOptions::from_json(
        &json!({"provider_options": {"anthropic": {"disable_parallel_tool_use": true}}}),
    )
    .expect("options");
    let err = chatd_core::provider::ModelProvider::generate(
        &provider,
        request().with_options(options),
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .expect_err("refused");
    assert_eq!(err.kind, ProviderErrorKind::InvalidRequest);
    assert!(err.to_string().contains("disable_parallel_tool_use"), "{err}");
    assert!(server.requests().is_empty(), "nothing was sent");
    // `false` asks for what Converse does anyway.
    let options = CallOptions::from_json(
        &json!({"provider_options": {"anthropic": {"disable_parallel_tool_use": false}}}),
    )
    .expect("options");
    let (result, _) = call(stream("text.jsonl"), request().with_options(options)).await;
    result.expect("false is honoured");
}

#[tokio::test]
async fn a_field_of_an_unexpected_type_is_ignored_not_its_event() {
    // A compatible endpoint's quirks: a usage count as a string, a tool start's `name` as a
    // number beside a good id, a text delta with a stray field. Each such field is as if
    // absent; the rest of the event (the text, the call, the usage it does report) is kept.
    let frames = support::bedrock_frames_from(concat!(
        r#"{"event": "contentBlockDelta", "payload": {"contentBlockIndex": 0, "delta": {"text": "Hi", "citation": 7}}}"#,
        "\n",
        r#"{"event": "contentBlockStop", "payload": {"contentBlockIndex": 0}}"#,
        "\n",
        r#"{"event": "contentBlockStart", "payload": {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t1", "name": 5}}}}"#,
        "\n",
        r#"{"event": "contentBlockDelta", "payload": {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"path\": \"a\"}"}}}}"#,
        "\n",
        r#"{"event": "contentBlockStop", "payload": {"contentBlockIndex": 1}}"#,
        "\n",
        r#"{"event": "messageStop", "payload": {"stopReason": "tool_use"}}"#,
        "\n",
        r#"{"event": "metadata", "payload": {"usage": {"inputTokens": 9, "outputTokens": 3, "cacheReadInputTokens": "n/a"}}}"#,
        "\n",
    ));
    let response =
        FakeResponse::sse(frames).with_header("content-type", "application/vnd.amazon.eventstream");
    let (result, _) = call(response, request()).await;
    let generation = result.expect("generation");
    assert_eq!(generation.text(), "Hi");
    assert!(
        generation.parts.iter().any(|p| matches!(p, Part::ToolCall { tool_call_id, args, .. }
            if tool_call_id == "t1" && args["path"] == "a")),
        "{:?}",
        generation.parts
    );
    let usage = generation.usage.expect("usage");
    assert_eq!((usage.input_tokens, usage.output_tokens, usage.cache_read_tokens), (9, 3, 0));
}
