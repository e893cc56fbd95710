//! The provider crate's recorded wire fixtures, for turns driven through real adapters.

/// A recorded fixture: `chatd-providers/tests/fixtures/<provider>/<name>`.
///
/// # Panics
/// When the fixture cannot be read.
#[must_use]
pub fn fixture(provider: &str, name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../chatd-providers/tests/fixtures/{provider}/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// JSON lines (`{"event", "payload"}` each) as AWS event-stream frames.
///
/// # Panics
/// When a line is not such an object.
#[must_use]
pub fn encode_frames(text: &str) -> Vec<u8> {
    use aws_smithy_eventstream::frame::write_message_to;
    use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let entry: serde_json::Value = serde_json::from_str(line).expect("line");
        let payload = serde_json::to_vec(&entry["payload"]).expect("payload");
        let string = |s: &str| HeaderValue::String(s.to_owned().into());
        let headers = vec![
            Header::new(":message-type", string("event")),
            Header::new(":event-type", string(entry["event"].as_str().expect("event"))),
            Header::new(":content-type", string("application/json")),
        ];
        write_message_to(&Message::new_from_parts(headers, payload), &mut out).expect("frame");
    }
    out
}

/// The recorded stream of a turn that calls `read_file` for `kind`, as text (Bedrock's as
/// JSON lines, for [`body`]).
///
/// # Panics
/// When the fixture cannot be read.
#[must_use]
pub fn tool_call_text(kind: chatd_core::ProviderKind) -> String {
    use chatd_core::ProviderKind;
    let (provider, name) = match kind {
        ProviderKind::OpenAi => ("openai-responses", "tool-calls.sse"),
        ProviderKind::Anthropic => ("anthropic", "tool-use.sse"),
        ProviderKind::Google => ("google", "function-calls.sse"),
        ProviderKind::Bedrock => ("bedrock", "tool-use.jsonl"),
        _ => ("chat-completions", "tool-call.sse"),
    };
    String::from_utf8(fixture(provider, name)).expect("utf-8")
}

/// The recorded stream of a plain text answer for `kind`, as text.
///
/// # Panics
/// When the fixture cannot be read.
#[must_use]
pub fn text_answer_text(kind: chatd_core::ProviderKind) -> String {
    use chatd_core::ProviderKind;
    let (provider, name) = match kind {
        ProviderKind::OpenAi => ("openai-responses", "text.sse"),
        ProviderKind::Anthropic => ("anthropic", "text.sse"),
        ProviderKind::Google => ("google", "text.sse"),
        ProviderKind::Bedrock => ("bedrock", "text.jsonl"),
        _ => ("chat-completions", "text.sse"),
    };
    String::from_utf8(fixture(provider, name)).expect("utf-8")
}

/// A fixture's text as `kind`'s server sends it: Bedrock's as event-stream frames.
#[must_use]
pub fn body(kind: chatd_core::ProviderKind, text: &str) -> Vec<u8> {
    if kind == chatd_core::ProviderKind::Bedrock {
        encode_frames(text)
    } else {
        text.as_bytes().to_vec()
    }
}
