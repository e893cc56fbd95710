//! [`HttpLimits`]: the timeouts and size bounds of every provider call (BEHAVIOUR §3 "Timeouts
//! and bounds"), and the HTTP client they go through.

use std::time::Duration;

/// Timeouts and size bounds of a provider's calls. The defaults are BEHAVIOUR §15's: connect
/// 30 s, first byte 5 min (reasoning models think before they speak), idle 2 min between
/// received bytes, 64 MiB of streamed output per step, 16 MiB per SSE event (or Bedrock
/// frame), 64 KiB of an error body kept.
///
/// Every bound ends the call with a typed [`ProviderError`](chatd_core::provider::ProviderError):
/// a timeout is `Timeout` (retryable: the chat loop retries and resets the attempt's
/// preview), an exceeded size is `TooLarge` (not retryable); an error body is cut, its start
/// kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpLimits {
    /// Connecting (TCP and TLS) to the provider.
    pub connect_timeout: Duration,
    /// From sending the request to the first byte of the response body.
    pub first_byte_timeout: Duration,
    /// Between two received pieces of the body.
    pub idle_timeout: Duration,
    /// The most bytes one call (one step) may stream.
    pub max_step_bytes: u64,
    /// The largest single SSE event (or Bedrock event-stream frame).
    pub max_event_bytes: usize,
    /// How much of an error response's body is read and kept.
    pub max_error_body_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            connect_timeout: Duration::from_secs(30),
            first_byte_timeout: Duration::from_secs(300),
            idle_timeout: Duration::from_secs(120),
            max_step_bytes: 64 * 1024 * 1024,
            max_event_bytes: 16 * 1024 * 1024,
            max_error_body_bytes: 64 * 1024,
        }
    }
}

impl HttpLimits {
    /// The most redirects followed (same origin only, see [`client_builder`]).
    pub const MAX_REDIRECTS: usize = 5;

    /// Sets the connect timeout.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the first-byte timeout.
    #[must_use]
    pub fn with_first_byte_timeout(mut self, timeout: Duration) -> Self {
        self.first_byte_timeout = timeout;
        self
    }

    /// Sets the idle timeout.
    #[must_use]
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Sets the most bytes one call may stream.
    #[must_use]
    pub fn with_max_step_bytes(mut self, bytes: u64) -> Self {
        self.max_step_bytes = bytes;
        self
    }

    /// Sets the largest SSE event.
    #[must_use]
    pub fn with_max_event_bytes(mut self, bytes: usize) -> Self {
        self.max_event_bytes = bytes;
        self
    }

    /// Sets how much of an error body is kept.
    #[must_use]
    pub fn with_max_error_body_bytes(mut self, bytes: usize) -> Self {
        self.max_error_body_bytes = bytes;
        self
    }
}

/// The origin (scheme, host, port) of `url`.
fn origin(url: &reqwest::Url) -> (String, Option<String>, Option<u16>) {
    (url.scheme().to_owned(), url.host_str().map(str::to_owned), url.port_or_known_default())
}

/// A client builder with chatd's redirect policy and the default connect timeout: redirects
/// are followed only within the origin of the first request (at most
/// [`HttpLimits::MAX_REDIRECTS`]); a redirect to another origin is not followed, so headers
/// that carry keys (`authorization`, `x-api-key`, `api-key`, `x-goog-api-key`, signatures)
/// never leave the configured origin — the call fails with the redirect response instead.
/// Start from this when passing your own client to an adapter (`with_client`).
pub fn client_builder() -> reqwest::ClientBuilder {
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        let same_origin =
            attempt.previous().first().is_none_or(|first| origin(first) == origin(attempt.url()));
        if !same_origin {
            attempt.stop()
        } else if attempt.previous().len() > HttpLimits::MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .redirect(policy)
        .connect_timeout(HttpLimits::default().connect_timeout)
}

/// How a provider reaches its server: the HTTP client (proxies, connection pool) and the
/// [`HttpLimits`] of its calls. Every adapter takes it once, with `with_http`.
///
/// Without a client, calls share one client per connect timeout (built by
/// [`client_builder`]); a client given here keeps its own connect timeout, which then
/// replaces [`HttpLimits::connect_timeout`].
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    client: Option<reqwest::Client>,
    limits: HttpLimits,
}

impl HttpOptions {
    /// The defaults: the shared client, BEHAVIOUR §15's limits.
    #[must_use]
    pub fn new() -> Self {
        HttpOptions::default()
    }

    /// Uses `client` instead of the shared one. Build it from [`client_builder`] to keep
    /// the same-origin redirect policy.
    #[must_use]
    pub fn with_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Sets the calls' timeouts and size bounds.
    #[must_use]
    pub fn with_limits(mut self, limits: HttpLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The calls' timeouts and size bounds.
    #[must_use]
    pub fn limits(&self) -> HttpLimits {
        self.limits
    }

    /// The client the calls go through.
    #[cfg_attr(
        not(any(
            feature = "chat-completions",
            feature = "anthropic",
            feature = "google",
            feature = "openai",
            feature = "bedrock"
        )),
        allow(dead_code)
    )]
    pub(crate) fn client(&self) -> reqwest::Client {
        self.client.clone().unwrap_or_else(|| shared_client(self.limits.connect_timeout))
    }
}

/// The shared client for `connect_timeout` (one per distinct value, built once: building a
/// client loads the system's root certificates, several milliseconds).
pub(crate) fn shared_client(connect_timeout: Duration) -> reqwest::Client {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex, PoisonError};
    static CLIENTS: LazyLock<Mutex<HashMap<Duration, reqwest::Client>>> =
        LazyLock::new(|| Mutex::new(HashMap::new()));
    let mut clients = CLIENTS.lock().unwrap_or_else(PoisonError::into_inner);
    clients
        .entry(connect_timeout)
        .or_insert_with(|| {
            client_builder().connect_timeout(connect_timeout).build().unwrap_or_else(|err| {
                // Building fails only when the TLS backend cannot initialise. The
                // fallback follows no redirect at all, so keys still stay home.
                tracing::error!(error = %err, "cannot build the provider HTTP client");
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .unwrap_or_default()
            })
        })
        .clone()
}
