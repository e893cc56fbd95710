//! Optional live tests against the real provider APIs. They are `#[ignore]`d — listed as
//! ignored, never reported as passing — and run only on request, with the provider's key:
//!
//! ```text
//! ANTHROPIC_API_KEY=... cargo test -p chatd-providers --test live -- --ignored anthropic
//! ```
//!
//! Variables per kind: the key variable of `ProviderKind::api_key_env` (Bedrock also accepts
//! `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY`), `CHATD_LIVE_MODEL` to override the model,
//! and `CHATD_LIVE_BASE_URL` where a base URL is needed (`azure`, `openai-compat`).

use chatd_core::provider::{FinishReason, ModelRequest, PromptMessage};
use chatd_core::{
    CallOptions, ModelConfig, ModelConfigId, ProviderConfig, ProviderId, ProviderKind, Secret,
};
use chatd_providers::ProviderRegistry;
use tokio_util::sync::CancellationToken;

async fn live(kind: ProviderKind, default_model: &str) {
    let model_name = std::env::var("CHATD_LIVE_MODEL").unwrap_or_else(|_| default_model.to_owned());
    let base_url = std::env::var("CHATD_LIVE_BASE_URL").unwrap_or_default();
    let now = chrono::Utc::now();
    let provider = ProviderConfig {
        id: ProviderId::new(),
        provider: kind,
        display_name: String::new(),
        api_key: Secret::default(),
        api_key_key_id: None,
        created_by: None,
        enabled: true,
        created_at: now,
        updated_at: now,
        base_url,
    };
    let mut options = CallOptions::default();
    options.max_output_tokens = Some(200);
    let model = ModelConfig {
        id: ModelConfigId::new(),
        provider: kind,
        model: model_name.clone(),
        display_name: String::new(),
        created_by: None,
        updated_by: None,
        enabled: true,
        is_default: true,
        deleted: false,
        deleted_at: None,
        created_at: now,
        updated_at: now,
        context_limit: 100_000,
        compression_threshold: 70,
        options: options.clone(),
        prices: None,
    };
    let adapter = ProviderRegistry::new()
        .build(&provider, &model)
        .unwrap_or_else(|err| panic!("{kind}: {err}"));
    let request = ModelRequest::new(
        model_name,
        vec![PromptMessage::user("Reply with the single word: pong")],
    )
    .with_options(options);
    let generation = adapter
        .generate(request, CancellationToken::new())
        .await
        .unwrap_or_else(|err| panic!("{kind}: {err}"));
    println!("{kind}: {:?} {:?}", generation.text(), generation.usage);
    assert_eq!(generation.finish_reason, Some(FinishReason::Stop));
    assert!(generation.text().to_lowercase().contains("pong"));
    assert!(generation.usage.is_some_and(|u| u.total_tokens > 0));
}

#[tokio::test]
#[ignore = "live: needs OPENAI_API_KEY"]
async fn openai() {
    live(ProviderKind::OpenAi, "gpt-4.1-mini").await;
}

#[tokio::test]
#[ignore = "live: needs ANTHROPIC_API_KEY"]
async fn anthropic() {
    live(ProviderKind::Anthropic, "claude-haiku-4-5").await;
}

#[tokio::test]
#[ignore = "live: needs GOOGLE_API_KEY"]
async fn google() {
    live(ProviderKind::Google, "gemini-2.5-flash").await;
}

#[tokio::test]
#[ignore = "live: needs AZURE_OPENAI_API_KEY, CHATD_LIVE_BASE_URL and CHATD_LIVE_MODEL (deployment)"]
async fn azure() {
    live(ProviderKind::Azure, "gpt-4.1-mini").await;
}

#[tokio::test]
#[ignore = "live: needs AWS_BEARER_TOKEN_BEDROCK or AWS access keys, and AWS_REGION"]
async fn bedrock() {
    live(ProviderKind::Bedrock, "us.anthropic.claude-haiku-4-5-20251001-v1:0").await;
}

#[tokio::test]
#[ignore = "live: needs CHATD_LIVE_BASE_URL (e.g. http://127.0.0.1:11434/v1) and CHATD_LIVE_MODEL"]
async fn openai_compat() {
    live(ProviderKind::OpenAiCompat, "llama3.2").await;
}

#[tokio::test]
#[ignore = "live: needs OPENROUTER_API_KEY"]
async fn openrouter() {
    live(ProviderKind::OpenRouter, "openai/gpt-4.1-mini").await;
}

#[tokio::test]
#[ignore = "live: needs AI_GATEWAY_API_KEY"]
async fn vercel() {
    live(ProviderKind::Vercel, "openai/gpt-4.1-mini").await;
}
