//! The provider: endpoint, authentication, plumbing.

use async_trait::async_trait;
use chatd_core::provider::{EventStream, ModelProvider, ModelRequest, ProviderError};
use chatd_core::{ProviderKind, Secret};
use tokio_util::sync::CancellationToken;

use super::{convert, stream};
use crate::http::Endpoint;

const NAME: &str = "openai";

/// An OpenAI Responses API provider. `Debug` never shows the key.
#[derive(Debug, Clone)]
pub struct ResponsesProvider {
    endpoint: Endpoint,
}

impl ResponsesProvider {
    /// A provider; an empty `base_url` uses `https://api.openai.com/v1`.
    #[must_use]
    pub fn new(base_url: &str, api_key: Secret) -> Self {
        ResponsesProvider {
            endpoint: Endpoint::new(base_url, "https://api.openai.com/v1", "", api_key),
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
impl ModelProvider for ResponsesProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::OpenAi
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
            .post(format!("{}/responses", endpoint.base_url))
            .bearer_auth(endpoint.api_key.expose())
            .header("content-type", "application/json")
            .json(&body);
        self.endpoint.stream_sse(NAME, builder, stream::classify, stream::events, cancel).await
    }
}
