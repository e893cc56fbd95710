//! Messages API stream events → [`StreamEvent`]s, and error classification.

use std::collections::HashMap;

use chatd_core::ProviderMetadata;
use chatd_core::Usage;
use chatd_core::provider::{
    EventStream, FinishReason, ProviderError, ProviderErrorKind, StreamEvent, parse_tool_args,
};
use futures::stream::BoxStream;
use serde_json::{Value, json};
use sse_stream::Sse;

use super::convert::META;
use super::wire::{ErrorBody, Event, WireError, WireUsage};

fn kind_of(error_type: &str, message: &str) -> Option<ProviderErrorKind> {
    Some(match error_type {
        "overloaded_error" => ProviderErrorKind::Overloaded,
        "rate_limit_error" => ProviderErrorKind::RateLimited,
        "api_error" => ProviderErrorKind::Server,
        "authentication_error" | "permission_error" => ProviderErrorKind::Auth,
        "billing_error" => ProviderErrorKind::Quota,
        "not_found_error" | "request_too_large" => ProviderErrorKind::InvalidRequest,
        // The API has no distinct type for an oversized prompt; its message is the only signal.
        "invalid_request_error" if message.contains("prompt is too long") => {
            ProviderErrorKind::ContextLength
        }
        "invalid_request_error" => ProviderErrorKind::InvalidRequest,
        _ => return None,
    })
}

fn apply(error: WireError, err: &mut ProviderError) {
    let error_type = error.kind.unwrap_or_default();
    let message = error.message.unwrap_or_default();
    if let Some(kind) = kind_of(&error_type, &message) {
        err.kind = kind;
    }
    if !message.is_empty() {
        err.message = message;
    }
    if !error_type.is_empty() {
        err.error_type = Some(error_type);
    }
}

/// Refines a non-2xx response's classification from `{"type":"error","error":{...}}`.
pub(super) fn classify(_status: u16, body: &Value, err: &mut ProviderError) {
    let body: ErrorBody = serde_json::from_value(body.clone()).unwrap_or_default();
    if let Some(error) = body.error {
        apply(error, err);
    }
}

