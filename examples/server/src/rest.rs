//! JSON REST over every [`Chatd`](chatd_core::Chatd) operation. Each handler authenticates
//! (`Authed` / `Admin`), parses its input into the library's types, and maps errors through
//! [`ApiError`]. Ids that do not parse are *not found*, like ids of someone else's chats.

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chatd_core::DiffStatus;
use chatd_core::store::{BusyBehavior, Delivery, SendMessage};
use chatd_core::{
    Chat, ChatId, ChatStatus, Message, MessageId, ModelConfigId, NewChat, Part, QueuedMessage,
};
use chatd_core::{ChatCursor, ChatFilter};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::auth::{Authed, COOKIE_NAME};
use crate::error::{ApiError, ApiResult};
use crate::paths::{ChatPath, MessagePath, QueuedPath};
use crate::views::{ChatPage, Edited, Me, MessageList, Sent};

/// A JSON body whose rejections are [`ApiError`]s.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(Body(value))
    }
}

/// Query parameters whose rejections are [`ApiError`]s.
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Params(value))
    }
}

/// A chat id from a path (a malformed one is a chat that does not exist).
pub(crate) fn chat_id(raw: &str) -> ApiResult<ChatId> {
    raw.parse::<uuid::Uuid>().map(ChatId).map_err(|_| ApiError::not_found("Chat not found."))
}

/// Message content: a string (one text part) or parts.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// One text part.
    Text(String),
    /// Typed parts.
    Parts(Vec<Part>),
}

impl Content {
    fn into_parts(self) -> Vec<Part> {
        match self {
            Content::Text(text) => vec![Part::text(text)],
            Content::Parts(parts) => parts,
        }
    }
}

/// The routes outside one chat.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/me", get(me))
        .route("/api/session", post(start_session).delete(end_session))
        .route("/api/chats", get(list_chats).post(create_chat))
        .merge(crate::admin::routes())
}

/// The routes of one chat, nested under `/api/chats/{id}` (see [`crate::app`]).
pub fn chat_routes() -> Router<AppState> {
    Router::new()
        .route("/", get(get_chat).patch(update_chat).delete(delete_chat))
        .route("/messages", get(list_messages).post(send_message))
        .route("/messages/{message}", axum::routing::patch(edit_message))
        .route("/fork", post(fork_chat))
        .route("/interrupt", post(interrupt))
        .route("/pause", post(pause))
        .route("/resume", post(resume))
        .route("/complete", post(complete))
        .route("/compact", post(compact))
        .route("/queue", get(list_queued))
        .route("/queue/{queued}", axum::routing::delete(delete_queued))
        .route("/queue/{queued}/promote", post(promote_queued))
        .route("/diff", get(diff_status).post(report_git_reference))
}

async fn me(authed: Authed) -> Json<Me> {
    Json(Me { user_id: authed.actor.user_id(), name: authed.name, admin: authed.actor.is_admin() })
}

/// Sets the session cookie for the bearer token used (for `EventSource`, which cannot send
/// headers).
async fn start_session(authed: Authed) -> ApiResult<Response> {
    let cookie = format!("{COOKIE_NAME}={}; HttpOnly; SameSite=Strict; Path=/", authed.token);
    let value = HeaderValue::from_str(&cookie)
        .map_err(|_| ApiError::bad_request("the token cannot be a cookie"))?;
    let mut headers = HeaderMap::new();
    headers.insert(SET_COOKIE, value);
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}

async fn end_session() -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        SET_COOKIE,
        HeaderValue::from_static("chatd_token=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    (StatusCode::NO_CONTENT, headers).into_response()
}

// ----- chats ---------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateChat {
    title: Option<String>,
    message: Option<Content>,
    model_config_id: Option<ModelConfigId>,
    system_prompt: Option<String>,
}

