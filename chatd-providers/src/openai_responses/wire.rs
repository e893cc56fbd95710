//! Private serde types of the Responses API stream (only what the parser reads). Every field is
//! lenient (see [`crate::lenient`], applied to each field by `serde_with::apply`): an event the
//! parser cannot use is skipped, never an error.

use serde::Deserialize;
use serde_json::Value;

/// One `data:` payload of the stream.
#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Event {
    /// `response.output_item.added`, `response.output_text.delta`, …; unknown types are
    /// ignored.
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    /// The item an `output_item` event adds or finishes.
    pub(super) item: Option<Item>,
    /// The item a delta belongs to.
    pub(super) item_id: Option<String>,
    /// A text or reasoning-summary delta.
    pub(super) delta: Option<String>,
    /// The response of `response.completed`, `.incomplete` and `.failed`.
    pub(super) response: Option<Response>,
    /// An `error` event's error, when nested …
    pub(super) error: Option<WireError>,
    /// … or its fields, when at the top level.
    pub(super) code: Option<String>,
    pub(super) message: Option<String>,
}

/// An output item (a function call or a reasoning item; others are ignored).
#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Item {
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) id: Option<String>,
    pub(super) call_id: Option<String>,
    pub(super) name: Option<String>,
    /// A function call's complete arguments (JSON text).
    pub(super) arguments: Option<String>,
    /// A reasoning item's encrypted content, replayed as it came.
    pub(super) encrypted_content: Option<Value>,
}

/// The response a terminal event carries.
#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Response {
    /// Kept as it came, for the next call's `previous_response_id`.
    pub(super) id: Option<Value>,
    pub(super) usage: Option<WireUsage>,
    pub(super) incomplete_details: Option<IncompleteDetails>,
    pub(super) error: Option<WireError>,
}

#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct IncompleteDetails {
    pub(super) reason: Option<String>,
}

#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct WireUsage {
    pub(super) input_tokens: Option<i64>,
    pub(super) output_tokens: Option<i64>,
    pub(super) input_tokens_details: Option<InputDetails>,
    pub(super) output_tokens_details: Option<OutputDetails>,
}

#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct InputDetails {
    pub(super) cached_tokens: Option<i64>,
}

#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct OutputDetails {
    pub(super) reasoning_tokens: Option<i64>,
}

/// An error object: `code` names it best, `type` is the fallback.
#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct WireError {
    pub(super) code: Option<String>,
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) message: Option<String>,
}

/// The body of an error response: `{"error":{…}}`.
#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ErrorBody {
    pub(super) error: Option<WireError>,
}
