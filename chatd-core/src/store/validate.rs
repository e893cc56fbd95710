//! Input validation shared by every store: the same input gets the same error text
//! whichever backend is used ([BEHAVIOUR §12](crate::behaviour#12-secrets-and-input)).
//!
//! - **User input** (chats, messages, edits, system prompts, titles) is checked against
//!   [`Limits`]: people send only `text` and `file` parts; U+0000 anywhere is refused with a
//!   validation error naming the field.
//! - **Model and tool output** (steps, compactions, live parts, failure texts) is never
//!   refused for its content — a step must not be lost because a model or `cat` of a binary
//!   file produced a NUL: every U+0000 is **replaced with U+FFFD** (PostgreSQL `jsonb`
//!   cannot hold U+0000, and both stores store the same thing), and a tool result larger
//!   than [`Limits::max_tool_result_bytes`] is cut with a note.

use crate::call_options::CallOptions;
use crate::chat::NewChat;
use crate::message::Role;
use crate::model_config::{ModelConfigUpdate, NewModelConfig};
use crate::part::Part;
use crate::provider_config::ProviderKind;
use crate::store::{Compaction, Result, Step, StoreError};
use crate::title::MAX_TITLE_CHARS;

/// Size limits on what people send, and on stored tool output. The defaults are
/// documented on each field; stores take them through `with_limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The most bytes of one user message (its text and file data together): 1 MiB.
    pub max_message_bytes: usize,
    /// The most parts in one user message: 32.
    pub max_parts: usize,
    /// The most bytes of a chat's system prompt: 64 KiB.
    pub max_system_prompt_bytes: usize,
    /// The most characters of a title (longer ones are cut), automatic, given or generated: 80
    /// ([BEHAVIOUR §14](crate::behaviour#14-titles), §15).
    pub max_title_chars: usize,
    /// The most bytes of one tool call's arguments the loop runs: 256 KiB.
    pub max_tool_args_bytes: usize,
    /// The most bytes of one stored tool result (longer ones are cut with a note): 256 KiB.
    pub max_tool_result_bytes: usize,
    /// The most queued messages per chat (the next one is `QueueFull`): 20 ([BEHAVIOUR §1](crate::behaviour#1-data-model)).
    pub max_queued_messages: usize,
    /// The most bytes of one stored file (an attachment): 10 MiB ([BEHAVIOUR §19](crate::behaviour#19-attachments)).
    pub max_file_bytes: usize,
    /// The most file parts in one user message: 20 ([BEHAVIOUR §19](crate::behaviour#19-attachments)).
    pub max_files_per_message: usize,
    /// The most files bound to one chat: 200 ([BEHAVIOUR §19](crate::behaviour#19-attachments)).
    pub max_files_per_chat: usize,
    /// The most bytes of base64 `data` a file part may carry inline in a stored message:
    /// 8 KiB. Larger files are stored once and referenced (`attachment_id`); `Chatd` does
    /// that for the host when it has a file store ([BEHAVIOUR §19](crate::behaviour#19-attachments)).
    pub max_inline_file_bytes: usize,
}

impl Limits {
    /// Sets the most bytes of one user message.
    #[must_use]
    pub fn with_max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Sets the most bytes of one stored file.
    #[must_use]
    pub fn with_max_file_bytes(mut self, bytes: usize) -> Self {
        self.max_file_bytes = bytes;
        self
    }

    /// Sets the most file parts of one user message.
    #[must_use]
    pub fn with_max_files_per_message(mut self, files: usize) -> Self {
        self.max_files_per_message = files;
        self
    }

    /// Sets the most files bound to one chat.
    #[must_use]
    pub fn with_max_files_per_chat(mut self, files: usize) -> Self {
        self.max_files_per_chat = files;
        self
    }

    /// Sets the most bytes of base64 data a stored file part may carry inline.
    #[must_use]
    pub fn with_max_inline_file_bytes(mut self, bytes: usize) -> Self {
        self.max_inline_file_bytes = bytes;
        self
    }

    /// Sets the most parts of one user message.
    #[must_use]
    pub fn with_max_parts(mut self, parts: usize) -> Self {
        self.max_parts = parts;
        self
    }

    /// Sets the most bytes of a system prompt.
    #[must_use]
    pub fn with_max_system_prompt_bytes(mut self, bytes: usize) -> Self {
        self.max_system_prompt_bytes = bytes;
        self
    }

