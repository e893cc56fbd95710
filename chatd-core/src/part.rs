//! Message content: a JSON array of typed parts ([BEHAVIOUR §1](crate::behaviour#1-data-model) "Message content").
//!
//! The persisted shape is an array of objects tagged by `type` (`text`, `reasoning`,
//! `tool-call`, `tool-result`, `source`, `file`). Loading is lenient about older shapes:
//! a bare string is one text part, a single object is one part, snake_case or camelCase
//! spellings of the tags and fields are accepted. An unknown part type is an error, never
//! silently dropped.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Provider-specific data that must round-trip with a part, keyed by provider kind
/// (for example `{"anthropic": {"signature": "..."}}` or `{"openai": {"encrypted_content":
/// "..."}}`). Reasoning from one provider is never replayed to another: the key says whose
/// it is.
pub type ProviderMetadata = Map<String, Value>;

/// One typed piece of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Part {
    /// Plain text.
    Text {
        /// The text.
        text: String,
        /// Provider data that must travel with the text when it is replayed (Gemini's thought
        /// signature on a text part); absent for a person's text.
        #[serde(default, skip_serializing_if = "Option::is_none", alias = "providerMetadata")]
        provider_metadata: Option<ProviderMetadata>,
    },
    /// Model reasoning ("thinking"), with the provider data needed to replay it.
    Reasoning {
        /// The visible reasoning text (may be empty for redacted or encrypted reasoning).
        #[serde(default)]
        text: String,
        /// Signatures, encrypted content, ids.
        #[serde(default, skip_serializing_if = "Option::is_none", alias = "providerMetadata")]
        provider_metadata: Option<ProviderMetadata>,
    },
    /// A tool invocation requested by the model.
    #[serde(alias = "tool_call")]
    ToolCall {
        /// The provider's id for the call; results refer to it.
        #[serde(alias = "toolCallId")]
        tool_call_id: String,
        /// The tool's name.
        #[serde(alias = "toolName")]
        tool_name: String,
        /// The arguments (normally a JSON object).
        #[serde(default = "empty_object", alias = "input")]
        args: Value,
        /// Executed by the provider itself (e.g. web search), not by a local tool.
        #[serde(default, alias = "providerExecuted")]
        provider_executed: bool,
        /// Provider data to replay with the call (e.g. Gemini thought signatures).
        #[serde(default, skip_serializing_if = "Option::is_none", alias = "providerMetadata")]
        provider_metadata: Option<ProviderMetadata>,
    },
    /// The result of a tool invocation.
    #[serde(alias = "tool_result")]
    ToolResult {
        /// The id of the call this answers.
        #[serde(alias = "toolCallId")]
        tool_call_id: String,
        /// The tool's name.
        #[serde(alias = "toolName")]
        tool_name: String,
        /// The result value.
        #[serde(default, alias = "output")]
        result: Value,
        /// Whether the tool failed.
        #[serde(default, alias = "isError")]
        is_error: bool,
        /// The result of a provider-executed tool (kept inside the assistant row).
        #[serde(default, skip_serializing_if = "is_false", alias = "providerExecuted")]
        provider_executed: bool,
        /// Provider data to replay with the result.
        #[serde(default, skip_serializing_if = "Option::is_none", alias = "providerMetadata")]
        provider_metadata: Option<ProviderMetadata>,
    },
    /// A cited source.
    Source {
        /// The source's id.
        #[serde(default)]
        id: String,
        /// Where it lives.
        url: String,
        /// Its title, if known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
    },
    /// A file (image, PDF, text): by reference to a stored attachment (`attachment_id`,
    /// [BEHAVIOUR §19](crate::behaviour#19-attachments)), inline as base64 `data` (small files, or a prompt that a step loaded),
    /// or by provider `file_id`.
    File {
        /// The IANA media type (for an attachment, the type sniffed from its bytes).
        #[serde(alias = "mediaType", alias = "mime_type")]
        media_type: String,
        /// Base64 data.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<String>,
        /// The stored file this part refers to (its bytes live in the file store).
        #[serde(default, skip_serializing_if = "Option::is_none", alias = "attachmentId")]
        attachment_id: Option<crate::ids::FileId>,
        /// A provider file id.
        #[serde(default, skip_serializing_if = "Option::is_none", alias = "fileId")]
        file_id: Option<String>,
        /// A file name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_false(value: &bool) -> bool {
    !*value
}

