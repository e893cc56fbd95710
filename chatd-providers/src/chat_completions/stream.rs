//! Chat Completions chunks → [`StreamEvent`]s, and error classification.

use std::collections::BTreeMap;

use chatd_core::ProviderKind;
use chatd_core::Usage;
use chatd_core::provider::{
    EventStream, FinishReason, ProviderError, ProviderErrorKind, StreamEvent, parse_tool_args,
};
use futures::stream::BoxStream;
use serde_json::json;
use sse_stream::Sse;

use super::wire::{Chunk, WireError, WireUsage, arguments_of, text_of};

/// Refines a non-2xx response's classification from the OpenAI-style error body.
pub(super) fn classify(_status: u16, body: &serde_json::Value, err: &mut ProviderError) {
    if let Some(wire) =
        body.get("error").and_then(|e| serde_json::from_value::<WireError>(e.clone()).ok())
    {
        apply_wire_error(&wire, err);
    }
}

fn apply_wire_error(wire: &WireError, err: &mut ProviderError) {
    if let Some(message) = &wire.message {
        err.message.clone_from(message);
    }
    let code = wire.code.as_ref().and_then(|c| c.as_str()).map(str::to_owned);
    err.error_type = code.clone().or_else(|| wire.kind.clone());
    let kind = match (code.as_deref(), wire.kind.as_deref()) {
        (Some("context_length_exceeded" | "string_above_max_length"), _) => {
            Some(ProviderErrorKind::ContextLength)
        }
        (Some("insufficient_quota" | "billing_hard_limit_reached"), _)
        | (_, Some("insufficient_quota")) => Some(ProviderErrorKind::Quota),
        (Some("rate_limit_exceeded"), _) | (_, Some("rate_limit_error")) => {
            Some(ProviderErrorKind::RateLimited)
        }
        (Some("content_filter" | "content_policy_violation"), _) => {
            Some(ProviderErrorKind::ContentFilter)
        }
        (Some("invalid_api_key"), _) | (_, Some("authentication_error")) => {
            Some(ProviderErrorKind::Auth)
        }
        (Some("model_not_found"), _) => Some(ProviderErrorKind::InvalidRequest),
        (_, Some("server_error")) => Some(ProviderErrorKind::Server),
        _ => None,
    };
    if let Some(kind) = kind {
        err.kind = kind;
    }
}

/// Normalises usage (BEHAVIOUR §9.2): `prompt_tokens` includes cached tokens.
fn usage(wire: &WireUsage) -> Usage {
    let cached = wire.prompt_tokens_details.as_ref().and_then(|d| d.cached_tokens).unwrap_or(0);
    let written =
        wire.prompt_tokens_details.as_ref().and_then(|d| d.cache_write_tokens).unwrap_or(0);
    let input = (wire.prompt_tokens - cached - written).max(0);
    let output = wire.completion_tokens;
    Usage {
        input_tokens: input,
        output_tokens: output,
        total_tokens: input + cached + written + output,
        reasoning_tokens: wire
            .completion_tokens_details
            .as_ref()
            .and_then(|d| d.reasoning_tokens)
            .unwrap_or(0),
        cache_creation_tokens: written,
        cache_read_tokens: cached,
    }
}

/// Finish reasons that report a server-side failure, not an end of the answer (BEHAVIOUR §9.2:
/// a retryable error): DeepSeek's `insufficient_system_resource`, vLLM's `abort`.
const ABNORMAL_FINISHES: [&str; 5] =
    ["insufficient_system_resource", "abort", "aborted", "server_error", "internal_error"];

fn finish_reason(raw: &str) -> FinishReason {
    match raw {
        "stop" | "end_turn" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        "error" => FinishReason::Error,
        other => FinishReason::Other(other.to_owned()),
    }
}

#[derive(Default)]
struct ToolState {
    id: String,
    name: String,
    args: String,
}

/// The parser's state across chunks.
struct Parser {
    provider: String,
    /// Marks reasoning with the `openaicompat` metadata key, so the prompt builder sends it
    /// back to the same kind of server (BEHAVIOUR §9.2).
    mark_reasoning: bool,
    text_open: bool,
    reasoning_open: bool,
    tools: BTreeMap<usize, ToolState>,
    finish: Option<FinishReason>,
    abnormal: Option<String>,
    usage: Option<Usage>,
    done: bool,
}

/// The provider-metadata key of reasoning from an `openai-compat` server (the prompt
/// builder keeps reasoning carrying it for that kind only).
const REASONING_KEY: &str = "openaicompat";
const TEXT_ID: &str = "text-0";
const REASONING_ID: &str = "reasoning-0";

impl Parser {
    fn decode_error(&self, detail: impl std::fmt::Display) -> ProviderError {
        ProviderError::new(
            &self.provider,
            ProviderErrorKind::Decode,
            format!("malformed chunk: {detail}"),
        )
    }

    /// The finish of a stream that ended with `[DONE]` (or the connection) but no finish
    /// reason: a normal end when every call's arguments parse, else incomplete.
    fn inferred_finish(&self) -> Option<FinishReason> {
        if self.tools.is_empty() {
            return self.done.then_some(FinishReason::Stop);
        }
        let all_parse = self.tools.values().all(|t| parse_tool_args(&t.args).is_object());
        (self.done && all_parse).then_some(FinishReason::ToolCalls)
    }
}

impl crate::sse::SseParser for Parser {
    fn done(&self) -> bool {
        self.done
    }

