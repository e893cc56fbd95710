//! Prompt construction ([BEHAVIOUR §4](crate::behaviour#4-prompt-construction)): from the compaction-aware history to the request a
//! provider receives. The result is always well-formed, whatever the stored history holds.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::chat::ChatKind;
use crate::message::{Message, Role};
use crate::part::Part;
use crate::provider::PromptMessage;
use crate::provider_config::ProviderKind;
use crate::store::files::attachments_of;

/// The result given to a tool call that never got one.
pub(crate) const INTERRUPTED_RESULT: &str =
    "tool call was interrupted and did not receive a result";

/// The extra system instruction of a delegated (child) chat.
pub(crate) const SUB_AGENT_INSTRUCTION: &str = "You are a delegated sub-agent working on a task for another agent. \
Finish the task you were given, then report the outcome concisely: what you did, what you found, and anything \
left undone. Do not ask the user questions; the agent that delegated to you will read your final message.";

/// The leading system block and the conversation, ready for a `ModelRequest`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Prompt {
    /// Leading system instructions, in order.
    pub(crate) system: Vec<String>,
    /// The conversation.
    pub(crate) messages: Vec<PromptMessage>,
}

/// The provider-metadata key whose reasoning a provider can replay (`None`: it replays none).
#[must_use]
pub(crate) fn reasoning_key(kind: ProviderKind) -> Option<&'static str> {
    match kind {
        ProviderKind::Anthropic => Some("anthropic"),
        ProviderKind::Bedrock => Some("bedrock"),
        ProviderKind::OpenAi => Some("openai"),
        ProviderKind::Google => Some("google"),
        // Thinking-mode Chat Completions servers (DeepSeek, Kimi, Qwen) need their
        // `reasoning_content` back with tool calls (BEHAVIOUR §9.2).
        ProviderKind::OpenAiCompat => Some("openaicompat"),
        ProviderKind::Azure | ProviderKind::OpenRouter | ProviderKind::Vercel => None,
    }
}

/// Replaces every character outside `[a-zA-Z0-9_-]` with `_` (providers reject others). An id
/// that had to change also gets `_` and 8 hex digits of a hash of the original, so two ids
/// never become one (`call.1` and `call:1` would both be `call_1`); an id that is already
/// clean is kept as it is. The same id always gives the same result.
#[must_use]
pub(crate) fn sanitize_tool_call_id(id: &str) -> String {
    use sha2::Digest as _;
    let clean: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
        .collect();
    if !clean.is_empty() && clean == id {
        return clean;
    }
    let digest = sha2::Sha256::digest(id.as_bytes());
    let tag: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let stem = if clean.is_empty() { "call" } else { clean.as_str() };
    format!("{stem}_{tag}")
}

fn object_args(args: &Value) -> Value {
    match args {
        Value::Object(_) => args.clone(),
        Value::String(raw) => crate::provider::args_object(raw),
        _ => Value::Object(Map::new()),
    }
}

/// One message's parts for `target`: ids sanitised, arguments made objects, foreign
/// reasoning dropped (its provider metadata does not carry `target`'s key).
fn clean_parts(content: &[Part], target: ProviderKind) -> Vec<Part> {
    let key = reasoning_key(target);
    content
        .iter()
        .filter_map(|part| match part {
            Part::Reasoning { provider_metadata, .. } => {
                let ours = key.is_some_and(|key| {
                    provider_metadata.as_ref().is_some_and(|m| m.contains_key(key))
                });
                ours.then(|| part.clone())
            }
            Part::ToolCall {
                tool_call_id,
                tool_name,
                args,
                provider_executed,
                provider_metadata,
            } => Some(Part::ToolCall {
                tool_call_id: sanitize_tool_call_id(tool_call_id),
                tool_name: tool_name.clone(),
                args: object_args(args),
                provider_executed: *provider_executed,
                provider_metadata: provider_metadata.clone(),
            }),
            Part::ToolResult {
                tool_call_id,
                tool_name,
                result,
                is_error,
                provider_executed,
                provider_metadata,
            } => Some(Part::ToolResult {
                tool_call_id: sanitize_tool_call_id(tool_call_id),
                tool_name: tool_name.clone(),
                result: result.clone(),
                is_error: *is_error,
                provider_executed: *provider_executed,
                provider_metadata: provider_metadata.clone(),
            }),
            other => Some(other.clone()),
        })
        .collect()
}

fn local_calls(parts: &[Part]) -> impl Iterator<Item = (&str, &str)> {
    parts.iter().filter_map(|p| match p {
        Part::ToolCall { tool_call_id, tool_name, provider_executed: false, .. } => {
            Some((tool_call_id.as_str(), tool_name.as_str()))
        }
        _ => None,
    })
}

