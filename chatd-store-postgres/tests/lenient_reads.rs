//! BEHAVIOUR §9.3: model-config options are strict on write and lenient on read — one stored row
//! with an option this version does not know never breaks reading the configs.

use chatd_core::store::ChatStore;
use chatd_core::{NewModelConfig, NewProvider, ProviderKind};
use chatd_store_postgres::PostgresChatStore;
use sqlx::PgPool;

#[sqlx::test(migrator = "chatd_store_postgres::MIGRATOR")]
async fn a_stored_unknown_option_does_not_break_config_reads(pool: PgPool) {
    let store = PostgresChatStore::new(pool.clone());
    store.create_provider(NewProvider::new(ProviderKind::OpenAi)).await.expect("provider");
    let config = store
        .create_model_config(NewModelConfig::new(ProviderKind::OpenAi, "gpt", 1000))
        .await
        .expect("config");
    // Written by a newer version (or by hand).
    sqlx::query("UPDATE chat_model_configs SET options = $1 WHERE id = $2")
        .bind(serde_json::json!({"max_output_tokens": 77, "knob_from_the_future": 1}))
        .bind(config.id.0)
        .execute(&pool)
        .await
        .expect("raw update");
    let listed = store.list_model_configs(true).await.expect("every config still reads");
    assert_eq!(listed[0].options.max_output_tokens, Some(77));
    let read = store.get_model_config(config.id).await.expect("get");
    assert_eq!(read.options.max_output_tokens, Some(77));
}
