//! The store conformance suite against PostgreSQL: every scenario on a fresh database
//! (`#[sqlx::test]` creates one per test from `DATABASE_URL` and applies `MIGRATOR`).

use chatd_store_postgres::PostgresChatStore;
use sqlx::PgPool;

chatd_core::store_conformance_tests!(
    #[sqlx::test(migrator = "chatd_store_postgres::MIGRATOR")]
    |pool: PgPool| PostgresChatStore::new(pool)
);
