//! The AI SDK's UI message stream protocol (the `ai` npm package, v5 and later), so that a
//! `useChat` front end with `DefaultChatTransport` works against chatd unchanged:
//!
//! - `POST /ai/chat` with the transport's body (`{id, messages, trigger, messageId}`): `id` is
//!   a chatd chat id (create the chat with `POST /api/chats` and give its id to `useChat`);
//!   `submit-message` sends the last user message's text, `regenerate-message` re-runs the last
//!   user message (an edit with the same content). The answer is the turn, as the protocol's
//!   SSE parts: `start`, `start-step`, `reasoning-*`, `text-*`, `tool-input-*`,
//!   `tool-output-available` / `tool-output-error`, `finish-step`, then `finish` (or `abort`
//!   for an interrupted turn, `error` + `finish` for a failed one) and `[DONE]`.
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
//! A chat busy with another turn refuses a new message (409): `useChat` sends one at a time.
//! Limitation: the protocol cannot take back text already sent, so when chatd resets a
//! preview (a retried model call, a worker lost mid-step) the superseded text stays in the
//! SDK's message; chatd's own stream (`/api/chats/{id}/stream`) handles that exactly.

use std::collections::HashSet;
use std::convert::Infallible;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, HeaderName, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chatd_core::events::{ChatEvent, ChatEventKind, Cursor};
use chatd_core::provider::StreamEvent;
use chatd_core::service::{Actor, ChatdError};
use chatd_core::status::TurnEnding;
use chatd_core::store::{Delivery, SendMessage};
use chatd_core::tool_call::{ActionKind, Decision, OpenCall};
use chatd_core::{Chat, ChatStatus, Message, Part, Role};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::AppState;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::rest::{Body, chat_id};
use crate::slots::Slot;

/// The header that names the protocol.
pub const PROTOCOL_HEADER: &str = "x-vercel-ai-ui-message-stream";

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/ai/chat", post(send)).route("/ai/chat/{id}/stream", get(resume))
}

/// The parts of the transport's request this endpoint reads.
#[derive(Debug, serde::Deserialize)]
struct ChatRequest {
    id: String,
    #[serde(default)]
    messages: Vec<Value>,
    #[serde(default)]
    trigger: Option<String>,
}

/// The text of a UI message's text parts.
fn ui_text(message: &Value) -> String {
    message
        .get("parts")
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

fn busy(chat: &Chat) -> bool {
    matches!(chat.status, ChatStatus::Running | ChatStatus::Pending)
}

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
async fn answer_calls(
    state: &AppState,
    slot: Option<Slot>,
    actor: &Actor,
    chat: &Chat,
    request: &ChatRequest,
) -> ApiResult<Response> {
    let open = chatd_core::tool_call::open_calls(&chat.tool_calls);
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
        return Ok(finished_message(&format!("chatd-{}-{last_message}", chat.id)));
    }
    // The continuation extends the client's assistant message: same message id.
    let continued = last.and_then(|m| m.get("id")).and_then(Value::as_str).map(str::to_owned);
    stream_turn(state, slot, actor, chat.id, cursor, after.lease_epoch + 1, continued).await
}

/// A message with nothing in it, finished (`tool-calls`: answers are still awaited).
fn finished_message(message_id: &str) -> Response {
    let chunks = [
        json!({"type": "start", "messageId": message_id}).to_string(),
        json!({"type": "finish", "finishReason": "tool-calls"}).to_string(),
        "[DONE]".to_owned(),
    ];
    let body = futures::stream::iter(
        chunks.into_iter().map(|c| Ok::<_, Infallible>(Event::default().data(c))),
    );
    let mut response = Sse::new(body).into_response();
    response
        .headers_mut()
        .insert(HeaderName::from_static(PROTOCOL_HEADER), HeaderValue::from_static("v1"));
    response
}

/// 409 `busy`: a new message is refused while another turn runs.
fn busy_refusal(message: &str) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "busy", message)
}

const BUSY: &str = "the chat is busy with another turn; resume its stream or wait";

