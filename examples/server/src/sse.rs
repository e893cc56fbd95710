//! Server-Sent Events: a chat's stream (`GET /api/chats/{id}/stream`) and the chat list
//! (`GET /api/chats/watch`). Every event's `id:` is its cursor and its `event:` its type; its
//! `data:` is the event as one line of JSON — JSON escapes CR and LF, so no text a model or a
//! person writes (`\r\n`, `event: x`, `id: 5`, a blank line) can end an event early or forge a
//! field. A client resumes with `Last-Event-ID` (what `EventSource` sends on its own when it
//! reconnects) or `?after=`; the header wins, as it is the newer of the two. Comments keep
//! idle connections alive; `retry:` asks browsers to reconnect after one second.

use std::convert::Infallible;
use std::str::FromStr;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use axum::routing::get;
use chatd_core::events::Cursor;
use chatd_core::store::ListCursor;
use futures::stream::{BoxStream, StreamExt};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::paths::ChatPath;
use crate::rest::Params;
use crate::slots::Slot;

/// How often an idle stream sends a keep-alive comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// What browsers are asked to wait before reconnecting.
pub const RETRY: Duration = Duration::from_secs(1);

/// The routes outside one chat.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/chats/watch", get(watch))
}

/// The routes of one chat, nested under `/api/chats/{id}`.
pub fn chat_routes() -> Router<AppState> {
    Router::new().route("/stream", get(stream))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct After {
    after: Option<String>,
}

/// Where to resume: `Last-Event-ID`, else `?after=`, else the start.
pub(crate) fn resume_from<T: FromStr>(
    headers: &HeaderMap,
    after: Option<&str>,
) -> ApiResult<Option<T>>
where
    T::Err: std::fmt::Display,
{
    let header =
        headers.get("last-event-id").and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty());
    match header.or(after.filter(|a| !a.is_empty())) {
        None => Ok(None),
        Some(raw) => {
            raw.parse().map(Some).map_err(|err: T::Err| ApiError::bad_request(err.to_string()))
        }
    }
}

/// One SSE event: `id:` the cursor, `event:` its name, `data:` the event as one line of
/// JSON (serialized once: this is the relay's hot path).
pub fn frame<E: Serialize>(cursor: &str, name: &str, event: &E) -> Event {
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".to_owned());
    Event::default().id(cursor).event(name).data(data)
}

/// An SSE response with keep-alive comments.
pub(crate) type Stream = Sse<KeepAliveStream<BoxStream<'static, Result<Event, Infallible>>>>;

/// `events` as an SSE response that ends when the server cuts streams, holding `slot` until
/// it ends.
pub(crate) fn respond(
    state: &AppState,
    slot: Option<Slot>,
    events: BoxStream<'static, Event>,
) -> Stream {
    let hello = futures::stream::once(async { Event::default().retry(RETRY).comment("chatd") });
    let body = hello
        .chain(events)
        .take_until(state.next_cut())
        .map(move |event| {
            let _held = &slot;
            Ok(event)
        })
        .boxed();
    Sse::new(body).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

async fn stream(
    State(state): State<AppState>,
    authed: Authed,
    ChatPath(id): ChatPath,
    headers: HeaderMap,
    Params(query): Params<After>,
) -> ApiResult<Stream> {
    let after: Option<Cursor> = resume_from(&headers, query.after.as_deref())?;
    let slot = state.slots.take(&authed.actor)?;
    let events = state.chatd.subscribe(&authed.actor, id, after).await?;
    let frames =
        events.map(|event| frame(&event.cursor.to_string(), event.kind.name(), &event)).boxed();
    Ok(respond(&state, slot, frames))
}

async fn watch(
    State(state): State<AppState>,
    authed: Authed,
    headers: HeaderMap,
    Params(query): Params<After>,
) -> ApiResult<Stream> {
    let after: Option<ListCursor> = resume_from(&headers, query.after.as_deref())?;
    let slot = state.slots.take(&authed.actor)?;
    let events = state.chatd.watch(&authed.actor, after).await?;
    let frames =
        events.map(|event| frame(&event.cursor.to_string(), event.kind.name(), &event)).boxed();
    Ok(respond(&state, slot, frames))
}
