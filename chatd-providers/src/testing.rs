//! [`FakeServer`]: a provider HTTP server on `127.0.0.1` for tests. It replays scripted
//! responses byte for byte — whole, in chunks of any size (down to one byte), or cut off
//! mid-body — and records every request so tests can assert the URL, headers and body the
//! adapter sent. Nothing leaves the machine.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One scripted response.
#[derive(Debug, Clone)]
pub struct FakeResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    chunk_size: usize,
    chunk_delay: Duration,
    final_pause: Duration,
    cut_after: Option<usize>,
    /// Serve this response only to a request whose body contains this text.
    body_contains: Option<String>,
    /// Explicit pieces (lengths, in order), sent instead of `chunk_size` pieces.
    piece_lengths: Option<Vec<usize>>,
    /// A wait before the first piece.
    first_delay: Duration,
}

impl FakeResponse {
    /// A `200 text/event-stream` response with `body` (an SSE recording).
    pub fn sse(body: impl Into<Vec<u8>>) -> Self {
        FakeResponse {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            body: body.into(),
            chunk_size: usize::MAX,
            chunk_delay: Duration::ZERO,
            final_pause: Duration::ZERO,
            cut_after: None,
            body_contains: None,
            piece_lengths: None,
            first_delay: Duration::ZERO,
        }
    }

    /// A `200 text/event-stream` response sent as `events`, one piece each, like a model
    /// that thinks for `first` and then streams a piece every `between`.
    pub fn paced(events: Vec<Vec<u8>>, first: Duration, between: Duration) -> Self {
        let lengths = events.iter().map(Vec::len).collect();
        FakeResponse {
            piece_lengths: Some(lengths),
            first_delay: first,
            chunk_delay: between,
            ..Self::sse(events.concat())
        }
    }

    /// A JSON response with `status`.
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Self {
        FakeResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            ..Self::sse(body)
        }
    }

    /// Serves this response only to a request whose body contains `text` (for example a
    /// title or summary request, recognised by its instruction), whenever it comes; other
    /// responses are served in order to the requests no matcher claims.
    #[must_use]
    pub fn when_body_contains(mut self, text: impl Into<String>) -> Self {
        self.body_contains = Some(text.into());
        self
    }

    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sends the body in chunks of `size` bytes (1 = byte by byte), each flushed.
    #[must_use]
    pub fn chunked(mut self, size: usize) -> Self {
        self.chunk_size = size.max(1);
        self
    }

    /// Waits `delay` between chunks.
    #[must_use]
    pub fn with_chunk_delay(mut self, delay: Duration) -> Self {
        self.chunk_delay = delay;
        self
    }

    /// Waits `pause` before the last chunk (a model that pauses before finishing).
    #[must_use]
    pub fn with_final_pause(mut self, pause: Duration) -> Self {
        self.final_pause = pause;
        self
    }

    /// Drops the connection after `bytes` of the body, without ending the message.
    #[must_use]
    pub fn cut_after(mut self, bytes: usize) -> Self {
        self.cut_after = Some(bytes);
        self
    }
}

/// A request the server received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// `POST`, ...
    pub method: String,
    /// The path and query.
    pub path: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// A header's value.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` if it is not JSON).
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A local server answering requests with the scripted responses: a response with a
/// matcher ([`FakeResponse::when_body_contains`]) goes to the first request it matches, the
/// others go in order to the rest. A request with no response left gets a `400` whose error
/// message says so (`fake server: script exhausted …`) — not retryable, so a test fails at
/// once with the explanation instead of retrying a server error.
#[derive(Debug)]
pub struct FakeServer {
    url: String,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    task: JoinHandle<()>,
}

impl FakeServer {
    /// Binds `127.0.0.1:0` and starts serving.
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub async fn start(responses: Vec<FakeResponse>) -> io::Result<Self> {
        Self::serving(responses, None).await
    }

