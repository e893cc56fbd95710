//! Core request → Responses API request body.

use chatd_core::provider::ModelRequest;
use chatd_core::{Part, Role};
use serde_json::{Map, Value, json};

/// The provider-metadata key of OpenAI's reasoning data.
pub(super) const META: &str = "openai";

fn text_items(parts: &[Part], kind: &str) -> Vec<Value> {
    parts
        .iter()
        .filter_map(|part| match part {
            Part::Text { text, .. } if !text.is_empty() => Some(json!({"type": kind, "text": text})),
            Part::File { media_type, data: Some(data), .. } if kind == "input_text" && media_type.starts_with("image/") => {
                Some(json!({"type": "input_image", "image_url": format!("data:{media_type};base64,{data}")}))
            }
            Part::File { media_type, data: Some(data), name, .. } if kind == "input_text" => Some(json!({
                "type": "input_file",
                "filename": name.clone().unwrap_or_else(|| "file".into()),
                "file_data": format!("data:{media_type};base64,{data}"),
            })),
            Part::File { file_id: Some(id), .. } if kind == "input_text" => Some(json!({"type": "input_file", "file_id": id})),
            _ => None,
        })
        .collect()
}

fn output_text(result: &Value) -> String {
    match result {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The `input` items of one message, in order.
fn items(role: Role, content: &[Part]) -> Vec<Value> {
    let mut out = Vec::new();
    match role {
        Role::System => {
            let texts = text_items(content, "input_text");
            if !texts.is_empty() {
                out.push(json!({"role": "developer", "content": texts}));
            }
        }
        Role::User => {
            let inputs = text_items(content, "input_text");
            if !inputs.is_empty() {
                out.push(json!({"role": "user", "content": inputs}));
            }
        }
        Role::Assistant => {
            // Items keep the order of the parts: reasoning, text, calls.
            for part in content {
                match part {
                    Part::Reasoning { text, provider_metadata } => {
                        let Some(meta) = provider_metadata.as_ref().and_then(|m| m.get(META))
                        else {
                            continue;
                        };
                        let mut item = Map::new();
                        item.insert("type".into(), json!("reasoning"));
                        if let Some(id) = meta.get("item_id") {
                            item.insert("id".into(), id.clone());
                        }
                        if let Some(encrypted) = meta.get("encrypted_content") {
                            item.insert("encrypted_content".into(), encrypted.clone());
                        }
                        let summary: Vec<Value> = if text.is_empty() {
                            Vec::new()
                        } else {
                            vec![json!({"type": "summary_text", "text": text})]
                        };
                        item.insert("summary".into(), Value::Array(summary));
                        out.push(Value::Object(item));
                    }
                    Part::Text { text, .. } if !text.is_empty() => {
                        out.push(json!({"role": "assistant", "content": [{"type": "output_text", "text": text}]}));
                    }
                    Part::ToolCall {
                        tool_call_id,
                        tool_name,
                        args,
                        provider_executed: false,
                        ..
                    } => {
                        out.push(json!({"type": "function_call", "call_id": tool_call_id, "name": tool_name,
                                        "arguments": args.to_string()}));
                    }
                    _ => {}
                }
            }
        }
        Role::Tool => {
            for part in content {
                if let Part::ToolResult { tool_call_id, result, provider_executed: false, .. } =
                    part
                {
                    out.push(json!({"type": "function_call_output", "call_id": tool_call_id, "output": output_text(result)}));
                }
            }
            // Files the results attach follow them as user input (BEHAVIOUR §19).
            let files: Vec<Part> =
                content.iter().filter(|p| matches!(p, Part::File { .. })).cloned().collect();
            let inputs = text_items(&files, "input_text");
            if !inputs.is_empty() {
                out.push(json!({"role": "user", "content": inputs}));
            }
        }
    }
    out
}

/// The request body.
pub(super) fn request_body(request: &ModelRequest) -> Value {
    let mut input = Vec::new();
    for message in &request.messages {
        input.extend(items(message.role, &message.content));
    }
    let options = &request.options;
    let mut body = Map::new();
    body.insert("model".into(), json!(request.model));
    if !request.system.is_empty() {
        body.insert("instructions".into(), json!(request.system.join("\n\n")));
    }
    body.insert("input".into(), Value::Array(input));
    body.insert("stream".into(), json!(true));
    body.insert("store".into(), json!(false));
    body.insert("include".into(), json!(["reasoning.encrypted_content"]));
    body.insert("max_output_tokens".into(), json!(options.max_output_tokens_or_default()));
    if let Some(t) = options.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = options.top_p {
        body.insert("top_p".into(), json!(p));
    }
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "name": t.name, "description": t.description,
                            "parameters": t.input_schema, "strict": t.strict})
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(openai) = &options.provider_options.openai {
        let mut reasoning = Map::new();
        if let Some(effort) = openai.reasoning_effort {
            reasoning.insert("effort".into(), json!(effort));
        }
        if let Some(summary) = &openai.reasoning_summary {
            reasoning.insert("summary".into(), json!(summary));
        }
        if !reasoning.is_empty() {
            body.insert("reasoning".into(), Value::Object(reasoning));
        }
        for (key, value) in [
            ("parallel_tool_calls", openai.parallel_tool_calls.map(Value::from)),
            ("prompt_cache_key", openai.prompt_cache_key.clone().map(Value::from)),
            ("service_tier", openai.service_tier.clone().map(Value::from)),
            ("user", openai.user.clone().map(Value::from)),
        ] {
            if let Some(value) = value {
                body.insert(key.into(), value);
            }
        }
        if let Some(verbosity) = &openai.text_verbosity {
            body.insert("text".into(), json!({"verbosity": verbosity}));
        }
    }
    Value::Object(body)
}
