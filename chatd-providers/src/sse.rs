//! SSE decoding of streaming responses (every provider but Bedrock streams SSE).

use bytes::Bytes;
use chatd_core::provider::{ProviderError, ProviderErrorKind};
use futures::stream::{BoxStream, StreamExt};
use sse_stream::{Sse, SseByteStream};

use crate::http::redact;

/// The body of a streaming response as SSE events. A final event that lacks its blank-line
/// terminator is still delivered; a connection cut mid-body is a `Transport` error.
pub(crate) fn sse(
    provider: &str,
    response: reqwest::Response,
    secret: &str,
) -> BoxStream<'static, Result<Sse, ProviderError>> {
    let provider = provider.to_owned();
    let secret = secret.to_owned();
    let terminator =
        futures::stream::once(async { Ok::<Bytes, reqwest::Error>(Bytes::from_static(b"\n\n")) });
    let bytes = response.bytes_stream().chain(terminator);
    SseByteStream::new(bytes)
        .map(move |item| {
            item.map_err(|err| {
                ProviderError::new(
                    &provider,
                    ProviderErrorKind::Transport,
                    redact(&format!("stream failed: {err}"), &secret),
                )
            })
        })
        .boxed()
}
