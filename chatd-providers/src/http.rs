//! What every adapter does with HTTP (DESIGN "Provider HTTP policy"): send with a
//! first-byte deadline, read bodies within [`HttpLimits`] (idle timeout, step output cap,
//! bounded error bodies), refuse cross-origin redirects, classify failures.

use std::time::Duration;

use bytes::Bytes;
use chatd_core::provider::{ProviderError, ProviderErrorKind};
use futures::stream::{BoxStream, StreamExt};
use reqwest::header::HeaderMap;
use tokio::time::Instant;

use crate::limits::HttpLimits;

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

/// The longest wait a `Retry-After` header is taken at (absurd values are clamped to it; the
/// retry policy then decides, and gives up above its own maximum).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// A number of seconds as a wait: negative, NaN or garbage is `None` (ignored), infinite or
/// huge is clamped to [`MAX_RETRY_AFTER`]. Never panics.
fn seconds(value: f64) -> Option<Duration> {
    if value.is_nan() || value < 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(value.min(MAX_RETRY_AFTER.as_secs_f64())))
}

/// `Retry-After` (seconds; an HTTP date is not supported) or `retry-after-ms`, whichever is
/// present; milliseconds win. Absurd values are clamped or ignored (see [`seconds`]).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(wait) = header("retry-after-ms")
        .and_then(|v| v.parse::<f64>().ok())
        .and_then(|ms| seconds(ms / 1000.0))
    {
        return Some(wait);
    }
    header("retry-after").and_then(|v| v.parse::<f64>().ok()).and_then(seconds)
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
/// The error is kept as the source, without its URL.
pub(crate) fn transport(provider: &str, err: reqwest::Error, secret: &str) -> ProviderError {
    let kind =
        if err.is_timeout() { ProviderErrorKind::Timeout } else { ProviderErrorKind::Transport };
    ProviderError::new(provider, kind, redact(&err.to_string(), secret))
        .with_source(err.without_url())
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
    pub(crate) limits: HttpLimits,
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
        Endpoint {
            base_url,
            api_key,
            client: crate::registry::default_client(),
            limits: HttpLimits::default(),
        }
    }

    /// Takes the client and limits of `http`.
    pub(crate) fn set_http(&mut self, http: &crate::HttpOptions) {
        self.client = http.client();
        self.limits = http.limits();
    }

    /// The shell every SSE adapter shares: sends `request` within the limits (its errors
    /// classified by `classify`, the key redacted), decodes the body as bounded SSE, turns it
    /// into the adapter's events with `parse`, and ends the stream when `cancel` fires. An
    /// adapter's `stream` builds the request and calls this.
    pub(crate) async fn stream_sse(
        &self,
        provider: &str,
        request: reqwest::RequestBuilder,
        classify: fn(u16, &serde_json::Value, &mut ProviderError),
        parse: fn(
            &str,
            futures::stream::BoxStream<'static, Result<sse_stream::Sse, ProviderError>>,
        ) -> chatd_core::provider::EventStream,
        cancel: tokio_util::sync::CancellationToken,
    ) -> Result<chatd_core::provider::EventStream, ProviderError> {
        let key = self.api_key.expose();
        let (response, first_byte) =
            open(provider, request, key, classify, &cancel, &self.limits).await?;
        let events =
            parse(provider, crate::sse::sse(provider, response, &self.limits, first_byte, key));
        Ok(chatd_core::provider::with_cancellation(events, cancel, provider))
    }
}

/// A typed timeout.
fn timeout(provider: &str, what: &str, after: Duration) -> ProviderError {
    ProviderError::new(
        provider,
        ProviderErrorKind::Timeout,
        format!("{what} within {:.1} s", after.as_secs_f64()),
    )
}

/// [`send`], unless `cancel` fires first. Returns the response and the deadline of its
/// first body byte.
pub(crate) async fn open(
    provider: &str,
    request: reqwest::RequestBuilder,
    secret: &str,
    classify: fn(u16, &serde_json::Value, &mut ProviderError),
    cancel: &tokio_util::sync::CancellationToken,
    limits: &HttpLimits,
) -> Result<(reqwest::Response, Instant), ProviderError> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(ProviderError::new(provider, ProviderErrorKind::Cancelled, "the call was cancelled")),
        response = send(provider, request, secret, classify, limits) => response,
    }
}

