//! Answers to a chat's open tool calls (BEHAVIOUR §16), as the SDK sends them: the last
//! assistant message's approval responses and client tool outputs.

use axum::http::StatusCode;
use axum::response::Response;
use chatd_core::events::Cursor;
use chatd_core::service::Actor;
use chatd_core::tool_call::{ActionKind, Decision, OpenCall};
use chatd_core::{Chat, ChatStatus};
use serde_json::Value;

use super::{ChatRequest, stream};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::slots::Slot;

/// The decisions an assistant UI message carries for the chat's open calls: approval
/// responses for approvals, tool outputs for client tools. Parts for other calls are history
/// the client sends back every time, and are ignored.
fn decisions_in(message: &Value, open: &[OpenCall]) -> Vec<Decision> {
    let parts = message.get("parts").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    let mut decisions = Vec::new();
    for part in parts {
        let Some(id) = part.get("toolCallId").and_then(Value::as_str) else { continue };
        let Some(call) = open.iter().find(|c| c.tool_call_id == id) else { continue };
        let state = part.get("state").and_then(Value::as_str).unwrap_or_default();
        let approval = part.get("approval");
        let approved = approval.and_then(|a| a.get("approved")).and_then(Value::as_bool);
        let reason =
            approval.and_then(|a| a.get("reason")).and_then(Value::as_str).map(str::to_owned);
        let tool_call_id = id.to_owned();
        let decision = match (call.kind, state, approved) {
            (_, "approval-responded" | "output-denied", Some(false)) => {
                Decision::Deny { tool_call_id, reason }
            }
            (ActionKind::Approval, "approval-responded", Some(true)) => {
                Decision::Approve { tool_call_id, args: None }
            }
            (ActionKind::Client, "output-available", _) => Decision::Result {
                tool_call_id,
                output: part.get("output").cloned().unwrap_or(Value::Null),
                is_error: false,
            },
            (ActionKind::Client, "output-error", _) => Decision::Result {
                tool_call_id,
                output: part.get("errorText").cloned().unwrap_or(Value::Null),
                is_error: true,
            },
            _ => continue,
        };
        decisions.push(decision);
    }
    decisions
}

/// `POST /ai/chat` on a chat that waits: the decisions of the request's last message, then
/// the turn that continues (or, while calls are still open, a message that only says so).
pub(super) async fn answer_calls(
    state: &AppState,
    slot: Option<Slot>,
    actor: &Actor,
    chat: &Chat,
    request: &ChatRequest,
) -> ApiResult<Response> {
    let open = chat.open_calls();
    let last = request
        .messages
        .last()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("assistant"));
    let decisions = last.map(|m| decisions_in(m, &open)).unwrap_or_default();
    if decisions.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "requires_action",
            "the chat waits for answers to its tool calls: send approval responses or tool outputs",
        ));
    }
    let after = state.chatd.resolve_tool_calls(actor, chat.id, decisions).await?;
    let last_message =
        state.chatd.list_messages(actor, chat.id, None).await?.last().map_or(0, |m| m.id.0);
    let cursor = Cursor { history: after.history_version, ..Cursor::new(last_message, 0, 0) };
    if after.status == ChatStatus::RequiresAction {
        // Some calls are still open: nothing runs until they are answered too.
        let named = super::ui::answer_id(chat.id, chatd_core::MessageId(last_message));
        return Ok(stream::finished_message(&named));
    }
    // The continuation extends the client's assistant message: same message id.
    let continued = last.and_then(|m| m.get("id")).and_then(Value::as_str).map(str::to_owned);
    let answer = stream::Answer { message_id: continued, awaits: None };
    stream::turn(state, slot, actor, chat.id, cursor, after.lease_epoch + 1, answer).await
}
