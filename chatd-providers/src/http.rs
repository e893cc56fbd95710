//! What every adapter does with HTTP: send, classify failures, decode SSE.

use std::time::Duration;

use chatd_core::provider::{ProviderError, ProviderErrorKind};
use reqwest::header::HeaderMap;

/// The most of an error body kept in a [`ProviderError`].
const MAX_BODY: usize = 4096;

/// Removes `secret` (and common credential shapes) from a text kept for diagnosis.
pub(crate) fn redact(text: &str, secret: &str) -> String {
    let mut out = if secret.len() >= 4 { text.replace(secret, "***") } else { text.to_owned() };
    if out.len() > MAX_BODY {
        let mut cut = MAX_BODY;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

/// `Retry-After` (seconds or an HTTP date is not supported: seconds only) or
/// `retry-after-ms`, whichever is present; milliseconds win.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return Some(Duration::from_secs_f64(ms.max(0.0) / 1000.0));
    }
    header("retry-after")
        .and_then(|v| v.parse::<f64>().ok())
        .map(|s| Duration::from_secs_f64(s.max(0.0)))
}

/// The error of a response stream that ended before the provider's terminal event.
pub(crate) fn incomplete(provider: &str) -> ProviderError {
    ProviderError::new(
        provider,
        ProviderErrorKind::Transport,
        "the stream ended before the response was complete",
    )
}

/// A transport failure of `reqwest`, classified.
pub(crate) fn transport(provider: &str, err: &reqwest::Error, secret: &str) -> ProviderError {
    let kind =
        if err.is_timeout() { ProviderErrorKind::Timeout } else { ProviderErrorKind::Transport };
    ProviderError::new(provider, kind, redact(&err.to_string(), secret))
}

/// Where and how an adapter calls its provider (the SSE ones; Bedrock signs requests and
/// keeps its own). `Debug` never shows the key.
#[cfg(any(
    feature = "chat-completions",
    feature = "anthropic",
    feature = "google",
    feature = "openai"
))]
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) base_url: String,
    pub(crate) api_key: chatd_core::Secret,
    pub(crate) client: reqwest::Client,
}

#[cfg(any(
    feature = "chat-completions",
    feature = "anthropic",
    feature = "google",
    feature = "openai"
))]
impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key)
            .finish_non_exhaustive()
    }
}

#[cfg(any(
    feature = "chat-completions",
    feature = "anthropic",
    feature = "google",
    feature = "openai"
))]
impl Endpoint {
    /// `base_url` without trailing slashes and `strip` (a version segment users often
    /// paste), or `default` when empty.
    pub(crate) fn new(
        base_url: &str,
        default: &str,
        strip: &str,
        api_key: chatd_core::Secret,
    ) -> Self {
        let base_url = match base_url.trim() {
            "" => default.to_owned(),
            url => {
                let url = url.trim_end_matches('/');
                url.strip_suffix(strip).filter(|_| !strip.is_empty()).unwrap_or(url).to_owned()
            }
        };
        Endpoint { base_url, api_key, client: crate::registry::default_client() }
    }
}

/// [`send`], unless `cancel` fires first.
pub(crate) async fn open(
    provider: &str,
    request: reqwest::RequestBuilder,
    secret: &str,
    classify: fn(u16, &serde_json::Value, &mut ProviderError),
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<reqwest::Response, ProviderError> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(ProviderError::new(provider, ProviderErrorKind::Cancelled, "the call was cancelled")),
        response = send(provider, request, secret, classify) => response,
    }
}

/// Sends `request`; a non-2xx response becomes a [`ProviderError`] through `classify`,
/// which sees the status, the parsed JSON body (if any) and a default classification.
pub(crate) async fn send(
    provider: &str,
    request: reqwest::RequestBuilder,
    secret: &str,
    classify: fn(u16, &serde_json::Value, &mut ProviderError),
) -> Result<reqwest::Response, ProviderError> {
    let response = request.send().await.map_err(|err| transport(provider, &err, secret))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry = retry_after(response.headers());
    let raw = response.text().await.unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(&raw).unwrap_or(serde_json::Value::Null);
    let mut err = ProviderError::new(
        provider,
        ProviderErrorKind::from_status(status.as_u16()),
        format!("HTTP {}", status.as_u16()),
    );
    err.status = Some(status.as_u16());
    err.retry_after = retry;
    err.body = Some(redact(&raw, secret));
    classify(status.as_u16(), &json, &mut err);
    err.message = redact(&err.message, secret);
    Err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_prefers_milliseconds() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "2".parse().expect("header"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", "1500".parse().expect("header"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn redaction_removes_the_key_and_caps_the_size() {
        assert_eq!(redact("bad key sk-secret-1 here", "sk-secret-1"), "bad key *** here");
        let long = "é".repeat(5000);
        let cut = redact(&long, "zzzz");
        assert!(cut.len() <= MAX_BODY && cut.is_char_boundary(cut.len()));
    }
}