impl Part {
    /// A message's content as a store keeps it: the JSON array of its parts.
    #[must_use]
    pub fn content_to_json(parts: &[Part]) -> Value {
        content_to_json(parts)
    }

    /// Decodes stored content leniently: `null` is empty, a string is one text part, an
    /// object is one part, an array holds parts or strings (older and hand-written rows).
    ///
    /// # Errors
    /// [`ContentError`] naming the offending element when a part has an unknown type or
    /// lacks a required field.
    pub fn content_from_json(value: Value) -> Result<Vec<Part>, ContentError> {
        content_from_json(value)
    }

    /// A text part.
    #[must_use]
    pub fn text(text: impl Into<String>) -> Self {
        Part::Text { text: text.into(), provider_metadata: None }
    }

    /// A locally executed tool call.
    #[must_use]
    pub fn tool_call(id: impl Into<String>, name: impl Into<String>, args: Value) -> Self {
        Part::ToolCall {
            tool_call_id: id.into(),
            tool_name: name.into(),
            args,
            provider_executed: false,
            provider_metadata: None,
        }
    }

    /// The result of a locally executed tool.
    #[must_use]
    pub fn tool_result(
        id: impl Into<String>,
        name: impl Into<String>,
        result: Value,
        is_error: bool,
    ) -> Self {
        Part::ToolResult {
            tool_call_id: id.into(),
            tool_name: name.into(),
            result,
            is_error,
            provider_executed: false,
            provider_metadata: None,
        }
    }

    /// A reference to a stored file ([BEHAVIOUR §19](crate::behaviour#19-attachments)).
    #[must_use]
    pub fn attachment(
        id: crate::ids::FileId,
        media_type: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Part::File {
            media_type: media_type.into(),
            data: None,
            attachment_id: Some(id),
            file_id: None,
            name: Some(name.into()),
        }
    }

    /// The stored file a file part refers to.
    #[must_use]
    pub const fn attachment_id(&self) -> Option<crate::ids::FileId> {
        match self {
            Part::File { attachment_id, .. } => *attachment_id,
            _ => None,
        }
    }

    /// The text of a text or reasoning part.
    #[must_use]
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Part::Text { text, .. } | Part::Reasoning { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The part's tag as stored (`text`, `tool-call`, ...).
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Part::Text { .. } => "text",
            Part::Reasoning { .. } => "reasoning",
            Part::ToolCall { .. } => "tool-call",
            Part::ToolResult { .. } => "tool-result",
            Part::Source { .. } => "source",
            Part::File { .. } => "file",
        }
    }
}

/// Content that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid message content at {path}: {reason}")]
pub struct ContentError {
    /// Where in the content the problem is (`content[2]`).
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

/// [`Part::content_to_json`].
fn content_to_json(parts: &[Part]) -> Value {
    Value::Array(parts.iter().map(part_to_json).collect())
}

fn part_to_json(part: &Part) -> Value {
    // Serialising a `Part` cannot fail: every field is a string, bool or JSON value.
    serde_json::to_value(part).unwrap_or(Value::Null)
}

/// [`Part::content_from_json`].
fn content_from_json(value: Value) -> Result<Vec<Part>, ContentError> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::String(text) => Ok(vec![Part::text(text)]),
        Value::Array(items) => {
            items.into_iter().enumerate().map(|(index, item)| part_from_json(item, index)).collect()
        }
        object @ Value::Object(_) => Ok(vec![part_from_json(object, 0)?]),
        other => Err(ContentError {
            path: "content".into(),
            reason: format!("expected an array of parts, got {}", json_kind(&other)),
        }),
    }
}

