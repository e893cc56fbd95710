//! Core request → Converse request body.

use chatd_core::provider::ModelRequest;
use chatd_core::{CallOptions, Part, Role};
use serde_json::{Map, Value, json};

/// The provider-metadata key of Bedrock's reasoning data.
pub(super) const META: &str = "bedrock";

fn image_format(media_type: &str) -> Option<&'static str> {
    Some(match media_type {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => return None,
    })
}

/// A document's name as Converse accepts it: letters, digits, single spaces, hyphens,
/// parentheses and square brackets only (`spec.pdf` becomes `spec-pdf`), at most 200
/// characters; `document` when nothing is left.
fn document_name(name: Option<&str>) -> String {
    let mut out = String::new();
    for c in name.unwrap_or_default().chars() {
        let c = match c {
            c if c.is_alphanumeric() || matches!(c, '-' | '(' | ')' | '[' | ']') => c,
            c if c.is_whitespace() => ' ',
            _ => '-',
        };
        if !(c == ' ' && out.ends_with(' ')) {
            out.push(c);
        }
        if out.chars().count() >= 200 {
            break;
        }
    }
    let out = out.trim();
    if out.is_empty() { "document".to_owned() } else { out.to_owned() }
}

fn blocks(content: &[Part]) -> Vec<Value> {
    content
        .iter()
        .filter_map(|part| match part {
            Part::Text { text, .. } if !text.is_empty() => Some(json!({"text": text})),
            Part::Reasoning { text, provider_metadata } => {
                let meta = provider_metadata.as_ref()?.get(META)?;
                if let Some(redacted) = meta.get("redacted_content") {
                    return Some(json!({"reasoningContent": {"redactedContent": redacted}}));
                }
                let signature = meta.get("signature")?;
                Some(json!({"reasoningContent": {"reasoningText": {"text": text, "signature": signature}}}))
            }
            Part::ToolCall { tool_call_id, tool_name, args, provider_executed: false, .. } => {
                Some(json!({"toolUse": {"toolUseId": tool_call_id, "name": tool_name, "input": args}}))
            }
            Part::ToolResult { tool_call_id, result, is_error, provider_executed: false, .. } => {
                let content = match result {
                    Value::Object(_) => json!([{"json": result}]),
                    Value::String(text) => json!([{"text": text}]),
                    other => json!([{"text": other.to_string()}]),
                };
                let status = if *is_error { "error" } else { "success" };
                Some(json!({"toolResult": {"toolUseId": tool_call_id, "content": content, "status": status}}))
            }
            Part::File { media_type, data: Some(data), name, .. } => match image_format(media_type) {
                Some(format) => Some(json!({"image": {"format": format, "source": {"bytes": data}}})),
                None if media_type == "application/pdf" => Some(json!({"document": {
                    "format": "pdf", "name": document_name(name.as_deref()), "source": {"bytes": data}}})),
                None => None,
            },
            _ => None,
        })
        .collect()
}

/// The request body.
/// Why a request's options cannot be sent, for the one option Converse cannot express (so it
/// is refused, never dropped silently): its `toolChoice` has no way to disable parallel tool
/// use. `disable_parallel_tool_use: false` asks for what it does anyway.
pub(super) fn unsupported(options: &CallOptions) -> Option<&'static str> {
    let anthropic = options.provider_options.anthropic.as_ref();
    (anthropic.and_then(|a| a.disable_parallel_tool_use) == Some(true)).then_some(
        "provider_options.anthropic.disable_parallel_tool_use is not supported by Bedrock's \
         Converse API; remove it from the model config",
    )
}

pub(super) fn request_body(request: &ModelRequest) -> Value {
    let mut system: Vec<Value> = request.system.iter().map(|text| json!({"text": text})).collect();
    let mut messages: Vec<Value> = Vec::new();
    for message in &request.messages {
        let role = match message.role {
            Role::System => {
                system.extend(blocks(&message.content));
                continue;
            }
            Role::User | Role::Tool => "user",
            Role::Assistant => "assistant",
        };
        let content = blocks(&message.content);
        if content.is_empty() {
            continue;
        }
        match messages.last_mut() {
            Some(last) if last["role"] == role => {
                if let Some(Value::Array(existing)) = last.get_mut("content") {
                    existing.extend(content);
                }
            }
            _ => messages.push(json!({"role": role, "content": content})),
        }
    }
    let options = &request.options;
    let anthropic = options.provider_options.anthropic.as_ref();
    let thinking = anthropic.and_then(|a| a.thinking.as_ref());
    let mut inference = Map::new();
    inference.insert("maxTokens".into(), json!(options.max_output_tokens_or_default()));
    if thinking.is_none()
        && let Some(t) = options.temperature
    {
        inference.insert("temperature".into(), json!(t));
    }
    if let Some(p) = options.top_p {
        inference.insert("topP".into(), json!(p));
    }
    let mut body = Map::new();
    body.insert("messages".into(), Value::Array(messages));
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    body.insert("inferenceConfig".into(), Value::Object(inference));
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| json!({"toolSpec": {"name": t.name, "description": t.description, "inputSchema": {"json": t.input_schema}}}))
            .collect();
        body.insert("toolConfig".into(), json!({"tools": tools}));
    }
    let mut extra = Map::new();
    if let Some(thinking) = thinking {
        extra.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": thinking.budget_tokens}),
        );
    }
    if thinking.is_none()
        && let Some(k) = options.top_k
    {
        extra.insert("top_k".into(), json!(k));
    }
    if let Some(effort) = anthropic.and_then(|a| a.effort.as_ref()) {
        extra.insert("output_config".into(), json!({"effort": effort}));
    }
    if !extra.is_empty() {
        body.insert("additionalModelRequestFields".into(), Value::Object(extra));
    }
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::document_name;

    #[test]
    fn document_names_keep_only_what_converse_accepts() {
        assert_eq!(document_name(Some("spec.pdf")), "spec-pdf");
        assert_eq!(
            document_name(Some("  Q3   report (final) [v2].pdf ")),
            "Q3 report (final) [v2]-pdf"
        );
        assert_eq!(document_name(Some("../../x")), "------x");
        assert_eq!(document_name(None), "document");
        assert_eq!(document_name(Some(&"é".repeat(300))).chars().count(), 200);
    }
}
