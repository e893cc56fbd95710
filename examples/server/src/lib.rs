//! The chatd example service, as a library so that tests can start it on any port:
//! [`app`] builds the router over an [`AppState`] (a [`Chatd`], the bearer tokens, and a
//! switch that cuts every open stream — the "network drop" button of the demo and tests).
//!
//! - `/api/...`: JSON REST for every facade operation ([`rest`], [`admin`]), errors as
//!   `{"error": {"code", "message"}}` with the status codes of BEHAVIOUR §1 and §11 ([`error`]);
//! - `/api/chats/{id}/stream` and `/api/chats/watch`: Server-Sent Events whose `id:` is the
//!   event cursor, resumed from `Last-Event-ID` or `?after=` ([`sse`]);
//! - `/ai/chat`, `/ai/chat/{id}/stream` and `/ai/chat/{id}/messages`: the AI SDK's UI message
//!   stream protocol ([`ai_sdk`]), so a `useChat` front end works against chatd unchanged;
//! - `/`: the web UI ([`ui`]).
//!
//! Each user may hold at most [`slots::MAX_STREAMS_PER_USER`] streams open at once.

pub mod admin;
pub mod ai_sdk;
pub mod auth;
pub mod error;
pub mod files;
mod origin;
pub mod paths;
pub mod rest;
pub mod serve;
pub mod slots;
pub mod sse;
pub mod tool_calls;
pub mod ui;
pub mod usage;
pub mod views;

use std::sync::Arc;
use tower_http::trace::TraceLayer;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use chatd_core::Chatd;
use tokio::sync::watch;

pub use auth::{TokenEntry, Tokens};
pub use serve::{ServeOptions, serve};

/// The largest request body the API accepts (a message with inline files fits).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The chat service.
    pub chatd: Chatd,
    /// Bearer tokens and the actors they stand for.
    pub tokens: Arc<Tokens>,
    /// Bumped to end every open stream (clients reconnect and resume by cursor).
    cuts: Arc<watch::Sender<u64>>,
    /// Open streams per user.
    pub(crate) slots: Arc<slots::StreamSlots>,
    /// The demo's per-chat "ask before running tools" switch, shared with the workers of
    /// this process (`None`: the routes that set it answer 404).
    pub(crate) ask: Option<chatd_demo::AskSwitch>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl AppState {
    /// State over `chatd` with `tokens`.
    #[must_use]
    pub fn new(chatd: Chatd, tokens: Tokens) -> Self {
        AppState {
            chatd,
            tokens: Arc::new(tokens),
            cuts: Arc::new(watch::channel(0).0),
            slots: Arc::new(slots::StreamSlots::new(slots::MAX_STREAMS_PER_USER)),
            ask: None,
        }
    }

    /// Serves the per-chat "ask before running tools" switch that this process's workers'
    /// policy reads (`GET`/`PUT /api/chats/{id}/ask`).
    #[must_use]
    pub fn with_ask_switch(mut self, ask: chatd_demo::AskSwitch) -> Self {
        self.ask = Some(ask);
        self
    }

    /// Lets each user hold at most `max` streams open at once (default
    /// [`MAX_STREAMS_PER_USER`](slots::MAX_STREAMS_PER_USER)); one more is 429.
    #[must_use]
    pub fn with_max_streams_per_user(mut self, max: usize) -> Self {
        self.slots = Arc::new(slots::StreamSlots::new(max));
        self
    }

    /// Streams `user` holds open now.
    #[must_use]
    pub fn open_streams(&self, user: chatd_core::UserId) -> usize {
        self.slots.open(user)
    }

    /// Ends every open stream now, as a dropped connection would.
    pub fn cut_streams(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Fires when [`cut_streams`](Self::cut_streams) is next called.
    pub(crate) fn next_cut(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut cuts = self.cuts.subscribe();
        async move {
            let _ = cuts.changed().await;
        }
    }
}

/// 405 in the API's error shape (axum's own has an empty body).
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

type HttpRequest = axum::http::Request<axum::body::Body>;
type HttpFailures =
    tower_http::classify::SharedClassifier<tower_http::classify::ServerErrorsAsFailures>;

/// One `request` span per request, with its method and path (never its query or headers,
/// which may carry user text or credentials): everything a handler logs, and the error
/// `log_errors` reports, is inside it.
fn request_spans() -> TraceLayer<HttpFailures, fn(&HttpRequest) -> tracing::Span> {
    fn span(request: &HttpRequest) -> tracing::Span {
        let path = request.uri().path();
        tracing::info_span!("request", method = %request.method(), path = %path)
    }
    TraceLayer::new_for_http().make_span_with(span as fn(&_) -> _)
}

/// The whole service: every module's routes, merged here, and the fallbacks (an unknown
/// route is a 404 and a wrong method a 405, both in the API's error shape). One chat's
/// routes are nested under `/api/chats/{id}`, whose `id` every handler there reads with
/// [`paths::ChatPath`].
pub fn app(state: AppState) -> Router {
    let one_chat = rest::chat_routes()
        .merge(tool_calls::chat_routes())
        .merge(files::chat_routes())
        .merge(sse::chat_routes());
    Router::new()
        .nest("/api/chats/{id}", one_chat)
        .merge(files::routes())
        .merge(rest::routes())
        .merge(sse::routes())
        .merge(ai_sdk::routes())
        .merge(usage::routes())
        .merge(ui::routes())
        .fallback(|| async { error::ApiError::not_found("no such route") })
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(origin::same_origin_only))
        .layer(axum::middleware::from_fn(error::log_errors))
        .layer(request_spans())
        .with_state(state)
}
