//! The provider: endpoint, authentication, plumbing.

use async_trait::async_trait;
use chatd_core::provider::{
    EventStream, ModelProvider, ModelRequest, ProviderError, ProviderErrorKind, with_cancellation,
};
use chatd_core::{ProviderKind, Secret};
use tokio_util::sync::CancellationToken;

use super::{convert, stream};
use crate::http;

const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";
const NAME: &str = "google";

/// A Gemini provider. `Debug` never shows the key.
#[derive(Clone)]
pub struct GoogleProvider {
    base_url: String,
    api_key: Secret,
    client: reqwest::Client,
}

impl std::fmt::Debug for GoogleProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleProvider")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key)
            .finish_non_exhaustive()
    }
}

impl GoogleProvider {
    /// A provider; an empty `base_url` uses `https://generativelanguage.googleapis.com`.
    #[must_use]
    pub fn new(base_url: &str, api_key: Secret) -> Self {
        let base_url = match base_url.trim() {
            "" => DEFAULT_BASE_URL.to_owned(),
            url => url.trim_end_matches('/').trim_end_matches("/v1beta").to_owned(),
        };
        GoogleProvider { base_url, api_key, client: reqwest::Client::new() }
    }

    /// Uses `client` (timeouts, proxies) instead of a default one.
    #[must_use]
    pub fn with_client(mut self, client: reqwest::Client) -> Self {
        self.client = client;
        self
    }
}

#[async_trait]
impl ModelProvider for GoogleProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Google
    }

    async fn stream(
        &self,
        request: ModelRequest,
        cancel: CancellationToken,
    ) -> Result<EventStream, ProviderError> {
        let body = convert::request_body(&request);
        let model = request.model.trim_start_matches("models/");
        let builder = self
            .client
            .post(format!("{}/v1beta/models/{model}:streamGenerateContent?alt=sse", self.base_url))
            .header("x-goog-api-key", self.api_key.expose())
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
