//! The provider conformance suite: the scenarios every adapter must pass, written once and
//! expanded per adapter by [`provider_conformance_tests!`](crate::provider_conformance_tests)
//! (like the store suite's `store_conformance_tests!`). Each adapter's own wire tests keep
//! what is particular to its wire format (signatures, cache marks, request shapes).

use std::time::Duration;

use chatd_core::Part;
use chatd_core::provider::{
    FinishReason, Generation, ModelProvider, ModelRequest, ProviderError, ProviderErrorKind,
};
use tokio_util::sync::CancellationToken;

use crate::testing::{FakeResponse, FakeServer};

/// One call through the adapter `make` builds for a server serving `response`.
///
/// # Panics
/// When the fake server cannot start.
pub async fn call<P: ModelProvider>(
    make: impl FnOnce(&str) -> P,
    response: FakeResponse,
    request: ModelRequest,
    cancel: CancellationToken,
) -> Result<Generation, ProviderError> {
    let server = FakeServer::start(vec![response]).await.expect("fake server");
    let provider = make(server.url());
    provider.generate(request, cancel).await
}

/// A text answer finishes with `stop`, text and usage.
///
/// # Panics
/// When it does not.
pub fn text_answer(generation: &Generation) {
    assert_eq!(generation.finish_reason, Some(FinishReason::Stop), "{generation:?}");
    assert!(generation.text().chars().any(char::is_alphanumeric), "{generation:?}");
    assert!(generation.usage.is_some(), "usage is reported: {generation:?}");
}

/// A tool-calling answer finishes with `tool_calls` and holds complete calls whose arguments
/// are objects.
///
/// # Panics
/// When it does not.
pub fn tool_answer(generation: &Generation) {
    assert_eq!(generation.finish_reason, Some(FinishReason::ToolCalls), "{generation:?}");
    let calls: Vec<&Part> =
        generation.parts.iter().filter(|p| matches!(p, Part::ToolCall { .. })).collect();
    assert!(!calls.is_empty(), "{generation:?}");
    for call in calls {
        let Part::ToolCall { tool_call_id, tool_name, args, .. } = call else { continue };
        assert!(!tool_call_id.is_empty() && !tool_name.is_empty(), "{call:?}");
        assert!(args.is_object(), "arguments are an object: {call:?}");
    }
}

/// An error of `kind`, retryable or not as the kind says, that never shows `key`.
///
/// # Panics
/// When it is not.
pub fn typed_error(err: &ProviderError, kind: ProviderErrorKind, key: &str) {
    assert_eq!(err.kind, kind, "{err:?}");
    assert_eq!(
        err.is_retryable(),
        matches!(
            kind,
            ProviderErrorKind::RateLimited
                | ProviderErrorKind::Overloaded
                | ProviderErrorKind::Server
                | ProviderErrorKind::Timeout
                | ProviderErrorKind::Transport
        ),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains(key), "the key leaked: {err:?}");
}

/// How long a cancelled call may take to end.
pub const CANCEL_BOUND: Duration = Duration::from_secs(2);

/// Expands the provider conformance suite for one adapter, as a module `conformance` of
/// `#[tokio::test]`s:
///
/// ```ignore
/// chatd_providers::provider_conformance_tests! {
///     make: |url: &str| AnthropicProvider::new(url, Secret::new(KEY)),
///     key: KEY,
///     request: request(),
///     text: FakeResponse::sse(fixture("text.sse")),
///     tool_calls: FakeResponse::sse(fixture("tool-use.sse")),
///     rate_limited: FakeResponse::json(429, fixture("error-429.json")),
///     auth: FakeResponse::json(401, fixture("error-401.json")),
///     context_length: FakeResponse::json(400, fixture("error-context-length.json")),
///     malformed: FakeResponse::sse("data: {not json\n\n"),
/// }
/// ```
///
/// The scenarios: a text answer (whole, and one byte at a time, equal); tool calls; 429
/// (with its `retry-after`), auth and context-length errors typed (never showing the key); a malformed event is a
/// decode error, not a panic; a connection cut mid-answer is a transport error; a
/// cancelled call ends within [`CANCEL_BOUND`]. Every adapter gets all of them.
#[macro_export]
macro_rules! provider_conformance_tests {
    (
        make: $make:expr,
        key: $key:expr,
        request: $request:expr,
        text: $text:expr,
        tool_calls: $tools:expr,
        rate_limited: $limited:expr,
        auth: $auth:expr,
        context_length: $context:expr,
        malformed: $malformed:expr $(,)?
    ) => {
        mod conformance {
            #[allow(unused_imports)]
            use super::*;
            use ::chatd_core::provider::ProviderErrorKind;
            use ::tokio_util::sync::CancellationToken;
            use $crate::conformance as suite;
            use $crate::testing::FakeResponse;

            async fn call(
                response: FakeResponse,
            ) -> Result<::chatd_core::provider::Generation, ::chatd_core::provider::ProviderError>
            {
                suite::call($make, response, $request, CancellationToken::new()).await
            }

            #[tokio::test]
            async fn a_text_answer_finishes_with_text_and_usage() {
                suite::text_answer(&call($text).await.expect("generation"));
            }

            #[tokio::test]
            async fn one_byte_chunks_give_the_same_answer() {
                let whole = call($text).await.expect("whole");
                let bytes = call($text.chunked(1)).await.expect("one byte at a time");
                assert_eq!(whole, bytes);
            }

            #[tokio::test]
            async fn tool_calls_complete_with_object_arguments() {
                suite::tool_answer(&call($tools).await.expect("generation"));
            }

            #[tokio::test]
            async fn http_429_is_rate_limited_and_honours_retry_after() {
                let err = call($limited.with_header("retry-after", "12")).await.expect_err("429");
                suite::typed_error(&err, ProviderErrorKind::RateLimited, $key);
                assert_eq!(err.status, Some(429));
                assert_eq!(err.retry_after(), Some(::std::time::Duration::from_secs(12)));
            }

            #[tokio::test]
            async fn a_refused_key_is_auth_and_never_shown() {
                let err = call($auth).await.expect_err("auth");
                suite::typed_error(&err, ProviderErrorKind::Auth, $key);
            }

            #[tokio::test]
            async fn an_oversized_prompt_is_context_length() {
                let err = call($context).await.expect_err("context length");
                suite::typed_error(&err, ProviderErrorKind::ContextLength, $key);
            }

            #[tokio::test]
            async fn a_malformed_event_is_a_decode_error() {
                let err = call($malformed).await.expect_err("malformed");
                suite::typed_error(&err, ProviderErrorKind::Decode, $key);
            }

            #[tokio::test]
            async fn a_connection_cut_mid_answer_is_a_transport_error() {
                let err = call($text.cut_after(60)).await.expect_err("cut");
                suite::typed_error(&err, ProviderErrorKind::Transport, $key);
            }

            #[tokio::test]
            async fn a_cancelled_call_ends_promptly() {
                let slow =
                    $text.chunked(8).with_chunk_delay(::std::time::Duration::from_millis(300));
                let cancel = CancellationToken::new();
                let later = cancel.clone();
                ::tokio::spawn(async move {
                    ::tokio::time::sleep(::std::time::Duration::from_millis(100)).await;
                    later.cancel();
                });
                let started = ::std::time::Instant::now();
                let err = suite::call($make, slow, $request, cancel).await.expect_err("cancelled");
                assert_eq!(err.kind, ProviderErrorKind::Cancelled, "{err:?}");
                assert!(started.elapsed() < suite::CANCEL_BOUND, "{:?}", started.elapsed());
            }
        }
    };
}