    /// A server that answers every request with `response`, for load: requests are
    /// recorded without their bodies.
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub async fn repeating(response: FakeResponse) -> io::Result<Self> {
        Self::responding(move |_, _| response.clone()).await
    }

    /// A server that answers each request with what `respond` returns for it and for the
    /// number of requests served before it (from 0), for load with a mix of answers (a tool
    /// call every n-th request, a share of failures): requests are recorded without their
    /// bodies.
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub async fn responding(
        respond: impl Fn(&RecordedRequest, usize) -> FakeResponse + Send + Sync + 'static,
    ) -> io::Result<Self> {
        Self::serving(Vec::new(), Some(Arc::new(respond))).await
    }

    async fn serving(
        responses: Vec<FakeResponse>,
        repeat: Option<Arc<Responder>>,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&requests);
        let script = Arc::new(Mutex::new(responses));
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (recorded, script) = (Arc::clone(&recorded), Arc::clone(&script));
                let repeat = repeat.clone();
                tokio::spawn(async move {
                    let _ = serve(socket, script, recorded, repeat).await;
                });
            }
        });
        Ok(FakeServer { url, requests, task })
    }

    /// The base URL (`http://127.0.0.1:PORT`).
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every request received so far.
    #[must_use]
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        529 => "Overloaded",
        _ => "Status",
    }
}

async fn read_request(socket: &mut TcpStream) -> io::Result<RecordedRequest> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "request ended early"));
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split_whitespace();
    let method = request_line.next().unwrap_or_default().to_owned();
    let path = request_line.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buffer[header_end + 4..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(RecordedRequest { method, path, headers, body })
}

/// The response for `request`: the first whose matcher matches it, else the first without a
/// matcher, else the "script exhausted" error.
fn pick(
    script: &Mutex<Vec<FakeResponse>>,
    request: &RecordedRequest,
    served: usize,
) -> FakeResponse {
    let mut script = script.lock().unwrap_or_else(PoisonError::into_inner);
    let body = String::from_utf8_lossy(&request.body);
    let matched = script
        .iter()
        .position(|r| r.body_contains.as_deref().is_some_and(|text| body.contains(text)))
        .or_else(|| script.iter().position(|r| r.body_contains.is_none()));
    match matched {
        Some(index) => script.remove(index),
        None => {
            let start: String = body.chars().take(160).collect();
            let message = format!(
                "fake server: script exhausted — no scripted response left for {} {} after \
                 {served} served; the request began: {start}",
                request.method, request.path
            );
            let body =
                serde_json::json!({"error": {"message": message, "type": "invalid_request_error"}});
            FakeResponse::json(400, body.to_string())
        }
    }
}

/// What [`FakeServer::responding`] calls for each request.
type Responder = dyn Fn(&RecordedRequest, usize) -> FakeResponse + Send + Sync;

async fn serve(
    mut socket: TcpStream,
    script: Arc<Mutex<Vec<FakeResponse>>>,
    recorded: Arc<Mutex<Vec<RecordedRequest>>>,
    repeat: Option<Arc<Responder>>,
) -> io::Result<()> {
    let mut request = read_request(&mut socket).await?;
    let response = {
        let mut all = recorded.lock().unwrap_or_else(PoisonError::into_inner);
        let response = match &repeat {
            Some(respond) => {
                let response = respond(&request, all.len());
                request.body = Vec::new();
                response
            }
            None => pick(&script, &request, all.len()),
        };
        all.push(request);
        response
    };
    let mut head = format!("HTTP/1.1 {} {}\r\n", response.status, reason(response.status));
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("transfer-encoding: chunked\r\nconnection: close\r\n\r\n");
    socket.write_all(head.as_bytes()).await?;
    let limit = response.cut_after.unwrap_or(usize::MAX).min(response.body.len());
    let pieces: Vec<&[u8]> = match &response.piece_lengths {
        Some(lengths) => {
            let mut rest = &response.body[..limit];
            let mut pieces = Vec::new();
            for length in lengths {
                let (piece, tail) = rest.split_at((*length).min(rest.len()));
                if !piece.is_empty() {
                    pieces.push(piece);
                }
                rest = tail;
            }
            pieces
        }
        None => response.body[..limit].chunks(response.chunk_size.min(limit.max(1))).collect(),
    };
    if !response.first_delay.is_zero() {
        tokio::time::sleep(response.first_delay).await;
    }
    let last = pieces.len().saturating_sub(1);
    for (index, piece) in pieces.into_iter().enumerate() {
        if index == last && index > 0 && !response.final_pause.is_zero() {
            tokio::time::sleep(response.final_pause).await;
        }
        socket.write_all(format!("{:x}\r\n", piece.len()).as_bytes()).await?;
        socket.write_all(piece).await?;
        socket.write_all(b"\r\n").await?;
        socket.flush().await?;
        if !response.chunk_delay.is_zero() {
            tokio::time::sleep(response.chunk_delay).await;
        }
    }
    if response.cut_after.is_none() {
        socket.write_all(b"0\r\n\r\n").await?;
    }
    socket.flush().await?;
    socket.shutdown().await
}

