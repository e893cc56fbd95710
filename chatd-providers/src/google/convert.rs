//! Core request → Gemini request body.

use chatd_core::provider::ModelRequest;
use chatd_core::{Part, Role};
use serde_json::{Map, Value, json};

/// The provider-metadata key of Gemini's data.
pub(super) const META: &str = "google";

/// Gemini accepts an OpenAPI subset of JSON schema: drop the keywords it rejects.
pub(super) fn normalise_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(key, _)| {
                    !matches!(
                        key.as_str(),
                        "$schema" | "additionalProperties" | "$id" | "$defs" | "definitions"
                    )
                })
                .map(|(key, value)| (key.clone(), normalise_schema(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(normalise_schema).collect()),
        other => other.clone(),
    }
}

fn signature(meta: Option<&chatd_core::ProviderMetadata>) -> Option<Value> {
    meta?.get(META)?.get("thought_signature").cloned()
}

fn parts(role: Role, content: &[Part]) -> Vec<Value> {
    content
        .iter()
        .filter_map(|part| match part {
            Part::Text { text, provider_metadata } => {
                match (signature(provider_metadata.as_ref()), role == Role::Assistant) {
                    // Gemini's own text, replayed with its thought signature.
                    (Some(sig), true) => Some(json!({"text": text, "thoughtSignature": sig})),
                    _ if text.is_empty() => None,
                    _ => Some(json!({"text": text})),
                }
            }
            Part::Reasoning { text, provider_metadata } if role == Role::Assistant => {
                // Only Gemini's own thoughts are replayed, with their signature.
                let sig = signature(provider_metadata.as_ref())?;
                Some(json!({"text": text, "thought": true, "thoughtSignature": sig}))
            }
            Part::ToolCall {
                tool_name, args, provider_metadata, provider_executed: false, ..
            } => {
                let mut call = json!({"functionCall": {"name": tool_name, "args": args}});
                if let (Some(sig), Some(object)) =
                    (signature(provider_metadata.as_ref()), call.as_object_mut())
                {
                    object.insert("thoughtSignature".into(), sig);
                }
                Some(call)
            }
            Part::ToolResult { tool_name, result, provider_executed: false, .. } => {
                let response =
                    if result.is_object() { result.clone() } else { json!({"result": result}) };
                Some(json!({"functionResponse": {"name": tool_name, "response": response}}))
            }
            Part::File { media_type, data: Some(data), .. } => {
                Some(json!({"inlineData": {"mimeType": media_type, "data": data}}))
            }
            _ => None,
        })
        .collect()
}

/// The request body.
pub(super) fn request_body(request: &ModelRequest) -> Value {
    let mut system: Vec<Value> = request.system.iter().map(|text| json!({"text": text})).collect();
    let mut contents: Vec<Value> = Vec::new();
    for message in &request.messages {
        let role = match message.role {
            Role::System => {
                system.extend(parts(Role::System, &message.content));
                continue;
            }
            Role::User | Role::Tool => "user",
            Role::Assistant => "model",
        };
        let converted = parts(message.role, &message.content);
        if converted.is_empty() {
            continue;
        }
        match contents.last_mut() {
            Some(last) if last["role"] == role => {
                if let Some(Value::Array(existing)) = last.get_mut("parts") {
                    existing.extend(converted);
                }
            }
            _ => contents.push(json!({"role": role, "parts": converted})),
        }
    }
    let options = &request.options;
    let mut config = Map::new();
    config.insert("maxOutputTokens".into(), json!(options.max_output_tokens_or_default()));
    for (key, value) in [
        ("temperature", options.temperature),
        ("topP", options.top_p),
        ("presencePenalty", options.presence_penalty),
        ("frequencyPenalty", options.frequency_penalty),
    ] {
        if let Some(value) = value {
            config.insert(key.into(), json!(value));
        }
    }
    if let Some(k) = options.top_k {
        config.insert("topK".into(), json!(k));
    }
    let google = options.provider_options.google.as_ref();
    if let Some(thinking) = google.and_then(|g| g.thinking_config.as_ref()) {
        let mut t = Map::new();
        if let Some(budget) = thinking.thinking_budget {
            t.insert("thinkingBudget".into(), json!(budget));
        }
        if let Some(include) = thinking.include_thoughts {
            t.insert("includeThoughts".into(), json!(include));
        }
        if let Some(level) = &thinking.thinking_level {
            t.insert("thinkingLevel".into(), json!(level));
        }
        config.insert("thinkingConfig".into(), Value::Object(t));
    }
    let mut body = Map::new();
    body.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({"parts": system}));
    }
    if !request.tools.is_empty() {
        let declarations: Vec<Value> = request
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "parameters": normalise_schema(&t.input_schema)}))
            .collect();
        body.insert("tools".into(), json!([{"functionDeclarations": declarations}]));
    }
    body.insert("generationConfig".into(), Value::Object(config));
    if let Some(google) = google {
        if !google.safety_settings.is_empty() {
            body.insert("safetySettings".into(), json!(google.safety_settings));
        }
        if let Some(cached) = &google.cached_content {
            body.insert("cachedContent".into(), json!(cached));
        }
    }
    Value::Object(body)
}
