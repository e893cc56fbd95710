//! Core request → Messages API request body.

use chatd_core::provider::{ModelRequest, PromptMessage};
use chatd_core::{Part, Role};
use serde_json::{Map, Value, json};

/// The provider-metadata key of Anthropic's reasoning data.
pub(super) const META: &str = "anthropic";

fn result_content(result: &Value) -> Value {
    match result {
        Value::String(text) => Value::String(text.clone()),
        other => Value::String(other.to_string()),
    }
}

/// One prompt message's content blocks. Reasoning from other providers (no `anthropic`
/// metadata) is not replayed.
fn blocks(message: &PromptMessage) -> Vec<Value> {
    message
        .content
        .iter()
        .filter_map(|part| match part {
            Part::Text { text, .. } if !text.is_empty() => Some(json!({"type": "text", "text": text})),
            Part::Reasoning { text, provider_metadata } => {
                let meta = provider_metadata.as_ref()?.get(META)?;
                if let Some(data) = meta.get("redacted_data").and_then(Value::as_str) {
                    return Some(json!({"type": "redacted_thinking", "data": data}));
                }
                let signature = meta.get("signature").and_then(Value::as_str)?;
                Some(json!({"type": "thinking", "thinking": text, "signature": signature}))
            }
            Part::ToolCall { tool_call_id, tool_name, args, provider_executed, .. } => Some(json!({
                "type": if *provider_executed { "server_tool_use" } else { "tool_use" },
                "id": tool_call_id, "name": tool_name, "input": args,
            })),
            Part::ToolResult { tool_call_id, tool_name, result, provider_executed: true, .. } => Some(json!({
                "type": format!("{tool_name}_tool_result"), "tool_use_id": tool_call_id, "content": result,
            })),
            Part::ToolResult { tool_call_id, result, is_error, .. } => Some(json!({
                "type": "tool_result", "tool_use_id": tool_call_id,
                "content": result_content(result), "is_error": is_error,
            })),
            Part::File { media_type, data: Some(data), .. } if media_type.starts_with("image/") => Some(json!({
                "type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}
            })),
            Part::File { media_type, data: Some(data), .. } => Some(json!({
                "type": "document", "source": {"type": "base64", "media_type": media_type, "data": data}
            })),
            _ => None,
        })
        .collect()
}

/// Marks `cache_control: ephemeral` on the last system block and on the last cacheable
/// block of each of the final two messages (BEHAVIOUR §4), never on a thinking block. Works on
/// the request body (a copy of the prompt), so stored history is never touched.
pub fn mark_cache_breakpoints(system: &mut [Value], messages: &mut [Value]) {
    let mark = |blocks: &mut Vec<Value>| {
        if let Some(block) = blocks.iter_mut().rev().find(|b| {
            !matches!(b.get("type").and_then(Value::as_str), Some("thinking" | "redacted_thinking"))
        }) && let Some(object) = block.as_object_mut()
        {
            object.insert("cache_control".into(), json!({"type": "ephemeral"}));
        }
    };
    if let Some(last) = system.last_mut().and_then(Value::as_object_mut) {
        last.insert("cache_control".into(), json!({"type": "ephemeral"}));
    }
    let count = messages.len();
    for message in messages.iter_mut().skip(count.saturating_sub(2)) {
        if let Some(Value::Array(content)) = message.get_mut("content") {
            mark(content);
        }
    }
}

/// The request body.
pub(super) fn request_body(request: &ModelRequest) -> Value {
    let mut system: Vec<Value> =
        request.system.iter().map(|text| json!({"type": "text", "text": text})).collect();
    let mut messages: Vec<Value> = Vec::new();
    for message in &request.messages {
        let role = match message.role {
            Role::System => {
                system.extend(blocks(message));
                continue;
            }
            Role::User | Role::Tool => "user",
            Role::Assistant => "assistant",
        };
        let content = blocks(message);
        if content.is_empty() {
            continue;
        }
        // Consecutive turns of one role are merged (tool results then a user message).
        match messages.last_mut() {
            Some(last) if last["role"] == role => {
                if let Some(Value::Array(existing)) = last.get_mut("content") {
                    existing.extend(content);
                }
            }
            _ => messages.push(json!({"role": role, "content": content})),
        }
    }
    mark_cache_breakpoints(&mut system, &mut messages);
    let options = &request.options;
    let anthropic = options.provider_options.anthropic.as_ref();
    let thinking = anthropic.and_then(|a| a.thinking.as_ref());
    let mut body = Map::new();
    body.insert("model".into(), json!(request.model));
    body.insert("max_tokens".into(), json!(options.max_output_tokens_or_default()));
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    body.insert("messages".into(), Value::Array(messages));
    body.insert("stream".into(), json!(true));
    if let Some(thinking) = thinking {
        body.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": thinking.budget_tokens}),
        );
    } else {
        if let Some(t) = options.temperature {
            body.insert("temperature".into(), json!(t));
        }
        if let Some(k) = options.top_k {
            body.insert("top_k".into(), json!(k));
        }
    }
    if let Some(p) = options.top_p {
        body.insert("top_p".into(), json!(p));
    }
    if let Some(effort) = anthropic.and_then(|a| a.effort.as_ref()) {
        body.insert("output_config".into(), json!({"effort": effort}));
    }
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}))
            .collect();
        body.insert("tools".into(), Value::Array(tools));
        if let Some(disable) = anthropic.and_then(|a| a.disable_parallel_tool_use) {
            body.insert(
                "tool_choice".into(),
                json!({"type": "auto", "disable_parallel_tool_use": disable}),
            );
        }
    }
    Value::Object(body)
}
