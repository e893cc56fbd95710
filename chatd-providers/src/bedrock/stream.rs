//! AWS event-stream frames → [`StreamEvent`]s, and error classification.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::Message;
use bytes::BytesMut;
use chatd_core::ProviderMetadata;
use chatd_core::Usage;
use chatd_core::provider::{
    EventStream, FinishReason, ProviderError, ProviderErrorKind, StreamEvent, parse_tool_args,
};
use futures::stream::StreamExt;
use serde_json::{Value, json};

use super::convert::META;
use super::wire::{ErrorBody, Payload};

fn kind_of(error_type: &str, message: &str) -> Option<ProviderErrorKind> {
    let error_type = error_type
        .split(':')
        .next()
        .unwrap_or_default()
        .trim_end_matches("Exception")
        .to_ascii_lowercase();
    Some(match error_type.as_str() {
        "throttling" | "toomanyrequests" => ProviderErrorKind::RateLimited,
        "serviceunavailable" | "modelnotready" => ProviderErrorKind::Overloaded,
        "internalserver" | "modelstreamerror" => ProviderErrorKind::Server,
        "modeltimeout" => ProviderErrorKind::Timeout,
        "accessdenied" | "unrecognizedclient" => ProviderErrorKind::Auth,
        // Bedrock's validation errors share one type; only the message tells an oversized prompt.
        "validation" if message.contains("too long") || message.contains("maximum context") => {
            ProviderErrorKind::ContextLength
        }
        "validation" | "resourcenotfound" => ProviderErrorKind::InvalidRequest,
        _ => return None,
    })
}

/// Refines a non-2xx response's classification from its `{"message": ...}` body.
pub(super) fn classify(_status: u16, body: &Value, err: &mut ProviderError) {
    let body: ErrorBody = serde_json::from_value(body.clone()).unwrap_or_default();
    let message = body.message.or(body.message_capitalised).unwrap_or_default();
    if !message.is_empty() {
        err.message.clone_from(&message);
        if message.contains("too long") || message.contains("maximum context") {
            err.kind = ProviderErrorKind::ContextLength;
        }
    }
}

fn header<'a>(message: &'a Message, name: &str) -> Option<&'a str> {
    message
        .headers()
        .iter()
        .find(|h| h.name().as_str() == name)
        .and_then(|h| h.value().as_string().ok())
        .map(|s| s.as_str())
}

enum Block {
    Text,
    Reasoning { signature: String, redacted: Option<Value> },
    Tool { id: String, name: String, json: String },
}

struct Parser {
    provider: String,
    blocks: HashMap<u64, Block>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    calls: crate::complete::HeldCalls,
}

impl Parser {
    fn on_message(&mut self, message: &Message) -> Result<Vec<StreamEvent>, ProviderError> {
        // A payload that is not JSON has no fields (the frame's headers still tell its kind).
        let payload: Payload = crate::lenient::event(message.payload()).unwrap_or_default();
        if header(message, ":message-type") == Some("exception") {
            let error_type = header(message, ":exception-type").unwrap_or("exception");
            let text = payload.message.as_deref().unwrap_or("the stream reported an error");
            let mut err = ProviderError::new(
                &self.provider,
                kind_of(error_type, text).unwrap_or(ProviderErrorKind::Server),
                text,
            );
            err.error_type = Some(error_type.to_owned());
            return Err(err);
        }
        let index = payload.content_block_index.unwrap_or(0);
        let id = index.to_string();
        let mut out = Vec::new();
        match header(message, ":event-type").unwrap_or_default() {
            "contentBlockStart" => {
                if let Some(tool) = payload.start.and_then(|s| s.tool_use) {
                    let tool_id = tool.tool_use_id.unwrap_or_default();
                    let name = tool.name.unwrap_or_default();
                    out.push(StreamEvent::ToolInputStart {
                        id: tool_id.clone(),
                        tool_name: name.clone(),
                    });
                    self.blocks
                        .insert(index, Block::Tool { id: tool_id, name, json: String::new() });
                }
            }
            "contentBlockDelta" => {
                let delta = payload.delta.unwrap_or_default();
                if let Some(text) = delta.text {
                    if let Entry::Vacant(slot) = self.blocks.entry(index) {
                        slot.insert(Block::Text);
                        out.push(StreamEvent::TextStart { id: id.clone() });
                    }
                    out.push(StreamEvent::TextDelta { id, delta: text });
                } else if let Some(input) = delta.tool_use.and_then(|t| t.input) {
                    if let Some(Block::Tool { id: tool_id, json, .. }) = self.blocks.get_mut(&index)
                    {
                        json.push_str(&input);
                        out.push(StreamEvent::ToolInputDelta { id: tool_id.clone(), delta: input });
                    }
                } else if let Some(reasoning) = delta.reasoning_content {
                    if let Entry::Vacant(slot) = self.blocks.entry(index) {
                        slot.insert(Block::Reasoning { signature: String::new(), redacted: None });
                        out.push(StreamEvent::ReasoningStart { id: id.clone() });
                    }
                    if let Some(Block::Reasoning { signature, redacted }) =
                        self.blocks.get_mut(&index)
                    {
                        if let Some(text) = reasoning.text {
                            out.push(StreamEvent::ReasoningDelta { id, delta: text });
                        }
                        if let Some(sig) = reasoning.signature {
                            signature.push_str(&sig);
                        }
                        if let Some(data) = reasoning.redacted_content {
                            *redacted = Some(data);
                        }
                    }
                }
            }
            "contentBlockStop" => match self.blocks.remove(&index) {
                Some(Block::Text) => out.push(StreamEvent::TextEnd { id, provider_metadata: None }),
                Some(Block::Reasoning { signature, redacted }) => {
                    let value = match redacted {
                        Some(data) => json!({"redacted_content": data}),
                        None => json!({"signature": signature}),
                    };
                    let mut meta = ProviderMetadata::new();
                    meta.insert(META.into(), value);
                    out.push(StreamEvent::ReasoningEnd { id, provider_metadata: Some(meta) });
                }
                Some(Block::Tool { id: tool_id, name, json }) => {
                    out.push(StreamEvent::ToolInputEnd { id: tool_id.clone() });
                    self.calls.hold(StreamEvent::ToolCall {
                        id: tool_id,
                        tool_name: name,
                        args: parse_tool_args(&json),
                        provider_executed: false,
                        provider_metadata: None,
                    });
                }
                None => {}
            },
            "messageStop" => {
                let reason = payload.stop_reason.unwrap_or_default();
                self.finish = Some(match reason.as_str() {
                    "end_turn" | "stop_sequence" => FinishReason::Stop,
                    "tool_use" => FinishReason::ToolCalls,
                    "max_tokens" => FinishReason::Length,
                    "guardrail_intervened" | "content_filtered" => FinishReason::ContentFilter,
                    other => FinishReason::Other(other.to_owned()),
                });
            }
            "metadata" => {
                if let Some(usage) = payload.usage {
                    let count = |n: Option<i64>| n.unwrap_or(0);
                    let (input, output) = (count(usage.input_tokens), count(usage.output_tokens));
                    let (read, write) = (
                        count(usage.cache_read_input_tokens),
                        count(usage.cache_write_input_tokens),
                    );
                    self.usage = Some(Usage {
                        input_tokens: input,
                        output_tokens: output,
                        total_tokens: input + read + write + output,
                        reasoning_tokens: 0,
                        cache_creation_tokens: write,
                        cache_read_tokens: read,
                    });
                }
            }
            _ => {}
        }
        Ok(out)
    }