fn part_from_json(value: Value, index: usize) -> Result<Part, ContentError> {
    match value {
        Value::String(text) => Ok(Part::text(text)),
        Value::Object(mut object) => {
            // Older rows stored tool-call arguments as a JSON string.
            for key in ["args", "input"] {
                if let Some(Value::String(raw)) = object.get(key) {
                    let parsed =
                        serde_json::from_str::<Value>(raw).unwrap_or_else(|_| empty_object());
                    object.insert(key.to_owned(), parsed);
                }
            }
            serde_json::from_value(Value::Object(object)).map_err(|err| ContentError {
                path: format!("content[{index}]"),
                reason: err.to_string(),
            })
        }
        other => Err(ContentError {
            path: format!("content[{index}]"),
            reason: format!("expected a part object, got {}", json_kind(&other)),
        }),
    }
}

/// "null", "a boolean", "a number", "a string", "an array" or "an object".
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parts_serialise_to_the_documented_shapes() {
        let parts = vec![
            Part::text("hi"),
            Part::tool_call("call_1", "read_file", json!({"path": "a.rs"})),
            Part::tool_result("call_1", "read_file", json!({"content": "x"}), false),
            Part::Source { id: "s1".into(), url: "https://e.x".into(), title: None },
        ];
        assert_eq!(
            content_to_json(&parts),
            json!([
                {"type": "text", "text": "hi"},
                {"type": "tool-call", "tool_call_id": "call_1", "tool_name": "read_file",
                 "args": {"path": "a.rs"}, "provider_executed": false},
                {"type": "tool-result", "tool_call_id": "call_1", "tool_name": "read_file",
                 "result": {"content": "x"}, "is_error": false},
                {"type": "source", "id": "s1", "url": "https://e.x"}
            ])
        );
    }

    #[test]
    fn content_round_trips_with_provider_metadata() {
        let mut meta = ProviderMetadata::new();
        meta.insert("anthropic".into(), json!({"signature": "sig"}));
        let parts = vec![
            Part::Reasoning { text: "think".into(), provider_metadata: Some(meta) },
            Part::File {
                media_type: "image/png".into(),
                data: Some("AAAA".into()),
                attachment_id: None,
                file_id: None,
                name: Some("a.png".into()),
            },
        ];
        let back = content_from_json(content_to_json(&parts)).expect("decode");
        assert_eq!(back, parts);
    }

    #[test]
    fn older_shapes_load_leniently() {
        assert_eq!(content_from_json(json!("hello")).expect("string"), vec![Part::text("hello")]);
        assert_eq!(content_from_json(Value::Null).expect("null"), vec![]);
        assert_eq!(
            content_from_json(json!({"type": "text", "text": "one"})).expect("object"),
            vec![Part::text("one")]
        );
        let legacy = json!([
            "plain",
            {"type": "tool_call", "toolCallId": "c", "toolName": "t", "args": "{\"a\":1}"},
            {"type": "tool-call", "tool_call_id": "d", "tool_name": "t", "args": "not json"},
            {"type": "tool_result", "toolCallId": "c", "toolName": "t", "output": 3, "isError": true}
        ]);
        let parts = content_from_json(legacy).expect("legacy");
        assert_eq!(parts[0], Part::text("plain"));
        assert_eq!(parts[1], Part::tool_call("c", "t", json!({"a": 1})));
        assert_eq!(parts[2], Part::tool_call("d", "t", json!({})));
        assert_eq!(parts[3], Part::tool_result("c", "t", json!(3), true));
    }

    #[test]
    fn unknown_part_types_are_errors_naming_the_element() {
        let err = content_from_json(json!([{"type": "text", "text": "a"}, {"type": "hologram"}]))
            .expect_err("unknown type");
        assert_eq!(err.path, "content[1]");
        assert!(err.reason.contains("hologram"), "{}", err.reason);
        assert!(content_from_json(json!(12)).is_err());
    }
}
