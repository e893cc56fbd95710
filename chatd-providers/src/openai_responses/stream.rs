//! Responses API stream events → [`StreamEvent`]s, and error classification.

use std::collections::HashSet;

use chatd_core::ProviderMetadata;
use chatd_core::Usage;
use chatd_core::provider::{
    EventStream, FinishReason, ProviderError, ProviderErrorKind, StreamEvent, parse_tool_args,
};
use futures::stream::BoxStream;
use serde_json::{Map, Value, json};
use sse_stream::Sse;

use super::convert::META;
use super::wire::{ErrorBody, Event, Response, WireError};

fn apply(error: WireError, err: &mut ProviderError) {
    let WireError { code, kind: kind_name, message } = error;
    if let Some(message) = message {
        err.message = message;
    }
    err.error_type = code.clone().or_else(|| kind_name.clone());
    let kind = match (code.as_deref(), kind_name.as_deref()) {
        (Some("context_length_exceeded"), _) => Some(ProviderErrorKind::ContextLength),
        (Some("insufficient_quota"), _) | (_, Some("insufficient_quota")) => {
            Some(ProviderErrorKind::Quota)
        }
        (Some("rate_limit_exceeded"), _) => Some(ProviderErrorKind::RateLimited),
        (Some("server_error" | "server_is_overloaded"), _) | (_, Some("server_error")) => {
            Some(ProviderErrorKind::Server)
        }
        (Some("invalid_api_key"), _) => Some(ProviderErrorKind::Auth),
        (Some("invalid_prompt" | "model_not_found"), _) => Some(ProviderErrorKind::InvalidRequest),
        (Some("content_filter"), _) => Some(ProviderErrorKind::ContentFilter),
        _ => None,
    };
    if let Some(kind) = kind {
        err.kind = kind;
    }
}

/// Refines a non-2xx response's classification from `{"error":{...}}`.
pub(super) fn classify(_status: u16, body: &Value, err: &mut ProviderError) {
    let body: ErrorBody = serde_json::from_value(body.clone()).unwrap_or_default();
    if let Some(error) = body.error {
        apply(error, err);
    }
}

struct Parser {
    provider: String,
    text_items: HashSet<String>,
    reasoning_items: HashSet<String>,
    calls: usize,
    done: bool,
    held: crate::complete::HeldCalls,
}

impl Parser {
    fn finish(&mut self, response: Response, incomplete: bool) -> Vec<StreamEvent> {
        let reason = if incomplete {
            match response.incomplete_details.and_then(|d| d.reason).as_deref() {
                Some("max_output_tokens") => FinishReason::Length,
                Some("content_filter") => FinishReason::ContentFilter,
                Some(other) => FinishReason::Other(other.to_owned()),
                None => FinishReason::Other("incomplete".into()),
            }
        } else if self.calls > 0 {
            FinishReason::ToolCalls
        } else {
            FinishReason::Stop
        };
        let usage = response.usage.map(|u| {
            let cached = u.input_tokens_details.and_then(|d| d.cached_tokens).unwrap_or(0);
            let input = (u.input_tokens.unwrap_or(0) - cached).max(0);
            let output = u.output_tokens.unwrap_or(0);
            Usage {
                input_tokens: input,
                output_tokens: output,
                total_tokens: input + cached + output,
                reasoning_tokens: u
                    .output_tokens_details
                    .and_then(|d| d.reasoning_tokens)
                    .unwrap_or(0),
                cache_creation_tokens: 0,
                cache_read_tokens: cached,
            }
        });
        let mut meta = Map::new();
        if let Some(id) = response.id {
            meta.insert(META.into(), json!({"response_id": id}));
        }
        let mut out = self.held.release(&reason);
        out.push(StreamEvent::Finish {
            reason,
            usage,
            context_window: None,
            provider_metadata: (!meta.is_empty()).then_some(meta),
        });
        out
    }
}

impl crate::sse::SseParser for Parser {
    fn done(&self) -> bool {
        self.done
    }

