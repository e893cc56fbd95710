//! OpenAI Responses API wire tests against a local fake server replaying recorded streams
//! (`fixtures/openai-responses/`).

use chatd_core::ProviderMetadata;
use chatd_core::provider::{
    FinishReason, Generation, ModelRequest, PromptMessage, ProviderError, ProviderErrorKind,
    ToolDefinition,
};
use chatd_core::{CallOptions, Part, Role, Secret, Usage};
use chatd_providers::openai_responses::ResponsesProvider;
use chatd_providers::testing::{FakeResponse, RecordedRequest};
use serde_json::json;

mod support;

chatd_providers::provider_conformance_tests! {
    make: |url: &str| ResponsesProvider::new(url, Secret::new(KEY)),
    key: KEY,
    request: request(),
    text: FakeResponse::sse(fixture("text.sse")),
    tool_calls: FakeResponse::sse(fixture("tool-calls.sse")),
    rate_limited: FakeResponse::json(429, fixture("error-429.json")),
    auth: FakeResponse::json(401, fixture("error-401.json")),
    context_length: FakeResponse::json(400, fixture("error-context-length.json")),
    malformed: FakeResponse::sse("event: response.created\ndata: {not json\n\n"),
}

const KEY: &str = "sk-test-responses-key";

fn fixture(name: &str) -> Vec<u8> {
    support::fixture("openai-responses", name)
}

fn request() -> ModelRequest {
    ModelRequest::new("gpt-test", vec![PromptMessage::user("Say hello")])
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
    support::call(|url| ResponsesProvider::new(url, Secret::new(KEY)), response, request).await
}

fn encrypted(item: &str, content: &str) -> Option<ProviderMetadata> {
    let mut meta = ProviderMetadata::new();
    meta.insert("openai".into(), json!({"item_id": item, "encrypted_content": content}));
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
            input_tokens: 464,
            output_tokens: 10,
            total_tokens: 2010,
            reasoning_tokens: 0,
            cache_creation_tokens: 0,
            cache_read_tokens: 1536
        })
    );
    assert_eq!(sent.path, "/responses");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-test-responses-key"));
    let body = sent.json();
    assert_eq!(body["instructions"], "You are terse.");
    assert_eq!(
        body["input"],
        json!([{"role": "user", "content": [{"type": "input_text", "text": "Say hello"}]}])
    );
    assert_eq!(body["store"], false);
    assert_eq!(body["include"], json!(["reasoning.encrypted_content"]));
    assert_eq!(body["max_output_tokens"], 32000);
    assert_eq!(
        body["tools"][0],
        json!({"type": "function", "name": "read_file", "description": "Read a file",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}, "strict": false})
    );
}

#[tokio::test]
async fn two_function_calls_one_byte_at_a_time() {
    let (result, _) =
        call(FakeResponse::sse(fixture("tool-calls.sse")).chunked(1), request()).await;
    let generation = result.expect("generation");
    assert_eq!(
        generation.parts,
        vec![
            Part::tool_call("call_a", "read_file", json!({"path": "a.rs"})),
            Part::tool_call("call_b", "read_file", json!({"path": "b.rs"})),
        ]
    );
    assert_eq!(generation.finish_reason, Some(FinishReason::ToolCalls));
}

