//! Gemini stream responses → [`StreamEvent`]s, and error classification.

use chatd_core::ProviderMetadata;
use chatd_core::Usage;
use chatd_core::provider::{
    EventStream, FinishReason, ProviderError, ProviderErrorKind, StreamEvent,
};
use futures::stream::BoxStream;
use serde_json::{Map, Value, json};
use sse_stream::Sse;

use super::convert::META;
use super::wire::{Chunk, ErrorBody, WireError, WirePart};

fn apply(error: Value, err: &mut ProviderError) {
    let error = WireError::of(error);
    let status = error.status.unwrap_or_default();
    let message = error.message.unwrap_or_default();
    let kind = match status.as_str() {
        "RESOURCE_EXHAUSTED" => Some(ProviderErrorKind::RateLimited),
        "UNAVAILABLE" => Some(ProviderErrorKind::Overloaded),
        "INTERNAL" => Some(ProviderErrorKind::Server),
        "DEADLINE_EXCEEDED" => Some(ProviderErrorKind::Timeout),
        "UNAUTHENTICATED" | "PERMISSION_DENIED" => Some(ProviderErrorKind::Auth),
        // INVALID_ARGUMENT covers every bad request; only the message tells an oversized prompt.
        "INVALID_ARGUMENT" if message.contains("exceeds the maximum number of tokens") => {
            Some(ProviderErrorKind::ContextLength)
        }
        "INVALID_ARGUMENT" | "NOT_FOUND" | "FAILED_PRECONDITION" => {
            Some(ProviderErrorKind::InvalidRequest)
        }
        _ => None,
    };
    if let Some(kind) = kind {
        err.kind = kind;
    }
    if !message.is_empty() {
        err.message = message;
    }
    if !status.is_empty() {
        err.error_type = Some(status);
    }
}

/// Refines a non-2xx response's classification from `{"error":{"code","message","status"}}`.
pub(super) fn classify(_status: u16, body: &Value, err: &mut ProviderError) {
    if let Some(error) = ErrorBody::error(body) {
        apply(error, err);
    }
}

fn meta(signature: &Value) -> Option<ProviderMetadata> {
    let mut map = Map::new();
    map.insert(META.into(), json!({"thought_signature": signature}));
    Some(map)
}

struct Parser {
    provider: String,
    text_open: bool,
    thought_open: bool,
    thought_signature: Option<Value>,
    text_signature: Option<Value>,
    calls: usize,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    held: crate::complete::HeldCalls,
}

const TEXT_ID: &str = "text-0";
const THOUGHT_ID: &str = "reasoning-0";

impl crate::sse::SseParser for Parser {
    fn done(&self) -> bool {
        false
    }

