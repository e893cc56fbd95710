//! Responses API stream events → [`StreamEvent`]s, and error classification.

use std::collections::HashSet;

use chatd_core::Usage;
use chatd_core::part::ProviderMetadata;
use chatd_core::provider::{
    EventStream, FinishReason, ProviderError, ProviderErrorKind, StreamEvent, parse_tool_args,
};
use futures::stream::BoxStream;
use serde_json::{Map, Value, json};
use sse_stream::Sse;

use super::convert::META;

fn apply(error: &Value, err: &mut ProviderError) {
    let code = error.get("code").and_then(Value::as_str).map(str::to_owned);
    let kind_name = error.get("type").and_then(Value::as_str).map(str::to_owned);
    if let Some(message) = error.get("message").and_then(Value::as_str) {
        err.message = message.to_owned();
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
    if let Some(error) = body.get("error") {
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

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

impl Parser {
    fn finish(&mut self, response: &Value, incomplete: bool) -> Vec<StreamEvent> {
        let reason = if incomplete {
            match response.pointer("/incomplete_details/reason").and_then(Value::as_str) {
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
        let usage = response.get("usage").filter(|u| u.is_object()).map(|u| {
            let get = |pointer: &str| u.pointer(pointer).and_then(Value::as_i64).unwrap_or(0);
            let cached = get("/input_tokens_details/cached_tokens");
            let input = (get("/input_tokens") - cached).max(0);
            let output = get("/output_tokens");
            Usage {
                input_tokens: input,
                output_tokens: output,
                total_tokens: input + cached + output,
                reasoning_tokens: get("/output_tokens_details/reasoning_tokens"),
                cache_creation_tokens: 0,
                cache_read_tokens: cached,
            }
        });
        let mut meta = Map::new();
        if let Some(id) = response.get("id") {
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
        let event: Value = serde_json::from_str(&data).map_err(|err| {
            ProviderError::new(
                &self.provider,
                ProviderErrorKind::Decode,
                format!("malformed event: {err}"),
            )
        })?;
        let mut out = Vec::new();
        match str_of(&event, "type") {
            "response.output_item.added" => {
                let item = event.get("item").cloned().unwrap_or(Value::Null);
                match str_of(&item, "type") {
                    "function_call" => {
                        out.push(StreamEvent::ToolInputStart {
                            id: str_of(&item, "call_id").to_owned(),
                            tool_name: str_of(&item, "name").to_owned(),
                        });
                    }
                    "reasoning" => {
                        let id = str_of(&item, "id").to_owned();
                        self.reasoning_items.insert(id.clone());
                        out.push(StreamEvent::ReasoningStart { id });
                    }
                    _ => {}
                }
            }
            "response.output_text.delta" => {
                let id = str_of(&event, "item_id").to_owned();
                if self.text_items.insert(id.clone()) {
                    out.push(StreamEvent::TextStart { id: id.clone() });
                }
                out.push(StreamEvent::TextDelta { id, delta: str_of(&event, "delta").to_owned() });
            }
            "response.output_text.done" => out.push(StreamEvent::TextEnd {
                id: str_of(&event, "item_id").to_owned(),
                provider_metadata: None,
            }),
            "response.reasoning_summary_text.delta" => out.push(StreamEvent::ReasoningDelta {
                id: str_of(&event, "item_id").to_owned(),
                delta: str_of(&event, "delta").to_owned(),
            }),
            "response.reasoning_summary_part.done" => out.push(StreamEvent::ReasoningDelta {
                id: str_of(&event, "item_id").to_owned(),
                delta: "\n\n".into(),
            }),
            "response.function_call_arguments.delta" => {
                // Deltas name the item id; the call id arrives with the item. The final item
                // (output_item.done) carries the complete arguments, so deltas are a preview.
            }
            "response.output_item.done" => {
                let item = event.get("item").cloned().unwrap_or(Value::Null);
                match str_of(&item, "type") {
                    "function_call" => {
                        self.calls += 1;
                        let id = str_of(&item, "call_id").to_owned();
                        out.push(StreamEvent::ToolInputEnd { id: id.clone() });
                        // Complete only if the response completes (not `incomplete`).
                        self.held.hold(StreamEvent::ToolCall {
                            id,
                            tool_name: str_of(&item, "name").to_owned(),
                            args: parse_tool_args(str_of(&item, "arguments")),
                            provider_executed: false,
                            provider_metadata: None,
                        });
                    }
                    "reasoning" => {
                        let id = str_of(&item, "id").to_owned();
                        let mut meta = Map::new();
                        meta.insert("item_id".into(), json!(id));
                        if let Some(encrypted) =
                            item.get("encrypted_content").filter(|v| !v.is_null())
                        {
                            meta.insert("encrypted_content".into(), encrypted.clone());
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
                let response = event.get("response").cloned().unwrap_or(Value::Null);
                out.extend(self.finish(&response, kind == "response.incomplete"));
                self.done = true;
            }
            "response.failed" => {
                let mut err = ProviderError::new(
                    &self.provider,
                    ProviderErrorKind::Server,
                    "the response failed",
                );
                if let Some(error) = event.pointer("/response/error").filter(|e| e.is_object()) {
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
                apply(event.get("error").unwrap_or(&event), &mut err);
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