    fn close(&mut self) -> Result<Vec<StreamEvent>, ProviderError> {
        let Some(reason) = self.finish.take() else {
            return Err(crate::http::incomplete(&self.provider));
        };
        let mut out = self.calls.release(&reason);
        out.push(StreamEvent::Finish {
            reason,
            usage: self.usage.take(),
            context_window: None,
            provider_metadata: None,
        });
        Ok(out)
    }
}

/// Decodes the event-stream body of a response into [`StreamEvent`]s.
pub(crate) fn events(
    provider: &str,
    body: futures::stream::BoxStream<'static, Result<bytes::Bytes, ProviderError>>,
    max_frame: usize,
) -> EventStream {
    let parser = Parser {
        provider: provider.to_owned(),
        blocks: HashMap::new(),
        finish: None,
        usage: None,
        calls: crate::complete::HeldCalls::default(),
    };
    let state = (body, BytesMut::new(), MessageFrameDecoder::new(), parser);
    futures::stream::unfold(Some(state), move |state| async move {
        let (mut body, mut buffer, mut decoder, mut parser) = state?;
        loop {
            match decoder.decode_frame(&mut buffer) {
                Ok(DecodedFrame::Complete(message)) => match parser.on_message(&message) {
                    Ok(events) if events.is_empty() => continue,
                    Ok(events) => return Some((Ok(events), Some((body, buffer, decoder, parser)))),
                    Err(err) => return Some((Err(err), None)),
                },
                Ok(DecodedFrame::Incomplete) => {}
                Err(err) => {
                    let err = ProviderError::new(
                        &parser.provider,
                        ProviderErrorKind::Decode,
                        format!("bad event-stream frame: {err}"),
                    );
                    return Some((Err(err), None));
                }
            }
            match body.next().await {
                Some(Ok(chunk)) => {
                    buffer.extend_from_slice(&chunk);
                    if buffer.len() > max_frame {
                        let err = ProviderError::new(
                            &parser.provider,
                            ProviderErrorKind::TooLarge,
                            format!("an event-stream frame exceeded {max_frame} bytes"),
                        );
                        return Some((Err(err), None));
                    }
                }
                Some(Err(err)) => return Some((Err(err), None)),
                None if buffer.is_empty() => return Some((parser.close(), None)),
                None => {
                    let err = ProviderError::new(
                        &parser.provider,
                        ProviderErrorKind::Transport,
                        "the stream ended in the middle of an event",
                    );
                    return Some((Err(err), None));
                }
            }
        }
    })
    .flat_map(|batch: Result<Vec<StreamEvent>, ProviderError>| match batch {
        Ok(events) => futures::stream::iter(events.into_iter().map(Ok).collect::<Vec<_>>()),
        Err(err) => futures::stream::iter(vec![Err(err)]),
    })
    .boxed()
}
