//! Ids in request paths, as extractors: a malformed id names a record that does not exist, so
//! its rejection is the same 404 an unknown id gets (never a 400 that would tell the two
//! apart).

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use chatd_core::{ChatId, MessageId, QueuedMessageId};

use crate::error::ApiError;

/// The chat of `/api/chats/{id}/…`.
#[derive(Debug, Clone, Copy)]
pub struct ChatPath(pub ChatId);

/// The message of `/api/chats/{id}/messages/{message}`.
#[derive(Debug, Clone, Copy)]
pub struct MessagePath(pub MessageId);

/// The queued message of `/api/chats/{id}/queue/{queued}…`.
#[derive(Debug, Clone, Copy)]
pub struct QueuedPath(pub QueuedMessageId);

/// The path parameter `name`, or `None`.
async fn param<S: Send + Sync>(parts: &mut Parts, state: &S, name: &str) -> Option<String> {
    let params = RawPathParams::from_request_parts(parts, state).await.ok()?;
    params.iter().find(|(key, _)| *key == name).map(|(_, value)| value.to_owned())
}

impl<S: Send + Sync> FromRequestParts<S> for ChatPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = param(parts, state, "id").await.unwrap_or_default();
        raw.parse::<uuid::Uuid>()
            .map(|id| ChatPath(ChatId(id)))
            .map_err(|_| ApiError::not_found("Chat not found."))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for MessagePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = param(parts, state, "message").await.unwrap_or_default();
        raw.parse::<i64>()
            .map(|id| MessagePath(MessageId(id)))
            .map_err(|_| ApiError::not_found("Chat message not found."))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueuedPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = param(parts, state, "queued").await.unwrap_or_default();
        raw.parse::<i64>()
            .map(|id| QueuedPath(QueuedMessageId(id)))
            .map_err(|_| ApiError::not_found("Queued message not found."))
    }
}
