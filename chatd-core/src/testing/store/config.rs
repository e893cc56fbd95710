//! Scenarios: providers and model configs.

use serde_json::json;

use super::{Fixture, StoreRef};
use crate::store::StoreError;
use crate::{
    CallOptions, ModelConfigId, ModelConfigUpdate, NewChat, NewModelConfig, NewProvider,
    ProviderKind, ProviderUpdate, Secret, UserId,
};

async fn with_openai(store: &StoreRef) {
    store.create_provider(NewProvider::new(ProviderKind::OpenAi)).await.expect("provider");
}

async fn config(store: &StoreRef, model: &str) -> crate::ModelConfig {
    store
        .create_model_config(NewModelConfig::new(ProviderKind::OpenAi, model, 1000))
        .await
        .expect("config")
}

async fn default_id(store: &StoreRef) -> Option<ModelConfigId> {
    store.default_model_config().await.expect("default").map(|c| c.id)
}

/// Providers: create, read, update, list; a second row of the same kind is a conflict.
pub async fn provider_crud_with_one_row_per_kind(store: StoreRef) {
    let created = store
        .create_provider(NewProvider::new(ProviderKind::Anthropic).with_api_key("sk-ant"))
        .await
        .expect("create");
    assert_eq!(created.provider, ProviderKind::Anthropic);
    assert!(created.enabled && created.has_api_key());
    assert_eq!(created.api_key_key_id, None);
    let err =
        store.create_provider(NewProvider::new(ProviderKind::Anthropic)).await.expect_err("dup");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    store.create_provider(NewProvider::new(ProviderKind::Google)).await.expect("google");
    let kinds: Vec<_> =
        store.list_providers().await.expect("list").iter().map(|p| p.provider).collect();
    assert_eq!(kinds, vec![ProviderKind::Anthropic, ProviderKind::Google]);
    let update = ProviderUpdate {
        display_name: Some("Claude".into()),
        enabled: Some(false),
        ..ProviderUpdate::default()
    };
    let updated = store.update_provider(ProviderKind::Anthropic, update).await.expect("update");
    assert_eq!(updated.display_name, "Claude");
    assert!(!updated.enabled);
    assert_eq!(updated.api_key.expose(), "sk-ant", "untouched fields are kept");
    assert_eq!(store.get_provider(ProviderKind::Anthropic).await.expect("get"), updated);
    assert!(store.get_provider(ProviderKind::Vercel).await.expect_err("unknown").is_not_found());
    let err = store
        .update_provider(ProviderKind::Vercel, ProviderUpdate::default())
        .await
        .expect_err("unknown");
    assert!(err.is_not_found());
}

/// Base URLs must be empty or absolute http(s); azure needs one.
pub async fn provider_base_url_is_validated(store: StoreRef) {
    let err = store
        .create_provider(
            NewProvider::new(ProviderKind::OpenAiCompat).with_base_url("localhost:11434"),
        )
        .await
        .expect_err("relative");
    assert_eq!(err.to_string(), "Base URL must be an absolute http or https URL.");
    let err =
        store.create_provider(NewProvider::new(ProviderKind::Azure)).await.expect_err("azure");
    assert_eq!(err.to_string(), "The azure provider requires a base URL.");
    let azure = store
        .create_provider(
            NewProvider::new(ProviderKind::Azure).with_base_url("https://res.openai.azure.com"),
        )
        .await
        .expect("azure with url");
    assert_eq!(azure.base_url, "https://res.openai.azure.com");
    let clear = ProviderUpdate { base_url: Some(String::new()), ..ProviderUpdate::default() };
    let err = store.update_provider(ProviderKind::Azure, clear).await.expect_err("azure cleared");
    assert!(matches!(err, StoreError::Validation { .. }));
    assert_eq!(
        store.get_provider(ProviderKind::Azure).await.expect("get").base_url,
        "https://res.openai.azure.com"
    );
    assert!(
        store
            .list_providers()
            .await
            .expect("list")
            .iter()
            .all(|p| p.provider == ProviderKind::Azure)
    );
}

