//! Errors as JSON with a stable shape — `{"error": {"code": "...", "message": "..."}}` — and
//! the status codes of BEHAVIOUR §1 and §11: 400 validation, 401 no or unknown token, 403 a
//! missing scope or an admin-only route, 404 not found (also another user's chat: existence
//! does not leak), 409 a conflict or a refused state transition, 413 a body over the limit,
//! 429 a full queue, 503 the store unreachable, 500 anything else (details only in the log).

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chatd_core::service::ChatdError;
use chatd_core::store::StoreError;
use serde_json::json;

/// An API error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable code (`not_found`, `queue_full`, ...).
    pub code: &'static str,
    /// A sentence for a person.
    pub message: String,
    /// What the log gets and the response never shows (the store's or the service's own
    /// text); the `log_errors` layer writes it, with the request's method and path.
    pub detail: Option<String>,
}

/// What a response carries for the `log_errors` layer (the error's own text).
#[derive(Debug, Clone)]
pub struct ErrorDetail {
    /// The response's status.
    pub status: StatusCode,
    /// The text to log.
    pub detail: String,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    #[must_use]
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), detail: None }
    }

    /// The error with `detail` for the log.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// 400.
    #[must_use]
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 401.
    #[must_use]
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a valid bearer token (or session cookie) is required",
        )
    }

    /// 403.
    #[must_use]
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404.
    #[must_use]
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        let message = err.to_string();
        match err {
            StoreError::NotFound { .. } => Self::not_found(message),
            StoreError::Conflict(_) => Self::new(StatusCode::CONFLICT, "conflict", message),
            StoreError::InvalidTransition { .. } => {
                Self::new(StatusCode::CONFLICT, "invalid_transition", message)
            }
            StoreError::LeaseLost { .. } => Self::new(StatusCode::CONFLICT, "conflict", message),
            StoreError::QueueFull { .. } => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, "queue_full", message)
            }
            StoreError::Validation { .. } => {
                Self::new(StatusCode::BAD_REQUEST, "validation", message)
            }
            StoreError::Unavailable { .. } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the store is unavailable; try again",
            )
            .with_detail(message),
            _ => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
                .with_detail(message),
        }
    }
}

impl From<ChatdError> for ApiError {
    fn from(err: ChatdError) -> Self {
        match err {
            ChatdError::Forbidden(reason) => Self::forbidden(reason),
            ChatdError::Store(err) => err.into(),
            ChatdError::Compaction(reason) => {
                Self::new(StatusCode::BAD_GATEWAY, "compaction_failed", reason)
            }
            ChatdError::SpendLimit(refusal) => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, "spend_limit", refusal.to_string())
            }
            ChatdError::TimedOut(after) => Self::new(
                StatusCode::GATEWAY_TIMEOUT,
                "timed_out",
                format!("the turn did not end within {after:?}"),
            ),
            other => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
                .with_detail(other.to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            return Self::new(status, "too_large", "the request body is too large");
        }
        if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
            return Self::new(status, "unsupported_media_type", rejection.body_text());
        }
        // Syntax and data errors alike are 400 (axum says 422 for the latter).
        Self::bad_request(rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request(rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    /// The JSON error; the detail rides along as an extension for `log_errors` (a
    /// conversion has no side effect: the log is written once, where the request is known).
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, Json(body)).into_response();
        if let Some(detail) = self.detail {
            response.extensions_mut().insert(ErrorDetail { status: self.status, detail });
        }
        response
    }
}

/// Logs the detail of every error response, with the request's method and path: 5xx as
/// errors, the rest (a 503 from an unreachable store included) as warnings.
pub async fn log_errors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let response = next.run(request).await;
    if let Some(ErrorDetail { status, detail }) = response.extensions().get::<ErrorDetail>() {
        if *status == StatusCode::SERVICE_UNAVAILABLE || status.is_client_error() {
            tracing::warn!(%method, %path, status = status.as_u16(), error = %detail, "request failed");
        } else {
            tracing::error!(%method, %path, status = status.as_u16(), error = %detail, "request failed");
        }
    }
    response
}

/// A handler's result.
pub type ApiResult<T> = Result<T, ApiError>;
