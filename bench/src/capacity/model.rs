//! The fake model of the capacity and soak scenarios: a Chat Completions server that paces
//! its answers like a model, and answers a mix of requests differently (a tool call every
//! n-th step, a share of failing and of slow calls), with the tool the workers offer.

use std::time::Duration;

use chatd_core::runtime::tools::{ToolContext, ToolError, TypedTool};
use chatd_providers::testing::{FakeResponse, FakeServer, RecordedRequest};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::pg::BenchResult;

/// How the fake model answers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    pub(crate) first_token: Duration,
    pub(crate) per_token: Duration,
    pub(crate) tokens: usize,
}

/// Which requests the fake model answers otherwise than with a paced text answer, by the
/// order it receives them in (0 = never). A request carrying a tool result is always
/// answered with text, so a tool turn is two steps.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Mix {
    /// Every n-th request asks for the `clock` tool.
    pub(crate) tool_every: usize,
    /// Every n-th request fails with a retryable `503` (the runtime retries it).
    pub(crate) fail_every: usize,
    /// Every n-th request waits five times as long for its first token.
    pub(crate) slow_every: usize,
}

impl Mix {
    /// Whether any request is answered otherwise than with text.
    pub(crate) fn is_plain(self) -> bool {
        self.tool_every == 0 && self.fail_every == 0 && self.slow_every == 0
    }
}

/// The name of the tool the fake model calls.
pub(crate) const TOOL: &str = "clock";

fn event(body: &str) -> Vec<u8> {
    format!("data: {body}\n\n").into_bytes()
}

fn chunk(delta: &str, finish: &str) -> String {
    format!(
        "{{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\
         \"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}"
    )
}

/// The finish, usage and `[DONE]` events ending a stream.
fn tail(finish: &str) -> Vec<u8> {
    let mut tail = event(&chunk("{}", finish));
    tail.extend(event(
        "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\
         \"choices\":[],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":10,\"total_tokens\":30}}",
    ));
    tail.extend(b"data: [DONE]\n\n");
    tail
}

/// A Chat Completions stream of `pace.tokens` tokens, one event each, then the finish and
/// usage events.
pub(crate) fn answer(pace: Pace) -> FakeResponse {
    let mut events: Vec<Vec<u8>> = (0..pace.tokens)
        .map(|n| event(&chunk(&format!("{{\"content\":\"t{n} \"}}"), "null")))
        .collect();
    events.push(tail("\"stop\""));
    FakeResponse::paced(events, pace.first_token, pace.per_token)
}

/// A stream asking for one call of [`TOOL`], after the first-token wait.
fn tool_call(pace: Pace, served: usize) -> FakeResponse {
    let call = format!(
        "{{\"role\":\"assistant\",\"tool_calls\":[{{\"index\":0,\"id\":\"call_{served}\",\
         \"type\":\"function\",\"function\":{{\"name\":\"{TOOL}\",\"arguments\":\"{{}}\"}}}}]}}"
    );
    let events = vec![event(&chunk(&call, "null")), tail("\"tool_calls\"")];
    FakeResponse::paced(events, pace.first_token, pace.per_token)
}

/// Whether the request's last message is a tool result (Chat Completions: role `tool`).
fn carries_tool_result(request: &RecordedRequest) -> bool {
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    body["messages"].as_array().and_then(|m| m.last()).is_some_and(|m| m["role"] == "tool")
}

/// The answer to the `served`-th request under `mix`.
pub(crate) fn respond(
    pace: Pace,
    mix: Mix,
    request: &RecordedRequest,
    served: usize,
) -> FakeResponse {
    let every = |n: usize, offset: usize| n > 0 && served % n == offset % n;
    if carries_tool_result(request) {
        return answer(pace);
    }
    if every(mix.fail_every, 1) {
        let body =
            json!({"error": {"message": "the fake model is overloaded", "type": "server_error"}});
        return FakeResponse::json(503, body.to_string());
    }
    if every(mix.tool_every, 0) {
        return tool_call(pace, served);
    }
    if every(mix.slow_every, 2) {
        return answer(Pace { first_token: pace.first_token * 5, ..pace });
    }
    answer(pace)
}

/// Starts the fake model.
pub(crate) async fn serve(pace: Pace, mix: Mix) -> BenchResult<FakeServer> {
    Ok(FakeServer::responding(move |request, served| respond(pace, mix, request, served)).await?)
}

/// Arguments of [`Clock`] (none).
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct ClockArgs {}

/// The tool the workers offer: answers at once with a fixed reading (idempotent).
pub(crate) struct Clock;

#[async_trait::async_trait]
impl TypedTool for Clock {
    type Args = ClockArgs;
    fn name(&self) -> &str {
        TOOL
    }
    fn description(&self) -> &str {
        "Reads the clock."
    }
    fn idempotent(&self) -> bool {
        true
    }
    async fn call(&self, _ctx: &ToolContext, _args: ClockArgs) -> Result<Value, ToolError> {
        Ok(json!({"time": "12:00"}))
    }
}
