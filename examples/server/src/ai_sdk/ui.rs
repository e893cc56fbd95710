//! AI SDK `UIMessage`s ↔ chatd messages: the parts of a message the SDK sends, the ids each
//! side knows a message by, and the history as `UIMessage`s for a client that reloads.

use base64::Engine;
use chatd_core::tool_call::{ActionKind, OpenCall};
use chatd_core::{ChatId, FileId, Message, MessageId, Part, Role, Visibility};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};

/// The `UIMessage` id of an assistant answer: the turn that answers the user message
/// `after` (the id the stream's `start` part names, so that a replay and a reload agree).
pub fn answer_id(chat: ChatId, after: MessageId) -> String {
    format!("chatd-{chat}-{}", after.0)
}

/// The `UIMessage` id of a user message: the client's own id when it sent one, else one
/// made from chatd's id.
pub fn user_id(message: &Message) -> String {
    message.client_id.clone().unwrap_or_else(|| format!("chatd-user-{}", message.id.0))
}

/// The stored user message a `UIMessage` id names, if any.
pub fn find_user<'a>(messages: &'a [Message], ui_id: &str) -> Option<&'a Message> {
    let users = || messages.iter().filter(|m| m.role == Role::User);
    if let Some(found) = users().find(|m| m.client_id.as_deref() == Some(ui_id)) {
        return Some(found);
    }
    let id = ui_id.strip_prefix("chatd-user-")?.parse::<i64>().ok()?;
    users().find(|m| m.id.0 == id && m.client_id.is_none())
}

/// A `UIMessage`'s role.
pub fn role(message: &Value) -> Option<&str> {
    message.get("role").and_then(Value::as_str)
}

/// A `UIMessage`'s id, when it is one chatd can keep (1 to 128 bytes, printable).
pub fn client_id(message: &Value) -> Option<String> {
    let id = message.get("id").and_then(Value::as_str)?;
    let fits = !id.is_empty()
        && id.len() <= chatd_core::store::SendMessage::MAX_CLIENT_ID_BYTES
        && !id.chars().any(char::is_control);
    fits.then(|| id.to_owned())
}

/// The content of a user `UIMessage`: its text parts and its files. A file must carry its
/// bytes as a base64 `data:` URL (what `convertFileListToFileUIParts` makes); a file by
/// `http(s)` URL is refused, never dropped. Other parts (`step-start`, data parts) carry
/// nothing to send.
///
/// # Errors
/// 400 for a file that is not a base64 `data:` URL, or a message with nothing to send.
pub fn user_content(message: &Value) -> ApiResult<Vec<Part>> {
    let parts = message.get("parts").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    let mut content = Vec::new();
    for (index, part) in parts.iter().enumerate() {
        match part.get("type").and_then(Value::as_str) {
            Some("text") => {
                let text = part.get("text").and_then(Value::as_str).unwrap_or_default();
                if !text.trim().is_empty() {
                    content.push(Part::text(text));
                }
            }
            Some("file") => content.push(file(index, part)?),
            _ => {}
        }
    }
    if content.is_empty() {
        return Err(ApiError::bad_request("the user message has no text or file to send"));
    }
    Ok(content)
}

fn file(index: usize, part: &Value) -> ApiResult<Part> {
    let url = part.get("url").and_then(Value::as_str).unwrap_or_default();
    let refuse = |why: &str| ApiError::bad_request(format!("parts[{index}] (a file): {why}"));
    let name = part.get("filename").and_then(Value::as_str).map(str::to_owned);
    // A file this service stores, by its download URL (what `history` sends back).
    if let Some(id) = stored_file_id(url) {
        let media_type = part.get("mediaType").and_then(Value::as_str).unwrap_or_default();
        let mut file = Part::attachment(id, media_type, name.unwrap_or_default());
        if let Part::File { name, .. } = &mut file {
            name.take_if(|n| n.is_empty());
        }
        return Ok(file);
    }
    let Some(rest) = url.strip_prefix("data:") else {
        return Err(refuse(
            "a file is sent inline as a base64 data: URL or by this service's /api/files/{id} URL; \
             upload the bytes, not a link",
        ));
    };
    let Some((header, data)) = rest.split_once(',') else {
        return Err(refuse("the data: URL has no ',' before its data"));
    };
    let Some(url_type) = header.strip_suffix(";base64") else {
        return Err(refuse("the data: URL must be base64 (';base64,')"));
    };
    if base64::engine::general_purpose::STANDARD.decode(data).is_err() {
        return Err(refuse("the data: URL's data is not valid base64"));
    }
    let media_type = part
        .get("mediaType")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .unwrap_or(if url_type.is_empty() { "application/octet-stream" } else { url_type });
    Ok(Part::File {
        media_type: media_type.to_owned(),
        data: Some(data.to_owned()),
        attachment_id: None,
        file_id: None,
        name,
    })
}

/// The path a stored file is downloaded from.
pub fn file_url(id: FileId) -> String {
    format!("/api/files/{id}")
}