    fn on_event(&mut self, sse: Sse) -> Result<Vec<StreamEvent>, ProviderError> {
        let Some(data) = sse.data else { return Ok(Vec::new()) };
        let data = data.trim();
        if data.is_empty() {
            return Ok(Vec::new());
        }
        if data == "[DONE]" {
            self.done = true;
            return Ok(Vec::new());
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|err| self.decode_error(err))?;
        if let Some(error) = chunk.error {
            let mut err = ProviderError::new(
                &self.provider,
                ProviderErrorKind::Server,
                "the stream reported an error",
            );
            apply_wire_error(&error, &mut err);
            return Err(err);
        }
        let mut events = Vec::new();
        if let Some(wire) = &chunk.usage {
            self.usage = Some(usage(wire));
        }
        // Only choice 0 is the answer (BEHAVIOUR §9.2): others (`n > 1`) are ignored.
        for choice in chunk.choices.into_iter().filter(|c| c.index.unwrap_or(0) == 0) {
            let delta = choice.delta;
            let reasoning = text_of(delta.reasoning_content).or_else(|| text_of(delta.reasoning));
            if let Some(reasoning) = reasoning.filter(|r| !r.is_empty()) {
                if !self.reasoning_open {
                    self.reasoning_open = true;
                    events.push(StreamEvent::ReasoningStart { id: REASONING_ID.into() });
                }
                events.push(StreamEvent::ReasoningDelta {
                    id: REASONING_ID.into(),
                    delta: reasoning,
                });
            }
            if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                if !self.text_open {
                    self.text_open = true;
                    events.push(StreamEvent::TextStart { id: TEXT_ID.into() });
                }
                events.push(StreamEvent::TextDelta { id: TEXT_ID.into(), delta: text });
            }
            for call in delta.tool_calls {
                let index = call.index.unwrap_or(self.tools.len());
                let fresh = !self.tools.contains_key(&index);
                let state = self.tools.entry(index).or_default();
                if let Some(id) = call.id.filter(|id| !id.is_empty()) {
                    state.id = id;
                }
                let function = call.function;
                if let Some(name) =
                    function.as_ref().and_then(|f| f.name.clone()).filter(|n| !n.is_empty())
                {
                    state.name = name;
                }
                if state.id.is_empty() {
                    state.id = format!("call_{index}");
                }
                if fresh {
                    events.push(StreamEvent::ToolInputStart {
                        id: state.id.clone(),
                        tool_name: state.name.clone(),
                    });
                }
                if let Some(arguments) =
                    function.and_then(|f| arguments_of(f.arguments)).filter(|a| !a.is_empty())
                {
                    state.args.push_str(&arguments);
                    events.push(StreamEvent::ToolInputDelta {
                        id: state.id.clone(),
                        delta: arguments,
                    });
                }
            }
            if let Some(reason) = choice.finish_reason.filter(|r| !r.is_empty()) {
                if ABNORMAL_FINISHES.contains(&reason.as_str()) {
                    self.abnormal = Some(reason);
                } else {
                    self.finish = Some(finish_reason(&reason));
                }
            }
        }
        Ok(events)
    }

    /// The closing events, or an error if the response never completed or the server
    /// finished abnormally. Calls are complete only when the stream ended normally with a
    /// finish that lets calls stand (not `length`, a content filter or an error); their
    /// arguments are what the model sent (BEHAVIOUR §9.2).
    fn close(&mut self) -> Result<Vec<StreamEvent>, ProviderError> {
        if let Some(reason) = self.abnormal.take() {
            let mut err = ProviderError::new(
                &self.provider,
                ProviderErrorKind::Server,
                format!("the server ended the response abnormally ({reason})"),
            );
            err.error_type = Some(reason);
            return Err(err);
        }
        let Some(reason) = self.finish.take().or_else(|| self.inferred_finish()) else {
            return Err(crate::http::incomplete(&self.provider));
        };
        let mut events = Vec::new();
        if self.reasoning_open {
            events.push(StreamEvent::ReasoningEnd {
                id: REASONING_ID.into(),
                provider_metadata: self.mark_reasoning.then(|| {
                    let mut meta = chatd_core::ProviderMetadata::new();
                    meta.insert(REASONING_KEY.into(), json!({}));
                    meta
                }),
            });
        }
        if self.text_open {
            events.push(StreamEvent::TextEnd { id: TEXT_ID.into(), provider_metadata: None });
        }
        let complete =
            matches!(reason, FinishReason::Stop | FinishReason::ToolCalls | FinishReason::Other(_));
        for state in std::mem::take(&mut self.tools).into_values() {
            if !complete {
                continue; // cut by length, a filter or an error: never a complete call
            }
            events.push(StreamEvent::ToolInputEnd { id: state.id.clone() });
            events.push(StreamEvent::ToolCall {
                id: state.id,
                tool_name: state.name,
                args: parse_tool_args(&state.args),
                provider_executed: false,
                provider_metadata: None,
            });
        }
        events.push(StreamEvent::Finish {
            reason,
            usage: self.usage.take(),
            context_window: None,
            provider_metadata: None,
        });
        Ok(events)
    }
}

/// Turns the SSE events of a response into [`StreamEvent`]s.
pub(crate) fn events(
    provider: &str,
    sse: BoxStream<'static, Result<Sse, ProviderError>>,
) -> EventStream {
    let parser = Parser {
        provider: provider.to_owned(),
        mark_reasoning: provider == ProviderKind::OpenAiCompat.as_str(),
        abnormal: None,
        text_open: false,
        reasoning_open: false,
        tools: BTreeMap::new(),
        finish: None,
        usage: None,
        done: false,
    };
    crate::sse::drive(sse, parser)
}
