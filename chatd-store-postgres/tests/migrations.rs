//! chatd's migrations live beside a host application's: their own history table
//! (`_chatd_migrations`), so the host's `sqlx::migrate!()` and chatd's `migrate()` apply in
//! either order, again and again, and each history holds only its own versions; and
//! chatd in a named schema (`in_schema`) keeps every table, type and function out of
//! `public` and passes the whole conformance suite there.

use std::path::Path;

use chatd_store_postgres::{MIGRATIONS_TABLE, MIGRATOR, PostgresChatStore};
use sqlx::PgPool;
use sqlx::migrate::Migrator;

async fn host() -> Migrator {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/host_migrations");
    Migrator::new(dir).await.expect("the host's migrations")
}

async fn versions(pool: &PgPool, table: &str) -> Vec<i64> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT version FROM {table} WHERE success ORDER BY version"
    )))
    .fetch_all(pool)
    .await
    .unwrap_or_else(|err| panic!("reading {table}: {err}"))
}

async fn both_histories_intact(pool: &PgPool, host: &Migrator) {
    let ours: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
    let theirs: Vec<i64> = host.iter().map(|m| m.version).collect();
    assert_eq!(versions(pool, MIGRATIONS_TABLE).await, ours, "chatd's history");
    assert_eq!(versions(pool, "_sqlx_migrations").await, theirs, "the host's history");
}

#[sqlx::test(migrations = false)]
async fn host_then_chatd_then_both_again(pool: PgPool) {
    let host = host().await;
    let store = PostgresChatStore::new(pool.clone());
    host.run(&pool).await.expect("host first");
    store.migrate().await.expect("then chatd");
    host.run(&pool).await.expect("the host again (this failed when chatd shared its table)");
    store.migrate().await.expect("chatd again");
    both_histories_intact(&pool, &host).await;
}

#[sqlx::test(migrations = false)]
async fn chatd_then_host_then_both_again(pool: PgPool) {
    let host = host().await;
    let store = PostgresChatStore::new(pool.clone());
    store.migrate().await.expect("chatd first");
    host.run(&pool).await.expect("then the host");
    store.migrate().await.expect("chatd again");
    host.run(&pool).await.expect("the host again");
    both_histories_intact(&pool, &host).await;
}

#[sqlx::test(migrations = false)]
async fn a_named_schema_keeps_public_to_the_host(pool: PgPool) {
    let host = host().await;
    host.run(&pool).await.expect("host");
    let store = PostgresChatStore::in_schema(&pool, "chatd").await.expect("store");
    store.migrate().await.expect("chatd in its schema");
    store.migrate().await.expect("twice");
    host.run(&pool).await.expect("host again");
    let public: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'public' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .expect("public tables");
    assert_eq!(public, ["_sqlx_migrations", "host_notes", "users"], "only the host's tables");
    let ours: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'chatd'",
    )
    .fetch_one(&pool)
    .await
    .expect("chatd tables");
    assert!(ours >= 8, "chatd's tables are in its schema ({ours})");
    let history = versions(&pool, &format!("chatd.{MIGRATIONS_TABLE}")).await;
    assert_eq!(history, MIGRATOR.iter().map(|m| m.version).collect::<Vec<_>>());
    // Used: a chat round trip through the schema.
    use chatd_core::store::ChatStore;
    store
        .create_provider(chatd_core::NewProvider::new(chatd_core::ProviderKind::OpenAi))
        .await
        .expect("provider in the schema");
}

#[tokio::test]
async fn schema_names_that_would_need_quoting_are_refused() {
    for bad in ["", "Chatd", "chat-d", "1chatd", "chatd; drop table x", &"a".repeat(64)] {
        let err = PostgresChatStore::connect_in_schema("postgres://nowhere.invalid/x", bad)
            .await
            .expect_err(bad);
        assert!(err.to_string().contains("schema"), "{bad}: {err}");
    }
}

mod in_a_named_schema {
    //! The whole conformance suite with chatd in schema `chatd`.
    use chatd_store_postgres::PostgresChatStore;
    use sqlx::PgPool;

    chatd_core::store_conformance_tests!(
        #[sqlx::test(migrations = false)]
        |pool: PgPool| {
            let store = PostgresChatStore::in_schema(&pool, "chatd").await.expect("store");
            store.migrate().await.expect("migrate");
            store
        }
    );
}
