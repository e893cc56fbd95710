//! The open tool calls of a chat and the decisions on them (BEHAVIOUR §16), over REST:
//!
//! - `GET /api/chats/{id}/tool-calls` — the records of the chat's unfinished step, in call
//!   order (`state`: `open` with `kind` and `deadline`, `ready`, `started`, `done`);
//! - `POST /api/chats/{id}/tool-calls` with `{"decisions": [...]}`, each one of
//!   `{"decision": "approve", "tool_call_id": "...", "args": {...}}` (args optional: an
//!   edit), `{"decision": "deny", "tool_call_id": "...", "reason": "..."}` or
//!   `{"decision": "result", "tool_call_id": "...", "output": ..., "is_error": false}` (a
//!   client tool's result). All or nothing: `409` names a call that is not open, `400` a
//!   decision of the wrong kind or bad arguments. Answers the chat.
//! - `GET`/`PUT /api/chats/{id}/ask` (`{"on": true}`) — the demo's per-chat switch: whether
//!   `execute`, `write_file` and `edit_files` wait for an approval (on by default).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chatd_core::Chat;
use chatd_core::tool_call::Decision;
use serde::Deserialize;

use crate::AppState;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::paths::ChatPath;
use crate::rest::Body;
use crate::views::{AskState, ToolCallList};

/// The routes of one chat, nested under `/api/chats/{id}`.
pub fn chat_routes() -> Router<AppState> {
    Router::new()
        .route("/tool-calls", get(list).post(resolve))
        .route("/ask", get(get_ask).put(put_ask))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Ask {
    on: bool,
}

fn switch(state: &AppState) -> ApiResult<&chatd_demo::AskSwitch> {
    state.ask.as_ref().ok_or_else(|| ApiError::not_found("this server has no ask switch"))
}

async fn get_ask(
    State(state): State<AppState>,
    authed: Authed,
    ChatPath(id): ChatPath,
) -> ApiResult<Json<AskState>> {
    let chat = state.chatd.get_chat(&authed.actor, id).await?;
    Ok(Json(AskState { on: switch(&state)?.is_on(chat.id), tools: chatd_demo::ASKED_TOOLS }))
}

async fn put_ask(
    State(state): State<AppState>,
    authed: Authed,
    ChatPath(id): ChatPath,
    Body(body): Body<Ask>,
) -> ApiResult<Json<AskState>> {
    // Changing a chat's settings is an update of the chat.
    let chat = state.chatd.get_chat(&authed.actor, id).await?;
    if !authed.actor.has(chatd_core::Scope::Update) {
        return Err(ApiError::forbidden("the chat:update scope is required"));
    }
    let ask = switch(&state)?;
    ask.set(chat.id, body.on);
    Ok(Json(AskState { on: ask.is_on(chat.id), tools: chatd_demo::ASKED_TOOLS }))
}

async fn list(
    State(state): State<AppState>,
    authed: Authed,
    ChatPath(id): ChatPath,
) -> ApiResult<Json<ToolCallList>> {
    let calls = state.chatd.tool_calls(&authed.actor, id).await?;
    Ok(Json(ToolCallList { tool_calls: calls }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Decisions {
    decisions: Vec<Decision>,
}

async fn resolve(
    State(state): State<AppState>,
    authed: Authed,
    ChatPath(id): ChatPath,
    Body(body): Body<Decisions>,
) -> ApiResult<Json<Chat>> {
    Ok(Json(state.chatd.resolve_tool_calls(&authed.actor, id, body.decisions).await?))
}