    /// Sets [`max_title_chars`](Self::max_title_chars) (at least 1).
    #[must_use]
    pub fn with_max_title_chars(mut self, chars: usize) -> Self {
        self.max_title_chars = chars.max(1);
        self
    }

    /// Sets the most queued messages per chat.
    #[must_use]
    pub fn with_max_queued_messages(mut self, messages: usize) -> Self {
        self.max_queued_messages = messages;
        self
    }

    /// Sets the most bytes of one stored tool result.
    #[must_use]
    pub fn with_max_tool_result_bytes(mut self, bytes: usize) -> Self {
        self.max_tool_result_bytes = bytes;
        self
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

impl Limits {
    /// The default limits, each documented on its field (also `Limits::default()`).
    pub const DEFAULT: Limits = Limits {
        max_message_bytes: 1024 * 1024,
        max_parts: 32,
        max_system_prompt_bytes: 64 * 1024,
        max_title_chars: MAX_TITLE_CHARS,
        max_tool_args_bytes: 256 * 1024,
        max_tool_result_bytes: 256 * 1024,
        max_queued_messages: crate::store::MAX_QUEUED_MESSAGES,
        max_file_bytes: crate::store::files::MAX_FILE_BYTES,
        max_files_per_message: crate::store::files::MAX_FILES_PER_MESSAGE,
        max_files_per_chat: crate::store::files::MAX_FILES_PER_CHAT,
        max_inline_file_bytes: crate::store::files::MAX_INLINE_FILE_BYTES,
    };
}

fn no_nul(field: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(StoreError::validation(
            field,
            format!("{field} cannot contain the NUL character (U+0000)."),
        ));
    }
    Ok(())
}

/// The longest client message id, in bytes ([BEHAVIOUR §1](crate::behaviour#1-data-model) "Client message ids").
pub(crate) const MAX_CLIENT_ID_BYTES: usize = 128;

/// Checks a message to send: its content (as [`user_content_within`]) and its client id
/// (1 to `MAX_CLIENT_ID_BYTES` bytes, no control characters).
///
/// # Errors
/// As [`user_content_within`], or a validation error on `client_id`.
pub(crate) fn send_within(send: &crate::store::SendMessage, limits: &Limits) -> Result<()> {
    user_content_within(&send.content, limits)?;
    if let Some(id) = &send.client_id {
        let reason = if id.is_empty() {
            Some("client_id cannot be empty.".to_owned())
        } else if id.len() > MAX_CLIENT_ID_BYTES {
            Some(format!("client_id may have at most {MAX_CLIENT_ID_BYTES} bytes."))
        } else if id.chars().any(char::is_control) {
            Some("client_id cannot contain control characters.".to_owned())
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(StoreError::validation("client_id", reason));
        }
    }
    Ok(())
}

/// Checks user-message content: at least one and at most `max_parts` parts, only `text`
/// and `file` parts, no empty text, no U+0000, at most `max_message_bytes` in all.
///
/// # Errors
/// `Content is required.`, `content[i].text cannot be empty.`, `content[i] is a <type>
/// part: messages may hold only text and file parts.`, `content[i].text cannot contain the
/// NUL character (U+0000).`, or a size error naming the limit.
pub(crate) fn user_content_within(content: &[Part], limits: &Limits) -> Result<()> {
    if content.is_empty() {
        return Err(StoreError::validation("content", "Content is required."));
    }
    if content.len() > limits.max_parts {
        return Err(StoreError::validation(
            "content",
            format!("A message may have at most {} parts.", limits.max_parts),
        ));
    }
    let mut bytes = 0;
    let mut files = 0;
    for (index, part) in content.iter().enumerate() {
        match part {
            Part::Text { text, .. } => {
                let field = format!("content[{index}].text");
                if text.trim().is_empty() {
                    return Err(StoreError::validation(
                        field.clone(),
                        format!("{field} cannot be empty."),
                    ));
                }
                no_nul(&field, text)?;
                bytes += text.len();
            }
            Part::File { media_type, data, file_id, name, attachment_id } => {
                files += 1;
                if files > limits.max_files_per_message {
                    return Err(StoreError::validation(
                        "content",
                        format!(
                            "A message may have at most {} files.",
                            limits.max_files_per_message
                        ),
                    ));
                }
                if data.is_none() && file_id.is_none() && attachment_id.is_none() {
                    return Err(StoreError::validation(
                        format!("content[{index}]"),
                        format!(
                            "content[{index}] is a file part without data, attachment_id or file_id."
                        ),
                    ));
                }
                if let Some(data) = data
                    && data.len() > limits.max_inline_file_bytes
                {
                    return Err(StoreError::validation(
                        format!("content[{index}].data"),
                        format!(
                            "content[{index}].data: a file sent inline may be at most {} bytes; \
                             upload it and send its attachment_id.",
                            limits.max_inline_file_bytes
                        ),
                    ));
                }
                for (key, value) in [
                    ("media_type", Some(media_type)),
                    ("data", data.as_ref()),
                    ("file_id", file_id.as_ref()),
                    ("name", name.as_ref()),
                ] {
                    if let Some(value) = value {
                        no_nul(&format!("content[{index}].{key}"), value)?;
                        bytes += value.len();
                    }
                }
            }
            other => {
                return Err(StoreError::validation(
                    format!("content[{index}]"),
                    format!(
                        "content[{index}] is a {} part: messages may hold only text and file parts.",
                        other.kind()
                    ),
                ));
            }
        }
    }
    if bytes > limits.max_message_bytes {
        return Err(StoreError::validation(
            "content",
            format!("A message may be at most {} bytes.", limits.max_message_bytes),
        ));
    }
    Ok(())
}

/// Checks a system prompt: at most `max_system_prompt_bytes`, no U+0000.
///
/// # Errors
/// A validation error on `system_prompt`.
pub(crate) fn system_prompt(prompt: &str, limits: &Limits) -> Result<()> {
    no_nul("system_prompt", prompt)?;
    if prompt.len() > limits.max_system_prompt_bytes {
        return Err(StoreError::validation(
            "system_prompt",
            format!("The system prompt may be at most {} bytes.", limits.max_system_prompt_bytes),
        ));
    }
    Ok(())
}

/// Replaces every U+0000 in `text` with U+FFFD.
pub(crate) fn replace_nul(text: &mut String) {
    if text.contains('\0') {
        *text = text.replace('\0', "\u{FFFD}");
    }
}

/// Replaces every U+0000 in the strings (and object keys) of `value` with U+FFFD.
pub(crate) fn replace_nul_json(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(text) => replace_nul(text),
        Value::Array(items) => items.iter_mut().for_each(replace_nul_json),
        Value::Object(map) if map.keys().any(|k| k.contains('\0')) => {
            let entries = std::mem::take(map);
            for (mut key, mut item) in entries {
                replace_nul(&mut key);
                replace_nul_json(&mut item);
                map.insert(key, item);
            }
        }
        Value::Object(map) => map.values_mut().for_each(replace_nul_json),
        _ => {}
    }
}

