//! Input validation shared by every store: the same input gets the same error text
//! whichever backend is used.

use crate::chat::NewChat;
use crate::message::Role;
use crate::model_config::{ModelConfigUpdate, NewModelConfig};
use crate::part::Part;
use crate::provider_config::ProviderKind;
use crate::store::{Compaction, Result, Step, StoreError};
use crate::title::MAX_TITLE_CHARS;

/// Checks user-message content: at least one part, no empty text part.
///
/// # Errors
/// `Content is required.` / `content[i].text cannot be empty.`
pub fn user_content(content: &[Part]) -> Result<()> {
    if content.is_empty() {
        return Err(StoreError::validation("content", "Content is required."));
    }
    for (index, part) in content.iter().enumerate() {
        if let Part::Text { text } = part
            && text.trim().is_empty()
        {
            return Err(StoreError::validation(
                format!("content[{index}].text"),
                format!("content[{index}].text cannot be empty."),
            ));
        }
    }
    Ok(())
}

/// Normalises and checks a title: trimmed, non-empty, at most 80 characters (longer ones
/// are cut).
///
/// # Errors
/// `Title is required.`
pub fn title(raw: &str) -> Result<String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(StoreError::validation("title", "Title is required."));
    }
    Ok(trimmed.chars().take(MAX_TITLE_CHARS).collect())
}

/// Checks a new chat's inputs (content, title, system prompt).
///
/// # Errors
/// As [`user_content`] and [`title`].
pub fn new_chat(new: &NewChat) -> Result<()> {
    if let Some(content) = &new.message {
        user_content(content)?;
    }
    if let Some(raw) = &new.title {
        title(raw)?;
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
pub fn new_model_config(new: &NewModelConfig) -> Result<()> {
    model_name(&new.model)?;
    context_limit(new.context_limit)?;
    compression_threshold(new.compression_threshold)?;
    new.options
        .validate()
        .map_err(|err| StoreError::validation(format!("options.{}", err.path), err.to_string()))
}

/// Checks a model config update.
///
/// # Errors
/// As [`new_model_config`] for the fields that are set.
pub fn model_config_update(update: &ModelConfigUpdate) -> Result<()> {
    if let Some(model) = &update.model {
        model_name(model)?;
    }
    if let Some(limit) = update.context_limit {
        context_limit(limit)?;
    }
    if let Some(threshold) = update.compression_threshold {
        compression_threshold(threshold)?;
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
pub fn base_url(kind: ProviderKind, value: &str) -> Result<()> {
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

/// Checks the roles of a step: an assistant row, then `tool` rows.
///
/// # Errors
/// A validation error naming the misplaced row.
pub fn step(step: &Step) -> Result<()> {
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

/// Checks a compaction's parts: a non-empty boundary, a tool call and its result.
///
/// # Errors
/// A validation error naming the malformed field.
pub fn compaction(compaction: &Compaction) -> Result<()> {
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

/// Checks that `parts` continue the part log after `last` in strictly increasing positions,
/// and returns the new last position.
///
/// # Errors
/// `Conflict` naming the first position that is not after its predecessor.
pub fn part_positions(
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
        assert_eq!(user_content(&[]).expect_err("empty").to_string(), "Content is required.");
        let err = user_content(&[Part::text("ok"), Part::text("  ")]).expect_err("blank");
        assert_eq!(err.to_string(), "content[1].text cannot be empty.");
    }
}
