//! Typed provider errors: classification by HTTP status and provider error type, never by
//! message text where a type exists.

use std::fmt;
use std::time::Duration;

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProviderErrorKind {
    /// 401/403: the key is missing, wrong or lacks access.
    Auth,
    /// 429: rate limited.
    RateLimited,
    /// 529 or an `overloaded` error type.
    Overloaded,
    /// 500/502/503/504.
    Server,
    /// No response (or no first byte) in time.
    Timeout,
    /// The prompt does not fit the model's context window.
    ContextLength,
    /// The request was rejected as invalid (400/404/422: bad parameters, unknown model).
    InvalidRequest,
    /// Quota or billing exhausted.
    Quota,
    /// Output blocked by a content filter.
    ContentFilter,
    /// The connection failed or broke (refused, reset, cut mid-stream).
    Transport,
    /// The response could not be decoded.
    Decode,
    /// The call was cancelled by the caller.
    Cancelled,
    /// The response exceeded a bound: one SSE event, the step's streamed output, or a
    /// redirect chain (see the provider crate's `HttpLimits`).
    TooLarge,
}

impl ProviderErrorKind {
    /// A short name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            ProviderErrorKind::Auth => "auth",
            ProviderErrorKind::RateLimited => "rate_limited",
            ProviderErrorKind::Overloaded => "overloaded",
            ProviderErrorKind::Server => "server",
            ProviderErrorKind::Timeout => "timeout",
            ProviderErrorKind::ContextLength => "context_length",
            ProviderErrorKind::InvalidRequest => "invalid_request",
            ProviderErrorKind::Quota => "quota",
            ProviderErrorKind::ContentFilter => "content_filter",
            ProviderErrorKind::TooLarge => "too_large",
            ProviderErrorKind::Transport => "transport",
            ProviderErrorKind::Decode => "decode",
            ProviderErrorKind::Cancelled => "cancelled",
        }
    }

    /// The kind for an HTTP status, before looking at the body.
    #[must_use]
    pub fn from_status(status: u16) -> Self {
        match status {
            401 | 403 => ProviderErrorKind::Auth,
            402 => ProviderErrorKind::Quota,
            408 => ProviderErrorKind::Timeout,
            429 => ProviderErrorKind::RateLimited,
            529 => ProviderErrorKind::Overloaded,
            500..=599 => ProviderErrorKind::Server,
            _ => ProviderErrorKind::InvalidRequest,
        }
    }
}

impl fmt::Display for ProviderErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from a model provider. The body is kept (with secrets redacted) for
/// diagnosis; `Display` shows the provider, the kind and the provider's message; `source()`
/// is the underlying error when there was one (a transport failure's I/O error), for the
/// host in-process — never shown to people. Two errors are equal when every field but the
/// source is.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{provider} {kind}: {message}")]
pub struct ProviderError {
    /// Which provider (its kind's name, e.g. `anthropic`).
    pub provider: String,
    /// The classification.
    pub kind: ProviderErrorKind,
    /// The provider's message (or ours).
    pub message: String,
    /// The HTTP status, if there was a response.
    pub status: Option<u16>,
    /// The provider's error type string (`rate_limit_error`, `context_length_exceeded`).
    pub error_type: Option<String>,
    /// How long the provider asked us to wait (`Retry-After`, `retry-after-ms`).
    pub retry_after: Option<Duration>,
    /// The raw response body, secrets redacted, truncated to 4 KiB.
    pub body: Option<String>,
    /// The underlying error (see [`with_source`](Self::with_source)).
    #[source]
    source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
}

impl PartialEq for ProviderError {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.provider,
            self.kind,
            &self.message,
            self.status,
            &self.error_type,
            self.retry_after,
            &self.body,
        ) == (
            &other.provider,
            other.kind,
            &other.message,
            other.status,
            &other.error_type,
            other.retry_after,
            &other.body,
        )
    }
}

impl Eq for ProviderError {}

impl ProviderError {
    /// An error without a response.
    pub fn new(provider: &str, kind: ProviderErrorKind, message: impl Into<String>) -> Self {
        ProviderError {
            provider: provider.to_owned(),
            kind,
            message: message.into(),
            status: None,
            error_type: None,
            retry_after: None,
            body: None,
            source: None,
        }
    }

    /// Keeps `source` as the error's cause. It must hold no secret: an HTTP client's error is
    /// passed without its URL.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(std::sync::Arc::new(source));
        self
    }

    /// Whether the chat loop may retry ([BEHAVIOUR §3](crate::behaviour#3-a-turn) "Retries"): rate limits, overload, server
    /// errors, timeouts and transport failures; never auth, invalid requests, context
    /// length, quota, content filters, decode errors or cancellation.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ProviderErrorKind::RateLimited
                | ProviderErrorKind::Overloaded
                | ProviderErrorKind::Server
                | ProviderErrorKind::Timeout
                | ProviderErrorKind::Transport
        )
    }

    /// The wait the provider asked for.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}
