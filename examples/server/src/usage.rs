//! `GET /api/usage`: what model calls used and cost (BEHAVIOUR §17), summed and grouped —
//! a user's own, or (for an administrator) anyone's.
//!
//! Query parameters, all optional: `group` (`total`, `day`, `model`, `day_and_model`,
//! `owner`), `from` and `to` (RFC 3339 times, `[from, to)`), `chat_id` (a chat tree by its
//! root), `model_config_id`, and `owner` (administrators only). The answer is
//! `{"buckets": [...]}`, each bucket with its day, model config and model, or owner, and
//! `calls`, token sums, `cost_micros` (micro-units of the prices' currency),
//! `unpriced_calls` and `estimated_calls` (interrupted before the provider reported usage).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chatd_core::usage::{UsageGroup, UsageQuery};
use chatd_core::{ChatId, ModelConfigId, UserId};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::AppState;
use crate::auth::Authed;
use crate::error::ApiResult;
use crate::rest::Params;
use crate::views::UsageBuckets;

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/usage", get(usage))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageParams {
    #[serde(default)]
    group: UsageGroup,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    chat_id: Option<ChatId>,
    model_config_id: Option<ModelConfigId>,
    owner: Option<UserId>,
}

async fn usage(
    State(state): State<AppState>,
    authed: Authed,
    Params(params): Params<UsageParams>,
) -> ApiResult<Json<UsageBuckets>> {
    let mut query = UsageQuery::all().between(params.from, params.to).grouped(params.group);
    query.owner = params.owner;
    query.root_chat = params.chat_id;
    query.model_config = params.model_config_id;
    let buckets = state.chatd.usage(&authed.actor, query).await?;
    Ok(Json(UsageBuckets { buckets }))
}