fn replace_nul_metadata(meta: &mut Option<crate::part::ProviderMetadata>) {
    if let Some(meta) = meta {
        let mut value = serde_json::Value::Object(std::mem::take(meta));
        replace_nul_json(&mut value);
        if let serde_json::Value::Object(clean) = value {
            *meta = clean;
        }
    }
}

/// Makes model or tool output storable: U+0000 replaced with U+FFFD everywhere, and a tool
/// result over `max_tool_result_bytes` cut (on a character boundary) with a note saying so.
pub(crate) fn sanitize_output(parts: &mut [Part], limits: &Limits) {
    for part in parts {
        match part {
            Part::Text { text, .. } => replace_nul(text),
            Part::Reasoning { text, provider_metadata } => {
                replace_nul(text);
                replace_nul_metadata(provider_metadata);
            }
            Part::ToolCall { tool_call_id, tool_name, args, provider_metadata, .. } => {
                replace_nul(tool_call_id);
                replace_nul(tool_name);
                replace_nul_json(args);
                replace_nul_metadata(provider_metadata);
            }
            Part::ToolResult { tool_call_id, tool_name, result, provider_metadata, .. } => {
                replace_nul(tool_call_id);
                replace_nul(tool_name);
                replace_nul_json(result);
                replace_nul_metadata(provider_metadata);
                cap_result(result, limits.max_tool_result_bytes);
            }
            Part::Source { id, url, title } => {
                replace_nul(id);
                replace_nul(url);
                if let Some(title) = title {
                    replace_nul(title);
                }
            }
            Part::File { media_type, data, file_id, name, attachment_id: _ } => {
                replace_nul(media_type);
                for value in [data, file_id, name].into_iter().flatten() {
                    replace_nul(value);
                }
            }
        }
    }
}

