//! Private serde types of the Chat Completions wire format (only what we read).

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
pub(super) struct Chunk {
    #[serde(default)]
    pub(super) choices: Vec<Choice>,
    #[serde(default)]
    pub(super) usage: Option<WireUsage>,
    #[serde(default)]
    pub(super) error: Option<WireError>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Choice {
    /// Absent on some servers: then it is the only choice (0).
    #[serde(default)]
    pub(super) index: Option<usize>,
    #[serde(default)]
    pub(super) delta: Delta,
    #[serde(default)]
    pub(super) finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Delta {
    #[serde(default)]
    pub(super) content: Option<String>,
    /// vLLM, DeepSeek, llama.cpp (a string; some servers send an object or `null`).
    #[serde(default)]
    pub(super) reasoning_content: Option<Value>,
    /// OpenRouter, Ollama (same leniency).
    #[serde(default)]
    pub(super) reasoning: Option<Value>,
    #[serde(default)]
    pub(super) tool_calls: Vec<ToolCallDelta>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ToolCallDelta {
    #[serde(default)]
    pub(super) index: Option<usize>,
    #[serde(default)]
    pub(super) id: Option<String>,
    #[serde(default)]
    pub(super) function: Option<FunctionDelta>,
}

#[derive(Debug, Deserialize)]
pub(super) struct FunctionDelta {
    #[serde(default)]
    pub(super) name: Option<String>,
    /// A fragment of JSON text; some servers (Ollama) send the whole object instead.
    #[serde(default)]
    pub(super) arguments: Option<Value>,
}

/// The text of a lenient field: a string, or an object's `text` / `content` / `summary`
/// string; anything else has none.
pub(super) fn text_of(value: Option<Value>) -> Option<String> {
    match value? {
        Value::String(text) => Some(text),
        Value::Object(map) => ["text", "content", "summary"]
            .iter()
            .find_map(|key| map.get(*key).and_then(Value::as_str).map(str::to_owned)),
        _ => None,
    }
}

/// Argument text of a tool-call delta: a string as is, an object as its JSON.
pub(super) fn arguments_of(value: Option<Value>) -> Option<String> {
    match value? {
        Value::String(text) => Some(text),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct WireUsage {
    #[serde(default)]
    pub(super) prompt_tokens: i64,
    #[serde(default)]
    pub(super) completion_tokens: i64,
    #[serde(default)]
    pub(super) prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    pub(super) completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Debug, Deserialize)]
pub(super) struct PromptDetails {
    #[serde(default)]
    pub(super) cached_tokens: Option<i64>,
    /// Written to the cache (some gateways report it).
    #[serde(default)]
    pub(super) cache_write_tokens: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub(super) struct CompletionDetails {
    #[serde(default)]
    pub(super) reasoning_tokens: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireError {
    #[serde(default)]
    pub(super) message: Option<String>,
    #[serde(default, rename = "type")]
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) code: Option<Value>,
}
