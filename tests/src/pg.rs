//! A fresh PostgreSQL database per test, on the server `DATABASE_URL` names (`scripts/test`
//! sets it: see the README).

use chatd_store_postgres::PostgresChatStore;
use sqlx::Connection;

/// A migrated database that exists for one test. Call [`FreshDb::drop`] at the end (a failed
/// test leaves its `chatd_t_*` database behind for inspection).
#[derive(Debug)]
pub struct FreshDb {
    /// The database's URL.
    pub url: String,
    admin: String,
    name: String,
}

/// The server's URL from `DATABASE_URL`.
///
/// # Panics
/// When `DATABASE_URL` is not set: these tests need a real server.
#[must_use]
pub fn server_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        panic!("DATABASE_URL is not set: run the tests with scripts/test, or export DATABASE_URL=postgres://postgres@127.0.0.1:5432/test")
    })
}

impl FreshDb {
    /// Creates and migrates a new database.
    ///
    /// # Panics
    /// When the server cannot be reached or the database cannot be created.
    pub async fn create() -> FreshDb {
        let admin = server_url();
        let name = format!("chatd_t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect to DATABASE_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create database");
        let mut url = url::Url::parse(&admin).expect("DATABASE_URL is a URL");
        url.set_path(&name);
        let db = FreshDb { url: url.to_string(), admin, name };
        db.store().await.migrate().await.expect("migrate");
        db
    }

    /// A store on the database (its own pool).
    ///
    /// # Panics
    /// When the database cannot be reached.
    pub async fn store(&self) -> PostgresChatStore {
        PostgresChatStore::connect(&self.url).await.expect("connect to the fresh database")
    }

    /// Drops the database (disconnecting whoever is still connected).
    pub async fn drop(self) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&mut conn)
            .await;
        }
    }
}