/// Cuts a stored tool result larger than `max` bytes (as JSON) to a string holding its start
/// and a note.
fn cap_result(result: &mut serde_json::Value, max: usize) {
    let text = match &*result {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    if text.len() <= max {
        return;
    }
    let mut cut = max.saturating_sub(200);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    *result = serde_json::Value::String(format!(
        "{}\n[cut: the result was {} bytes; only the first {cut} are kept]",
        &text[..cut],
        text.len()
    ));
}

/// A failure text as stored in `last_error`: U+0000 replaced, at most 2 000 characters.
#[must_use]
pub(crate) fn failure_text(reason: &str) -> String {
    let mut text: String = reason.chars().take(2000).collect();
    replace_nul(&mut text);
    text
}

/// Normalises and checks a title: trimmed, non-empty, no U+0000, at most 80 characters
/// (longer ones are cut).
///
/// # Errors
/// `Title is required.`, or a NUL error on `title`.
pub(crate) fn title(raw: &str) -> Result<String> {
    title_within(raw, &Limits::default())
}

/// `title` cut at `limits.max_title_chars`.
///
/// # Errors
/// As `title`.
pub(crate) fn title_within(raw: &str, limits: &Limits) -> Result<String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(StoreError::validation("title", "Title is required."));
    }
    no_nul("title", trimmed)?;
    Ok(trimmed.chars().take(limits.max_title_chars.max(1)).collect())
}

/// The title a store gives a new chat: the explicit one (checked by [`title_within`]), else
/// the automatic title of the first message ([BEHAVIOUR §14](crate::behaviour#14-titles)) within `limits.max_title_chars`,
/// else `DEFAULT_TITLE`.
///
/// # Errors
/// `Title is required.` for an explicit blank title.
pub(crate) fn chat_title(new: &NewChat, limits: &Limits) -> Result<String> {
    match (&new.title, &new.message) {
        (Some(title), _) => title_within(title, limits),
        (None, Some(content)) => {
            Ok(crate::title::auto_title_within(content, limits.max_title_chars)
                .unwrap_or_else(|| crate::chat::DEFAULT_TITLE.to_owned()))
        }
        (None, None) => Ok(crate::chat::DEFAULT_TITLE.to_owned()),
    }
}

/// Checks a chat's labels ([BEHAVIOUR §18](crate::behaviour#18-history-you-keep)): at most `MAX_LABELS`;
/// keys of 1 to 64 letters, digits, `-`, `_`, `.` or `/`; values of at most 128 characters
/// and no control characters.
///
/// # Errors
/// A validation error on `labels` naming the first offending label.
pub(crate) fn labels(labels: &std::collections::BTreeMap<String, String>) -> Result<()> {
    use crate::chat::{MAX_LABEL_KEY_CHARS, MAX_LABEL_VALUE_CHARS, MAX_LABELS};
    if labels.len() > MAX_LABELS {
        return Err(StoreError::validation(
            "labels",
            format!("A chat carries at most {MAX_LABELS} labels."),
        ));
    }
    for (key, value) in labels {
        let key_ok = (1..=MAX_LABEL_KEY_CHARS).contains(&key.chars().count())
            && key.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
        if !key_ok {
            let shown: String = key.chars().take(MAX_LABEL_KEY_CHARS).collect();
            return Err(StoreError::validation(
                "labels",
                format!(
                    "Label key {shown:?} must be 1 to {MAX_LABEL_KEY_CHARS} letters, digits, \
                     '-', '_', '.' or '/'."
                ),
            ));
        }
        if value.chars().count() > MAX_LABEL_VALUE_CHARS || value.chars().any(char::is_control) {
            return Err(StoreError::validation(
                "labels",
                format!(
                    "The value of label {key:?} must be at most {MAX_LABEL_VALUE_CHARS} \
                     characters, without control characters."
                ),
            ));
        }
    }
    Ok(())
}

