//! Spans and metrics (see docs/DESIGN.md "Observability").
//!
//! Spans follow the OpenTelemetry GenAI semantic conventions, through `tracing`: a host
//! that exports `tracing` spans to OpenTelemetry (e.g. with `tracing-opentelemetry`) sees
//! them under these names and attributes. `otel.name` carries the conventional span name
//! (`chat {model}`, `execute_tool {tool}`); the `tracing` name is its static first word.
//!
//! | span | when | attributes |
//! |---|---|---|
//! | `invoke_agent` | one turn | `gen_ai.operation.name`, `gen_ai.conversation.id` (the chat), `chatd.turn` (its lease epoch), `chatd.outcome` |
//! | `chat` | one model call attempt | `gen_ai.operation.name`, `gen_ai.provider.name`, `gen_ai.request.model`, `gen_ai.response.finish_reasons`, `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`, `chatd.attempt`, `error.type` |
//! | `execute_tool` | one tool call | `gen_ai.operation.name`, `gen_ai.tool.name`, `gen_ai.tool.call.id`, `error.type` |
//! | `chatd.acquire` | one acquisition poll of a worker | `chatd.worker.id`, `chatd.acquired` |
//!
//! Metrics go through the [`metrics`] facade (install any recorder, e.g. a Prometheus
//! exporter; without one they cost an atomic load):
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `TURNS` | counter | `outcome` |
//! | `STEP_SECONDS` | histogram | `provider` |
//! | `TOOL_SECONDS` | histogram | `tool`, `error` |
//! | `TOKENS` | counter | `kind` (`input`, `output`, `cache_read`, `cache_creation`, `reasoning`) |
//! | `RETRIES` | counter | `provider` |
//! | `ACQUISITIONS` | counter | — (chats acquired) |
//! | `LEASE_LOSSES` | counter | — |
//! | `QUEUE_DEPTH` | histogram | — (queue length after a message was queued) |

use std::time::Duration;

use crate::message::Usage;
use crate::provider::FinishReason;
use crate::provider_config::ProviderKind;

/// Turns ended, by outcome.
pub(crate) const TURNS: &str = "chatd_turns_total";
/// Model call attempts' duration in seconds, by provider.
pub(crate) const STEP_SECONDS: &str = "chatd_model_call_seconds";
/// Tool calls' duration in seconds, by tool and whether it failed.
pub(crate) const TOOL_SECONDS: &str = "chatd_tool_call_seconds";
/// Tokens used, by kind.
pub(crate) const TOKENS: &str = "chatd_tokens_total";
/// Model calls retried, by provider.
pub(crate) const RETRIES: &str = "chatd_retries_total";
/// Chats acquired by workers.
pub(crate) const ACQUISITIONS: &str = "chatd_acquisitions_total";
/// Leases lost while a turn ran.
pub(crate) const LEASE_LOSSES: &str = "chatd_lease_losses_total";
/// The queue's length after a message was queued.
pub(crate) const QUEUE_DEPTH: &str = "chatd_queue_depth";
/// Counter: tokens recorded in the usage ledger, by `provider`, `model` and `kind`
/// (`input`, `output`, `cache_read`, `cache_write`).
pub(crate) const USAGE_TOKENS: &str = "chatd_usage_tokens_total";
/// Counter: the cost recorded in the usage ledger, in micro-units, by `provider` and `model`
/// (unpriced calls add nothing).
pub(crate) const COST_MICROS: &str = "chatd_cost_micros_total";
/// Counter: what retention did ([BEHAVIOUR §18](crate::behaviour#18-history-you-keep)), by `action`: `archived` (root chats),
/// `purged` (chats), `deleted_messages_purged`.
pub(crate) const RETENTION: &str = "chatd_retention_total";

/// The OpenTelemetry `gen_ai.provider.name` of a provider kind.
#[must_use]
pub(crate) fn provider_name(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::OpenAi => "openai",
        ProviderKind::Anthropic => "anthropic",
        ProviderKind::Google => "gcp.gemini",
        ProviderKind::Azure => "azure.ai.openai",
        ProviderKind::Bedrock => "aws.bedrock",
        other => other.as_str(),
    }
}

/// The span of one turn.
pub(crate) fn turn_span(chat: crate::ids::ChatId, turn: i64) -> tracing::Span {
    tracing::info_span!(
        "invoke_agent",
        "otel.name" = "invoke_agent chatd",
        "gen_ai.operation.name" = "invoke_agent",
        "gen_ai.conversation.id" = %chat,
        "chatd.turn" = turn,
        "chatd.outcome" = tracing::field::Empty,
    )
}

/// Records how a turn ended, on its span and in [`TURNS`].
pub(crate) fn turn_ended(span: &tracing::Span, outcome: &'static str) {
    span.record("chatd.outcome", outcome);
    metrics::counter!(TURNS, "outcome" => outcome).increment(1);
}

