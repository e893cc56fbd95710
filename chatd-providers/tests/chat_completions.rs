//! Chat Completions wire tests against a local fake server replaying recorded streams
//! (`fixtures/chat-completions/`): the accumulated result, the request the adapter sent,
//! error classification, chunk boundaries and cut connections.

use std::time::Duration;

use chatd_core::provider::{
    FinishReason, Generation, ModelProvider, ModelRequest, PromptMessage, ProviderError,
    ProviderErrorKind, ToolDefinition,
};
use chatd_core::{CallOptions, Part, Role, Secret, Usage};
use chatd_providers::chat_completions::{ChatCompletionsProvider, Dialect};
use chatd_providers::testing::{FakeResponse, FakeServer, RecordedRequest};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const KEY: &str = "sk-test-wire-key";

mod support;

chatd_providers::provider_conformance_tests! {
    make: |url: &str| ChatCompletionsProvider::new(Dialect::OpenAi, url, Secret::new(KEY)).expect("provider"),
    key: KEY,
    request: request(),
    text: FakeResponse::sse(fixture("text.sse")),
    tool_calls: FakeResponse::sse(fixture("tool-call.sse")),
    rate_limited: FakeResponse::json(429, fixture("error-429.json")),
    auth: FakeResponse::json(401, fixture("error-401.json")),
    context_length: FakeResponse::json(400, fixture("error-context-length.json")),
    malformed: FakeResponse::sse("data: {not json\n\n"),
}

fn fixture(name: &str) -> Vec<u8> {
    support::fixture("chat-completions", name)
}

fn request() -> ModelRequest {
    ModelRequest::new("gpt-test", vec![PromptMessage::user("Say hello")])
        .with_system("You are terse.")
        .with_tool(ToolDefinition::new("read_file", "Read a file", json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]})))
}

async fn call(
    dialect: Dialect,
    response: FakeResponse,
    request: ModelRequest,
) -> (Result<Generation, ProviderError>, RecordedRequest) {
    support::call(
        |url| ChatCompletionsProvider::new(dialect, url, Secret::new(KEY)).expect("provider"),
        response,
        request,
    )
    .await
}