/// The stored file a URL of this service names (`/api/files/{id}`, also as an absolute URL).
fn stored_file_id(url: &str) -> Option<FileId> {
    let path = match url.find("://") {
        Some(scheme) => &url[scheme + 3..][url[scheme + 3..].find('/')?..],
        None => url,
    };
    path.strip_prefix("/api/files/")?.parse::<uuid::Uuid>().ok().map(FileId)
}

/// A stored message's file part as a UI `file` part: a stored file by its download URL,
/// inline data as a data URL.
fn ui_file(part: &Part) -> Option<Value> {
    let Part::File { media_type, data, attachment_id, name, .. } = part else { return None };
    let url = match (attachment_id, data) {
        (Some(id), _) => file_url(*id),
        (None, Some(data)) => format!("data:{media_type};base64,{data}"),
        (None, None) => return None,
    };
    let mut file = json!({"type": "file", "mediaType": media_type, "url": url});
    if let Some(name) = name {
        file["filename"] = json!(name);
    }
    Some(file)
}

/// The chat's history as `UIMessage`s: one per user message (with the id the client sent
/// it under) and one per answer (every step and tool result of the turn that followed it,
/// with the id its stream started with); `open` are the calls that wait (BEHAVIOUR §16).
pub fn history(chat: ChatId, messages: &[Message], open: &[OpenCall]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut answer: Option<Value> = None;
    let mut after = MessageId(0);
    for message in messages.iter().filter(|m| m.visibility != Visibility::Model) {
        match message.role {
            Role::User => {
                out.extend(answer.take());
                after = message.id;
                let mut parts = Vec::new();
                for part in &message.content {
                    match part {
                        Part::Text { text, .. } => {
                            parts.push(json!({"type": "text", "text": text}))
                        }
                        file @ Part::File { .. } => parts.extend(ui_file(file)),
                        _ => {}
                    }
                }
                out.push(json!({"id": user_id(message), "role": "user", "parts": parts}));
            }
            Role::Assistant | Role::Tool => {
                let answer = answer.get_or_insert_with(
                    || json!({"id": answer_id(chat, after), "role": "assistant", "parts": []}),
                );
                if let Some(parts) = answer.get_mut("parts").and_then(Value::as_array_mut) {
                    add_row(parts, message);
                }
            }
            _ => {}
        }
    }
    if let Some(mut answer) = answer {
        if let Some(parts) = answer.get_mut("parts").and_then(Value::as_array_mut) {
            for call in open {
                waiting(parts, call);
            }
        }
        out.push(answer);
    }
    out
}

fn add_row(parts: &mut Vec<Value>, row: &Message) {
    if row.role == Role::Assistant {
        parts.push(json!({"type": "step-start"}));
    }
    for part in &row.content {
        match part {
            Part::Text { text, .. } if row.role == Role::Assistant => {
                parts.push(json!({"type": "text", "text": text, "state": "done"}));
            }
            Part::Reasoning { text, .. } => {
                parts.push(json!({"type": "reasoning", "text": text, "state": "done"}));
            }
            Part::ToolCall { tool_call_id, tool_name, args, .. } => parts.push(json!({
                "type": "dynamic-tool",
                "toolCallId": tool_call_id,
                "toolName": tool_name,
                "state": "input-available",
                "input": args,
            })),
            Part::ToolResult { tool_call_id, result, is_error, .. } => {
                let call = parts.iter_mut().rev().find(|p| {
                    p["type"] == "dynamic-tool" && p["toolCallId"] == tool_call_id.as_str()
                });
                if let Some(call) = call {
                    settle(call, result, *is_error);
                }
            }
            Part::Source { id, url, title } => parts
                .push(json!({"type": "source-url", "sourceId": id, "url": url, "title": title})),
            _ => {}
        }
    }
}

/// A tool part's final state, from its result (a person's denial shows as denied).
fn settle(call: &mut Value, result: &Value, is_error: bool) {
    let denied =
        result.as_str().filter(|r| r.starts_with(chatd_core::tool_call::Decision::DENIED_PREFIX));
    if is_error && let Some(reason) = denied {
        call["state"] = json!("output-denied");
        call["approval"] = json!({"id": call["toolCallId"], "approved": false, "reason": reason});
    } else if is_error {
        call["state"] = json!("output-error");
        call["errorText"] = match result {
            Value::String(s) => json!(s),
            other => json!(other.to_string()),
        };
    } else {
        call["state"] = json!("output-available");
        call["output"] = result.clone();
    }
}

/// An open call's part: an approval asked for, or a client tool's input to run.
fn waiting(parts: &mut Vec<Value>, call: &OpenCall) {
    let found = parts.iter().position(|p| p["toolCallId"] == call.tool_call_id.as_str());
    let index = found.unwrap_or_else(|| {
        parts.push(json!({
            "type": "dynamic-tool",
            "toolCallId": call.tool_call_id,
            "toolName": call.tool_name,
            "input": call.args,
        }));
        parts.len() - 1
    });
    let part = &mut parts[index];
    part["state"] = json!("input-available");
    if call.kind == ActionKind::Approval {
        part["state"] = json!("approval-requested");
        part["approval"] = json!({"id": call.tool_call_id});
    }
}