/// The span of one model call attempt.
pub(crate) fn model_call_span(kind: ProviderKind, model: &str, attempt: u32) -> tracing::Span {
    tracing::info_span!(
        "chat",
        "otel.name" = format!("chat {model}"),
        "gen_ai.operation.name" = "chat",
        "gen_ai.provider.name" = provider_name(kind),
        "gen_ai.request.model" = model,
        "gen_ai.response.finish_reasons" = tracing::field::Empty,
        "gen_ai.usage.input_tokens" = tracing::field::Empty,
        "gen_ai.usage.output_tokens" = tracing::field::Empty,
        "chatd.attempt" = attempt,
        "error.type" = tracing::field::Empty,
    )
}

/// Records a finished model call attempt.
pub(crate) fn model_call_ended(
    span: &tracing::Span,
    kind: ProviderKind,
    took: Duration,
    finish: Option<&FinishReason>,
    usage: Option<&Usage>,
    error: Option<&str>,
) {
    metrics::histogram!(STEP_SECONDS, "provider" => provider_name(kind)).record(took.as_secs_f64());
    if let Some(finish) = finish {
        span.record("gen_ai.response.finish_reasons", format!("[\"{}\"]", finish.as_str()));
    }
    if let Some(usage) = usage {
        // BEHAVIOUR §9.2: `input + cache_read + cache_creation` is the whole prompt.
        let input = usage.input_tokens + usage.cache_read_tokens + usage.cache_creation_tokens;
        span.record("gen_ai.usage.input_tokens", input);
        span.record("gen_ai.usage.output_tokens", usage.output_tokens);
        for (kind, tokens) in [
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("cache_read", usage.cache_read_tokens),
            ("cache_creation", usage.cache_creation_tokens),
            ("reasoning", usage.reasoning_tokens),
        ] {
            if let Ok(tokens) = u64::try_from(tokens)
                && tokens > 0
            {
                metrics::counter!(TOKENS, "kind" => kind).increment(tokens);
            }
        }
    }
    if let Some(error) = error {
        span.record("error.type", error);
    }
}

/// A retried model call.
pub(crate) fn retried(kind: ProviderKind) {
    metrics::counter!(RETRIES, "provider" => provider_name(kind)).increment(1);
}

/// The span of one tool call.
pub(crate) fn tool_span(name: &str, call_id: &str) -> tracing::Span {
    tracing::info_span!(
        "execute_tool",
        "otel.name" = format!("execute_tool {name}"),
        "gen_ai.operation.name" = "execute_tool",
        "gen_ai.tool.name" = name,
        "gen_ai.tool.call.id" = call_id,
        "error.type" = tracing::field::Empty,
    )
}

/// Records a finished tool call.
pub(crate) fn tool_ended(span: &tracing::Span, name: &str, took: Duration, failed: bool) {
    if failed {
        span.record("error.type", "tool_error");
    }
    let error = if failed { "true" } else { "false" };
    metrics::histogram!(TOOL_SECONDS, "tool" => name.to_owned(), "error" => error)
        .record(took.as_secs_f64());
}

/// The span of one acquisition poll.
pub(crate) fn acquire_span(worker: crate::ids::WorkerId) -> tracing::Span {
    tracing::info_span!(
        "chatd.acquire",
        "chatd.worker.id" = %worker,
        "chatd.acquired" = tracing::field::Empty,
    )
}

/// Records an acquisition poll's result.
pub(crate) fn acquired(span: &tracing::Span, count: usize) {
    span.record("chatd.acquired", count);
    if count > 0 {
        metrics::counter!(ACQUISITIONS).increment(count as u64);
    }
}

/// A lease lost while its turn ran.
pub(crate) fn lease_lost() {
    metrics::counter!(LEASE_LOSSES).increment(1);
}

/// Counts a retention batch.
pub(crate) fn retention(pass: &crate::store::RetentionPass) {
    for (action, count) in [
        ("archived", pass.archived.len() as u64),
        ("purged", pass.purged.len() as u64),
        ("deleted_messages_purged", pass.deleted_messages_purged),
    ] {
        if count > 0 {
            metrics::counter!(RETENTION, "action" => action).increment(count);
        }
    }
}

/// A message was queued; the queue now holds `depth`.
pub(crate) fn queued(depth: usize) {
    metrics::histogram!(QUEUE_DEPTH).record(depth as f64);
}

/// Counts a usage record's tokens and cost ([BEHAVIOUR §17](crate::behaviour#17-usage-cost-limits-and-fairness)).
pub(crate) fn usage_recorded(record: &crate::usage::UsageRecord) {
    let provider = provider_name(record.provider);
    let usage = &record.usage;
    for (kind, tokens) in [
        ("input", usage.input_tokens),
        ("output", usage.output_tokens),
        ("cache_read", usage.cache_read_tokens),
        ("cache_write", usage.cache_creation_tokens),
    ] {
        if let Ok(tokens) = u64::try_from(tokens)
            && tokens > 0
        {
            metrics::counter!(USAGE_TOKENS, "provider" => provider, "model" => record.model.clone(), "kind" => kind)
                .increment(tokens);
        }
    }
    if let Some(cost) = record.cost_micros.and_then(|c| u64::try_from(c).ok()) {
        metrics::counter!(COST_MICROS, "provider" => provider, "model" => record.model.clone())
            .increment(cost);
    }
}
