//! SSE decoding of streaming responses (every provider but Bedrock streams SSE), with the
//! event-size bound of [`HttpLimits`](crate::HttpLimits) applied before the decoder
//! buffers anything.

use bytes::Bytes;
use chatd_core::provider::{ProviderError, ProviderErrorKind};
use futures::stream::{BoxStream, Stream, StreamExt};
use sse_stream::{Sse, SseByteStream};

/// Counts the bytes of the SSE event being received and fails once it exceeds its bound.
/// An event ends at a blank line (`\n\n`, `\r\n\r\n` or `\r\r`); only line endings are
/// looked at (with `memchr`), so the cost is one scan per chunk.
#[derive(Debug)]
pub struct EventSizeGuard {
    max: usize,
    /// Bytes since the last blank line.
    pending: usize,
    /// Bytes since the last line ending.
    line: usize,
    /// Whether the previous byte was a `\r` (a `\n` right after it ends the same line).
    after_cr: bool,
}

impl EventSizeGuard {
    /// A guard allowing events of at most `max` bytes.
    #[must_use]
    pub fn new(max: usize) -> Self {
        EventSizeGuard { max, pending: 0, line: 0, after_cr: false }
    }

    /// Accounts for `chunk`; `false` once the current event exceeds the bound.
    pub fn feed(&mut self, chunk: &[u8]) -> bool {
        let mut start = 0;
        for at in memchr::memchr2_iter(b'\n', b'\r', chunk) {
            let segment = at - start;
            start = at + 1;
            let byte = chunk[at];
            if byte == b'\n' && self.after_cr && segment == 0 {
                self.after_cr = false; // the LF of a CRLF
                continue;
            }
            self.after_cr = byte == b'\r';
            if self.line + segment == 0 {
                self.pending = 0; // a blank line: the event is complete
            } else {
                self.pending += segment + 1;
                self.line = 0;
                if self.pending > self.max {
                    return false;
                }
            }
        }
        let rest = chunk.len() - start;
        if rest > 0 {
            self.after_cr = false;
            self.line += rest;
            self.pending += rest;
        }
        self.pending <= self.max
    }
}

/// Decodes `bytes` as SSE events, refusing (`TooLarge`) an event larger than
/// `max_event_bytes` before it is buffered. A final event that lacks its blank-line
/// terminator is still delivered; an error of `bytes` ends the stream with that error.
pub fn decode<S>(
    provider: &str,
    bytes: S,
    max_event_bytes: usize,
) -> BoxStream<'static, Result<Sse, ProviderError>>
where
    S: Stream<Item = Result<Bytes, ProviderError>> + Send + 'static,
{
    struct Checked {
        bytes: BoxStream<'static, Result<Bytes, ProviderError>>,
        guard: EventSizeGuard,
        provider: String,
        max: usize,
    }
    let state = Checked {
        bytes: bytes.boxed(),
        guard: EventSizeGuard::new(max_event_bytes),
        provider: provider.to_owned(),
        max: max_event_bytes,
    };
    // The bytes, checked; after the last one a blank line (so a final event without its
    // terminator is delivered); nothing after an error.
    let checked = futures::stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        match state.bytes.next().await {
            None => Some((Ok(Bytes::from_static(b"\n\n")), None)),
            Some(Err(err)) => Some((Err(err), None)),
            Some(Ok(chunk)) if state.guard.feed(&chunk) => Some((Ok(chunk), Some(state))),
            Some(Ok(_)) => {
                let err = ProviderError::new(
                    &state.provider,
                    ProviderErrorKind::TooLarge,
                    format!("an event exceeded {} bytes", state.max),
                );
                Some((Err(err), None))
            }
        }
    });
    let provider = provider.to_owned();
    SseByteStream::new(checked)
        .map(move |item| {
            item.map_err(|err| match err {
                // Our own error (timeout, cap, transport) comes back boxed: unbox it.
                sse_stream::Error::Body(inner) => match inner.downcast::<ProviderError>() {
                    Ok(own) => *own,
                    Err(other) => ProviderError::new(
                        &provider,
                        ProviderErrorKind::Transport,
                        format!("stream failed: {other}"),
                    ),
                },
                other => ProviderError::new(
                    &provider,
                    ProviderErrorKind::Decode,
                    format!("malformed event stream: {other}"),
                ),
            })
        })
        .boxed()
}

/// The SSE events of a successful `response`, read within `limits` (see
/// [`crate::http::body`]).
pub(crate) fn sse(
    provider: &str,
    response: reqwest::Response,
    limits: &crate::HttpLimits,
    first_byte: tokio::time::Instant,
    secret: &str,
) -> BoxStream<'static, Result<Sse, ProviderError>> {
    let bytes = crate::http::body(provider, response, limits, first_byte, secret);
    decode(provider, bytes, limits.max_event_bytes)
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
