//! What a provider streams back.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::message::Usage;
use crate::part::ProviderMetadata;

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FinishReason {
    /// A natural end.
    Stop,
    /// The output token cap was reached.
    Length,
    /// The model wants tool results.
    ToolCalls,
    /// Output was filtered.
    ContentFilter,
    /// The provider reported an error as the finish reason.
    Error,
    /// A reason this library does not know, as the provider spelled it.
    Other(String),
}

impl FinishReason {
    /// The reason as the OpenTelemetry GenAI conventions (and the Chat Completions API)
    /// spell it: `stop`, `length`, `tool_calls`, `content_filter`, `error`, or the
    /// provider's own word.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::Error => "error",
            FinishReason::Other(reason) => reason,
        }
    }

    /// Whether complete tool calls of a step with this finish are run ([BEHAVIOUR §3](crate::behaviour#3-a-turn) step rule
    /// 4): tool use, `stop` (OpenAI with a named tool choice, vLLM, Ollama and Gemini's
    /// compatible endpoint end tool calls with it) and unknown reasons run them; `length`,
    /// a content filter and an error do not.
    #[must_use]
    pub fn runs_tool_calls(&self) -> bool {
        matches!(self, FinishReason::ToolCalls | FinishReason::Stop | FinishReason::Other(_))
    }
}

/// One event of a streamed model call (DESIGN "two stream layers"). Ids tie the start,
/// deltas and end of one block together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum StreamEvent {
    /// A text block begins.
    TextStart {
        /// Block id.
        id: String,
    },
    /// More text.
    TextDelta {
        /// Block id.
        id: String,
        /// The new text.
        delta: String,
    },
    /// A text block ends.
    TextEnd {
        /// Block id.
        id: String,
        /// Provider data for the block (Gemini's thought signature on text).
        provider_metadata: Option<ProviderMetadata>,
    },
    /// A reasoning block begins.
    ReasoningStart {
        /// Block id.
        id: String,
    },
    /// More reasoning.
    ReasoningDelta {
        /// Block id.
        id: String,
        /// The new text.
        delta: String,
    },
    /// A reasoning block ends, with what must be replayed with it (signature, encrypted
    /// content).
    ReasoningEnd {
        /// Block id.
        id: String,
        /// Provider data for the block.
        provider_metadata: Option<ProviderMetadata>,
    },
    /// A tool call's arguments begin streaming.
    ToolInputStart {
        /// The tool call id.
        id: String,
        /// The tool's name.
        tool_name: String,
    },
    /// More argument JSON.
    ToolInputDelta {
        /// The tool call id.
        id: String,
        /// A fragment of the arguments' JSON text.
        delta: String,
    },
    /// The arguments are complete.
    ToolInputEnd {
        /// The tool call id.
        id: String,
    },
    /// A complete tool call.
    ToolCall {
        /// The tool call id.
        id: String,
        /// The tool's name.
        tool_name: String,
        /// The arguments: an object, or — when the model sent something else — the raw
        /// text as a JSON string (see [`parse_tool_args`](super::parse_tool_args)); never
        /// invented.
        args: Value,
        /// Executed by the provider (its result arrives as `ToolResult`).
        provider_executed: bool,
        /// Provider data to replay with the call.
        provider_metadata: Option<ProviderMetadata>,
    },
    /// The result of a provider-executed tool.
    ToolResult {
        /// The tool call id.
        id: String,
        /// The tool's name.
        tool_name: String,
        /// The result.
        result: Value,
        /// Whether it failed.
        is_error: bool,
    },
    /// A cited source.
    Source {
        /// Source id.
        id: String,
        /// URL.
        url: String,
        /// Title.
        title: Option<String>,
    },
    /// The call ended.
    Finish {
        /// Why.
        reason: FinishReason,
        /// Normalised usage ([BEHAVIOUR §9.2](crate::behaviour#9-providers)), if reported.
        usage: Option<Usage>,
        /// The context window the provider reported, if any.
        context_window: Option<i64>,
        /// Provider data for the whole response (ids, service tier).
        provider_metadata: Option<ProviderMetadata>,
    },
}