/// A key can be replaced; `Debug` never shows it; a value marked as encrypted is refused
/// without a cipher (it could never be read).
pub async fn provider_key_update_and_redaction(store: StoreRef) {
    store
        .create_provider(NewProvider::new(ProviderKind::OpenRouter).with_api_key("sk-or-first"))
        .await
        .expect("create");
    let update = ProviderUpdate {
        api_key: Some((Secret::new("sk-or-second"), None)),
        ..ProviderUpdate::default()
    };
    let updated = store.update_provider(ProviderKind::OpenRouter, update).await.expect("update");
    assert_eq!(updated.api_key.expose(), "sk-or-second");
    assert_eq!(updated.api_key_key_id, None, "no cipher: stored as it is");
    let debug = format!("{updated:?}");
    assert!(!debug.contains("sk-or-second") && !debug.contains("sk-or-first"), "{debug}");
    let marked = ProviderUpdate {
        api_key: Some((Secret::new("ciphertext-bytes"), Some("digest-1".into()))),
        ..ProviderUpdate::default()
    };
    let err = store.update_provider(ProviderKind::OpenRouter, marked).await.expect_err("no cipher");
    assert!(
        matches!(err, StoreError::Validation { ref field, .. } if field == "api_key_key_id"),
        "{err}"
    );
    let cleared =
        ProviderUpdate { api_key: Some((Secret::default(), None)), ..ProviderUpdate::default() };
    let cleared = store.update_provider(ProviderKind::OpenRouter, cleared).await.expect("clear");
    assert!(!cleared.has_api_key());
}

/// Deleting a provider removes its unused model configs and re-establishes the default.
pub async fn delete_provider_cascades_unused_configs(store: StoreRef) {
    with_openai(&store).await;
    store.create_provider(NewProvider::new(ProviderKind::Anthropic)).await.expect("anthropic");
    let openai = config(&store, "gpt").await;
    let claude = store
        .create_model_config(NewModelConfig::new(ProviderKind::Anthropic, "claude", 1000))
        .await
        .expect("claude");
    assert_eq!(default_id(&store).await, Some(openai.id));
    store.delete_provider(ProviderKind::OpenAi).await.expect("delete");
    assert!(store.get_provider(ProviderKind::OpenAi).await.expect_err("gone").is_not_found());
    assert!(store.get_model_config(openai.id).await.expect_err("cascaded").is_not_found());
    assert_eq!(default_id(&store).await, Some(claude.id), "the remaining config became default");
    assert!(store.delete_provider(ProviderKind::OpenAi).await.expect_err("twice").is_not_found());
}

/// A provider whose model config a chat uses cannot be deleted.
pub async fn delete_provider_in_use_is_a_conflict(store: StoreRef) {
    let fx = Fixture::new(store).await;
    fx.chat("uses the default config").await;
    let err = fx.store.delete_provider(ProviderKind::OpenAi).await.expect_err("in use");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(fx.store.get_provider(ProviderKind::OpenAi).await.is_ok());
    assert!(fx.store.get_model_config(fx.config.id).await.is_ok());
}

/// The first config becomes the default; later ones do not.
pub async fn first_model_config_becomes_default(store: StoreRef) {
    with_openai(&store).await;
    assert_eq!(default_id(&store).await, None);
    let first = config(&store, "one").await;
    assert!(first.is_default);
    let second = config(&store, "two").await;
    assert!(!second.is_default);
    assert_eq!(default_id(&store).await, Some(first.id));
}

/// A config created or updated as default takes the flag from the old one.
pub async fn new_default_demotes_the_old_one(store: StoreRef) {
    with_openai(&store).await;
    let first = config(&store, "one").await;
    let second = store
        .create_model_config(NewModelConfig::new(ProviderKind::OpenAi, "two", 10).as_default())
        .await
        .expect("default");
    assert!(second.is_default);
    assert!(!store.get_model_config(first.id).await.expect("first").is_default);
    let update = ModelConfigUpdate { is_default: Some(true), ..ModelConfigUpdate::default() };
    store.update_model_config(first.id, update).await.expect("promote");
    assert_eq!(default_id(&store).await, Some(first.id));
    let defaults =
        store.list_model_configs(true).await.expect("list").iter().filter(|c| c.is_default).count();
    assert_eq!(defaults, 1);
}