#[tokio::test]
async fn plain_text_streams_and_normalises_cached_usage() {
    let (result, sent) =
        call(Dialect::OpenAi, FakeResponse::sse(fixture("text.sse")), request()).await;
    let generation = result.expect("generation");
    assert_eq!(generation.parts, vec![Part::text("Hello, wörld ✓")]);
    assert_eq!(generation.finish_reason, Some(FinishReason::Stop));
    assert_eq!(
        generation.usage,
        Some(Usage {
            input_tokens: 20,
            output_tokens: 9,
            total_tokens: 129,
            reasoning_tokens: 0,
            cache_creation_tokens: 0,
            cache_read_tokens: 100,
        }),
        "prompt_tokens includes cached tokens; input excludes them"
    );
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/chat/completions");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-test-wire-key"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    let body = sent.json();
    assert_eq!(body["model"], "gpt-test");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert_eq!(body["max_completion_tokens"], 32000);
    assert_eq!(
        body["messages"],
        json!([{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello"}])
    );
    assert_eq!(body["tools"][0]["type"], "function");
    assert_eq!(body["tools"][0]["function"]["name"], "read_file");
    assert_eq!(body["tools"][0]["function"]["parameters"]["required"], json!(["path"]));
}

#[tokio::test]
async fn one_byte_chunks_give_the_same_result() {
    let whole = call(Dialect::OpenAi, FakeResponse::sse(fixture("text.sse")), request())
        .await
        .0
        .expect("whole");
    let bytewise =
        call(Dialect::OpenAi, FakeResponse::sse(fixture("text.sse")).chunked(1), request())
            .await
            .0
            .expect("bytewise");
    assert_eq!(bytewise, whole, "a UTF-8 character split across chunks must survive");
    let tools = call(
        Dialect::OpenAi,
        FakeResponse::sse(fixture("parallel-tools.sse")).chunked(1),
        request(),
    )
    .await
    .0
    .expect("crlf");
    assert_eq!(tools.local_tool_calls().len(), 2);
}

#[tokio::test]
async fn a_tool_call_with_streamed_arguments() {
    let (result, _) =
        call(Dialect::OpenAi, FakeResponse::sse(fixture("tool-call.sse")), request()).await;
    let generation = result.expect("generation");
    assert_eq!(
        generation.parts,
        vec![Part::tool_call("call_abc", "read_file", json!({"path": "src/main.rs"}))]
    );
    assert_eq!(generation.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(
        generation.usage.map(|u| (u.input_tokens, u.output_tokens, u.total_tokens)),
        Some((50, 20, 70))
    );
}

#[tokio::test]
async fn two_parallel_tool_calls_with_crlf_line_endings() {
    let (result, _) =
        call(Dialect::OpenAi, FakeResponse::sse(fixture("parallel-tools.sse")), request()).await;
    let generation = result.expect("generation");
    assert_eq!(
        generation.parts,
        vec![
            Part::tool_call("call_a", "read_file", json!({"path": "a.rs"})),
            Part::tool_call("call_b", "read_file", json!({"path": "b.rs"})),
        ]
    );
    assert_eq!(generation.usage, None, "no usage reported: None, not zeros");
}

#[tokio::test]
async fn reasoning_content_from_a_compatible_server_without_a_final_newline() {
    let (result, sent) = call(
        Dialect::OpenAiCompat,
        FakeResponse::sse(fixture("reasoning.sse")),
        ModelRequest::new("qwen3", vec![PromptMessage::user("hi")]),
    )
    .await;
    let generation = result.expect("generation");
    assert_eq!(
        generation.parts,
        vec![
            Part::Reasoning {
                text: "The user wants a greeting.".into(),
                // Marked as this kind's own, so it is sent back to it (reasoning round trip).
                provider_metadata: Some(
                    [("openaicompat".to_owned(), serde_json::json!({}))].into_iter().collect()
                ),
            },
            Part::text("Hi!")
        ]
    );
    let usage = generation.usage.expect("usage");
    assert_eq!((usage.output_tokens, usage.reasoning_tokens, usage.total_tokens), (30, 25, 40));
    let body = sent.json();
    assert_eq!(body["max_tokens"], 32000, "compatible servers take max_tokens");
    assert!(body.get("max_completion_tokens").is_none());
    assert!(body.get("tools").is_none(), "no tools offered: no tools field");
}

#[tokio::test]
async fn an_error_event_mid_stream_is_typed() {
    let (result, _) =
        call(Dialect::OpenAi, FakeResponse::sse(fixture("error-mid-stream.sse")), request()).await;
    let err = result.expect_err("stream error");
    assert_eq!(err.kind, ProviderErrorKind::Server);
    assert!(err.is_retryable());
    assert!(err.message.contains("server had an error"), "{err}");
}

#[tokio::test]
async fn http_429_honours_retry_after() {
    let response =
        FakeResponse::json(429, fixture("error-429.json")).with_header("retry-after", "7");
    let (result, _) = call(Dialect::OpenAi, response, request()).await;
    let err = result.expect_err("429");
    assert_eq!(err.kind, ProviderErrorKind::RateLimited);
    assert_eq!(err.status, Some(429));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(err.error_type.as_deref(), Some("rate_limit_exceeded"));
    assert!(err.is_retryable());
    let response =
        FakeResponse::json(429, fixture("error-429.json")).with_header("retry-after-ms", "250");
    let err = call(Dialect::OpenAi, response, request()).await.0.expect_err("429 ms");
    assert_eq!(err.retry_after(), Some(Duration::from_millis(250)));
}

#[tokio::test]
async fn http_401_is_auth_and_never_shows_the_key() {
    let (result, _) =
        call(Dialect::OpenAi, FakeResponse::json(401, fixture("error-401.json")), request()).await;
    let err = result.expect_err("401");
    assert_eq!(err.kind, ProviderErrorKind::Auth);
    assert!(!err.is_retryable());
    for shown in [err.to_string(), format!("{err:?}"), err.body.clone().unwrap_or_default()] {
        assert!(!shown.contains(KEY), "the key leaked: {shown}");
    }
    assert!(err.message.contains("Incorrect API key provided: ***"), "{}", err.message);
}

#[tokio::test]
async fn a_stream_that_stops_without_finishing_is_a_transport_error() {
    let body = b"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n".to_vec();
    let err =
        call(Dialect::OpenAi, FakeResponse::sse(body), request()).await.0.expect_err("incomplete");
    assert_eq!(err.kind, ProviderErrorKind::Transport);
}

#[tokio::test]
async fn history_with_tool_calls_and_results_is_converted() {
    let messages = vec![
        PromptMessage::user("read two files"),
        PromptMessage::new(
            Role::Assistant,
            vec![
                Part::Reasoning { text: "never sent back".into(), provider_metadata: None },
                Part::text("Reading."),
                Part::tool_call("call_1", "read_file", json!({"path": "a"})),
            ],
        ),
        PromptMessage::new(
            Role::Tool,
            vec![Part::tool_result("call_1", "read_file", json!({"content": "A"}), false)],
        ),
        PromptMessage::new(
            Role::User,
            vec![
                Part::text("and this image"),
                Part::File {
                    media_type: "image/png".into(),
                    data: Some("iVBO".into()),
                    attachment_id: None,
                    file_id: None,
                    name: None,
                },
            ],
        ),
    ];
    let (_, sent) = call(
        Dialect::OpenAi,
        FakeResponse::sse(fixture("text.sse")),
        ModelRequest::new("gpt-test", messages),
    )
    .await;
    assert_eq!(
        sent.json()["messages"],
        json!([
            {"role": "user", "content": "read two files"},
            {"role": "assistant", "content": "Reading.", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "read_file", "arguments": "{\"path\":\"a\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"content\":\"A\"}"},
            {"role": "user", "content": [
                {"type": "text", "text": "and this image"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}}]}
        ])
    );
}

#[tokio::test]
async fn dialect_options_reach_the_body() {
    let options = CallOptions::from_json(&json!({
        "temperature": 0.2,
        "provider_options": {
            "openai": {"reasoning_effort": "low", "parallel_tool_calls": false, "prompt_cache_key": "k1", "service_tier": "flex"},
            "openrouter": {"provider": {"order": ["anthropic", "openai"]}, "reasoning": {"effort": "high"}},
            "vercel": {"order": ["bedrock", "anthropic"]}
        }
    }))
    .expect("options");
    let req = || request().with_options(options.clone());
    let openai =
        call(Dialect::OpenAi, FakeResponse::sse(fixture("text.sse")), req()).await.1.json();
    assert_eq!(openai["reasoning_effort"], "low");
    assert_eq!(openai["parallel_tool_calls"], false);
    assert_eq!(openai["prompt_cache_key"], "k1");
    assert_eq!(openai["service_tier"], "flex");
    assert_eq!(openai["temperature"], 0.2);
    let router =
        call(Dialect::OpenRouter, FakeResponse::sse(fixture("text.sse")), req()).await.1.json();
    assert_eq!(router["provider"]["order"], json!(["anthropic", "openai"]));
    assert_eq!(router["reasoning"]["effort"], "high");
    assert_eq!(router["usage"], json!({"include": true}));
    assert!(
        router.get("reasoning_effort").is_none(),
        "OpenAI's options do not leak into other dialects"
    );
    let vercel =
        call(Dialect::Vercel, FakeResponse::sse(fixture("text.sse")), req()).await.1.json();
    assert_eq!(vercel["providerOptions"]["gateway"]["order"], json!(["bedrock", "anthropic"]));
}

#[test]
fn openai_compat_needs_a_base_url_and_others_have_defaults() {
    let err = ChatCompletionsProvider::new(Dialect::OpenAiCompat, "", Secret::default())
        .expect_err("no url");
    assert_eq!(err.kind, ProviderErrorKind::InvalidRequest);
    assert!(err.message.contains("openai-compat"));
    assert_eq!(Dialect::OpenRouter.default_base_url(), Some("https://openrouter.ai/api/v1"));
    let provider =
        ChatCompletionsProvider::new(Dialect::OpenAi, "", Secret::new(KEY)).expect("default url");
    assert!(!format!("{provider:?}").contains(KEY));
}

#[tokio::test]
async fn azure_uses_the_deployment_url_api_key_header_and_api_version() {
    let (result, sent) =
        call(Dialect::Azure, FakeResponse::sse(fixture("tool-call.sse")), request()).await;
    assert_eq!(result.expect("generation").local_tool_calls().len(), 1);
    assert_eq!(
        sent.path,
        format!(
            "/openai/deployments/gpt-test/chat/completions?api-version={}",
            chatd_providers::chat_completions::AZURE_API_VERSION
        )
    );
    assert_eq!(sent.header("api-key"), Some(KEY));
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(sent.json()["max_completion_tokens"], 32000);
    let err = ChatCompletionsProvider::new(Dialect::Azure, " ", Secret::new(KEY))
        .expect_err("azure needs a base URL");
    assert!(err.message.contains("azure"));
}

#[tokio::test]
async fn lone_cr_line_endings_and_multi_line_data_are_decoded() {
    for chunk in [usize::MAX, 1] {
        let response = FakeResponse::sse(fixture("cr-multiline.sse")).chunked(chunk);
        let generation =
            call(Dialect::OpenAiCompat, response, request()).await.0.expect("generation");
        assert_eq!(generation.parts, vec![Part::text("multi-line")], "chunk size {chunk}");
    }
}

#[tokio::test]
async fn an_exhausted_fake_script_fails_fast_and_says_why() {
    let server = FakeServer::start(vec![]).await.expect("server");
    let provider =
        ChatCompletionsProvider::new(Dialect::OpenAiCompat, server.url(), Secret::new(KEY))
            .expect("provider");
    let err = provider
        .generate(ModelRequest::new("m", vec![PromptMessage::user("hi")]), CancellationToken::new())
        .await
        .expect_err("nothing scripted");
    assert!(!err.is_retryable(), "a test fails at once instead of retrying: {err}");
    assert!(
        err.to_string().contains("script exhausted"),
        "the fake's explanation is in the error: {err}"
    );
}

#[tokio::test]
async fn matched_fake_responses_go_to_their_own_requests() {
    let server = FakeServer::start(vec![
        FakeResponse::sse(fixture("text.sse")),
        FakeResponse::sse(fixture("reasoning.sse")).when_body_contains("make a title"),
    ])
    .await
    .expect("server");
    let provider =
        ChatCompletionsProvider::new(Dialect::OpenAiCompat, server.url(), Secret::new(KEY))
            .expect("provider");
    // The matched request comes first, yet gets its own response, and the other one still
    // gets the first unmatched response.
    let title = provider
        .generate(
            ModelRequest::new("m", vec![PromptMessage::user("make a title")]),
            CancellationToken::new(),
        )
        .await
        .expect("title");
    assert_eq!(title.text(), "Hi!");
    let turn = provider
        .generate(
            ModelRequest::new("m", vec![PromptMessage::user("hello")]),
            CancellationToken::new(),
        )
        .await
        .expect("turn");
    assert_eq!(turn.text(), "Hello, wörld ✓");
}
