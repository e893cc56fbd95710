//! The provider: endpoint, authentication, and the request/stream plumbing.

use async_trait::async_trait;
use chatd_core::provider::{
    EventStream, ModelProvider, ModelRequest, ProviderError, ProviderErrorKind,
};
use chatd_core::{ProviderKind, Secret};
use tokio_util::sync::CancellationToken;

use super::{convert, stream};

/// Percent-encodes a path segment (deployment names are usually plain, but need not be).
fn utf8_percent_encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}
use crate::http::Endpoint;

/// Which Chat Completions service is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dialect {
    /// api.openai.com (`max_completion_tokens`, `provider_options.openai`).
    OpenAi,
    /// Any compatible server; a base URL is required (`provider_options.openaicompat`).
    OpenAiCompat,
    /// openrouter.ai (`provider_options.openrouter`: routing, reasoning, fallbacks).
    OpenRouter,
    /// Vercel AI Gateway (`provider_options.vercel`: gateway order, fallbacks).
    Vercel,
    /// Azure OpenAI: the base URL (required) names the resource, the model names the
    /// deployment, authentication is the `api-key` header, options use the `openai` shape.
    Azure,
}

/// The Azure OpenAI API version sent as `api-version`.
pub const AZURE_API_VERSION: &str = "2024-10-21";

impl Dialect {
    /// The dialect of a Chat Completions kind (`openai` in its `chat_completions` mode,
    /// `openai-compat`, `openrouter`, `vercel`, `azure`). The registry asks only for these.
    pub(crate) fn of(kind: ProviderKind) -> Dialect {
        match kind {
            ProviderKind::OpenAi => Dialect::OpenAi,
            ProviderKind::OpenAiCompat => Dialect::OpenAiCompat,
            ProviderKind::OpenRouter => Dialect::OpenRouter,
            ProviderKind::Vercel => Dialect::Vercel,
            _ => Dialect::Azure,
        }
    }

    /// The provider kind.
    #[must_use]
    pub const fn kind(self) -> ProviderKind {
        match self {
            Dialect::OpenAi => ProviderKind::OpenAi,
            Dialect::OpenAiCompat => ProviderKind::OpenAiCompat,
            Dialect::OpenRouter => ProviderKind::OpenRouter,
            Dialect::Vercel => ProviderKind::Vercel,
            Dialect::Azure => ProviderKind::Azure,
        }
    }

    /// The default endpoint (`None`: the base URL must be configured).
    #[must_use]
    pub const fn default_base_url(self) -> Option<&'static str> {
        match self {
            Dialect::OpenAi => Some("https://api.openai.com/v1"),
            Dialect::OpenAiCompat | Dialect::Azure => None,
            Dialect::OpenRouter => Some("https://openrouter.ai/api/v1"),
            Dialect::Vercel => Some("https://ai-gateway.vercel.sh/v1"),
        }
    }
}

/// A Chat Completions provider. `Debug` never shows the key.
#[derive(Debug, Clone)]
pub struct ChatCompletionsProvider {
    dialect: Dialect,
    endpoint: Endpoint,
}

impl ChatCompletionsProvider {
    /// A provider for `dialect`; an empty `base_url` uses the dialect's default endpoint.
    ///
    /// # Errors
    /// `InvalidRequest` when no base URL is given and the dialect has no default
    /// (`openai-compat`).
    pub fn new(dialect: Dialect, base_url: &str, api_key: Secret) -> Result<Self, ProviderError> {
        let base_url = match (base_url.trim(), dialect.default_base_url()) {
            ("", Some(default)) => default.to_owned(),
            ("", None) => {
                return Err(ProviderError::new(
                    dialect.kind().as_str(),
                    ProviderErrorKind::InvalidRequest,
                    format!("the {} provider needs a base URL", dialect.kind()),
                ));
            }
            (url, _) => url.to_owned(),
        };
        Ok(ChatCompletionsProvider { dialect, endpoint: Endpoint::new(&base_url, "", "", api_key) })
    }

    /// The URL a call for `model` goes to.
    fn endpoint(&self, model: &str) -> String {
        match self.dialect {
            Dialect::Azure if self.endpoint.base_url.contains("/deployments/") => {
                format!(
                    "{}/chat/completions?api-version={AZURE_API_VERSION}",
                    self.endpoint.base_url
                )
            }
            Dialect::Azure => format!(
                "{}/openai/deployments/{}/chat/completions?api-version={AZURE_API_VERSION}",
                self.endpoint.base_url,
                utf8_percent_encode(model)
            ),
            _ => format!("{}/chat/completions", self.endpoint.base_url),
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
impl ModelProvider for ChatCompletionsProvider {
    fn kind(&self) -> ProviderKind {
        self.dialect.kind()
    }

    async fn stream(
        &self,
        request: ModelRequest,
        cancel: CancellationToken,
    ) -> Result<EventStream, ProviderError> {
        let name = self.dialect.kind().as_str();
        let body = convert::request_body(self.dialect, &request);
        let mut builder = self
            .endpoint
            .client
            .post(self.endpoint(&request.model))
            .header("content-type", "application/json")
            .json(&body);
        if self.dialect == Dialect::Azure {
            builder = builder.header("api-key", self.endpoint.api_key.expose());
        } else if !self.endpoint.api_key.is_empty() {
            builder = builder.bearer_auth(self.endpoint.api_key.expose());
        }
        self.endpoint.stream_sse(name, builder, stream::classify, stream::events, cancel).await
    }
}
