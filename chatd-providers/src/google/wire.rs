//! Private serde types of a Gemini stream response (only what the parser reads). Every field is
//! lenient (see [`crate::lenient`], applied to each field by `serde_with::apply`): what the parser
//! cannot use is skipped, never an error.

use serde::Deserialize;
use serde_json::Value;

/// One `data:` payload: a `GenerateContentResponse`, or an error.
#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct Chunk {
    /// An error reported mid-stream (any non-null value fails the call).
    pub(super) error: Option<Value>,
    pub(super) usage_metadata: Option<UsageMetadata>,
    /// Only the first candidate is read; each is decoded on its own, leniently.
    pub(super) candidates: Option<Vec<Value>>,
}

impl Chunk {
    /// The first candidate, if any.
    pub(super) fn first_candidate(&mut self) -> Option<Candidate> {
        let first = self.candidates.take()?.into_iter().next()?;
        Some(serde_json::from_value(first).unwrap_or_default())
    }
}

#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct UsageMetadata {
    pub(super) prompt_token_count: Option<i64>,
    pub(super) cached_content_token_count: Option<i64>,
    pub(super) candidates_token_count: Option<i64>,
    pub(super) thoughts_token_count: Option<i64>,
}

#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct Candidate {
    pub(super) content: Option<Content>,
    pub(super) finish_reason: Option<String>,
}

#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Content {
    /// Each part is decoded on its own, leniently.
    pub(super) parts: Option<Vec<Value>>,
}

/// A content part: text (a thought or not), or a function call; either may carry a thought
/// signature.
#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct WirePart {
    pub(super) text: Option<String>,
    pub(super) thought: Option<bool>,
    /// Replayed as it came.
    pub(super) thought_signature: Option<Value>,
    pub(super) function_call: Option<FunctionCall>,
}

impl WirePart {
    /// Decodes one part; a part of an unexpected shape has no fields.
    pub(super) fn of(value: Value) -> WirePart {
        serde_json::from_value(value).unwrap_or_default()
    }
}

#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct FunctionCall {
    pub(super) id: Option<String>,
    pub(super) name: Option<String>,
    /// An object as sent; a string is parsed; absent is `{}`.
    pub(super) args: Option<Value>,
}

/// A Google API error: `{"code","message","status"}`.
#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct WireError {
    pub(super) status: Option<String>,
    pub(super) message: Option<String>,
}

impl WireError {
    /// Decodes an error value; one of an unexpected shape has no fields.
    pub(super) fn of(value: Value) -> WireError {
        serde_json::from_value(value).unwrap_or_default()
    }
}

/// The body of an error response: `{"error":{…}}`, or a one-element array of it.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum ErrorBody {
    One { error: Value },
    Many(Vec<ErrorEnvelope>),
}

#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ErrorEnvelope {
    pub(super) error: Option<Value>,
}

impl ErrorBody {
    /// The error it holds, if any.
    pub(super) fn error(body: &Value) -> Option<Value> {
        match serde_json::from_value(body.clone()).ok()? {
            ErrorBody::One { error } => Some(error),
            ErrorBody::Many(list) => list.into_iter().next()?.error,
        }
    }
}
