//! Provider keys at rest on PostgreSQL (BEHAVIOUR §12): with a cipher the `api_key` column never
//! holds a plaintext key, the key digests are registered in `dbcrypt_keys`, and a
//! `pg_dump` of the database holds no key in plaintext.

use std::sync::Arc;

use chatd_core::store::ChatStore;
use chatd_core::{NewProvider, ProviderKind, ProviderUpdate, Secret, SecretCipher};
use chatd_store_postgres::PostgresChatStore;
use sqlx::PgPool;

const CANARIES: [(ProviderKind, &str); 3] = [
    (ProviderKind::OpenAi, "sk-canary-openai-5b8e1f"),
    (ProviderKind::Anthropic, "sk-ant-canary-77c2a9"),
    (ProviderKind::Google, "AIza-canary-google-3d41"),
];

async fn encrypted_store(pool: PgPool) -> PostgresChatStore {
    let store = PostgresChatStore::new(pool);
    store.use_cipher(Arc::new(SecretCipher::new(&[7; 32]).expect("cipher"))).await.expect("cipher");
    for (kind, key) in CANARIES {
        store.create_provider(NewProvider::new(kind).with_api_key(key)).await.expect("create");
    }
    store
}

#[sqlx::test(migrator = "chatd_store_postgres::MIGRATOR")]
async fn the_key_column_never_holds_a_plaintext_key(pool: PgPool) {
    let store = encrypted_store(pool.clone()).await;
    let mut update = ProviderUpdate::default();
    update.api_key = Some((Secret::new("sk-canary-openai-rotated-9f"), None));
    store.update_provider(ProviderKind::OpenAi, update).await.expect("update");
    let rows: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT provider::text, api_key, api_key_key_id FROM chat_providers")
            .fetch_all(&pool)
            .await
            .expect("raw rows");
    assert_eq!(rows.len(), 3);
    for (provider, api_key, digest) in &rows {
        assert!(!api_key.contains("canary"), "{provider}: plaintext in the column");
        assert!(digest.is_some(), "{provider}: no key digest");
    }
    let registered: Vec<String> = sqlx::query_scalar(
        "SELECT active_key_digest FROM dbcrypt_keys WHERE active_key_digest IS NOT NULL",
    )
    .fetch_all(&pool)
    .await
    .expect("dbcrypt_keys");
    assert_eq!(registered, vec![rows[0].2.clone().expect("digest")]);
    for (kind, key) in CANARIES.into_iter().skip(1) {
        assert_eq!(store.get_provider(kind).await.expect("read").api_key.expose(), key);
    }
}

#[sqlx::test(migrator = "chatd_store_postgres::MIGRATOR")]
async fn a_database_dump_holds_no_plaintext_key(pool: PgPool) {
    let _store = encrypted_store(pool.clone()).await;
    let database: String =
        sqlx::query_scalar("SELECT current_database()").fetch_one(&pool).await.expect("name");
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL (scripts/test sets it)");
    let mut target = url::Url::parse(&url).expect("DATABASE_URL is a URL");
    target.set_path(&format!("/{database}"));
    let dump = std::process::Command::new("pg_dump")
        .arg("--data-only")
        .arg("--table=chat_providers")
        .arg("--table=dbcrypt_keys")
        .arg(target.as_str())
        .output()
        .expect("pg_dump runs (PostgreSQL client tools are installed with the server)");
    assert!(dump.status.success(), "pg_dump: {}", String::from_utf8_lossy(&dump.stderr));
    let text = String::from_utf8_lossy(&dump.stdout);
    assert!(text.contains("chat_providers") && text.contains("openai"), "the dump has the rows");
    for (kind, key) in CANARIES {
        assert!(!text.contains(key), "{kind}'s key is in the dump in plaintext");
    }
    println!("pg_dump of {database}: {} bytes, no plaintext key", text.len());
}

#[sqlx::test(migrator = "chatd_store_postgres::MIGRATOR")]
async fn configured_limits_replace_the_defaults(pool: PgPool) {
    use chatd_core::store::StoreError;
    let store = PostgresChatStore::new(pool)
        .with_limits(chatd_core::store::Limits::default().with_max_system_prompt_bytes(8));
    let new = chatd_core::NewChat::new(chatd_core::UserId::new()).with_system_prompt("nine bytes");
    let err = store.create_chat(new).await.expect_err("prompt over the limit");
    assert!(
        matches!(err, StoreError::Validation { ref field, .. } if field == "system_prompt"),
        "{err}"
    );
}

#[sqlx::test(migrator = "chatd_store_postgres::MIGRATOR")]
async fn a_base_url_changed_in_the_database_leaves_the_key_undecryptable(pool: PgPool) {
    let store = encrypted_store(pool.clone()).await;
    let read = store.get_provider(ProviderKind::OpenAi).await.expect("decrypts in place");
    assert_eq!(read.api_key.expose(), "sk-canary-openai-5b8e1f");
    // A database writer (no cipher key) points the row at a server of its own.
    sqlx::query(
        "UPDATE chat_providers SET base_url = 'http://127.0.0.1:9/v1' WHERE provider = 'openai'",
    )
    .execute(&pool)
    .await
    .expect("raw update");
    let err = store.get_provider(ProviderKind::OpenAi).await.expect_err("no longer decrypts");
    let text = err.to_string();
    assert!(text.contains("base URL changed"), "{text}");
    assert!(!text.contains("canary"), "{text}");
    // The other providers are untouched.
    store.get_provider(ProviderKind::Anthropic).await.expect("anthropic still decrypts");
}

#[sqlx::test(migrator = "chatd_store_postgres::MIGRATOR")]
async fn a_key_revoked_by_another_process_never_encrypts_again(pool: PgPool) {
    let old = SecretCipher::new(&[7; 32]).expect("cipher");
    let stale = encrypted_store(pool.clone()).await; // holds key 7 as its active key
    // Another replica rotates to a new key and revokes the old one.
    let fresh = PostgresChatStore::new(pool.clone());
    let rotated =
        SecretCipher::new(&[8; 32]).expect("new").with_old_key(&[7; 32]).expect("old key");
    fresh.use_cipher(Arc::new(rotated)).await.expect("new cipher");
    assert_eq!(fresh.rotate_provider_keys().await.expect("rotate"), 3);
    fresh.revoke_key(old.active_digest()).await.expect("revoke the old key");
    // The first replica still holds the revoked key as its active one: it may not write.
    let mut update = ProviderUpdate::default();
    update.api_key = Some((Secret::new("sk-canary-after-revocation"), None));
    let err = stale.update_provider(ProviderKind::OpenAi, update).await.expect_err("refused");
    assert!(err.to_string().contains("has been revoked"), "{err}");
    let err = stale
        .create_provider(
            NewProvider::new(ProviderKind::Azure)
                .with_api_key("k")
                .with_base_url("https://a.example"),
        )
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("has been revoked"), "{err}");
    let revived: i64 =
        sqlx::query_scalar("SELECT count(*) FROM dbcrypt_keys WHERE active_key_digest = $1")
            .bind(old.active_digest())
            .fetch_one(&pool)
            .await
            .expect("count");
    assert_eq!(revived, 0, "the revoked digest was registered as active again");
}