async fn send(
    State(state): State<AppState>,
    authed: Authed,
    Body(request): Body<ChatRequest>,
) -> ApiResult<Response> {
    let actor = authed.actor;
    let id = chat_id(&request.id)?;
    let chat = state.chatd.get_chat(&actor, id).await?;
    // Before anything is sent: a refused stream must not leave a turn behind.
    let slot = state.slots.take(&actor)?;
    let trigger = request.trigger.as_deref().unwrap_or("submit-message");
    if chat.status == ChatStatus::RequiresAction && trigger == "submit-message" {
        return answer_calls(&state, slot, &actor, &chat, &request).await;
    }
    let after = match trigger {
        "submit-message" => {
            let last_user = request
                .messages
                .iter()
                .rev()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
                .ok_or_else(|| ApiError::bad_request("no user message to send"))?;
            let text = ui_text(last_user);
            if text.trim().is_empty() {
                return Err(ApiError::bad_request("the user message has no text"));
            }
            if busy(&chat) {
                return Err(busy_refusal(BUSY));
            }
            let sent = state.chatd.send_message(&actor, id, SendMessage::text(text)).await?;
            match sent.delivery {
                Delivery::Inserted(message) => (
                    Cursor {
                        history: sent.chat.history_version,
                        ..Cursor::new(message.id.0, 0, 0)
                    },
                    sent.chat.lease_epoch + 1,
                ),
                Delivery::Queued(queued) => {
                    // The chat became busy between the check above and the send. Take the
                    // message back, so that a refused request leaves nothing behind; if it
                    // has already left the queue, it is being answered: follow that turn.
                    return match state.chatd.delete_queued(&actor, id, queued.id).await {
                        Ok(_) => Err(busy_refusal(
                            "the chat became busy with another turn; nothing was sent",
                        )),
                        Err(ChatdError::Store(err)) if err.is_not_found() => {
                            follow_current(&state, slot, &actor, id).await
                        }
                        Err(err) => Err(err.into()),
                    };
                }
                // (`AfterStop` comes from a promotion, not from a queueing send.)
                _ => return Err(busy_refusal(BUSY)),
            }
        }
        "regenerate-message" => {
            let last = last_user_message(&state, &actor, id).await?;
            let last = last.ok_or_else(|| ApiError::bad_request("no user message to re-run"))?;
            let edited = state.chatd.edit_message(&actor, id, last.id, last.content).await?;
            // The edited message keeps its id, so the old turn's boundaries still follow it
            // in the stream: only turns after the chat's current one are this answer.
            let after = Cursor {
                history: edited.chat.history_version,
                ..Cursor::new(edited.message.id.0, 0, 0)
            };
            (after, edited.chat.lease_epoch + 1)
        }
        other => return Err(ApiError::bad_request(format!("unknown trigger {other:?}"))),
    };
    stream_turn(&state, slot, &actor, id, after.0, after.1, None).await
}

async fn last_user_message(
    state: &AppState,
    actor: &Actor,
    id: chatd_core::ChatId,
) -> ApiResult<Option<Message>> {
    let messages = state.chatd.list_messages(actor, id, None).await?;
    Ok(messages.into_iter().rev().find(|m| m.role == Role::User))
}

async fn resume(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = chat_id(&id)?;
    let slot = state.slots.take(&authed.actor)?;
    follow_current(&state, slot, &authed.actor, id).await
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
    let Some(last) = last_user_message(state, actor, id).await? else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let after = Cursor { history: chat.history_version, ..Cursor::new(last.id.0, 0, 0) };
    // A chat that waits replays the turn that ended waiting: its calls and approval requests.
    let turn = if chat.status == ChatStatus::Running || waiting {
        chat.lease_epoch
    } else {
        chat.lease_epoch + 1
    };
    stream_turn(state, slot, actor, id, after, turn, None).await
}