/// Sends `request`; the response headers must arrive before the first-byte deadline. A
/// non-2xx response becomes a [`ProviderError`] through `classify`, which sees the status,
/// the parsed JSON body (if any, read up to the error-body bound) and a default
/// classification.
pub(crate) async fn send(
    provider: &str,
    request: reqwest::RequestBuilder,
    secret: &str,
    classify: fn(u16, &serde_json::Value, &mut ProviderError),
    limits: &HttpLimits,
) -> Result<(reqwest::Response, Instant), ProviderError> {
    let deadline = Instant::now() + limits.first_byte_timeout;
    let response = match tokio::time::timeout_at(deadline, request.send()).await {
        Ok(sent) => sent.map_err(|err| transport(provider, err, secret))?,
        Err(_) => {
            return Err(timeout(provider, "no response", limits.first_byte_timeout));
        }
    };
    let status = response.status();
    if status.is_success() {
        return Ok((response, deadline));
    }
    if status.is_redirection() {
        // The client's policy stopped at a redirect to another origin: the key stays home.
        let target = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .and_then(|l| response.url().join(l).ok())
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_else(|| "an unknown location".to_owned());
        let mut err = ProviderError::new(
            provider,
            ProviderErrorKind::InvalidRequest,
            format!(
                "the provider redirected to another origin ({target}); requests carrying keys \
                 are not forwarded: configure the final URL as the base URL"
            ),
        );
        err.status = Some(status.as_u16());
        return Err(err);
    }
    let retry = retry_after(response.headers());
    let raw = error_body(response, limits, deadline).await;
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

/// The start of an error response's body: at most `max_error_body_bytes`, read within the
/// first-byte deadline and the idle timeout; the rest is never read.
async fn error_body(response: reqwest::Response, limits: &HttpLimits, deadline: Instant) -> String {
    let mut kept: Vec<u8> = Vec::new();
    let mut body = response.bytes_stream();
    let mut wait = deadline;
    while kept.len() < limits.max_error_body_bytes {
        match tokio::time::timeout_at(wait, body.next()).await {
            Ok(Some(Ok(chunk))) => {
                let room = limits.max_error_body_bytes - kept.len();
                kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
                wait = Instant::now() + limits.idle_timeout;
            }
            _ => break,
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// The body of a successful response as bytes, within `limits`: the first piece before
/// `first_byte` (the deadline [`send`] started), then at most `idle_timeout` between pieces
/// (both `Timeout`, retryable), and at most `max_step_bytes` in all (`TooLarge`). Ends at
/// the first error.
pub(crate) fn body(
    provider: &str,
    response: reqwest::Response,
    limits: &HttpLimits,
    first_byte: Instant,
    secret: &str,
) -> BoxStream<'static, Result<Bytes, ProviderError>> {
    struct State {
        body: BoxStream<'static, reqwest::Result<Bytes>>,
        seen: u64,
        first: bool,
    }
    let (provider, secret, limits) = (provider.to_owned(), secret.to_owned(), *limits);
    let state = State { body: response.bytes_stream().boxed(), seen: 0, first: true };
    futures::stream::unfold(Some(state), move |state| {
        let (provider, secret) = (provider.clone(), secret.clone());
        async move {
            let mut state = state?;
            let wait = if state.first { first_byte } else { Instant::now() + limits.idle_timeout };
            let failed = |err| Some((Err(err), None));
            match tokio::time::timeout_at(wait, state.body.next()).await {
                Err(_) if state.first => {
                    failed(timeout(&provider, "no response data", limits.first_byte_timeout))
                }
                Err(_) => failed(timeout(
                    &provider,
                    "the stream went silent: no data",
                    limits.idle_timeout,
                )),
                Ok(None) => None,
                Ok(Some(Err(err))) => failed(
                    ProviderError::new(
                        &provider,
                        if err.is_timeout() {
                            ProviderErrorKind::Timeout
                        } else {
                            ProviderErrorKind::Transport
                        },
                        redact(&format!("stream failed: {err}"), &secret),
                    )
                    .with_source(err.without_url()),
                ),
                Ok(Some(Ok(chunk))) => {
                    state.first = false;
                    state.seen += chunk.len() as u64;
                    if state.seen > limits.max_step_bytes {
                        return failed(ProviderError::new(
                            &provider,
                            ProviderErrorKind::TooLarge,
                            format!(
                                "the response exceeded the step output cap of {} bytes",
                                limits.max_step_bytes
                            ),
                        ));
                    }
                    Some((Ok(chunk), Some(state)))
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_retry_after_values_never_panic() {
        for (value, expected) in [
            ("1e20", Some(MAX_RETRY_AFTER)),
            ("inf", Some(MAX_RETRY_AFTER)),
            ("-5", None),
            ("NaN", None),
            ("soon", None),
            ("Wed, 21 Oct 2015 07:28:00 GMT", None),
            ("1.5", Some(Duration::from_millis(1500))),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert("retry-after", value.parse().expect("header"));
            assert_eq!(retry_after(&headers), expected, "retry-after: {value}");
            let mut headers = HeaderMap::new();
            headers.insert("retry-after-ms", value.parse().expect("header"));
            let ms = retry_after(&headers);
            assert!(ms.is_none_or(|d| d <= MAX_RETRY_AFTER), "retry-after-ms: {value}");
        }
    }

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