#[cfg(any(
    feature = "chat-completions",
    feature = "anthropic",
    feature = "google",
    feature = "openai",
    feature = "bedrock"
))]
/// Which decoder [`replay`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decoder {
    /// Chat Completions (every dialect; `openai-compat` naming).
    #[cfg(feature = "chat-completions")]
    ChatCompletions,
    /// Anthropic Messages.
    #[cfg(feature = "anthropic")]
    Anthropic,
    /// Gemini `streamGenerateContent`.
    #[cfg(feature = "google")]
    Google,
    /// OpenAI Responses.
    #[cfg(feature = "openai")]
    Responses,
    /// Bedrock Converse (AWS event-stream frames).
    #[cfg(feature = "bedrock")]
    Bedrock,
}

#[cfg(any(
    feature = "chat-completions",
    feature = "anthropic",
    feature = "google",
    feature = "openai",
    feature = "bedrock"
))]
/// Runs an adapter's own stream decoder over `chunks` (as if they arrived from the network
/// in exactly these pieces), with the event bound `max_event_bytes`, and collects what it
/// yields up to and including the first error. For fuzzing and wire tests without HTTP.
pub async fn replay(
    decoder: Decoder,
    chunks: Vec<bytes::Bytes>,
    max_event_bytes: usize,
) -> Vec<Result<chatd_core::provider::StreamEvent, chatd_core::provider::ProviderError>> {
    use futures::StreamExt;
    let bytes: futures::stream::BoxStream<
        'static,
        Result<bytes::Bytes, chatd_core::provider::ProviderError>,
    > = futures::stream::iter(chunks.into_iter().map(Ok)).boxed();
    let events: chatd_core::provider::EventStream = match decoder {
        #[cfg(feature = "chat-completions")]
        Decoder::ChatCompletions => crate::chat_completions::stream::events(
            "openai-compat",
            crate::sse::decode("openai-compat", bytes, max_event_bytes),
        ),
        #[cfg(feature = "anthropic")]
        Decoder::Anthropic => crate::anthropic::stream::events(
            "anthropic",
            crate::sse::decode("anthropic", bytes, max_event_bytes),
        ),
        #[cfg(feature = "google")]
        Decoder::Google => crate::google::stream::events(
            "google",
            crate::sse::decode("google", bytes, max_event_bytes),
        ),
        #[cfg(feature = "openai")]
        Decoder::Responses => crate::openai_responses::stream::events(
            "openai",
            crate::sse::decode("openai", bytes, max_event_bytes),
        ),
        #[cfg(feature = "bedrock")]
        Decoder::Bedrock => crate::bedrock::stream::events("bedrock", bytes, max_event_bytes),
    };
    let mut out = Vec::new();
    let mut events = events;
    while let Some(item) = events.next().await {
        let failed = item.is_err();
        out.push(item);
        if failed {
            break;
        }
    }
    out
}