/// Deleting the default promotes the oldest remaining config; a deleted config stays
/// readable.
pub async fn deleting_the_default_promotes_the_oldest(store: StoreRef) {
    with_openai(&store).await;
    let a = config(&store, "a").await;
    let b = config(&store, "b").await;
    let c = config(&store, "c").await;
    store.delete_model_config(a.id).await.expect("delete default");
    assert_eq!(default_id(&store).await, Some(b.id));
    let deleted = store.get_model_config(a.id).await.expect("still readable");
    assert!(deleted.deleted && deleted.deleted_at.is_some() && !deleted.is_default);
    assert!(store.delete_model_config(a.id).await.expect_err("twice").is_not_found());
    store.delete_model_config(c.id).await.expect("delete non-default");
    assert_eq!(default_id(&store).await, Some(b.id));
    store.delete_model_config(b.id).await.expect("delete last");
    assert_eq!(default_id(&store).await, None, "no config, no default");
}

/// Demoting the default hands it to the oldest other config; the only config stays default.
pub async fn demoting_the_default_promotes_the_oldest_other(store: StoreRef) {
    with_openai(&store).await;
    let a = config(&store, "a").await;
    let demote = || ModelConfigUpdate { is_default: Some(false), ..ModelConfigUpdate::default() };
    let still = store.update_model_config(a.id, demote()).await.expect("demote only");
    assert!(still.is_default, "the only config stays the default");
    let b = config(&store, "b").await;
    let c = config(&store, "c").await;
    store
        .update_model_config(
            c.id,
            ModelConfigUpdate { is_default: Some(true), ..ModelConfigUpdate::default() },
        )
        .await
        .expect("c default");
    let demoted = store.update_model_config(c.id, demote()).await.expect("demote c");
    assert!(!demoted.is_default);
    assert_eq!(default_id(&store).await, Some(a.id), "oldest other");
    assert!(!store.get_model_config(b.id).await.expect("b").is_default);
}

/// Invalid model configs are refused with clear messages and nothing is written.
pub async fn model_config_validation_errors(store: StoreRef) {
    with_openai(&store).await;
    let cases = [
        (
            NewModelConfig::new(ProviderKind::OpenAi, "m", 0),
            "Context limit must be greater than zero.",
        ),
        (
            NewModelConfig::new(ProviderKind::OpenAi, "m", -5),
            "Context limit must be greater than zero.",
        ),
        (
            NewModelConfig::new(ProviderKind::OpenAi, "m", 10).with_compression_threshold(101),
            "Compression threshold must be between 0 and 100.",
        ),
        (
            NewModelConfig::new(ProviderKind::OpenAi, "m", 10).with_compression_threshold(-1),
            "Compression threshold must be between 0 and 100.",
        ),
        (NewModelConfig::new(ProviderKind::OpenAi, " ", 10), "Model is required."),
    ];
    for (new, message) in cases {
        let err = store.create_model_config(new).await.expect_err(message);
        assert!(matches!(err, StoreError::Validation { .. }), "{err:?}");
        assert_eq!(err.to_string(), message);
    }
    assert!(store.list_model_configs(true).await.expect("list").is_empty());
    let ok = config(&store, "fine").await;
    let bad = ModelConfigUpdate { context_limit: Some(0), ..ModelConfigUpdate::default() };
    let err = store.update_model_config(ok.id, bad).await.expect_err("update");
    assert_eq!(err.to_string(), "Context limit must be greater than zero.");
    assert_eq!(store.get_model_config(ok.id).await.expect("get").context_limit, 1000);
    let unknown = store
        .update_model_config(ModelConfigId::new(), ModelConfigUpdate::default())
        .await
        .expect_err("unknown");
    assert!(unknown.is_not_found());
}

/// A model config needs its provider configured.
pub async fn model_config_requires_a_configured_provider(store: StoreRef) {
    let err = store
        .create_model_config(NewModelConfig::new(ProviderKind::Google, "gemini-2.5-pro", 1_000_000))
        .await
        .expect_err("no provider");
    assert!(matches!(err, StoreError::Validation { .. }), "{err:?}");
    assert_eq!(err.to_string(), "The google provider is not configured.");
}