/// Builds the prompt from `history` (normally `ChatStore::prompt_messages`) for `target`:
/// only model-visible rows; the leading `system` rows become the system block (a child chat
/// gets `SUB_AGENT_INSTRUCTION` appended); every local tool call gets a result (a
/// synthetic error [`INTERRUPTED_RESULT`] when it has none), and a tool result whose call is
/// missing (or is provider-executed) is dropped, so every result directly follows the
/// assistant message that holds its call; ids are sanitised and arguments are objects;
/// reasoning from other providers is dropped; the files a tool result attaches follow the
/// results of its message as file parts (loaded later by
/// [`load_attachments`](crate::runtime::attachments::load_attachments)). A compaction boundary (a `compressed` system
/// row) becomes a user message in place, so the conversation after it is never empty.
#[must_use]
pub(crate) fn build_prompt(history: &[Message], target: ProviderKind, kind: ChatKind) -> Prompt {
    let visible: Vec<&Message> =
        history.iter().filter(|m| m.visibility.is_model_visible()).collect();
    let leading = visible.iter().take_while(|m| m.role == Role::System && !m.compressed).count();
    let mut system: Vec<String> =
        visible[..leading].iter().map(|m| m.text()).filter(|t| !t.trim().is_empty()).collect();
    if kind.is_child() {
        system.push(SUB_AGENT_INSTRUCTION.to_owned());
    }
    let mut messages: Vec<PromptMessage> = Vec::new();
    // Local calls still waiting for their result, in call order.
    let mut open: Vec<(String, String)> = Vec::new();
    let mut answered: HashSet<String> = HashSet::new();
    let close_open = |messages: &mut Vec<PromptMessage>,
                      open: &mut Vec<(String, String)>,
                      answered: &mut HashSet<String>| {
        if open.is_empty() {
            return;
        }
        let results = open
            .drain(..)
            .map(|(id, name)| {
                answered.insert(id.clone());
                Part::tool_result(id, name, Value::String(INTERRUPTED_RESULT.to_owned()), true)
            })
            .collect();
        messages.push(PromptMessage::new(Role::Tool, results));
    };
    for message in &visible[leading..] {
        let parts = clean_parts(&message.content, target);
        match message.role {
            Role::Tool => {
                let mut results = Vec::new();
                for part in parts {
                    let Part::ToolResult { tool_call_id, .. } = &part else { continue };
                    match open.iter().position(|(id, _)| id == tool_call_id) {
                        Some(at) => {
                            open.remove(at);
                        }
                        // A result whose call is not the open call of the latest assistant
                        // message — missing, a provider-executed call's, or a second result
                        // — is dropped: a result must directly follow its call (BEHAVIOUR §4).
                        None => continue,
                    }
                    answered.insert(tool_call_id.clone());
                    results.push(part);
                }
                if !results.is_empty() {
                    // Files a result attaches follow the results (BEHAVIOUR §19).
                    let files: Vec<Part> = results
                        .iter()
                        .filter_map(|part| match part {
                            Part::ToolResult { result, .. } => Some(attachments_of(result)),
                            _ => None,
                        })
                        .flatten()
                        .map(|file| {
                            Part::attachment(file.attachment_id, file.media_type, file.name)
                        })
                        .collect();
                    // A step's files follow all of its results (Anthropic refuses content
                    // before a tool result): files of the previous result row move after
                    // this one's results.
                    if let Some(last) = messages.last_mut().filter(|m| m.role == Role::Tool) {
                        let (earlier, kept): (Vec<Part>, Vec<Part>) = last
                            .content
                            .drain(..)
                            .partition(|part| matches!(part, Part::File { .. }));
                        last.content = kept;
                        results.extend(earlier);
                    }
                    results.extend(files);
                    messages.push(PromptMessage::new(Role::Tool, results));
                }
            }
            // A compaction boundary speaks to the model as the conversation's opening
            // message, so the prompt after it is never empty (some providers require a
            // first user message).
            Role::System if message.compressed => {
                close_open(&mut messages, &mut open, &mut answered);
                if !parts.is_empty() {
                    messages.push(PromptMessage::new(Role::User, parts));
                }
            }
            role => {
                close_open(&mut messages, &mut open, &mut answered);
                if role == Role::Assistant {
                    open.extend(
                        local_calls(&parts).map(|(id, name)| (id.to_owned(), name.to_owned())),
                    );
                }
                if !parts.is_empty() {
                    messages.push(PromptMessage::new(role, parts));
                }
            }
        }
    }
    close_open(&mut messages, &mut open, &mut answered);
    Prompt { system, messages }
}

#[cfg(test)]
mod tests;
