//! The AI SDK's UI message stream protocol (the `ai` npm package, v5 and later), so that a
//! `useChat` front end with `DefaultChatTransport` works against chatd unchanged:
//!
//! - `POST /ai/chat` with the transport's body (`{id, messages, trigger, messageId}`): `id` is
//!   a chatd chat id (create the chat with `POST /api/chats` and give its id to `useChat`).
//!   `submit-message` sends the last user message — its text and its files (base64 `data:`
//!   URLs; a file by link is refused with 400, never dropped) — kept under the client's own
//!   message id; with a `messageId` that names an earlier user message (how `sendMessage`
//!   edits), that message is edited instead (an id chatd does not know is 400).
//!   `regenerate-message` re-runs the last user message (an edit with the same content). A
//!   request whose user message chatd already has (a retry) follows that message's answer
//!   instead of sending it twice. The answer is the turn, as the protocol's SSE parts:
//!   `start`, `start-step`, `reasoning-*`, `text-*`, `tool-input-*`, `tool-output-available` /
//!   `tool-output-error`, `finish-step`, then `finish` (or `abort` for an interrupted turn,
//!   `error` + `finish` for a failed one) and `[DONE]`. A stream that ends any other way (the
//!   server cut it, or it shut down) aborts the connection, so the SDK reports an error and
//!   the client can `resumeStream()`; it never ends cleanly with half an answer.
//! - `GET /ai/chat/{id}/messages`: the history as `UIMessage`s (`{"messages": [...]}`) for a
//!   client that reloads — user messages under the ids the client sent them with, each
//!   answer under the id its stream started with, open tool calls as approval requests.
//! - `GET /ai/chat/{id}/stream` (the transport's `reconnectToStream`): `204` when no turn is
//!   running, else the running turn **replayed from its start** — the transport's default
//!   `resumeStreamIsReplay` — built from chatd's own resumable stream, so resuming needs no
//!   extra store and works on any replica.
//!
//! Tool approvals and client tools (BEHAVIOUR §16): a call that waits for a person is sent as
//! a `tool-approval-request` part (its `approvalId` is the call's id), a client tool's call
//! as its `tool-input-available` part, and the turn ends with `finish` (`tool-calls`). The
//! next `POST /ai/chat` carries the answers in the last assistant message — tool parts in
//! state `approval-responded` (approved or not, with a reason) and, for client tools,
//! `output-available` / `output-error` (what `addToolOutput` makes) — and its stream is the
//! turn that continues. A stale answer (a call no longer open) is refused with 409.
//!
//! Busy behaviour `interrupt`: a message sent while a turn runs (after `stop()`, which only
//! drops the client's connection, or from another tab) interrupts that turn — its partial
//! answer is kept — and is answered next; the stream waits for it and carries only its
//! answer. A message sent while tool calls wait does the same (their calls get the
//! interrupted result). Limitation: the protocol cannot take back text already sent, so when chatd resets a
//! preview (a retried model call, a worker lost mid-step) the superseded text stays in the
//! SDK's message; chatd's own stream (`/api/chats/{id}/stream`) handles that exactly.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chatd_core::events::Cursor;
use chatd_core::service::Actor;
use chatd_core::store::{BusyBehavior, Delivery, SendMessage};
use chatd_core::{Chat, ChatStatus, Message, MessageId, Role};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::paths::ChatPath;
use crate::rest::{Body, chat_id};
use crate::slots::Slot;

mod calls;
mod stream;
pub mod translate;
pub mod ui;

pub use translate::Translator;

/// The header that names the protocol.
pub const PROTOCOL_HEADER: &str = "x-vercel-ai-ui-message-stream";

