//! The provider: endpoint, authentication, plumbing.

use async_trait::async_trait;
use chatd_core::provider::{EventStream, ModelProvider, ModelRequest, ProviderError};
use chatd_core::{ProviderKind, Secret};
use tokio_util::sync::CancellationToken;

use super::{convert, stream};
use crate::http::Endpoint;

const NAME: &str = "google";

/// A Gemini provider. `Debug` never shows the key.
#[derive(Debug, Clone)]
pub struct GoogleProvider {
    endpoint: Endpoint,
}

impl GoogleProvider {
    /// A provider; an empty `base_url` uses `https://generativelanguage.googleapis.com`.
    #[must_use]
    pub fn new(base_url: &str, api_key: Secret) -> Self {
        GoogleProvider {
            endpoint: Endpoint::new(
                base_url,
                "https://generativelanguage.googleapis.com",
                "/v1beta",
                api_key,
            ),
        }
    }

    /// Sets how calls reach the server: the client (proxies, pool) and the timeouts and
    /// size bounds (default: the shared client, BEHAVIOUR §15's [`HttpLimits`](crate::HttpLimits)).
    #[must_use]
    pub fn with_http(mut self, http: &crate::HttpOptions) -> Self {
        self.endpoint.set_http(http);
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
        let endpoint = &self.endpoint;
        let body = convert::request_body(&request);
        let builder = endpoint
            .client
            .post(format!(
                "{}/v1beta/models/{}:streamGenerateContent?alt=sse",
                endpoint.base_url,
                request.model.trim_start_matches("models/")
            ))
            .header("x-goog-api-key", endpoint.api_key.expose())
            .header("content-type", "application/json")
            .json(&body);
        self.endpoint.stream_sse(NAME, builder, stream::classify, stream::events, cancel).await
    }
}
