//! What the database did during a measured window: transactions, rows written and WAL bytes
//! (`pg_stat_database`, `pg_stat_wal`), and statements (`pg_stat_statements`, when the server
//! preloads it), split between the worker processes (their own role) and everyone else.

use std::time::Duration;

use sqlx::PgPool;

use crate::pg::{BenchResult, Scratch};

/// The role worker processes connect as, so that their statements can be told apart.
const WORKER_ROLE: &str = "chatd_bench_worker";

/// Counters at one instant.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Counters {
    pub(super) xacts: i64,
    pub(super) rows: i64,
    pub(super) wal: i64,
    /// Every statement run in the database (the bench's own statistics reads left out);
    /// `None` without `pg_stat_statements`.
    pub(super) statements: Option<i64>,
    /// Those run by [`WORKER_ROLE`].
    pub(super) worker_statements: Option<i64>,
}

/// Per-turn differences of two readings.
pub(super) struct PerTurn {
    pub(super) xacts: f64,
    pub(super) rows: f64,
    pub(super) wal: f64,
    pub(super) statements: Option<f64>,
    pub(super) worker_statements: Option<f64>,
}

impl Counters {
    /// What happened between `self` and `after`, per turn of `turns`.
    pub(super) fn per_turn(self, after: Counters, turns: f64) -> PerTurn {
        let per = |a: i64, b: i64| (b - a) as f64 / turns.max(1.0);
        let both = |a: Option<i64>, b: Option<i64>| a.zip(b).map(|(a, b)| per(a, b));
        PerTurn {
            xacts: per(self.xacts, after.xacts),
            rows: per(self.rows, after.rows),
            wal: per(self.wal, after.wal),
            statements: both(self.statements, after.statements),
            worker_statements: both(self.worker_statements, after.worker_statements),
        }
    }
}

/// Prepares `scratch` for counting statements: the extension in its database, and a role the
/// workers log in as, with the rights the store needs. Returns the workers' database URL —
/// the scratch URL as [`WORKER_ROLE`] when that role can connect, else the scratch URL
/// itself (the workers' statements are then not told apart).
pub(super) async fn prepare(scratch: &Scratch) -> String {
    let _ = sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .execute(&scratch.pool)
        .await;
    let url = scratch.url();
    let granted = async {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DO $$ BEGIN \
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{WORKER_ROLE}') THEN \
                 CREATE ROLE {WORKER_ROLE} LOGIN; \
               END IF; END $$"
        )))
        .execute(&scratch.pool)
        .await?;
        for grant in [
            "GRANT USAGE ON SCHEMA public TO {role}",
            "GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}",
            "GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}",
        ] {
            let sql = grant.replace("{role}", WORKER_ROLE);
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&scratch.pool).await?;
        }
        let as_worker = with_user(&url, WORKER_ROLE).ok_or("no user in the URL")?;
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&as_worker).await?;
        sqlx::query("SELECT 1 FROM chats LIMIT 1").execute(&mut conn).await?;
        BenchResult::Ok(as_worker)
    };
    granted.await.unwrap_or(url)
}

/// `url` with its user replaced by `user` (and its password dropped).
fn with_user(url: &str, user: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    Some(format!("{scheme}://{user}@{host}/{path}"))
}

/// The counters now.
pub(super) async fn read(pool: &PgPool) -> BenchResult<Counters> {
    let (xacts, rows): (i64, i64) = sqlx::query_as(
        "SELECT xact_commit + xact_rollback, tup_inserted + tup_updated + tup_deleted \
         FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await?;
    let (wal,): (i64,) =
        sqlx::query_as("SELECT wal_bytes::bigint FROM pg_stat_wal").fetch_one(pool).await?;
    let statements: Option<(i64, i64)> = sqlx::query_as(
        "SELECT coalesce(sum(calls), 0)::bigint, \
           coalesce(sum(calls) FILTER (WHERE userid = (SELECT oid FROM pg_roles WHERE rolname = $1)), 0)::bigint \
         FROM pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND query NOT LIKE '%pg_stat%'",
    )
    .bind(WORKER_ROLE)
    .fetch_one(pool)
    .await
    .ok();
    Ok(Counters {
        xacts,
        rows,
        wal,
        statements: statements.map(|s| s.0),
        worker_statements: statements.map(|s| s.1),
    })
}

/// [`read`] once every session has reported: PostgreSQL 15 backends publish their
/// statistics at most once a second, and an idle one only after 10 s.
pub(super) async fn settled(pool: &PgPool) -> BenchResult<Counters> {
    tokio::time::sleep(Duration::from_secs(11)).await;
    read(pool).await
}

#[cfg(test)]
mod tests {
    use super::with_user;

    #[test]
    fn the_user_of_a_url_is_replaced() {
        assert_eq!(
            with_user("postgres://postgres@127.0.0.1:5432/db?x=1", "w").as_deref(),
            Some("postgres://w@127.0.0.1:5432/db?x=1")
        );
        assert_eq!(
            with_user("postgres://a:secret@h/db", "w").as_deref(),
            Some("postgres://w@h/db")
        );
        assert_eq!(
            with_user("postgres://h:5432/db", "w").as_deref(),
            Some("postgres://w@h:5432/db")
        );
        assert_eq!(with_user("not a url", "w"), None);
    }
}