/// The largest body of a send: the AI SDK sends files inline as base64 `data:` URLs, so one
/// file of the largest size fits (stored as an attachment on arrival, BEHAVIOUR §19).
pub const MAX_SEND_BYTES: usize =
    chatd_core::store::Limits::DEFAULT.max_file_bytes / 3 * 4 + 1024 * 1024;

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ai/chat", post(send).layer(axum::extract::DefaultBodyLimit::max(MAX_SEND_BYTES)))
        .route("/ai/chat/{id}/stream", get(resume))
        .route("/ai/chat/{id}/messages", get(messages))
}

/// The parts of the transport's request this endpoint reads.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChatRequest {
    id: String,
    #[serde(default)]
    messages: Vec<Value>,
    #[serde(default)]
    trigger: Option<String>,
    /// The message a `submit-message` replaces (an edit), or the assistant message that
    /// carries tool answers.
    #[serde(default)]
    message_id: Option<String>,
}

fn busy(chat: &Chat) -> bool {
    matches!(chat.status, ChatStatus::Running | ChatStatus::Pending)
}

/// The chat's history (what a message id is looked up in).
async fn history(
    state: &AppState,
    actor: &Actor,
    id: chatd_core::ChatId,
) -> ApiResult<Vec<Message>> {
    Ok(state.chatd.list_messages(actor, id, None).await?)
}

/// The cursor just after `message` of the chat as it is now.
fn after(chat: &Chat, message: MessageId) -> Cursor {
    Cursor { history: chat.history_version, ..Cursor::new(message.0, 0, 0) }
}

async fn send(
    State(state): State<AppState>,
    authed: Authed,
    Body(request): Body<ChatRequest>,
) -> ApiResult<Response> {
    let actor = authed.actor;
    let id = chat_id(&request.id)?;
    let chat = state.chatd.get_chat(&actor, id).await?;
    let trigger = request.trigger.as_deref().unwrap_or("submit-message");
    if !matches!(trigger, "submit-message" | "regenerate-message") {
        return Err(ApiError::bad_request(format!("unknown trigger {trigger:?}")));
    }
    // Before anything is sent: a refused stream must not leave a turn behind.
    let slot = state.slots.take(&actor)?;
    let stored = history(&state, &actor, id).await?;
    if trigger == "regenerate-message" {
        let last = stored.iter().rev().find(|m| m.role == Role::User);
        let last = last.ok_or_else(|| ApiError::bad_request("no user message to re-run"))?;
        return edit(&state, slot, &actor, id, last.id, last.content.clone()).await;
    }
    let last =
        request.messages.last().ok_or_else(|| ApiError::bad_request("no message to send"))?;
    if ui::role(last) == Some("assistant") {
        // Answers to tool calls (the only thing an assistant message can carry).
        if chat.status == ChatStatus::RequiresAction {
            return calls::answer_calls(&state, slot, &actor, &chat, &request).await;
        }
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_open_calls",
            "the chat has no tool calls waiting for an answer; they were answered or have expired",
        ));
    }
    if ui::role(last) != Some("user") {
        return Err(ApiError::bad_request("the last message must be a user message"));
    }
    let content = ui::user_content(last)?;
    let client_id = ui::client_id(last);
    if let Some(named) = request.message_id.as_deref().filter(|m| client_id.as_deref() == Some(*m))
    {
        let Some(message) = ui::find_user(&stored, named) else {
            return Err(ApiError::bad_request(format!(
                "message {named:?} is not a user message of this chat: nothing to edit"
            )));
        };
        return edit(&state, slot, &actor, id, message.id, content).await;
    }
    if let Some(sent) = client_id.as_deref().and_then(|c| ui::find_user(&stored, c)) {
        if sent.content != content {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "already_sent",
                "another message was sent under this message id; edit it by its messageId instead",
            ));
        }
        return retried(&state, slot, &actor, &chat, &stored, sent.id).await;
    }
    let mut message = SendMessage::new(content).with_busy(BusyBehavior::Interrupt);
    if let Some(client_id) = client_id.clone() {
        message = message.with_client_id(client_id);
    }
    let last_stored = stored.last().map_or(MessageId(0), |m| m.id);
    let sent = state.chatd.send_message(&actor, id, message).await?;
    let turn = sent.chat.lease_epoch + 1;
    match sent.delivery {
        Delivery::Inserted(message) => {
            let cursor = after(&sent.chat, message.id);
            stream::turn(&state, slot, &actor, id, cursor, turn, stream::Answer::default()).await
        }
        // Behind the turn it interrupts (or the calls it ends): the answer starts when the
        // message enters the history.
        _ => {
            let answer = stream::Answer { message_id: None, awaits: Some(client_id) };
            let cursor = after(&chat, last_stored);
            stream::turn(&state, slot, &actor, id, cursor, turn, answer).await
        }
    }
}

