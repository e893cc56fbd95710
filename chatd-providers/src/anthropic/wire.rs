//! Private serde types of the Messages API stream (only what the parser reads). Every field is
//! lenient (see [`crate::lenient`], applied to each field by `serde_with::apply`): an event the
//! parser cannot use is skipped, never an error.

use serde::Deserialize;
use serde_json::Value;

/// One `data:` payload of the stream.
#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Event {
    /// `message_start`, `content_block_start`, …; unknown types are ignored.
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    /// The content block an event belongs to (0 when absent).
    pub(super) index: Option<u64>,
    /// `message_start`'s message (its usage is read).
    pub(super) message: Option<StartedMessage>,
    /// `content_block_start`'s block.
    pub(super) content_block: Option<Block>,
    /// `content_block_delta`'s and `message_delta`'s delta.
    pub(super) delta: Option<Delta>,
    /// `message_delta`'s cumulative usage.
    pub(super) usage: Option<WireUsage>,
    /// An `error` event's error (also the body of an error response).
    pub(super) error: Option<WireError>,
}

#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct StartedMessage {
    pub(super) usage: Option<WireUsage>,
}

/// A content block as it starts.
#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Block {
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    /// A text block's initial text.
    pub(super) text: Option<String>,
    /// A thinking block's initial signature.
    pub(super) signature: Option<String>,
    /// A redacted thinking block's data.
    pub(super) data: Option<String>,
    /// A tool use block's id and name.
    pub(super) id: Option<String>,
    pub(super) name: Option<String>,
    /// A tool use block's input when it starts complete.
    pub(super) input: Option<Value>,
    /// A server tool result's call and content.
    pub(super) tool_use_id: Option<String>,
    pub(super) content: Option<Value>,
}

/// A block delta, or a message delta (which carries only `stop_reason`).
#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Delta {
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) text: Option<String>,
    pub(super) thinking: Option<String>,
    pub(super) signature: Option<String>,
    pub(super) partial_json: Option<String>,
    pub(super) stop_reason: Option<String>,
}

#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(default)]
pub(super) struct WireUsage {
    pub(super) input_tokens: Option<i64>,
    pub(super) cache_creation_input_tokens: Option<i64>,
    pub(super) cache_read_input_tokens: Option<i64>,
    pub(super) output_tokens: Option<i64>,
}

#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct WireError {
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) message: Option<String>,
}

/// The body of an error response: `{"type":"error","error":{…}}`.
#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ErrorBody {
    pub(super) error: Option<WireError>,
}
