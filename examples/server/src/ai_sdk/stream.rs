//! One answer as a UI message stream response: chatd's resumable stream, translated, ended
//! by `[DONE]` — or, when the server cuts it or the subscription ends early, by an aborted
//! connection, so that the SDK reports an error and the client resumes instead of taking a
//! partial answer for a finished one.

use std::convert::Infallible;

use axum::http::header::{CACHE_CONTROL, HeaderName, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chatd_core::events::Cursor;
use chatd_core::service::Actor;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::PROTOCOL_HEADER;
use super::translate::Translator;
use crate::AppState;
use crate::error::ApiResult;
use crate::slots::Slot;

/// What the answer waits for before its first part.
#[derive(Debug, Default)]
pub(super) struct Answer {
    /// The answer's `UIMessage` id (default: named after `after`, or after the awaited
    /// message).
    pub(super) message_id: Option<String>,
    /// The answer is to a message that is not in the history yet (queued behind a turn that
    /// is being interrupted): its client id, or `None` for the next user message.
    pub(super) awaits: Option<Option<String>>,
}

/// What the body sends: a part, the end of the message, or a cut (the connection aborts).
enum Chunk {
    Part(Value),
    Done,
}

/// The error that aborts a cut response (never seen by the client as a body).
#[derive(Debug, thiserror::Error)]
#[error("the answer's stream was cut before it ended; resume it")]
struct Cut;

/// The turn that follows `after` (turn `first_turn` or, if it is lost, a re-run) as protocol
/// parts; `slot` is held until the stream's task ends.
pub(super) async fn turn(
    state: &AppState,
    slot: Option<Slot>,
    actor: &Actor,
    id: chatd_core::ChatId,
    after: Cursor,
    first_turn: i64,
    answer: Answer,
) -> ApiResult<Response> {
    let mut events = state.chatd.subscribe(actor, id, Some(after)).await?;
    let (tx, rx) = mpsc::channel::<Chunk>(64);
    let named = answer.message_id.filter(|m| !m.is_empty() && m.len() <= 256);
    let message_id = named
        .clone()
        .unwrap_or_else(|| super::ui::answer_id(id, chatd_core::MessageId(after.message)));
    let mut translator = Translator::new(message_id, first_turn);
    if let Some(client_id) = answer.awaits {
        translator = translator.after_user_message(client_id, named.is_none());
    }
    let cut = state.next_cut();
    tokio::spawn(async move {
        let _slot = slot;
        let follow = async {
            while let Some(event) = events.next().await {
                let (chunks, done) = translator.translate(&event);
                for chunk in chunks {
                    if tx.send(Chunk::Part(chunk)).await.is_err() {
                        return;
                    }
                }
                if done {
                    let _ = tx.send(Chunk::Done).await;
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
    let body: BoxStream<'static, Result<Event, Cut>> =
        futures::stream::unfold(Some(rx), |rx| async move {
            let mut rx = rx?;
            match rx.recv().await {
                Some(Chunk::Done) => Some((Ok(Event::default().data("[DONE]")), None)),
                Some(Chunk::Part(chunk)) => {
                    Some((Ok(Event::default().data(chunk.to_string())), Some(rx)))
                }
                // Ended without `[DONE]`: abort, never a clean end the SDK would take for a
                // finished answer.
                None => Some((Err(Cut), None)),
            }
        })
        .boxed();
    let mut response = Sse::new(body).keep_alive(KeepAlive::default()).into_response();
    let headers = response.headers_mut();
    headers.insert(HeaderName::from_static(PROTOCOL_HEADER), HeaderValue::from_static("v1"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// A message with nothing in it, finished (`tool-calls`: answers are still awaited).
pub(super) fn finished_message(message_id: &str) -> Response {
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