/// Listing hides deleted configs always and disabled ones unless asked.
pub async fn list_model_configs_hides_disabled_and_deleted(store: StoreRef) {
    with_openai(&store).await;
    let a = config(&store, "a").await;
    let b = config(&store, "b").await;
    let c = config(&store, "c").await;
    let disable = ModelConfigUpdate {
        enabled: Some(false),
        updated_by: Some(UserId::new()),
        ..ModelConfigUpdate::default()
    };
    let disabled = store.update_model_config(b.id, disable).await.expect("disable");
    assert!(disabled.updated_by.is_some() && disabled.updated_at >= b.updated_at);
    store.delete_model_config(c.id).await.expect("delete");
    let ids =
        |configs: Vec<crate::ModelConfig>| configs.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(ids(store.list_model_configs(false).await.expect("enabled")), vec![a.id]);
    assert_eq!(ids(store.list_model_configs(true).await.expect("all")), vec![a.id, b.id]);
    let err =
        store.update_model_config(c.id, ModelConfigUpdate::default()).await.expect_err("deleted");
    assert!(err.is_not_found());
}

/// Options and every other field round-trip; chats keep a deleted config's id.
pub async fn model_config_options_round_trip(store: StoreRef) {
    with_openai(&store).await;
    let options = CallOptions::from_json(&json!({
        "max_output_tokens": 4096, "temperature": 0.3,
        "provider_options": {"openai": {"reasoning_effort": "low", "api_mode": "chat_completions"}}
    }))
    .expect("options");
    let mut new = NewModelConfig::new(ProviderKind::OpenAi, "gpt-x", 400_000)
        .with_compression_threshold(85)
        .with_options(options.clone());
    new.display_name = "GPT X".into();
    new.created_by = Some(UserId::new());
    let created = store.create_model_config(new.clone()).await.expect("create");
    let read = store.get_model_config(created.id).await.expect("read");
    assert_eq!(read, created);
    assert_eq!(read.options, options);
    assert_eq!((read.context_limit, read.compression_threshold), (400_000, 85));
    assert_eq!(read.display_name, "GPT X");
    assert_eq!(read.created_by, new.created_by);
    let chat = store
        .create_chat(NewChat::new(UserId::new()).with_model_config(read.id))
        .await
        .expect("chat");
    store.delete_model_config(read.id).await.expect("delete");
    assert_eq!(store.get_chat(chat.id).await.expect("chat").last_model_config_id, read.id);
}

/// An option the provider's API cannot express is refused when written, on create and on
/// update, never dropped when called: Bedrock's Converse cannot disable parallel tool use.
pub async fn options_the_provider_cannot_express_are_refused(store: StoreRef) {
    store.create_provider(NewProvider::new(ProviderKind::Bedrock)).await.expect("provider");
    let disable = CallOptions::from_json(
        &json!({"provider_options": {"anthropic": {"disable_parallel_tool_use": true}}}),
    )
    .expect("options");
    let new = NewModelConfig::new(ProviderKind::Bedrock, "anthropic.claude-test", 1000)
        .with_options(disable.clone());
    let err = store.create_model_config(new).await.expect_err("refused");
    assert!(matches!(err, StoreError::Validation { .. }), "{err:?}");
    assert!(err.to_string().contains("disable_parallel_tool_use"), "{err}");
    let config = store
        .create_model_config(NewModelConfig::new(
            ProviderKind::Bedrock,
            "anthropic.claude-test",
            1000,
        ))
        .await
        .expect("without it");
    let update = ModelConfigUpdate { options: Some(disable), ..ModelConfigUpdate::default() };
    let err = store.update_model_config(config.id, update).await.expect_err("refused too");
    assert!(err.to_string().contains("disable_parallel_tool_use"), "{err}");
    let stored = store.get_model_config(config.id).await.expect("get");
    assert_eq!(stored.options, CallOptions::default(), "the refused update changed nothing");
    // Anthropic's own API takes it.
    store.create_provider(NewProvider::new(ProviderKind::Anthropic)).await.expect("provider");
    let anthropic = CallOptions::from_json(
        &json!({"provider_options": {"anthropic": {"disable_parallel_tool_use": true}}}),
    )
    .expect("options");
    store
        .create_model_config(
            NewModelConfig::new(ProviderKind::Anthropic, "claude-x", 1000).with_options(anthropic),
        )
        .await
        .expect("anthropic takes it");
}