    fn close(&mut self) -> Result<Vec<StreamEvent>, ProviderError> {
        if self.done {
            return Ok(Vec::new());
        }
        Err(crate::http::incomplete(&self.provider))
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
        let mut out = Vec::new();
        let item_id = event.item_id.unwrap_or_default();
        let delta = event.delta.unwrap_or_default();
        match event.kind.as_deref().unwrap_or_default() {
            "response.output_item.added" => {
                let item = event.item.unwrap_or_default();
                match item.kind.as_deref().unwrap_or_default() {
                    "function_call" => {
                        out.push(StreamEvent::ToolInputStart {
                            id: item.call_id.unwrap_or_default(),
                            tool_name: item.name.unwrap_or_default(),
                        });
                    }
                    "reasoning" => {
                        let id = item.id.unwrap_or_default();
                        self.reasoning_items.insert(id.clone());
                        out.push(StreamEvent::ReasoningStart { id });
                    }
                    _ => {}
                }
            }
            "response.output_text.delta" => {
                if self.text_items.insert(item_id.clone()) {
                    out.push(StreamEvent::TextStart { id: item_id.clone() });
                }
                out.push(StreamEvent::TextDelta { id: item_id, delta });
            }
            "response.output_text.done" => {
                out.push(StreamEvent::TextEnd { id: item_id, provider_metadata: None })
            }
            "response.reasoning_summary_text.delta" => {
                out.push(StreamEvent::ReasoningDelta { id: item_id, delta })
            }
            "response.reasoning_summary_part.done" => {
                out.push(StreamEvent::ReasoningDelta { id: item_id, delta: "\n\n".into() })
            }
            "response.function_call_arguments.delta" => {
                // Deltas name the item id; the call id arrives with the item. The final item
                // (output_item.done) carries the complete arguments, so deltas are a preview.
            }
            "response.output_item.done" => {
                let item = event.item.unwrap_or_default();
                match item.kind.as_deref().unwrap_or_default() {
                    "function_call" => {
                        self.calls += 1;
                        let id = item.call_id.unwrap_or_default();
                        out.push(StreamEvent::ToolInputEnd { id: id.clone() });
                        // Complete only if the response completes (not `incomplete`).
                        self.held.hold(StreamEvent::ToolCall {
                            id,
                            tool_name: item.name.unwrap_or_default(),
                            args: parse_tool_args(item.arguments.as_deref().unwrap_or_default()),
                            provider_executed: false,
                            provider_metadata: None,
                        });
                    }
                    "reasoning" => {
                        let id = item.id.unwrap_or_default();
                        let mut meta = Map::new();
                        meta.insert("item_id".into(), json!(id));
                        if let Some(encrypted) = item.encrypted_content {
                            meta.insert("encrypted_content".into(), encrypted);
                        }
                        let mut provider_metadata = ProviderMetadata::new();
                        provider_metadata.insert(META.into(), Value::Object(meta));
                        if self.reasoning_items.insert(id.clone()) {
                            out.push(StreamEvent::ReasoningStart { id: id.clone() });
                        }
                        out.push(StreamEvent::ReasoningEnd {
                            id,
                            provider_metadata: Some(provider_metadata),
                        });
                    }
                    _ => {}
                }
            }
            kind @ ("response.completed" | "response.incomplete") => {
                let response = event.response.unwrap_or_default();
                out.extend(self.finish(response, kind == "response.incomplete"));
                self.done = true;
            }
            "response.failed" => {
                let mut err = ProviderError::new(
                    &self.provider,
                    ProviderErrorKind::Server,
                    "the response failed",
                );
                if let Some(error) = event.response.and_then(|r| r.error) {
                    apply(error, &mut err);
                }
                return Err(err);
            }
            "error" => {
                let mut err = ProviderError::new(
                    &self.provider,
                    ProviderErrorKind::Server,
                    "the stream reported an error",
                );
                // The error is nested, or its fields are the event's own.
                let error = event.error.unwrap_or(WireError {
                    code: event.code,
                    kind: event.kind,
                    message: event.message,
                });
                apply(error, &mut err);
                return Err(err);
            }
            _ => {}
        }
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
        text_items: HashSet::new(),
        reasoning_items: HashSet::new(),
        calls: 0,
        done: false,
        held: crate::complete::HeldCalls::default(),
    };
    crate::sse::drive(sse, parser)
}
