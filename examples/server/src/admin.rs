//! Configuration routes: providers and model configs (writes and the provider list are
//! admin-only; everyone lists the model configs they may use), and the switch that drops
//! every open stream.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chatd_core::call_options::CallOptions;
use chatd_core::usage::Prices;
use chatd_core::{
    ModelConfigId, ModelConfigUpdate, NewModelConfig, NewProvider, ProviderKind, ProviderUpdate,
    Secret,
};
use serde::Deserialize;

use crate::AppState;
use crate::auth::{Admin, Authed};
use crate::error::{ApiError, ApiResult};
use crate::rest::Body;
use chatd_core::ModelConfig;
use chatd_core::service::ProviderView;
use serde_json::Value;

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/model-configs", get(model_configs).post(create_model_config))
        .route(
            "/api/model-configs/{id}",
            axum::routing::patch(update_model_config).delete(delete_model_config),
        )
        .route("/api/providers", get(providers).post(create_provider))
        .route(
            "/api/providers/{kind}",
            axum::routing::patch(update_provider).delete(delete_provider),
        )
        .route("/api/admin/cut-streams", post(cut_streams))
}

fn model_config_id(raw: &str) -> ApiResult<ModelConfigId> {
    raw.parse::<uuid::Uuid>()
        .map(ModelConfigId)
        .map_err(|_| ApiError::not_found("Model config not found."))
}

fn provider_kind(raw: &str) -> ApiResult<ProviderKind> {
    raw.parse().map_err(|_| ApiError::not_found(format!("no provider kind {raw:?}")))
}

async fn model_configs(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<Vec<ModelConfig>>> {
    Ok(Json(state.chatd.model_configs(&authed.actor).await?))
}

fn options(value: Option<Value>) -> ApiResult<Option<CallOptions>> {
    value
        .map(|v| CallOptions::from_json(&v).map_err(|err| ApiError::bad_request(err.to_string())))
        .transpose()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateModelConfig {
    provider: ProviderKind,
    model: String,
    context_limit: i64,
    display_name: Option<String>,
    enabled: Option<bool>,
    is_default: Option<bool>,
    compression_threshold: Option<i32>,
    options: Option<Value>,
    prices: Option<Prices>,
}

async fn create_model_config(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Body(body): Body<CreateModelConfig>,
) -> ApiResult<(StatusCode, Json<ModelConfig>)> {
    let mut new = NewModelConfig::new(body.provider, body.model, body.context_limit);
    if let Some(name) = body.display_name {
        new.display_name = name;
    }
    if let Some(enabled) = body.enabled {
        new.enabled = enabled;
    }
    if body.is_default == Some(true) {
        new = new.as_default();
    }
    if let Some(threshold) = body.compression_threshold {
        new = new.with_compression_threshold(threshold);
    }
    if let Some(options) = options(body.options)? {
        new = new.with_options(options);
    }
    if let Some(prices) = body.prices {
        new = new.with_prices(prices);
    }
    new.created_by = actor.user_id();
    let config = state.chatd.create_model_config(&actor, new).await?;
    Ok((StatusCode::CREATED, Json(config)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateModelConfig {
    model: Option<String>,
    display_name: Option<String>,
    enabled: Option<bool>,
    is_default: Option<bool>,
    context_limit: Option<i64>,
    compression_threshold: Option<i32>,
    options: Option<Value>,
    /// New prices; `null` removes them.
    #[serde(default, deserialize_with = "present")]
    prices: Option<Option<Prices>>,
}

/// A field that is present (`null` included) as `Some`, absent as `None`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<Prices>>, D::Error> {
    Option::<Prices>::deserialize(d).map(Some)
}

async fn update_model_config(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
    Body(body): Body<UpdateModelConfig>,
) -> ApiResult<Json<ModelConfig>> {
    let mut update = ModelConfigUpdate::default();
    update.model = body.model;
    update.display_name = body.display_name;
    update.enabled = body.enabled;
    update.is_default = body.is_default;
    update.context_limit = body.context_limit;
    update.compression_threshold = body.compression_threshold;
    update.options = options(body.options)?;
    update.prices = body.prices;
    update.updated_by = actor.user_id();
    let config = state.chatd.update_model_config(&actor, model_config_id(&id)?, update).await?;
    Ok(Json(config))
}

async fn delete_model_config(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.chatd.delete_model_config(&actor, model_config_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn providers(
    State(state): State<AppState>,
    Admin(actor): Admin,
) -> ApiResult<Json<Vec<ProviderView>>> {
    Ok(Json(state.chatd.providers(&actor).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateProvider {
    provider: ProviderKind,
    display_name: Option<String>,
    api_key: Option<String>,
    base_url: Option<String>,
    enabled: Option<bool>,
}

async fn create_provider(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Body(body): Body<CreateProvider>,
) -> ApiResult<(StatusCode, Json<ProviderView>)> {
    let mut new = NewProvider::new(body.provider);
    if let Some(key) = body.api_key {
        new = new.with_api_key(key);
    }
    if let Some(url) = body.base_url {
        new = new.with_base_url(url);
    }
    if let Some(name) = body.display_name {
        new.display_name = name;
    }
    if let Some(enabled) = body.enabled {
        new.enabled = enabled;
    }
    new.created_by = actor.user_id();
    let view = state.chatd.create_provider(&actor, new).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateProvider {
    display_name: Option<String>,
    api_key: Option<String>,
    base_url: Option<String>,
    enabled: Option<bool>,
}

async fn update_provider(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(kind): Path<String>,
    Body(body): Body<UpdateProvider>,
) -> ApiResult<Json<ProviderView>> {
    let mut update = ProviderUpdate::default();
    update.display_name = body.display_name;
    update.api_key = body.api_key.map(|key| (Secret::new(key), None));
    update.base_url = body.base_url;
    update.enabled = body.enabled;
    let view = state.chatd.update_provider(&actor, provider_kind(&kind)?, update).await?;
    Ok(Json(view))
}

async fn delete_provider(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(kind): Path<String>,
) -> ApiResult<StatusCode> {
    state.chatd.delete_provider(&actor, provider_kind(&kind)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every open stream (clients reconnect and resume): for demos and tests.
async fn cut_streams(State(state): State<AppState>, Admin(_): Admin) -> StatusCode {
    state.cut_streams();
    StatusCode::NO_CONTENT
}