/// An edit (or a re-run) of user message `message`: the answer to its new content.
async fn edit(
    state: &AppState,
    slot: Option<Slot>,
    actor: &Actor,
    id: chatd_core::ChatId,
    message: MessageId,
    content: Vec<chatd_core::Part>,
) -> ApiResult<Response> {
    let edited = state.chatd.edit_message(actor, id, message, content).await?;
    // The edited message keeps its id, so the old turn's boundaries still follow it in the
    // stream: only turns after the chat's current one are this answer.
    let cursor = after(&edited.chat, edited.message.id);
    let turn = edited.chat.lease_epoch + 1;
    stream::turn(state, slot, actor, id, cursor, turn, stream::Answer::default()).await
}

/// A send chatd already has (the client retried a request whose response it lost): the
/// answer to the latest message is followed; an older one's answer is in the history.
async fn retried(
    state: &AppState,
    slot: Option<Slot>,
    actor: &Actor,
    chat: &Chat,
    stored: &[Message],
    message: MessageId,
) -> ApiResult<Response> {
    let latest = stored.iter().rev().find(|m| m.role == Role::User).map(|m| m.id);
    if latest != Some(message) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_sent",
            "this message was sent before and answered; reload the chat to see the answer",
        ));
    }
    let turn =
        if chat.status == ChatStatus::Pending { chat.lease_epoch + 1 } else { chat.lease_epoch };
    let cursor = after(chat, message);
    stream::turn(state, slot, actor, chat.id, cursor, turn, stream::Answer::default()).await
}

async fn resume(
    State(state): State<AppState>,
    authed: Authed,
    ChatPath(id): ChatPath,
) -> ApiResult<Response> {
    let slot = state.slots.take(&authed.actor)?;
    follow_current(&state, slot, &authed.actor, id).await
}

/// `GET /ai/chat/{id}/messages`: the history as `UIMessage`s.
async fn messages(
    State(state): State<AppState>,
    authed: Authed,
    ChatPath(id): ChatPath,
) -> ApiResult<Response> {
    let chat = state.chatd.get_chat(&authed.actor, id).await?;
    let stored = history(&state, &authed.actor, id).await?;
    let open = chat.open_calls();
    Ok(axum::Json(json!({"messages": ui::history(id, &stored, &open)})).into_response())
}

/// The running (or next) turn of a busy chat, answering its last user message; 204 when the
/// chat is idle.
async fn follow_current(
    state: &AppState,
    slot: Option<Slot>,
    actor: &Actor,
    id: chatd_core::ChatId,
) -> ApiResult<Response> {
    let chat = state.chatd.get_chat(actor, id).await?;
    let waiting = chat.status == ChatStatus::RequiresAction;
    if !busy(&chat) && !waiting {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let stored = history(state, actor, id).await?;
    let Some(last) = stored.iter().rev().find(|m| m.role == Role::User) else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    // A chat that waits replays the turn that ended waiting: its calls and approval requests.
    let turn = if chat.status == ChatStatus::Running || waiting {
        chat.lease_epoch
    } else {
        chat.lease_epoch + 1
    };
    let cursor = after(&chat, last.id);
    stream::turn(state, slot, actor, id, cursor, turn, stream::Answer::default()).await
}