    fn on_event(&mut self, sse: Sse) -> Result<Vec<StreamEvent>, ProviderError> {
        let Some(data) = sse.data.filter(|d| !d.trim().is_empty()) else { return Ok(Vec::new()) };
        let mut response: Chunk = crate::lenient::event(data.as_bytes()).map_err(|err| {
            ProviderError::new(
                &self.provider,
                ProviderErrorKind::Decode,
                format!("malformed response: {err}"),
            )
        })?;
        if let Some(error) = response.error.take() {
            let mut err = ProviderError::new(
                &self.provider,
                ProviderErrorKind::Server,
                "the stream reported an error",
            );
            apply(error, &mut err);
            return Err(err);
        }
        let mut out = Vec::new();
        if let Some(usage) = response.usage_metadata.take() {
            let cached = usage.cached_content_token_count.unwrap_or(0);
            let input = (usage.prompt_token_count.unwrap_or(0) - cached).max(0);
            let reasoning = usage.thoughts_token_count.unwrap_or(0);
            let output = usage.candidates_token_count.unwrap_or(0) + reasoning;
            self.usage = Some(Usage {
                input_tokens: input,
                output_tokens: output,
                total_tokens: input + cached + output,
                reasoning_tokens: reasoning,
                cache_creation_tokens: 0,
                cache_read_tokens: cached,
            });
        }
        let Some(candidate) = response.first_candidate() else { return Ok(out) };
        let parts = candidate.content.and_then(|c| c.parts).unwrap_or_default();
        for part in parts.into_iter().map(WirePart::of) {
            let signature = part.thought_signature.as_ref();
            if let Some(call) = part.function_call {
                let id = call.id.unwrap_or_else(|| format!("call_{}", self.calls));
                self.calls += 1;
                let name = call.name.unwrap_or_default();
                // Absent arguments: a call of a tool without parameters. Anything but an
                // object is kept as sent (the loop refuses it), never replaced.
                let args = match call.args {
                    None | Some(Value::Null) => json!({}),
                    Some(Value::String(raw)) => chatd_core::provider::parse_tool_args(&raw),
                    Some(other) => other,
                };
                out.push(StreamEvent::ToolInputStart { id: id.clone(), tool_name: name.clone() });
                out.push(StreamEvent::ToolInputEnd { id: id.clone() });
                // Complete only if the response ends normally (not MAX_TOKENS, SAFETY, ...).
                self.held.hold(StreamEvent::ToolCall {
                    id,
                    tool_name: name,
                    args,
                    provider_executed: false,
                    provider_metadata: signature.and_then(meta),
                });
                continue;
            }
            let Some(text) = part.text.as_deref() else { continue };
            if part.thought == Some(true) {
                if !self.thought_open {
                    self.thought_open = true;
                    out.push(StreamEvent::ReasoningStart { id: THOUGHT_ID.into() });
                }
                out.push(StreamEvent::ReasoningDelta {
                    id: THOUGHT_ID.into(),
                    delta: text.to_owned(),
                });
                if let Some(sig) = signature {
                    self.thought_signature = Some(sig.clone());
                }
            } else if !text.is_empty() || signature.is_some() {
                // A text part may carry a thought signature (often the last, sometimes empty,
                // part): it is replayed with the text.
                if !self.text_open {
                    self.text_open = true;
                    out.push(StreamEvent::TextStart { id: TEXT_ID.into() });
                }
                if !text.is_empty() {
                    out.push(StreamEvent::TextDelta { id: TEXT_ID.into(), delta: text.to_owned() });
                }
                if let Some(sig) = signature {
                    self.text_signature = Some(sig.clone());
                }
            }
        }
        if let Some(reason) = candidate.finish_reason {
            self.finish = Some(match reason.as_str() {
                "STOP" if self.calls > 0 => FinishReason::ToolCalls,
                "STOP" => FinishReason::Stop,
                "MAX_TOKENS" => FinishReason::Length,
                "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII"
                | "IMAGE_SAFETY" => FinishReason::ContentFilter,
                "MALFORMED_FUNCTION_CALL" => FinishReason::Error,
                other => FinishReason::Other(other.to_owned()),
            });
        }
        Ok(out)
    }

    fn close(&mut self) -> Result<Vec<StreamEvent>, ProviderError> {
        let Some(reason) = self.finish.take() else {
            return Err(crate::http::incomplete(&self.provider));
        };
        let mut out = Vec::new();
        if self.thought_open {
            out.push(StreamEvent::ReasoningEnd {
                id: THOUGHT_ID.into(),
                provider_metadata: self.thought_signature.take().as_ref().and_then(meta),
            });
        }
        if self.text_open {
            out.push(StreamEvent::TextEnd {
                id: TEXT_ID.into(),
                provider_metadata: self.text_signature.take().as_ref().and_then(meta),
            });
        }
        out.extend(self.held.release(&reason));
        out.push(StreamEvent::Finish {
            reason,
            usage: self.usage.take(),
            context_window: None,
            provider_metadata: None,
        });
        Ok(out)
    }
}

/// Turns the SSE events of a response into [`StreamEvent`]s (the stream ends with the
/// connection; the last response carries the finish reason).
pub(crate) fn events(
    provider: &str,
    sse: BoxStream<'static, Result<Sse, ProviderError>>,
) -> EventStream {
    let parser = Parser {
        provider: provider.to_owned(),
        text_open: false,
        thought_open: false,
        thought_signature: None,
        text_signature: None,
        calls: 0,
        finish: None,
        usage: None,
        held: crate::complete::HeldCalls::default(),
    };
    crate::sse::drive(sse, parser)
}