/// Checks a list filter's labels and search query.
///
/// # Errors
/// A validation error on `labels` or `query`.
pub(crate) fn chat_filter(filter: &crate::chat::ChatFilter) -> Result<()> {
    labels(&filter.labels)?;
    if let Some(query) = &filter.query {
        if query.chars().count() > crate::chat::MAX_QUERY_CHARS {
            return Err(StoreError::validation(
                "query",
                format!("A search is at most {} characters.", crate::chat::MAX_QUERY_CHARS),
            ));
        }
        no_nul("query", query)?;
    }
    Ok(())
}

/// Checks a new chat's inputs (content, title, system prompt) against `limits`.
///
/// # Errors
/// As [`user_content_within`], `title` and `system_prompt`.
pub(crate) fn new_chat_within(new: &NewChat, limits: &Limits) -> Result<()> {
    let limits = *limits;
    if let Some(content) = &new.message {
        user_content_within(content, &limits)?;
    }
    if let Some(raw) = &new.title {
        title(raw)?;
    }
    if let Some(prompt) = &new.system_prompt {
        system_prompt(prompt, &limits)?;
    }
    Ok(())
}

fn context_limit(value: i64) -> Result<()> {
    if value <= 0 {
        return Err(StoreError::validation(
            "context_limit",
            "Context limit must be greater than zero.",
        ));
    }
    Ok(())
}

fn compression_threshold(value: i32) -> Result<()> {
    if !(0..=100).contains(&value) {
        return Err(StoreError::validation(
            "compression_threshold",
            "Compression threshold must be between 0 and 100.",
        ));
    }
    Ok(())
}

fn model_name(value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(StoreError::validation("model", "Model is required."));
    }
    Ok(())
}

/// Checks a new model config.
///
/// # Errors
/// `Model is required.`, `Context limit must be greater than zero.`, `Compression threshold
/// must be between 0 and 100.`, or an options error naming the key.
pub(crate) fn new_model_config(new: &NewModelConfig) -> Result<()> {
    model_name(&new.model)?;
    context_limit(new.context_limit)?;
    compression_threshold(new.compression_threshold)?;
    if let Some(prices) = &new.prices {
        self::prices(prices)?;
    }
    new.options
        .validate()
        .map_err(|err| StoreError::validation(format!("options.{}", err.path), err.to_string()))?;
    options_for(new.provider, &new.options)
}

/// Checks that `kind`'s API can express `options`, so none is dropped silently when called:
/// Bedrock's Converse cannot disable parallel tool use.
///
/// # Errors
/// A validation error naming the option.
pub(crate) fn options_for(kind: ProviderKind, options: &CallOptions) -> Result<()> {
    let anthropic = options.provider_options.anthropic.as_ref();
    if kind == ProviderKind::Bedrock
        && anthropic.and_then(|a| a.disable_parallel_tool_use) == Some(true)
    {
        let field = "options.provider_options.anthropic.disable_parallel_tool_use";
        return Err(StoreError::validation(
            field,
            format!("{field} is not supported by Bedrock's Converse API."),
        ));
    }
    Ok(())
}

/// Checks prices: each between 0 and `MAX_PRICE_MICROS`.
///
/// # Errors
/// A validation error on `prices.<which>`.
pub(crate) fn prices(prices: &crate::usage::Prices) -> Result<()> {
    let max = crate::usage::MAX_PRICE_MICROS;
    for (name, value) in [
        ("input", prices.input),
        ("output", prices.output),
        ("cache_read", prices.cache_read),
        ("cache_write", prices.cache_write),
    ] {
        if !(0..=max).contains(&value) {
            return Err(StoreError::validation(
                format!("prices.{name}"),
                format!(
                    "prices.{name} must be between 0 and {max} micro-units per million tokens."
                ),
            ));
        }
    }
    Ok(())
}

/// Checks a usage record's token counts: none negative.
///
/// # Errors
/// A validation error on `usage`.
pub(crate) fn usage(usage: &crate::message::Usage) -> Result<()> {
    let counts = [
        usage.input_tokens,
        usage.output_tokens,
        usage.total_tokens,
        usage.reasoning_tokens,
        usage.cache_creation_tokens,
        usage.cache_read_tokens,
    ];
    if counts.iter().any(|c| *c < 0) {
        return Err(StoreError::validation("usage", "Token counts cannot be negative."));
    }
    Ok(())
}

