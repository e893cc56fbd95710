//! Private serde types of the Converse stream's event payloads (only what the parser reads; the
//! event's kind is in the frame's `:event-type` header). Every field is lenient (see
//! [`crate::lenient`]): what the parser cannot use is skipped, never an error.

use serde::Deserialize;
use serde_json::Value;

/// The JSON payload of one event (every kind's fields; each event fills its own).
#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct Payload {
    /// The block a `contentBlock*` event belongs to (0 when absent).
    pub(super) content_block_index: Option<u64>,
    /// `contentBlockStart`'s start.
    pub(super) start: Option<BlockStart>,
    /// `contentBlockDelta`'s delta.
    pub(super) delta: Option<BlockDelta>,
    /// `messageStop`'s reason.
    pub(super) stop_reason: Option<String>,
    /// `metadata`'s usage.
    pub(super) usage: Option<WireUsage>,
    /// An exception's message.
    pub(super) message: Option<String>,
}

#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct BlockStart {
    pub(super) tool_use: Option<ToolUseStart>,
}

#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ToolUseStart {
    pub(super) tool_use_id: Option<String>,
    pub(super) name: Option<String>,
}

#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct BlockDelta {
    pub(super) text: Option<String>,
    pub(super) tool_use: Option<ToolUseDelta>,
    pub(super) reasoning_content: Option<ReasoningDelta>,
}

#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ToolUseDelta {
    /// A fragment of the arguments' JSON text.
    pub(super) input: Option<String>,
}

#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ReasoningDelta {
    pub(super) text: Option<String>,
    pub(super) signature: Option<String>,
    /// Replayed as it came.
    pub(super) redacted_content: Option<Value>,
}

#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct WireUsage {
    pub(super) input_tokens: Option<i64>,
    pub(super) output_tokens: Option<i64>,
    pub(super) cache_read_input_tokens: Option<i64>,
    pub(super) cache_write_input_tokens: Option<i64>,
}

/// The body of an error response: `{"message": …}` (some endpoints spell it `Message`).
#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ErrorBody {
    pub(super) message: Option<String>,
    #[serde(rename = "Message")]
    pub(super) message_capitalised: Option<String>,
}
