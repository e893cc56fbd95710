//! # chatd-providers
//!
//! Streaming model provider adapters for chatd. Each implements
//! [`chatd_core::provider::ModelProvider`]: it builds the provider's request from core types,
//! parses the provider's stream into [`chatd_core::provider::StreamEvent`]s, normalises usage,
//! maps HTTP and in-stream errors to typed [`chatd_core::provider::ProviderError`]s, honours
//! cancellation, and never retries (the chat loop does).
//!
//! | kind | module | feature | status |
//! |---|---|---|---|
//! | `openai` (Chat Completions mode), `openai-compat`, `openrouter`, `vercel`, `azure` | [`chat_completions`] | `chat-completions` | done |
//! | `anthropic` | [`anthropic`] | `anthropic` | done |
//! | `google` | [`google`] | `google` | done |
//! | `openai` (Responses API, the default `api_mode`) | [`openai_responses`] | `openai` | done |
//! | `bedrock` | [`bedrock`] | `bedrock` | done |
//!
//! Every call goes through one HTTP policy: [`HttpLimits`] (connect, first-byte and idle
//! timeouts, the step output cap, the SSE event cap, the kept error body), given to an
//! adapter with its client as one [`HttpOptions`] (`with_http`), same-origin redirects only
//! ([`client_builder`]), and the rule that a tool call is complete only when
//! the stream ended normally with a finish that lets it stand — arguments are never
//! invented.
//!
//! ## Adding a provider
//!
//! 1. In `chatd-core`: a `ProviderKind` variant (its name, key variable and base-URL rule,
//!    `provider_config.rs`), its typed options in `call_options`, and what it cannot express
//!    refused by `store::Limits::check_options`.
//! 2. Here, a module behind a feature of the same name, in four files: `client.rs` (the
//!    `ModelProvider`: build the request, call the shared `Endpoint::stream_sse` shell),
//!    `convert.rs` (core request → wire body), `wire.rs` (private serde types of the stream,
//!    every field lenient) and `stream.rs` (wire events → `StreamEvent`s; error
//!    classification). A row in the table above.
//! 3. An arm in [`ProviderRegistry::build`].
//! 4. Tests: recorded fixtures under `tests/fixtures/<name>/`, `provider_conformance_tests!`
//!    in `tests/<name>.rs` (text, tool calls, the typed HTTP errors, a malformed event,
//!    cancellation, the key never shown), a test that feeds fields of unexpected types, and
//!    entries in the quirks corpus for servers that speak the format loosely.
//! 5. BEHAVIOUR §9 (what each provider does with prompts, options and usage) and the
//!    CHANGELOG.
//!
//! The `testing` feature adds [`testing::FakeServer`], a local HTTP server that replays
//! recorded provider traffic and records the requests it receives.
//!
//! Applications usually reach providers through [`StoreProviderSource`] (the configured
//! providers and keys of a store) and a [`ProviderRegistry`]; an adapter can also be used on
//! its own. Here against a local fake OpenAI-compatible server:
//!
//! ```
//! use chatd_core::Secret;
//! use chatd_core::provider::{Accumulator, FinishReason, ModelProvider, ModelRequest, PromptMessage};
//! use chatd_providers::chat_completions::{ChatCompletionsProvider, Dialect};
//! use chatd_providers::testing::{FakeResponse, FakeServer};
//! use futures::StreamExt;
//! use tokio_util::sync::CancellationToken;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let sse = concat!(
//!         "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}}]}\n\n",
//!         "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
//!         "data: [DONE]\n\n",
//!     );
//!     let server = FakeServer::start(vec![FakeResponse::sse(sse)]).await?;
//!     let key = Secret::new("sk-local");
//!     let provider = ChatCompletionsProvider::new(Dialect::OpenAiCompat, server.url(), key)?;
//!     let request = ModelRequest::new("any-model", vec![PromptMessage::user("Say hello")]);
//!     let mut stream = provider.stream(request, CancellationToken::new()).await?;
//!     let mut answer = Accumulator::default();
//!     while let Some(event) = stream.next().await {
//!         answer.push(event?);
//!     }
//!     let answer = answer.finish();
//!     assert_eq!((answer.text(), answer.finish_reason), ("Hello".to_owned(), Some(FinishReason::Stop)));
//!     Ok(())
//! }
//! ```

#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "anthropic")]
pub mod anthropic;
#[cfg(feature = "bedrock")]
pub mod bedrock;
#[cfg(feature = "chat-completions")]
pub mod chat_completions;
#[cfg(any(feature = "anthropic", feature = "google", feature = "openai", feature = "bedrock"))]
mod complete;
#[cfg(feature = "github")]
pub mod github;
#[cfg(feature = "google")]
pub mod google;
#[cfg(any(
    feature = "chat-completions",
    feature = "anthropic",
    feature = "google",
    feature = "openai",
    feature = "bedrock"
))]
mod http;
#[cfg(any(feature = "anthropic", feature = "google", feature = "openai", feature = "bedrock"))]
mod lenient;
mod limits;
#[cfg(feature = "openai")]
pub mod openai_responses;
mod registry;
mod source;
#[cfg(any(
    feature = "chat-completions",
    feature = "anthropic",
    feature = "google",
    feature = "openai"
))]
pub mod sse;
#[cfg(feature = "testing")]
pub mod testing;

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod conformance;

pub use limits::{HttpLimits, HttpOptions, client_builder};
pub use registry::ProviderRegistry;
pub use source::StoreProviderSource;
