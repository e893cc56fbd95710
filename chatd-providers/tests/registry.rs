//! The registry builds the right adapter from stored configuration and finds its key.

use chatd_core::provider::{ModelRequest, PromptMessage, ProviderErrorKind};
use chatd_core::{
    CallOptions, ModelConfig, ModelConfigId, ProviderConfig, ProviderId, ProviderKind, Secret,
};
use chatd_providers::ProviderRegistry;
use chatd_providers::testing::{FakeResponse, FakeServer};
use serde_json::json;
use tokio_util::sync::CancellationToken;

mod support;

fn provider(kind: ProviderKind, key: &str, base_url: &str) -> ProviderConfig {
    let now = chrono::Utc::now();
    ProviderConfig {
        id: ProviderId::new(),
        provider: kind,
        display_name: String::new(),
        api_key: Secret::new(key),
        api_key_key_id: None,
        created_by: None,
        enabled: true,
        created_at: now,
        updated_at: now,
        base_url: base_url.to_owned(),
    }
}

fn model(kind: ProviderKind, options: serde_json::Value) -> ModelConfig {
    let now = chrono::Utc::now();
    ModelConfig {
        id: ModelConfigId::new(),
        provider: kind,
        model: "m".into(),
        display_name: String::new(),
        created_by: None,
        updated_by: None,
        enabled: true,
        is_default: true,
        deleted: false,
        deleted_at: None,
        created_at: now,
        updated_at: now,
        context_limit: 1000,
        compression_threshold: 70,
        options: CallOptions::from_json(&options).expect("options"),
    }
}

fn no_env() -> ProviderRegistry {
    ProviderRegistry::new().with_env(|_| None)
}

#[test]
fn each_kind_builds_its_adapter() {
    let registry = no_env();
    let chat = json!({"provider_options": {"openai": {"api_mode": "chat_completions"}}});
    for (kind, base, options) in [
        (ProviderKind::Anthropic, "", json!({})),
        (ProviderKind::Google, "", json!({})),
        (ProviderKind::OpenAi, "", chat.clone()),
        (ProviderKind::OpenAiCompat, "http://127.0.0.1:11434/v1", json!({})),
        (ProviderKind::OpenRouter, "", json!({})),
        (ProviderKind::Vercel, "", json!({})),
        (ProviderKind::Azure, "https://res.openai.azure.com", json!({})),
        (ProviderKind::Bedrock, "", json!({})),
    ] {
        let built =
            registry.build(&provider(kind, "k", base), &model(kind, options)).expect("adapter");
        assert_eq!(built.kind(), kind);
    }
}

#[test]
fn a_missing_key_names_the_environment_variable() {
    let err = no_env().build(
        &provider(ProviderKind::Anthropic, "", ""),
        &model(ProviderKind::Anthropic, json!({})),
    );
    let err = err.err().expect("no key");
    assert_eq!(err.kind, ProviderErrorKind::Auth);
    assert_eq!(err.message, "ANTHROPIC_API_KEY is not set");
    let local = no_env().build(
        &provider(ProviderKind::OpenAiCompat, "", "http://127.0.0.1:8000/v1"),
        &model(ProviderKind::OpenAiCompat, json!({})),
    );
    assert!(local.is_ok(), "local compatible servers need no key");
}

#[test]
fn disabled_mismatched_encrypted_and_keyless_configs_are_refused() {
    let registry = no_env();
    let mut disabled = provider(ProviderKind::Google, "k", "");
    disabled.enabled = false;
    assert!(registry.build(&disabled, &model(ProviderKind::Google, json!({}))).is_err());
    assert!(
        registry
            .build(
                &provider(ProviderKind::Google, "k", ""),
                &model(ProviderKind::Anthropic, json!({}))
            )
            .is_err()
    );
    // Stores decrypt on read: a config whose key is encrypted at rest builds with its key.
    let mut encrypted_at_rest = provider(ProviderKind::Google, "k", "");
    encrypted_at_rest.api_key_key_id = Some("digest".into());
    assert!(registry.build(&encrypted_at_rest, &model(ProviderKind::Google, json!({}))).is_ok());
    let responses = registry
        .build(&provider(ProviderKind::OpenAi, "k", ""), &model(ProviderKind::OpenAi, json!({})));
    assert!(responses.is_ok(), "the Responses API is the default api_mode");
    let err = registry
        .build(&provider(ProviderKind::Bedrock, "", ""), &model(ProviderKind::Bedrock, json!({})))
        .err();
    assert!(err.expect("bedrock").message.starts_with("AWS_BEARER_TOKEN_BEDROCK is not set"));
    let sigv4 = ProviderRegistry::new().with_env(|name| match name {
        "AWS_ACCESS_KEY_ID" => Some("AKIDEXAMPLE".into()),
        "AWS_SECRET_ACCESS_KEY" => Some("secret".into()),
        _ => None,
    });
    let built = sigv4
        .build(&provider(ProviderKind::Bedrock, "", ""), &model(ProviderKind::Bedrock, json!({})));
    assert!(built.is_ok(), "access keys are enough for SigV4");
}

#[tokio::test]
async fn the_database_key_wins_over_the_environment() {
    let body = support::fixture("anthropic", "text.sse");
    let server = FakeServer::start(vec![FakeResponse::sse(body.clone()), FakeResponse::sse(body)])
        .await
        .expect("server");
    let registry = ProviderRegistry::new()
        .with_env(|name| (name == "ANTHROPIC_API_KEY").then(|| "env-key".to_owned()));
    let request = || ModelRequest::new("claude-test", vec![PromptMessage::user("hi")]);
    let stored = registry
        .build(
            &provider(ProviderKind::Anthropic, "db-key", server.url()),
            &model(ProviderKind::Anthropic, json!({})),
        )
        .expect("adapter");
    stored.generate(request(), CancellationToken::new()).await.expect("call");
    let fallback = registry
        .build(
            &provider(ProviderKind::Anthropic, "", server.url()),
            &model(ProviderKind::Anthropic, json!({})),
        )
        .expect("adapter");
    fallback.generate(request(), CancellationToken::new()).await.expect("call");
    let keys: Vec<_> = server
        .requests()
        .iter()
        .map(|r| r.header("x-api-key").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(keys, vec!["db-key", "env-key"]);
}