/// Checks a model config update.
///
/// # Errors
/// As [`new_model_config`] for the fields that are set.
pub(crate) fn model_config_update(update: &ModelConfigUpdate) -> Result<()> {
    if let Some(model) = &update.model {
        model_name(model)?;
    }
    if let Some(limit) = update.context_limit {
        context_limit(limit)?;
    }
    if let Some(threshold) = update.compression_threshold {
        compression_threshold(threshold)?;
    }
    if let Some(Some(prices)) = &update.prices {
        self::prices(prices)?;
    }
    if let Some(options) = &update.options {
        options.validate().map_err(|err| {
            StoreError::validation(format!("options.{}", err.path), err.to_string())
        })?;
    }
    Ok(())
}

/// Checks a provider's base URL: empty, or an absolute `http`/`https` URL; `azure` needs one.
///
/// # Errors
/// `Base URL must be an absolute http or https URL.` / `The azure provider requires a base URL.`
pub(crate) fn base_url(kind: ProviderKind, value: &str) -> Result<()> {
    let value = value.trim();
    if value.is_empty() {
        if kind.requires_base_url() {
            return Err(StoreError::validation(
                "base_url",
                format!("The {kind} provider requires a base URL."),
            ));
        }
        return Ok(());
    }
    match url::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(()),
        _ => Err(StoreError::validation(
            "base_url",
            "Base URL must be an absolute http or https URL.",
        )),
    }
}

/// Checks the roles of a step (an assistant row, then `tool` rows) and makes its content
/// storable ([`sanitize_output`] with `limits`).
///
/// # Errors
/// A validation error naming the misplaced row.
pub(crate) fn step_within(step: &mut Step, limits: &Limits) -> Result<()> {
    let limits = *limits;
    for row in step.assistant.iter_mut().chain(step.tool_results.iter_mut()) {
        sanitize_output(&mut row.content, &limits);
    }
    if let Some(calls) = &mut step.calls {
        tool_calls_within(calls, &limits);
    }
    if let Some(assistant) = &step.assistant
        && assistant.role != Role::Assistant
    {
        return Err(StoreError::validation(
            "assistant.role",
            "The step's first row must be an assistant message.",
        ));
    }
    for (index, row) in step.tool_results.iter().enumerate() {
        if row.role != Role::Tool {
            return Err(StoreError::validation(
                format!("tool_results[{index}].role"),
                "Tool results must be tool messages.",
            ));
        }
    }
    Ok(())
}

/// Makes tool-call records storable: U+0000 replaced in ids, names, arguments and results,
/// and results over `max_tool_result_bytes` cut, like any tool result.
pub(crate) fn tool_calls_within(calls: &mut [crate::tool_call::ToolCall], limits: &Limits) {
    for call in calls {
        replace_nul(&mut call.tool_call_id);
        replace_nul(&mut call.tool_name);
        replace_nul_json(&mut call.args);
        if let crate::tool_call::CallState::Done { result, .. } = &mut call.state {
            replace_nul_json(result);
            cap_result(result, limits.max_tool_result_bytes);
        }
    }
}

/// Checks the decisions of [`ChatStore::resolve_tool_calls`](crate::store::ChatStore) and
/// makes them storable: edited arguments must be a JSON object within
/// `max_tool_args_bytes` (as the model's must, [BEHAVIOUR §3](crate::behaviour#3-a-turn)); results and reasons are
/// sanitised like tool results.
///
/// # Errors
/// A validation error on `decisions[i].args` naming the problem.
pub(crate) fn decisions_within(
    decisions: &mut [crate::tool_call::Decision],
    limits: &Limits,
) -> Result<()> {
    use crate::tool_call::Decision;
    for (index, decision) in decisions.iter_mut().enumerate() {
        match decision {
            Decision::Approve { args: Some(args), .. } => {
                let size = args.to_string().len();
                let problem = crate::tool_args::invalid_args(args).or_else(|| {
                    (size > limits.max_tool_args_bytes).then(|| {
                        format!(
                            "{size} bytes, more than the {} allowed",
                            limits.max_tool_args_bytes
                        )
                    })
                });
                if let Some(problem) = problem {
                    return Err(StoreError::validation(
                        format!("decisions[{index}].args"),
                        format!("invalid tool arguments: {problem}"),
                    ));
                }
                replace_nul_json(args);
            }
            Decision::Approve { args: None, .. } => {}
            Decision::Deny { reason, .. } => {
                if let Some(reason) = reason {
                    *reason = failure_text(reason);
                }
            }
            Decision::Result { output, .. } => {
                replace_nul_json(output);
                cap_result(output, limits.max_tool_result_bytes);
            }
        }
    }
    Ok(())
}

