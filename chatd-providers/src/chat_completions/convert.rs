//! Core request → Chat Completions request body.

use chatd_core::provider::{ModelRequest, PromptMessage};
use chatd_core::{Part, Role};
use serde_json::{Map, Value, json};

use super::Dialect;

fn text_of(parts: &[Part]) -> String {
    parts
        .iter()
        .filter_map(|p| if let Part::Text { text, .. } = p { Some(text.as_str()) } else { None })
        .collect()
}

/// A user message's content: a plain string when it is text only (what every compatible
/// server accepts), else an array of text, image and file parts.
fn user_content(parts: &[Part]) -> Value {
    if parts.iter().all(|p| matches!(p, Part::Text { .. })) {
        return Value::String(text_of(parts));
    }
    Value::Array(
        parts
            .iter()
            .filter_map(|part| match part {
                Part::Text { text, .. } => Some(json!({"type": "text", "text": text})),
                Part::File { media_type, data: Some(data), name, .. } if media_type.starts_with("image/") => {
                    let _ = name;
                    Some(json!({"type": "image_url", "image_url": {"url": format!("data:{media_type};base64,{data}")}}))
                }
                Part::File { media_type, data: Some(data), name, .. } => Some(json!({
                    "type": "file",
                    "file": {"filename": name.clone().unwrap_or_else(|| "file".into()),
                             "file_data": format!("data:{media_type};base64,{data}")}
                })),
                Part::File { file_id: Some(id), .. } => Some(json!({"type": "file", "file": {"file_id": id}})),
                _ => None,
            })
            .collect(),
    )
}