fn finish_reason(raw: &str) -> FinishReason {
    match raw {
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "max_tokens" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}

enum Block {
    Text,
    Thinking { signature: String },
    Redacted { data: String },
    Tool { id: String, name: String, json: String, initial: Value, provider_executed: bool },
    Other,
}

struct Parser {
    provider: String,
    blocks: HashMap<u64, Block>,
    usage: Usage,
    usage_seen: bool,
    finish: Option<FinishReason>,
    stopped: bool,
    calls: crate::complete::HeldCalls,
}

fn meta(value: Value) -> Option<ProviderMetadata> {
    let mut map = ProviderMetadata::new();
    map.insert(META.into(), value);
    Some(map)
}

impl Parser {
    fn read_usage(&mut self, usage: WireUsage) {
        if let Some(v) = usage.input_tokens {
            self.usage.input_tokens = v;
            self.usage_seen = true;
        }
        if let Some(v) = usage.cache_creation_input_tokens {
            self.usage.cache_creation_tokens = v;
        }
        if let Some(v) = usage.cache_read_input_tokens {
            self.usage.cache_read_tokens = v;
        }
        if let Some(v) = usage.output_tokens {
            self.usage.output_tokens = v;
            self.usage_seen = true;
        }
    }
}

impl crate::sse::SseParser for Parser {
    fn done(&self) -> bool {
        self.stopped
    }

    fn on_event(&mut self, sse: Sse) -> Result<Vec<StreamEvent>, ProviderError> {
        let Some(data) = sse.data.filter(|d| !d.trim().is_empty()) else { return Ok(Vec::new()) };
        let event: Event = crate::lenient::event(data.as_bytes()).map_err(|err| {
            ProviderError::new(
                &self.provider,
                ProviderErrorKind::Decode,
                format!("malformed event: {err}"),
            )
        })?;
        let index = event.index.unwrap_or(0);
        let id = index.to_string();
        let mut out = Vec::new();
        match event.kind.as_deref().unwrap_or_default() {
            "message_start" => {
                if let Some(usage) = event.message.and_then(|m| m.usage) {
                    self.read_usage(usage);
                }
            }
            "content_block_start" => {
                let block = event.content_block.unwrap_or_default();
                match block.kind.as_deref().unwrap_or_default() {
                    "text" => {
                        out.push(StreamEvent::TextStart { id: id.clone() });
                        let initial = block.text.unwrap_or_default();
                        if !initial.is_empty() {
                            out.push(StreamEvent::TextDelta { id: id.clone(), delta: initial });
                        }
                        self.blocks.insert(index, Block::Text);
                    }
                    "thinking" => {
                        out.push(StreamEvent::ReasoningStart { id: id.clone() });
                        self.blocks.insert(
                            index,
                            Block::Thinking { signature: block.signature.unwrap_or_default() },
                        );
                    }
                    "redacted_thinking" => {
                        out.push(StreamEvent::ReasoningStart { id: id.clone() });
                        self.blocks.insert(
                            index,
                            Block::Redacted { data: block.data.unwrap_or_default() },
                        );
                    }
                    kind @ ("tool_use" | "server_tool_use") => {
                        let (tool_id, name) =
                            (block.id.unwrap_or_default(), block.name.unwrap_or_default());
                        out.push(StreamEvent::ToolInputStart {
                            id: tool_id.clone(),
                            tool_name: name.clone(),
                        });
                        self.blocks.insert(
                            index,
                            Block::Tool {
                                id: tool_id,
                                name,
                                json: String::new(),
                                initial: block.input.unwrap_or(Value::Null),
                                provider_executed: kind == "server_tool_use",
                            },
                        );
                    }
                    kind if kind.ends_with("_tool_result") => {
                        out.push(StreamEvent::ToolResult {
                            id: block.tool_use_id.unwrap_or_default(),
                            tool_name: kind.trim_end_matches("_tool_result").to_owned(),
                            result: block.content.unwrap_or(Value::Null),
                            is_error: false,
                        });
                        self.blocks.insert(index, Block::Other);
                    }
                    _ => {
                        self.blocks.insert(index, Block::Other);
                    }
                }
            }
            "content_block_delta" => {
                let delta = event.delta.unwrap_or_default();
                match (delta.kind.as_deref().unwrap_or_default(), self.blocks.get_mut(&index)) {
                    ("text_delta", _) => out
                        .push(StreamEvent::TextDelta { id, delta: delta.text.unwrap_or_default() }),
                    ("thinking_delta", _) => out.push(StreamEvent::ReasoningDelta {
                        id,
                        delta: delta.thinking.unwrap_or_default(),
                    }),
                    ("signature_delta", Some(Block::Thinking { signature })) => {
                        signature.push_str(delta.signature.as_deref().unwrap_or_default())
                    }
                    ("input_json_delta", Some(Block::Tool { id: tool_id, json, .. })) => {
                        let partial = delta.partial_json.unwrap_or_default();
                        json.push_str(&partial);
                        out.push(StreamEvent::ToolInputDelta {
                            id: tool_id.clone(),
                            delta: partial,
                        });
                    }
                    _ => {}
                }
            }
            "content_block_stop" => match self.blocks.remove(&index) {
                Some(Block::Text) => out.push(StreamEvent::TextEnd { id, provider_metadata: None }),
                Some(Block::Thinking { signature }) => out.push(StreamEvent::ReasoningEnd {
                    id,
                    provider_metadata: meta(json!({"signature": signature})),
                }),
                Some(Block::Redacted { data }) => out.push(StreamEvent::ReasoningEnd {
                    id,
                    provider_metadata: meta(json!({"redacted_data": data})),
                }),
                Some(Block::Tool { id: tool_id, name, json, initial, provider_executed }) => {
                    let args = if json.trim().is_empty() && initial.is_object() {
                        initial
                    } else {
                        parse_tool_args(&json)
                    };
                    out.push(StreamEvent::ToolInputEnd { id: tool_id.clone() });
                    // Complete only if the message ends normally (not `max_tokens`).
                    self.calls.hold(StreamEvent::ToolCall {
                        id: tool_id,
                        tool_name: name,
                        args,
                        provider_executed,
                        provider_metadata: None,
                    });
                }
                Some(Block::Other) | None => {}
            },
            "message_delta" => {
                if let Some(reason) = event.delta.and_then(|d| d.stop_reason) {
                    self.finish = Some(finish_reason(&reason));
                }
                if let Some(usage) = event.usage {
                    self.read_usage(usage);
                }
            }
            "message_stop" => self.stopped = true,
            "error" => {
                let mut err = ProviderError::new(
                    &self.provider,
                    ProviderErrorKind::Server,
                    "the stream reported an error",
                );
                if let Some(error) = event.error {
                    apply(error, &mut err);
                }
                return Err(err);
            }
            _ => {}
        }
        Ok(out)
    }

    fn close(&mut self) -> Result<Vec<StreamEvent>, ProviderError> {
        if !self.stopped {
            return Err(crate::http::incomplete(&self.provider));
        }
        // `message_stop` is the terminal event: without a `stop_reason` the finish is
        // inferred (tool use when calls closed, else a natural end), as for `[DONE]`.
        let reason = self.finish.take().unwrap_or(if self.calls.is_empty() {
            FinishReason::Stop
        } else {
            FinishReason::ToolCalls
        });
        let usage = self.usage_seen.then(|| {
            let u = self.usage;
            Usage {
                total_tokens: u.input_tokens
                    + u.cache_read_tokens
                    + u.cache_creation_tokens
                    + u.output_tokens,
                ..u
            }
        });
        let mut out = self.calls.release(&reason);
        out.push(StreamEvent::Finish {
            reason,
            usage,
            context_window: None,
            provider_metadata: None,
        });
        Ok(out)
    }
}

/// Turns the SSE events of a response into [`StreamEvent`]s.
pub(crate) fn events(
    provider: &str,
    sse: BoxStream<'static, Result<Sse, ProviderError>>,
) -> EventStream {
    let parser = Parser {
        provider: provider.to_owned(),
        blocks: HashMap::new(),
        usage: Usage::default(),
        usage_seen: false,
        finish: None,
        stopped: false,
        calls: crate::complete::HeldCalls::default(),
    };
    crate::sse::drive(sse, parser)
}
