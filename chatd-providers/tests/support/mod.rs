//! Helpers shared by the wire tests.

// Each test binary compiles this module and uses a different subset of it.
#![allow(dead_code)]

use chatd_core::provider::{Generation, ModelProvider, ModelRequest, ProviderError};
use chatd_providers::testing::{FakeResponse, FakeServer, RecordedRequest};
use tokio_util::sync::CancellationToken;

/// A recorded fixture: `tests/fixtures/<provider>/<name>`.
pub(crate) fn fixture(provider: &str, name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{provider}/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// Serves `response` once, runs one accumulated call through the provider `make` builds
/// for the server's URL, and returns the result and the request the server received.
pub(crate) async fn call<P: ModelProvider>(
    make: impl FnOnce(&str) -> P,
    response: FakeResponse,
    request: ModelRequest,
) -> (Result<Generation, ProviderError>, RecordedRequest) {
    let server = FakeServer::start(vec![response]).await.expect("server");
    let provider = make(server.url());
    let result = provider.generate(request, CancellationToken::new()).await;
    let sent = server.requests().pop().expect("one request");
    (result, sent)
}

/// A Bedrock JSON-lines fixture (`{"event"|"exception", "payload"}` per line) encoded as an
/// AWS event-stream body: real frames with prelude, headers, payload and CRCs.
pub(crate) fn bedrock_frames(name: &str) -> Vec<u8> {
    bedrock_frames_from(&String::from_utf8(fixture("bedrock", name)).expect("utf-8"))
}

/// [`bedrock_frames`] of a fixture's text (lines starting with `#` are comments).
pub(crate) fn bedrock_frames_from(text: &str) -> Vec<u8> {
    use aws_smithy_eventstream::frame::write_message_to;
    use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
    use serde_json::Value;

    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
        let entry: Value = serde_json::from_str(line).expect("fixture line");
        let payload = serde_json::to_vec(&entry["payload"]).expect("payload");
        let string = |s: &str| HeaderValue::String(s.to_owned().into());
        let headers = match entry.get("exception").and_then(Value::as_str) {
            Some(exception) => vec![
                Header::new(":message-type", string("exception")),
                Header::new(":exception-type", string(exception)),
                Header::new(":content-type", string("application/json")),
            ],
            None => vec![
                Header::new(":message-type", string("event")),
                Header::new(":event-type", string(entry["event"].as_str().expect("event"))),
                Header::new(":content-type", string("application/json")),
            ],
        };
        write_message_to(&Message::new_from_parts(headers, payload), &mut out).expect("encode");
    }
    out
}
