//! The provider: endpoint, authentication, plumbing.

use async_trait::async_trait;
use chatd_core::provider::{
    EventStream, ModelProvider, ModelRequest, ProviderError, ProviderErrorKind, with_cancellation,
};
use chatd_core::{ProviderKind, Secret};
use tokio_util::sync::CancellationToken;

use super::{convert, stream};
use crate::http;

/// The API version header sent with every request.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
const NAME: &str = "anthropic";

/// An Anthropic Messages provider. `Debug` never shows the key.
#[derive(Clone)]
pub struct AnthropicProvider {
    base_url: String,
    api_key: Secret,
    client: reqwest::Client,
}

impl std::fmt::Debug for AnthropicProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnthropicProvider")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key)
            .finish_non_exhaustive()
    }
}

impl AnthropicProvider {
    /// A provider; an empty `base_url` uses `https://api.anthropic.com`.
    #[must_use]
    pub fn new(base_url: &str, api_key: Secret) -> Self {
        let base_url = match base_url.trim() {
            "" => DEFAULT_BASE_URL.to_owned(),
            url => url.trim_end_matches('/').trim_end_matches("/v1").to_owned(),
        };
        AnthropicProvider { base_url, api_key, client: reqwest::Client::new() }
    }

    /// Uses `client` (timeouts, proxies) instead of a default one.
    #[must_use]
    pub fn with_client(mut self, client: reqwest::Client) -> Self {
        self.client = client;
        self
    }
}

#[async_trait]
impl ModelProvider for AnthropicProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Anthropic
    }

    async fn stream(
        &self,
        request: ModelRequest,
        cancel: CancellationToken,
    ) -> Result<EventStream, ProviderError> {
        let body = convert::request_body(&request);
        let builder = self
            .client
            .post(format!("{}/v1/messages", self.base_url))
            .header("x-api-key", self.api_key.expose())
            .header("anthropic-version", ANTHROPIC_VERSION)
            .header("content-type", "application/json")
            .json(&body);
        let send = http::send(NAME, builder, self.api_key.expose(), stream::classify);
        let response = tokio::select! {
            biased;
            () = cancel.cancelled() => {
                return Err(ProviderError::new(NAME, ProviderErrorKind::Cancelled, "the call was cancelled"));
            }
            response = send => response?,
        };
        let events = stream::events(NAME, crate::sse::sse(NAME, response, self.api_key.expose()));
        Ok(with_cancellation(events, cancel, NAME))
    }
}