/// The turn that follows `after` (turn `first_turn` or, if it is lost, a re-run) as
/// protocol parts of the message `message_id` (default: one named after the chat and
/// `after`); `slot` is held until the stream's task ends.
async fn stream_turn(
    state: &AppState,
    slot: Option<Slot>,
    actor: &Actor,
    id: chatd_core::ChatId,
    after: Cursor,
    first_turn: i64,
    message_id: Option<String>,
) -> ApiResult<Response> {
    let mut events = state.chatd.subscribe(actor, id, Some(after)).await?;
    let (tx, rx) = mpsc::channel::<Value>(64);
    let message_id = message_id
        .filter(|m| !m.is_empty() && m.len() <= 256)
        .unwrap_or_else(|| format!("chatd-{}-{}", id, after.message));
    let cut = state.next_cut();
    tokio::spawn(async move {
        let _slot = slot;
        let mut translator = Translator::new(message_id, first_turn);
        let follow = async {
            while let Some(event) = events.next().await {
                let (chunks, done) = translator.translate(&event);
                for chunk in chunks {
                    if tx.send(chunk).await.is_err() {
                        return;
                    }
                }
                if done {
                    // The end of the message: `[DONE]` (a cut stream ends without it).
                    let _ = tx.send(Value::Null).await;
                    return;
                }
            }
        };
        // A client that leaves ends the subscription at once, not at the next event (a
        // paused chat may have none for hours).
        let gone = tx.closed();
        tokio::select! {
            () = follow => {}
            () = cut => {}
            () = gone => {}
        }
    });
    let body: BoxStream<'static, Result<Event, Infallible>> =
        futures::stream::unfold(Some(rx), |rx| async move {
            let mut rx = rx?;
            match rx.recv().await {
                Some(Value::Null) => Some((Event::default().data("[DONE]"), None)),
                Some(chunk) => Some((Event::default().data(chunk.to_string()), Some(rx))),
                None => None,
            }
        })
        .map(Ok)
        .boxed();
    let mut response = Sse::new(body).keep_alive(KeepAlive::default()).into_response();
    let headers = response.headers_mut();
    headers.insert(HeaderName::from_static(PROTOCOL_HEADER), HeaderValue::from_static("v1"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// chatd events → protocol parts, for one assistant message (the turn).
#[derive(Debug)]
pub struct Translator {
    message_id: String,
    started: bool,
    /// The episode (model call) whose step is open.
    step: Option<i64>,
    /// Whether parts of the current step were streamed (its persisted row adds nothing).
    streamed: bool,
    /// The turn being followed (a lost or shut-down turn is re-run as the next one).
    turn: Option<i64>,
    /// Turns before this one belong to earlier answers.
    first_turn: i64,
    /// Tool calls announced (`tool-input-start`), so each is announced once.
    calls: HashSet<String>,
    /// Tool calls whose input was sent (`tool-input-available`).
    available: HashSet<String>,
    /// Tool calls whose approval was requested (`tool-approval-request`).
    asked: HashSet<String>,
    /// The open calls the stream last told of (a follower that starts while the chat waits
    /// hears of them first, before the turn it replays).
    open: Vec<OpenCall>,
    /// The text and reasoning blocks streamed in the current step, in order: the UI id,
    /// whether it is reasoning, the text sent, whether it is still open.
    blocks: Vec<Block>,
}

/// A text or reasoning block streamed in the current step.
#[derive(Debug)]
struct Block {
    ui_id: String,
    reasoning: bool,
    sent: String,
    open: bool,
}

impl Translator {
    /// A translator whose message is `message_id`, the answer of turn `first_turn` (or of
    /// its re-runs).
    #[must_use]
    pub fn new(message_id: String, first_turn: i64) -> Self {
        Translator {
            message_id,
            first_turn,
            started: false,
            step: None,
            streamed: false,
            turn: None,
            calls: HashSet::new(),
            available: HashSet::new(),
            asked: HashSet::new(),
            open: Vec::new(),
            blocks: Vec::new(),
        }
    }

    fn start(&mut self, out: &mut Vec<Value>) {
        if !self.started {
            self.started = true;
            out.push(json!({"type": "start", "messageId": self.message_id}));
        }
    }

    fn open_step(&mut self, episode: i64, out: &mut Vec<Value>) {
        self.start(out);
        if self.step != Some(episode) {
            self.close_step(out);
            self.step = Some(episode);
            out.push(json!({"type": "start-step"}));
        }
    }

    fn close_step(&mut self, out: &mut Vec<Value>) {
        for block in self.blocks.iter_mut().filter(|b| b.open) {
            block.open = false;
            let kind = if block.reasoning { "reasoning-end" } else { "text-end" };
            out.push(json!({"type": kind, "id": block.ui_id}));
        }
        self.blocks.clear();
        if self.step.take().is_some() {
            out.push(json!({"type": "finish-step"}));
        }
        self.streamed = false;
    }

    fn call(&mut self, id: &str, name: &str, input: &Value, out: &mut Vec<Value>) {
        if self.calls.insert(id.to_owned()) {
            out.push(json!({"type": "tool-input-start", "toolCallId": id, "toolName": name, "dynamic": true}));
        }
        if self.available.insert(id.to_owned()) {
            out.push(json!({"type": "tool-input-available", "toolCallId": id, "toolName": name, "input": input, "dynamic": true}));
        }
    }

    fn block(&mut self, ui_id: String, reasoning: bool) -> Option<&mut Block> {
        self.blocks.iter_mut().find(|b| b.ui_id == ui_id && b.reasoning == reasoning)
    }

    /// Sends what the persisted text of a block adds to what was streamed of it, and ends it.
    fn complete_block(
        &mut self,
        index: usize,
        reasoning: bool,
        text: &str,
        fallback_id: &str,
        out: &mut Vec<Value>,
    ) {
        let (start, delta, end) = if reasoning {
            ("reasoning-start", "reasoning-delta", "reasoning-end")
        } else {
            ("text-start", "text-delta", "text-end")
        };
        let streamed = self.blocks.iter_mut().filter(|b| b.reasoning == reasoning).nth(index);
        match streamed {
            Some(block) => {
                if let Some(rest) = text.strip_prefix(block.sent.as_str())
                    && !rest.is_empty()
                {
                    out.push(json!({"type": delta, "id": block.ui_id, "delta": rest}));
                    block.sent.push_str(rest);
                }
                if block.open {
                    block.open = false;
                    out.push(json!({"type": end, "id": block.ui_id}));
                }
            }
            None => {
                out.push(json!({"type": start, "id": fallback_id}));
                out.push(json!({"type": delta, "id": fallback_id, "delta": text}));
                out.push(json!({"type": end, "id": fallback_id}));
            }
        }
    }

    fn output(id: &str, result: &Value, is_error: bool, out: &mut Vec<Value>) {
        let denied = |text: &str| text.starts_with(chatd_core::tool_call::DENIED_BY_USER);
        if is_error && result.as_str().is_some_and(denied) {
            // A person's denial (BEHAVIOUR §16): the SDK shows the call as denied.
            out.push(json!({"type": "tool-output-denied", "toolCallId": id}));
        } else if is_error {
            let text = match result {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.push(json!({"type": "tool-output-error", "toolCallId": id, "errorText": text, "dynamic": true}));
        } else {
            out.push(json!({"type": "tool-output-available", "toolCallId": id, "output": result, "dynamic": true}));
        }
    }

    /// An approval request for each open approval call not yet asked about.
    fn ask(&mut self, out: &mut Vec<Value>) {
        self.start(out);
        let open = std::mem::take(&mut self.open);
        for call in open.iter().filter(|c| c.kind == ActionKind::Approval) {
            self.call(&call.tool_call_id, &call.tool_name, &call.args, out);
            if self.asked.insert(call.tool_call_id.clone()) {
                out.push(json!({
                    "type": "tool-approval-request",
                    "approvalId": call.tool_call_id,
                    "toolCallId": call.tool_call_id,
                }));
            }
        }
        self.open = open;
    }

    /// A part of the step in flight.
    fn part(&mut self, episode: i64, part: &StreamEvent, out: &mut Vec<Value>) {
        self.open_step(episode, out);
        self.streamed = true;
        let block = |id: &str| format!("{episode}-{id}");
        match part {
            StreamEvent::TextStart { id } | StreamEvent::ReasoningStart { id } => {
                let reasoning = matches!(part, StreamEvent::ReasoningStart { .. });
                let ui_id = block(id);
                let kind = if reasoning { "reasoning-start" } else { "text-start" };
                out.push(json!({"type": kind, "id": ui_id}));
                self.blocks.push(Block { ui_id, reasoning, sent: String::new(), open: true });
            }
            StreamEvent::TextDelta { id, delta } | StreamEvent::ReasoningDelta { id, delta } => {
                let reasoning = matches!(part, StreamEvent::ReasoningDelta { .. });
                let ui_id = block(id);
                let kind = if reasoning { "reasoning-delta" } else { "text-delta" };
                out.push(json!({"type": kind, "id": ui_id, "delta": delta}));
                if let Some(block) = self.block(ui_id, reasoning) {
                    block.sent.push_str(delta);
                }
            }
            StreamEvent::TextEnd { id } | StreamEvent::ReasoningEnd { id, .. } => {
                let reasoning = matches!(part, StreamEvent::ReasoningEnd { .. });
                let ui_id = block(id);
                if let Some(block) = self.block(ui_id.clone(), reasoning) {
                    block.open = false;
                }
                let kind = if reasoning { "reasoning-end" } else { "text-end" };
                out.push(json!({"type": kind, "id": ui_id}));
            }
            StreamEvent::ToolInputStart { id, tool_name } if self.calls.insert(id.clone()) => {
                out.push(json!({"type": "tool-input-start", "toolCallId": id, "toolName": tool_name, "dynamic": true}));
            }
            StreamEvent::ToolInputDelta { id, delta } => {
                out.push(
                    json!({"type": "tool-input-delta", "toolCallId": id, "inputTextDelta": delta}),
                );
            }
            StreamEvent::ToolCall { id, tool_name, args, .. } => {
                self.call(id, tool_name, args, out)
            }
            StreamEvent::ToolResult { id, result, is_error, .. } => {
                Self::output(id, result, *is_error, out);
            }
            StreamEvent::Source { id, url, title } => {
                out.push(json!({"type": "source-url", "sourceId": id, "url": url, "title": title}));
            }
            // The step ends with its persisted row (which may hold more than was streamed).
            _ => {}
        }
    }

    /// A persisted row: it completes what was streamed of its step (a subscriber may see the
    /// row before the step's last parts) or, for a step not streamed here (a resumed turn),
    /// is sent whole; a tool row's results are sent as outputs.
    fn message(&mut self, message: &Message, out: &mut Vec<Value>) {
        match message.role {
            Role::Assistant => {
                if !self.streamed {
                    self.close_step(out);
                    self.open_step(-message.id.0, out);
                }
                let (mut texts, mut thoughts) = (0, 0);
                for (index, part) in message.content.iter().enumerate() {
                    let id = format!("m{}-{index}", message.id.0);
                    match part {
                        Part::Text { text } => {
                            self.complete_block(texts, false, text, &id, out);
                            texts += 1;
                        }
                        Part::Reasoning { text, .. } => {
                            self.complete_block(thoughts, true, text, &id, out);
                            thoughts += 1;
                        }
                        Part::ToolCall { tool_call_id, tool_name, args, .. } => {
                            self.call(tool_call_id, tool_name, args, out);
                        }
                        Part::ToolResult { tool_call_id, result, is_error, .. } => {
                            Self::output(tool_call_id, result, *is_error, out);
                        }
                        _ => {}
                    }
                }
                self.close_step(out);
            }
            Role::Tool => {
                self.start(out);
                for part in &message.content {
                    if let Part::ToolResult { tool_call_id, result, is_error, .. } = part {
                        Self::output(tool_call_id, result, *is_error, out);
                    }
                }
            }
            _ => {}
        }
    }

    /// The parts for `event`, and whether the message is complete.
    pub fn translate(&mut self, event: &ChatEvent) -> (Vec<Value>, bool) {
        let mut out = Vec::new();
        let done = match &event.kind {
            ChatEventKind::TurnStarted { turn } if *turn < self.first_turn => false,
            ChatEventKind::TurnStarted { turn } => {
                self.turn = Some(*turn);
                self.start(&mut out);
                false
            }
            ChatEventKind::MessagePart { part } => {
                self.part(event.cursor.episode, part, &mut out);
                false
            }
            ChatEventKind::Message { message } => {
                self.message(message, &mut out);
                false
            }
            ChatEventKind::Error { message } => {
                self.start(&mut out);
                out.push(json!({"type": "error", "errorText": message}));
                false
            }
            ChatEventKind::ActionRequired { calls } => {
                self.open.clone_from(calls);
                if self.turn.is_some() {
                    self.ask(&mut out);
                }
                false
            }
            ChatEventKind::TurnEnded { turn, ending } if self.turn == Some(*turn) => {
                self.start(&mut out);
                self.close_step(&mut out);
                match ending {
                    TurnEnding::Finished => {
                        out.push(json!({"type": "finish", "finishReason": "stop"}));
                        true
                    }
                    TurnEnding::Interrupted => {
                        out.push(json!({"type": "abort", "reason": "interrupted"}));
                        true
                    }
                    TurnEnding::Failed { reason } => {
                        out.push(json!({"type": "error", "errorText": reason}));
                        out.push(json!({"type": "finish", "finishReason": "error"}));
                        true
                    }
                    TurnEnding::AwaitingAction => {
                        self.ask(&mut out);
                        out.push(json!({"type": "finish", "finishReason": "tool-calls"}));
                        true
                    }
                    // Shut down or lost: another worker runs the turn again.
                    _ => false,
                }
            }
            ChatEventKind::HistoryRewritten { .. } => {
                self.start(&mut out);
                out.push(json!({"type": "abort", "reason": "the history was edited"}));
                true
            }
            _ => false,
        };
        (out, done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatd_core::ChatId;

    fn event(cursor: Cursor, kind: ChatEventKind) -> ChatEvent {
        ChatEvent { chat_id: ChatId::new(), cursor, kind }
    }

    fn part(seq: i64, part: StreamEvent) -> ChatEvent {
        event(Cursor::new(1, 5, seq), ChatEventKind::MessagePart { part })
    }

    #[test]
    fn a_row_that_overtakes_its_last_parts_completes_the_streamed_message() {
        let mut t = Translator::new("m".into(), 1);
        let mut out = Vec::new();
        for (seq, p) in [
            StreamEvent::TextStart { id: "t".into() },
            StreamEvent::TextDelta { id: "t".into(), delta: "Hello, ".into() },
            StreamEvent::ToolInputStart { id: "c1".into(), tool_name: "execute".into() },
        ]
        .into_iter()
        .enumerate()
        {
            out.extend(t.translate(&part(i64::try_from(seq).unwrap_or(0) + 1, p)).0);
        }
        let row: Message = serde_json::from_value(json!({
            "id": 2, "chat_id": ChatId::new(), "model_config_id": null,
            "created_at": "2026-11-30T00:00:00Z", "role": "assistant", "visibility": "both",
            "usage": null, "context_limit": null, "compressed": false,
            "content": [Part::text("Hello, world"), Part::tool_call("c1", "execute", json!({"command": "ls"}))],
        }))
        .expect("a row");
        out.extend(
            t.translate(&event(Cursor::new(2, 0, 0), ChatEventKind::Message { message: row })).0,
        );
        let types: Vec<&str> = out.iter().filter_map(|c| c["type"].as_str()).collect();
        assert_eq!(
            types,
            vec![
                "start",
                "start-step",
                "text-start",
                "text-delta",
                "tool-input-start",
                "text-delta",
                "text-end",
                "tool-input-available",
                "finish-step"
            ]
        );
        assert_eq!(out[5]["delta"], "world", "only what the parts had not said");
        assert_eq!(out[7]["input"], json!({"command": "ls"}));
    }
}