async fn create_chat(
    State(state): State<AppState>,
    authed: Authed,
    Body(body): Body<CreateChat>,
) -> ApiResult<(StatusCode, Json<Chat>)> {
    let owner = authed.actor.user_id().unwrap_or_default();
    let mut new = NewChat::new(owner);
    if let Some(title) = body.title {
        new = new.with_title(title);
    }
    if let Some(message) = body.message {
        new = new.with_message(message.into_parts());
    }
    if let Some(id) = body.model_config_id {
        new = new.with_model_config(id);
    }
    if let Some(prompt) = body.system_prompt {
        new = new.with_system_prompt(prompt);
    }
    let chat = state.chatd.create_chat(&authed.actor, new).await?;
    Ok((StatusCode::CREATED, Json(chat)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Comma-separated statuses.
    status: Option<String>,
    archived: Option<bool>,
    limit: Option<usize>,
    /// The `next` of the previous page.
    after: Option<String>,
    /// Only chats with every one of these labels: `key:value` pairs separated by commas.
    labels: Option<String>,
    /// Only chats whose title or messages match this text (BEHAVIOUR §18).
    q: Option<String>,
}

/// A page position as `<created_at micros>_<chat id>`.
fn encode_page(cursor: &ChatCursor) -> String {
    format!("{}_{}", cursor.created_at.timestamp_micros(), cursor.id)
}

fn decode_page(raw: &str) -> ApiResult<ChatCursor> {
    let bad = || ApiError::bad_request(format!("invalid page cursor {raw:?}"));
    let (micros, id) = raw.split_once('_').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    let created_at = chrono::DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
    let id = id.parse::<uuid::Uuid>().map_err(|_| bad())?;
    Ok(ChatCursor { created_at, id: ChatId(id) })
}

async fn list_chats(
    State(state): State<AppState>,
    authed: Authed,
    Params(query): Params<ListQuery>,
) -> ApiResult<Json<ChatPage>> {
    let mut filter = ChatFilter::owner(authed.actor.user_id().unwrap_or_default());
    if let Some(statuses) = &query.status {
        for raw in statuses.split(',').filter(|s| !s.is_empty()) {
            let status: ChatStatus = raw
                .parse()
                .map_err(|_| ApiError::bad_request(format!("unknown status {raw:?}")))?;
            filter.statuses.push(status);
        }
    }
    filter.archived = query.archived.or(Some(false));
    if let Some(limit) = query.limit {
        if limit == 0 || limit > ChatFilter::MAX_LIMIT {
            return Err(ApiError::bad_request(format!(
                "limit must be between 1 and {}",
                ChatFilter::MAX_LIMIT
            )));
        }
        filter.limit = limit;
    }
    if let Some(after) = &query.after {
        filter.after = Some(decode_page(after)?);
    }
    for pair in query.labels.as_deref().unwrap_or_default().split(',').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once(':').ok_or_else(|| {
            ApiError::bad_request(format!("a label filter is key:value, not {pair:?}"))
        })?;
        filter = filter.with_label(key.trim(), value.trim());
    }
    if let Some(text) = &query.q {
        filter = filter.with_query(text.as_str());
    }
    let page = state.chatd.list_chats(&authed.actor, filter).await?;
    Ok(Json(ChatPage { next: page.next.as_ref().map(encode_page), chats: page.items }))
}

async fn get_chat(
    State(state): State<AppState>,
    authed: Authed,
    ChatPath(id): ChatPath,
) -> ApiResult<Json<Chat>> {
    Ok(Json(state.chatd.get_chat(&authed.actor, id).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateChat {
    title: Option<String>,
    archived: Option<bool>,
    /// Replaces the labels (`{}` clears them).
    labels: Option<std::collections::BTreeMap<String, String>>,
}

async fn update_chat(
    State(state): State<AppState>,
    authed: Authed,
    ChatPath(id): ChatPath,
    Body(body): Body<UpdateChat>,
) -> ApiResult<Json<Chat>> {
    if body.title.is_none() && body.archived.is_none() && body.labels.is_none() {
        return Err(ApiError::bad_request("nothing to change: give title, archived or labels"));
    }
    if let Some(labels) = body.labels {
        state.chatd.set_labels(&authed.actor, id, labels).await?;
    }
    if let Some(title) = &body.title {
        state.chatd.rename(&authed.actor, id, title).await?;
    }
    if let Some(archived) = body.archived {
        state.chatd.set_archived(&authed.actor, id, archived).await?;
    }
    Ok(Json(state.chatd.get_chat(&authed.actor, id).await?))
}

async fn delete_chat(
    State(state): State<AppState>,
    authed: Authed,
    ChatPath(id): ChatPath,
) -> ApiResult<StatusCode> {
    state.chatd.delete_chat(&authed.actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ----- messages ------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessagesQuery {
    after: Option<i64>,
    /// Also the messages edits took out of the history, each with `deleted` (its revision).
    #[serde(default)]
    include_deleted: bool,
}

async fn list_messages(
    State(state): State<AppState>,
    authed: Authed,
    ChatPath(id): ChatPath,
    Params(query): Params<MessagesQuery>,
) -> ApiResult<Json<MessageList>> {
    let after = query.after.map(MessageId);
    let (actor, chat) = (&authed.actor, id);
    let messages = if query.include_deleted {
        state.chatd.list_messages_with_deleted(actor, chat, after).await?
    } else {
        state.chatd.list_messages(actor, chat, after).await?
    };
    Ok(Json(MessageList { messages }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    content: Content,
    #[serde(default)]
    busy: BusyBehavior,
    model_config_id: Option<ModelConfigId>,
    /// The client's own id for the message, kept on it (BEHAVIOUR §1).
    client_id: Option<String>,
}

/// A send's outcome as JSON: `delivery` is `inserted`, `queued` or `after_stop`.
async fn send_message(
    State(state): State<AppState>,
    authed: Authed,
    ChatPath(id): ChatPath,
    Body(body): Body<SendBody>,
) -> ApiResult<(StatusCode, Json<Sent>)> {
    let mut send = SendMessage::new(body.content.into_parts()).with_busy(body.busy);
    if let Some(config) = body.model_config_id {
        send = send.with_model_config(config);
    }
    if let Some(client_id) = body.client_id {
        send = send.with_client_id(client_id);
    }
    let outcome = state.chatd.send_message(&authed.actor, id, send).await?;
    let status = match outcome.delivery {
        Delivery::Inserted(_) => StatusCode::CREATED,
        _ => StatusCode::ACCEPTED,
    };
    Ok((status, Json(Sent::from(outcome))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Edit {
    content: Content,
}

async fn edit_message(
    State(state): State<AppState>,
    authed: Authed,
    ChatPath(id): ChatPath,
    MessagePath(message): MessagePath,
    Body(body): Body<Edit>,
) -> ApiResult<Json<Edited>> {
    let (chat, message) = (id, message);
    let outcome =
        state.chatd.edit_message(&authed.actor, chat, message, body.content.into_parts()).await?;
    Ok(Json(Edited::from(outcome)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ForkBody {
    /// The message the fork's history ends with.
    message_id: i64,
}

/// `POST /api/chats/{id}/fork {"message_id"}`: a new chat holding the history up to that
/// message (BEHAVIOUR §18), `201` with the chat.
async fn fork_chat(
    State(state): State<AppState>,
    authed: Authed,
    ChatPath(id): ChatPath,
    Body(body): Body<ForkBody>,
) -> ApiResult<(StatusCode, Json<Chat>)> {
    let at = MessageId(body.message_id);
    let chat = state.chatd.fork_chat(&authed.actor, id, at).await?;
    Ok((StatusCode::CREATED, Json(chat)))
}

// ----- lifecycle -----------------------------------------------------------------------

/// Stops the running turn (its partial answer is kept).
async fn interrupt(
    State(state): State<AppState>,
    authed: Authed,
    ChatPath(id): ChatPath,
) -> ApiResult<Json<Chat>> {
    Ok(Json(state.chatd.interrupt(&authed.actor, id).await?))
}

/// Pauses the chat: nothing runs and the queue waits.
async fn pause(
    State(state): State<AppState>,
    authed: Authed,
    ChatPath(id): ChatPath,
) -> ApiResult<Json<Chat>> {
    Ok(Json(state.chatd.pause(&authed.actor, id).await?))
}

/// Resumes a paused chat.
async fn resume(
    State(state): State<AppState>,
    authed: Authed,
    ChatPath(id): ChatPath,
) -> ApiResult<Json<Chat>> {
    Ok(Json(state.chatd.resume(&authed.actor, id).await?))
}

/// Closes the chat as done.
async fn complete(
    State(state): State<AppState>,
    authed: Authed,
    ChatPath(id): ChatPath,
) -> ApiResult<Json<Chat>> {
    Ok(Json(state.chatd.complete(&authed.actor, id).await?))
}

/// Summarises the chat's history now.
async fn compact(
    State(state): State<AppState>,
    authed: Authed,
    ChatPath(id): ChatPath,
) -> ApiResult<Json<Vec<Message>>> {
    Ok(Json(state.chatd.compact(&authed.actor, id).await?))
}

/// The chat's queue, oldest first.
async fn list_queued(
    State(state): State<AppState>,
    authed: Authed,
    ChatPath(id): ChatPath,
) -> ApiResult<Json<Vec<QueuedMessage>>> {
    Ok(Json(state.chatd.list_queued(&authed.actor, id).await?))
}

// ----- queue ---------------------------------------------------------------------------

async fn promote_queued(
    State(state): State<AppState>,
    authed: Authed,
    ChatPath(id): ChatPath,
    QueuedPath(queued): QueuedPath,
) -> ApiResult<Json<Sent>> {
    let outcome = state.chatd.promote_queued(&authed.actor, id, queued).await?;
    Ok(Json(Sent::from(outcome)))
}

async fn delete_queued(
    State(state): State<AppState>,
    authed: Authed,
    ChatPath(id): ChatPath,
    QueuedPath(queued): QueuedPath,
) -> ApiResult<Json<Vec<QueuedMessage>>> {
    let queue = state.chatd.delete_queued(&authed.actor, id, queued).await?;
    Ok(Json(queue))
}

// ----- diff status ---------------------------------------------------------------------

async fn diff_status(
    State(state): State<AppState>,
    authed: Authed,
    ChatPath(id): ChatPath,
) -> ApiResult<Json<Option<DiffStatus>>> {
    Ok(Json(state.chatd.diff_status(&authed.actor, id).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GitReference {
    #[serde(default)]
    remote: String,
    #[serde(default)]
    branch: String,
}

async fn report_git_reference(
    State(state): State<AppState>,
    authed: Authed,
    ChatPath(id): ChatPath,
    Body(body): Body<GitReference>,
) -> ApiResult<Json<DiffStatus>> {
    let status =
        state.chatd.report_git_reference(&authed.actor, id, &body.remote, &body.branch).await?;
    Ok(Json(status))
}
