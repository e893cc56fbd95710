//! Attachments over HTTP (BEHAVIOUR §19): uploads as raw bytes (the type is sniffed from
//! them, never taken from the request), downloads for the owner only (anyone else's request
//! is *not found*), and a chat's files.
//!
//! - `POST /api/files?name=shot.png[&chat_id=…]` — the body is the file; `201` with the file's
//!   description (`id`, `name`, `media_type`, `size`, `chat_id`, `created_at`).
//! - `GET /api/files/{id}` — the bytes, with the sniffed type, `nosniff` and a sandboxing
//!   content security policy; images and PDFs inline, text as an attachment.
//! - `GET /api/chats/{id}/files` — the chat's files.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chatd_core::{ChatId, FileId};
use serde::Deserialize;

use crate::AppState;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::paths::ChatPath;
use crate::rest::{Params, chat_id};
use crate::views::{FileList, FileView};

/// The largest upload body: the largest file chatd stores by default.
pub const MAX_UPLOAD_BYTES: usize = chatd_core::store::Limits::DEFAULT.max_file_bytes;

/// The routes outside one chat.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/files", post(upload).layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES)))
        .route("/api/files/{id}", get(download))
}

/// The routes of one chat, nested under `/api/chats/{id}`.
pub fn chat_routes() -> Router<AppState> {
    Router::new().route("/files", get(chat_files))
}

/// A file id from a path (a malformed one is a file that does not exist).
fn file_id(raw: &str) -> ApiResult<FileId> {
    raw.parse::<uuid::Uuid>().map(FileId).map_err(|_| ApiError::not_found("File not found."))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    name: Option<String>,
    chat_id: Option<String>,
}

async fn upload(
    State(state): State<AppState>,
    authed: Authed,
    Params(query): Params<UploadQuery>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<FileView>)> {
    let chat: Option<ChatId> = query.chat_id.as_deref().map(chat_id).transpose()?;
    let name = query.name.unwrap_or_else(|| "file".to_owned());
    let meta = state.chatd.upload_file(&authed.actor, chat, &name, body.to_vec()).await?;
    Ok((StatusCode::CREATED, Json(FileView::from(&meta))))
}

/// `attachment; filename*=UTF-8''…` (or `inline`), with the name percent-encoded.
fn disposition(kind: &str, name: &str) -> String {
    let mut encoded = String::new();
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b".-_".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("{kind}; filename*=UTF-8''{encoded}")
}

async fn download(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let file = state.chatd.read_file(&authed.actor, file_id(&id)?).await?;
    let media = &file.meta.media_type;
    let content_type =
        if media == "text/plain" { "text/plain; charset=utf-8".to_owned() } else { media.clone() };
    let kind = if media.starts_with("image/") || media == "application/pdf" {
        "inline"
    } else {
        "attachment"
    };
    let mut headers = HeaderMap::new();
    let value = |text: &str| {
        HeaderValue::from_str(text).map_err(|_| ApiError::bad_request("unrepresentable header"))
    };
    headers.insert(header::CONTENT_TYPE, value(&content_type)?);
    headers.insert(header::CONTENT_DISPOSITION, value(&disposition(kind, &file.meta.name))?);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600"));
    Ok((StatusCode::OK, headers, file.bytes).into_response())
}

async fn chat_files(
    State(state): State<AppState>,
    authed: Authed,
    ChatPath(id): ChatPath,
) -> ApiResult<Json<FileList>> {
    let files = state.chatd.chat_files(&authed.actor, id).await?;
    Ok(Json(FileList { files: files.iter().map(FileView::from).collect() }))
}

#[cfg(test)]
mod tests {
    use super::disposition;

    #[test]
    fn file_names_are_encoded_in_the_disposition() {
        assert_eq!(disposition("inline", "a b.png"), "inline; filename*=UTF-8''a%20b.png");
        assert_eq!(
            disposition("attachment", "\"x\";\r\n"),
            "attachment; filename*=UTF-8''%22x%22%3B%0D%0A"
        );
    }
}
