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

/// What an adapter's stream parser does with the decoded SSE events.
pub(crate) trait SseParser: Send + 'static {
    /// The events for one SSE event.
    fn on_event(
        &mut self,
        event: Sse,
    ) -> Result<Vec<chatd_core::provider::StreamEvent>, ProviderError>;

    /// Whether the provider's terminal event has arrived (the rest of the body is ignored).
    fn done(&self) -> bool;

    /// The closing events at the terminal event or the end of the body — or a `Transport`
    /// error when the response never completed.
    fn close(&mut self) -> Result<Vec<chatd_core::provider::StreamEvent>, ProviderError>;
}

/// Runs `parser` over `sse`, flattening its batches into one event stream that ends at the
/// first error.
pub(crate) fn drive<P: SseParser>(
    sse: BoxStream<'static, Result<Sse, ProviderError>>,
    parser: P,
) -> chatd_core::provider::EventStream {
    use chatd_core::provider::StreamEvent;
    futures::stream::unfold(Some((sse, parser)), |state| async move {
        let (mut sse, mut parser) = state?;
        loop {
            match sse.next().await {
                Some(Ok(event)) => match parser.on_event(event) {
                    Ok(mut events) if parser.done() => {
                        let closing = parser.close().map(|mut closing| {
                            events.append(&mut closing);
                            events
                        });
                        return Some((closing, None));
                    }
                    Ok(events) if events.is_empty() => {}
                    Ok(events) => return Some((Ok(events), Some((sse, parser)))),
                    Err(err) => return Some((Err(err), None)),
                },
                Some(Err(err)) => return Some((Err(err), None)),
                None => return Some((parser.close(), None)),
            }
        }
    })
    .flat_map(|batch: Result<Vec<StreamEvent>, ProviderError>| match batch {
        Ok(events) => futures::stream::iter(events.into_iter().map(Ok).collect::<Vec<_>>()),
        Err(err) => futures::stream::iter(vec![Err(err)]),
    })
    .boxed()
}
