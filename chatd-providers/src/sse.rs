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
    ///
    /// Most chunks hold whole events ending in `\n\n`, which always ends an event (its
    /// second `\n` is a blank line, whatever ends the line before). Such a chunk no larger
    /// than the bound is checked without scanning every line: an event wholly inside it is
    /// no larger than the chunk, the event it continues ends by its first `\n\n` (an
    /// upper bound: an earlier blank line in another form only makes it shorter), and only
    /// the bytes after its last `\n\n` are scanned line by line. Anything else (a larger
    /// chunk, no `\n\n`, a continued event that may be too large) is scanned whole, so the
    /// verdict and the state carried to the next chunk are exactly those of the line scan.
    pub fn feed(&mut self, chunk: &[u8]) -> bool {
        if chunk.len() <= self.max
            && let Some(first) = memchr::memmem::find(chunk, b"\n\n")
            && self.pending + first + 2 <= self.max
            && let Some(last) = memchr::memmem::rfind(chunk, b"\n\n")
        {
            *self = EventSizeGuard::new(self.max);
            return self.scan(&chunk[last + 2..]);
        }
        self.scan(chunk)
    }

    /// [`feed`](Self::feed) by scanning every line ending of `chunk`.
    fn scan(&mut self, chunk: &[u8]) -> bool {
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
    let checked = Checked {
        bytes: Box::pin(bytes),
        guard: EventSizeGuard::new(max_event_bytes),
        provider: provider.to_owned(),
        ended: false,
    };
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

/// The bytes of a body, checked against the event-size bound as they arrive; after the last
/// one, a blank line (so a final event without its terminator is delivered); nothing after
/// an error. A plain `Stream` (not a combinator chain): it runs once per chunk of every
/// streamed response.
struct Checked<S> {
    bytes: std::pin::Pin<Box<S>>,
    guard: EventSizeGuard,
    provider: String,
    ended: bool,
}

impl<S> Stream for Checked<S>
where
    S: Stream<Item = Result<Bytes, ProviderError>>,
{
    type Item = Result<Bytes, ProviderError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        let item = match this.bytes.as_mut().poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(item) => item,
        };
        Poll::Ready(Some(match item {
            Some(Ok(chunk)) if this.guard.feed(&chunk) => Ok(chunk),
            Some(Ok(_)) => {
                this.ended = true;
                Err(ProviderError::new(
                    &this.provider,
                    ProviderErrorKind::TooLarge,
                    format!("an event exceeded {} bytes", this.guard.max),
                ))
            }
            Some(Err(err)) => {
                this.ended = true;
                Err(err)
            }
            None => {
                this.ended = true;
                Ok(Bytes::from_static(b"\n\n"))
            }
        }))
    }
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::EventSizeGuard;

    /// Lines of SSE-ish text with every line ending and blank-line form.
    fn stream() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"\n".to_vec()),
            Just(b"\r".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"\n\n".to_vec()),
            Just(b"data: x".to_vec()),
            proptest::collection::vec(b'a'..=b'z', 0..40),
        ];
        proptest::collection::vec(piece, 0..60).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        /// The fast path gives the line scan's verdict for every chunk, and leaves the same
        /// state, whatever the stream, its chunking and the bound.
        #[test]
        fn the_guard_agrees_with_a_full_line_scan(
            body in stream(),
            cuts in proptest::collection::vec(any::<usize>(), 0..12),
            max in 1_usize..120,
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (body.len() + 1)).collect();
            cuts.sort_unstable();
            let (mut fast, mut exact) = (EventSizeGuard::new(max), EventSizeGuard::new(max));
            let mut start = 0;
            for end in cuts.into_iter().chain([body.len()]) {
                let chunk = &body[start..end.max(start)];
                start = end.max(start);
                let (a, b) = (fast.feed(chunk), exact.scan(chunk));
                prop_assert_eq!(a, b);
                if !a {
                    break;
                }
                prop_assert_eq!(
                    (fast.pending, fast.line, fast.after_cr),
                    (exact.pending, exact.line, exact.after_cr)
                );
            }
        }
    }
}