/// Checks a compaction's parts (a non-empty boundary, a tool call and the result that answers
/// it), with `limits` for the stored tool result.
///
/// # Errors
/// A validation error naming the malformed field.
pub(crate) fn compaction_within(compaction: &mut Compaction, limits: &Limits) -> Result<()> {
    let limits = *limits;
    sanitize_output(&mut compaction.boundary, &limits);
    sanitize_output(std::slice::from_mut(&mut compaction.call), &limits);
    sanitize_output(std::slice::from_mut(&mut compaction.result), &limits);
    if compaction.boundary.is_empty() {
        return Err(StoreError::validation("boundary", "The compaction boundary is empty."));
    }
    match (&compaction.call, &compaction.result) {
        (
            Part::ToolCall { tool_call_id: call, .. },
            Part::ToolResult { tool_call_id: result, .. },
        ) if call == result => Ok(()),
        _ => Err(StoreError::validation(
            "call",
            "A compaction needs a tool call and the tool result that answers it.",
        )),
    }
}

/// Makes live-part payloads storable (U+0000 replaced with U+FFFD).
pub(crate) fn part_payloads(parts: &mut [crate::store::NewPart]) {
    for part in parts {
        replace_nul_json(&mut part.payload);
    }
}

/// Checks that `parts` continue the part log after `last` in strictly increasing positions,
/// and returns the new last position.
///
/// # Errors
/// `Conflict` naming the first position that is not after its predecessor.
pub(crate) fn part_positions(
    last: Option<crate::store::PartPosition>,
    parts: &[crate::store::NewPart],
) -> Result<Option<crate::store::PartPosition>> {
    let mut last = last;
    for part in parts {
        if last.is_some_and(|last| part.position <= last) {
            return Err(StoreError::Conflict(format!(
                "part position {}.{} is not after the last appended part",
                part.position.episode, part.position.seq
            )));
        }
        last = Some(part.position);
    }
    Ok(last)
}

/// The refusal when a parent already has its most open children.
#[must_use]
pub(crate) fn too_many_children(open: usize, limit: usize) -> StoreError {
    StoreError::Conflict(format!(
        "this chat already has {open} open sub-agents (at most {limit}): wait for one and close \
         it with close_agent first"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_must_be_absolute_http() {
        assert!(base_url(ProviderKind::OpenAi, "").is_ok());
        assert!(base_url(ProviderKind::OpenAi, "https://api.example.com/v1").is_ok());
        assert!(base_url(ProviderKind::OpenAi, "http://127.0.0.1:8080").is_ok());
        for bad in ["api.example.com", "ftp://x.y", "/v1", "https://"] {
            let err = base_url(ProviderKind::OpenAi, bad).expect_err(bad);
            assert_eq!(err.to_string(), "Base URL must be an absolute http or https URL.");
        }
        let err = base_url(ProviderKind::Azure, " ").expect_err("azure");
        assert_eq!(err.to_string(), "The azure provider requires a base URL.");
    }

    #[test]
    fn content_errors_name_the_part() {
        let limits = Limits::default();
        assert_eq!(
            limits.check_content(&[]).expect_err("empty").to_string(),
            "Content is required."
        );
        let err = limits.check_content(&[Part::text("ok"), Part::text("  ")]).expect_err("blank");
        assert_eq!(err.to_string(), "content[1].text cannot be empty.");
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn the_default_limits_are_the_documented_ones() {
        let limits = Limits::default();
        assert_eq!(limits.max_message_bytes, 1024 * 1024);
        assert_eq!(limits.max_parts, 32);
        assert_eq!(limits.max_system_prompt_bytes, 64 * 1024);
        assert_eq!(limits.max_title_chars, 80);
        assert_eq!(limits.max_tool_args_bytes, 256 * 1024);
        assert_eq!(limits.max_tool_result_bytes, 256 * 1024);
        assert_eq!(limits.max_queued_messages, 20);
    }
}