/// A tool result as the `content` string of a `tool` message.
fn result_text(result: &Value) -> String {
    match result {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The reasoning text of an assistant message.
fn reasoning_of(parts: &[Part]) -> String {
    parts
        .iter()
        .filter_map(
            |p| if let Part::Reasoning { text, .. } = p { Some(text.as_str()) } else { None },
        )
        .collect()
}

/// `send_reasoning`: put the message's reasoning in `reasoning_content` when it carries tool
/// calls (thinking-mode servers need it there to continue a tool loop).
fn push_message(out: &mut Vec<Value>, message: &PromptMessage, send_reasoning: bool) {
    match message.role {
        Role::System => out.push(json!({"role": "system", "content": text_of(&message.content)})),
        Role::User => out.push(json!({"role": "user", "content": user_content(&message.content)})),
        Role::Assistant => {
            let text = text_of(&message.content);
            let calls: Vec<Value> = message
                .content
                .iter()
                .filter_map(|part| match part {
                    Part::ToolCall {
                        tool_call_id,
                        tool_name,
                        args,
                        provider_executed: false,
                        ..
                    } => Some(json!({
                        "id": tool_call_id,
                        "type": "function",
                        "function": {"name": tool_name, "arguments": args.to_string()},
                    })),
                    _ => None,
                })
                .collect();
            let mut entry = Map::new();
            entry.insert("role".into(), json!("assistant"));
            entry.insert(
                "content".into(),
                if text.is_empty() { Value::Null } else { Value::String(text) },
            );
            if !calls.is_empty() {
                let reasoning = reasoning_of(&message.content);
                if send_reasoning && !reasoning.is_empty() {
                    entry.insert("reasoning_content".into(), Value::String(reasoning));
                }
                entry.insert("tool_calls".into(), Value::Array(calls));
            }
            out.push(Value::Object(entry));
        }
        Role::Tool => {
            for part in &message.content {
                if let Part::ToolResult { tool_call_id, result, .. } = part {
                    out.push(json!({"role": "tool", "tool_call_id": tool_call_id, "content": result_text(result)}));
                }
            }
            // A `tool` message holds text only: files the results attach follow them as a
            // user message (BEHAVIOUR §19).
            let files: Vec<Part> = message
                .content
                .iter()
                .filter(|p| matches!(p, Part::File { .. }))
                .cloned()
                .collect();
            if !files.is_empty() {
                out.push(json!({"role": "user", "content": user_content(&files)}));
            }
        }
    }
}

fn insert_some(body: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value.filter(|v| !v.is_null()) {
        body.insert(key.to_owned(), value);
    }
}

/// The request body for `dialect`.
pub(super) fn request_body(dialect: Dialect, request: &ModelRequest) -> Value {
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    for system in &request.system {
        messages.push(json!({"role": "system", "content": system}));
    }
    let send_reasoning = dialect == Dialect::OpenAiCompat
        && request
            .options
            .provider_options
            .openaicompat
            .as_ref()
            .and_then(|o| o.send_reasoning_content)
            .unwrap_or(true);
    for message in &request.messages {
        push_message(&mut messages, message, send_reasoning);
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(request.model));
    body.insert("messages".into(), Value::Array(messages));
    body.insert("stream".into(), json!(true));
    body.insert("stream_options".into(), json!({"include_usage": true}));
    let options = &request.options;
    let openai_shape = matches!(dialect, Dialect::OpenAi | Dialect::Azure);
    let cap_field = if openai_shape { "max_completion_tokens" } else { "max_tokens" };
    body.insert(cap_field.into(), json!(options.max_output_tokens_or_default()));
    insert_some(&mut body, "temperature", options.temperature.map(Value::from));
    insert_some(&mut body, "top_p", options.top_p.map(Value::from));
    insert_some(&mut body, "presence_penalty", options.presence_penalty.map(Value::from));
    insert_some(&mut body, "frequency_penalty", options.frequency_penalty.map(Value::from));
    if !openai_shape {
        insert_some(&mut body, "top_k", options.top_k.map(Value::from));
    }
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                let mut function = json!({
                    "name": tool.name, "description": tool.description, "parameters": tool.input_schema});
                if tool.strict
                    && let Some(object) = function.as_object_mut()
                {
                    object.insert("strict".into(), Value::Bool(true));
                }
                json!({"type": "function", "function": function})
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    let provider = &options.provider_options;
    match dialect {
        Dialect::OpenAi | Dialect::Azure => {
            if let Some(openai) = &provider.openai {
                insert_some(
                    &mut body,
                    "reasoning_effort",
                    openai.reasoning_effort.map(|e| json!(e)),
                );
                insert_some(
                    &mut body,
                    "parallel_tool_calls",
                    openai.parallel_tool_calls.map(Value::from),
                );
                insert_some(
                    &mut body,
                    "prompt_cache_key",
                    openai.prompt_cache_key.clone().map(Value::from),
                );
                insert_some(
                    &mut body,
                    "service_tier",
                    openai.service_tier.clone().map(Value::from),
                );
                insert_some(&mut body, "verbosity", openai.text_verbosity.clone().map(Value::from));
                insert_some(&mut body, "user", openai.user.clone().map(Value::from));
            }
        }
        Dialect::OpenAiCompat => {
            if let Some(compat) = &provider.openaicompat {
                insert_some(
                    &mut body,
                    "reasoning_effort",
                    compat.reasoning_effort.map(|e| json!(e)),
                );
                insert_some(
                    &mut body,
                    "parallel_tool_calls",
                    compat.parallel_tool_calls.map(Value::from),
                );
                insert_some(&mut body, "user", compat.user.clone().map(Value::from));
            }
        }
        Dialect::OpenRouter => {
            body.insert("usage".into(), json!({"include": true}));
            if let Some(router) = &provider.openrouter {
                insert_some(&mut body, "provider", router.provider.as_ref().map(|p| json!(p)));
                insert_some(&mut body, "reasoning", router.reasoning.as_ref().map(|r| json!(r)));
                if !router.models.is_empty() {
                    body.insert("models".into(), json!(router.models));
                }
                insert_some(
                    &mut body,
                    "parallel_tool_calls",
                    router.parallel_tool_calls.map(Value::from),
                );
            }
        }
        Dialect::Vercel => {
            if let Some(vercel) = &provider.vercel {
                let mut gateway = Map::new();
                if !vercel.order.is_empty() {
                    gateway.insert("order".into(), json!(vercel.order));
                }
                if !vercel.only.is_empty() {
                    gateway.insert("only".into(), json!(vercel.only));
                }
                if !vercel.models.is_empty() {
                    gateway.insert("models".into(), json!(vercel.models));
                }
                if !gateway.is_empty() {
                    body.insert("providerOptions".into(), json!({"gateway": gateway}));
                }
                insert_some(&mut body, "user", vercel.user.clone().map(Value::from));
            }
        }
    }
    Value::Object(body)
}