#[tokio::test]
async fn reasoning_summary_and_encrypted_content_round_trip() {
    let (result, _) = call(FakeResponse::sse(fixture("reasoning.sse")), request()).await;
    let generation = result.expect("generation");
    let reasoning = Part::Reasoning {
        text: "**Checking** the file.".into(),
        provider_metadata: encrypted("rs_1", "gAAAAABencrypted=="),
    };
    assert_eq!(generation.parts, vec![reasoning.clone(), Part::text("Done.")]);
    assert_eq!(generation.usage.map(|u| u.reasoning_tokens), Some(190));

    let history = vec![
        PromptMessage::user("check it"),
        PromptMessage::new(
            Role::Assistant,
            vec![
                reasoning,
                Part::Reasoning { text: "from another provider".into(), provider_metadata: None },
                Part::text("Reading."),
                Part::tool_call("call_1", "read_file", json!({"path": "a"})),
            ],
        ),
        PromptMessage::new(
            Role::Tool,
            vec![Part::tool_result("call_1", "read_file", json!("A"), false)],
        ),
    ];
    let options = CallOptions::from_json(&json!({"provider_options": {"openai": {
        "reasoning_effort": "high", "reasoning_summary": "auto", "prompt_cache_key": "chat-1"}}}))
    .expect("options");
    let (_, sent) = call(
        FakeResponse::sse(fixture("text.sse")),
        ModelRequest::new("gpt-test", history).with_options(options),
    )
    .await;
    let body = sent.json();
    assert_eq!(
        body["input"],
        json!([
            {"role": "user", "content": [{"type": "input_text", "text": "check it"}]},
            {"type": "reasoning", "id": "rs_1", "encrypted_content": "gAAAAABencrypted==",
             "summary": [{"type": "summary_text", "text": "**Checking** the file."}]},
            {"role": "assistant", "content": [{"type": "output_text", "text": "Reading."}]},
            {"type": "function_call", "call_id": "call_1", "name": "read_file", "arguments": "{\"path\":\"a\"}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "A"}
        ])
    );
    assert_eq!(body["reasoning"], json!({"effort": "high", "summary": "auto"}));
    assert_eq!(body["prompt_cache_key"], "chat-1");
}

#[tokio::test]
async fn an_incomplete_response_finishes_with_length() {
    let generation =
        call(FakeResponse::sse(fixture("incomplete.sse")), request()).await.0.expect("generation");
    assert_eq!(generation.finish_reason, Some(FinishReason::Length));
    assert_eq!(generation.text(), "Long answ");
}

#[tokio::test]
async fn a_failed_response_mid_stream_is_typed() {
    let err = call(FakeResponse::sse(fixture("error-mid-stream.sse")), request())
        .await
        .0
        .expect_err("failed");
    assert_eq!(err.kind, ProviderErrorKind::Server);
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_field_of_an_unexpected_type_is_ignored_not_its_event() {
    // A compatible server's quirks: a usage detail as a string, an item's `status` and a
    // delta's `sequence_number` of odd types. Each such field is as if absent; the rest of
    // the event (the text, the call, the usage it does report) is kept.
    let sse = concat!(
        "data: {\"type\":\"response.output_text.delta\",\"sequence_number\":\"2\",\"item_id\":\"m\",\"delta\":\"Hi\"}\n\n",
        "data: {\"type\":\"response.output_text.done\",\"item_id\":\"m\",\"text\":7}\n\n",
        "data: {\"type\":\"response.output_item.added\",\"item\":{\"type\":\"function_call\",\"call_id\":\"c1\",\"name\":\"read_file\",\"status\":5}}\n\n",
        "data: {\"type\":\"response.output_item.done\",\"item\":{\"type\":\"function_call\",\"call_id\":\"c1\",\"name\":\"read_file\",\"arguments\":\"{\\\"path\\\":\\\"a\\\"}\",\"status\":[]}}\n\n",
        "data: {\"type\":\"response.output_item.done\",\"item\":{\"type\":\"reasoning\",\"id\":\"rs\",\"encrypted_content\":null}}\n\n",
        "data: {\"type\":\"response.completed\",\"response\":{\"id\":\"r\",\"usage\":{\"input_tokens\":9,\"input_tokens_details\":{\"cached_tokens\":\"n/a\"},\"output_tokens\":3}}}\n\n",
    );
    let (result, _) = call(FakeResponse::sse(sse), request()).await;
    let generation = result.expect("generation");
    assert_eq!(generation.text(), "Hi");
    assert!(
        generation.parts.iter().any(
            |p| matches!(p, Part::ToolCall { tool_call_id, args, .. } if tool_call_id == "c1" && args["path"] == "a")
        ),
        "{:?}",
        generation.parts
    );
    let reasoning = generation.parts.iter().find_map(|p| match p {
        Part::Reasoning { provider_metadata, .. } => provider_metadata.clone(),
        _ => None,
    });
    assert_eq!(
        reasoning.expect("reasoning metadata")["openai"],
        json!({"item_id": "rs"}),
        "a null `encrypted_content` is absent, not replayed as null"
    );
    let usage = generation.usage.expect("usage");
    assert_eq!((usage.input_tokens, usage.output_tokens, usage.cache_read_tokens), (9, 3, 0));
}
