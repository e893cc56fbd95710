//! The migrated schema contains every table, column (name and type), index, constraint and
//! enum value of the seed (`tests/seed/000422_chats.up.sql`, a verbatim copy of the
//! project's seed), read back from the catalog.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::PgPool;

const SEED: &str = include_str!("seed/000422_chats.up.sql");

/// `(table, column) -> udt_name` for every column the seed declares.
fn seed_columns() -> BTreeMap<(String, String), String> {
    let mut columns = BTreeMap::new();
    let mut table: Option<String> = None;
    for line in SEED.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("CREATE TABLE ") {
            table = rest.split_whitespace().next().map(str::to_owned);
            continue;
        }
        if line.starts_with(");") {
            table = None;
            continue;
        }
        let Some(table) = &table else { continue };
        let mut words = line.split_whitespace();
        let (Some(name), Some(kind)) = (words.next(), words.next()) else { continue };
        let kind = kind.trim_end_matches(',');
        if name == "CONSTRAINT" || !kind.chars().all(|c| c.is_ascii_alphabetic() || c == '_') {
            continue;
        }
        let udt = match kind {
            "UUID" => "uuid",
            "TEXT" => "text",
            "BOOLEAN" => "bool",
            "INTEGER" => "int4",
            "BIGINT" | "BIGSERIAL" => "int8",
            "JSONB" => "jsonb",
            "TIMESTAMPTZ" => "timestamptz",
            other => other,
        };
        columns.insert((table.clone(), name.to_owned()), udt.to_owned());
    }
    columns
}

fn seed_names(prefix: &str) -> BTreeSet<String> {
    SEED.lines()
        .map(str::trim)
        .filter_map(|line| {
            let at = line.find(prefix)?;
            line[at + prefix.len()..].split_whitespace().next().map(str::to_owned)
        })
        .collect()
}

#[sqlx::test(migrator = "chatd_store_postgres::MIGRATOR")]
async fn every_seed_column_exists_with_its_type(pool: PgPool) {
    let expected = seed_columns();
    assert_eq!(
        expected.len(),
        71,
        "the seed declares 71 columns; the parser found {}",
        expected.len()
    );
    let actual: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, udt_name::text FROM information_schema.columns \
         WHERE table_schema = current_schema()",
    )
    .fetch_all(&pool)
    .await
    .expect("catalog");
    let actual: BTreeMap<(String, String), String> =
        actual.into_iter().map(|(table, column, udt)| ((table, column), udt)).collect();
    for ((table, column), udt) in &expected {
        assert_eq!(
            actual.get(&(table.clone(), column.clone())),
            Some(udt),
            "{table}.{column} must exist with type {udt}"
        );
    }
    for table in [
        "chats",
        "chat_messages",
        "chat_queued_messages",
        "chat_providers",
        "chat_model_configs",
        "chat_diff_statuses",
    ] {
        assert!(expected.keys().any(|(t, _)| t == table), "the parser saw table {table}");
    }
    for addition in ["archived", "last_error", "lease_epoch", "stop_request", "stop_promote_id"] {
        assert!(
            actual.contains_key(&("chats".to_owned(), addition.to_owned())),
            "chats.{addition}"
        );
    }
}

#[sqlx::test(migrator = "chatd_store_postgres::MIGRATOR")]
async fn every_seed_index_constraint_and_enum_value_exists(pool: PgPool) {
    let indexes: BTreeSet<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema()",
    )
    .fetch_all(&pool)
    .await
    .expect("indexes")
    .into_iter()
    .collect();
    let mut seed_indexes = seed_names("CREATE INDEX ");
    seed_indexes.extend(seed_names("CREATE UNIQUE INDEX "));
    assert!(seed_indexes.len() >= 15, "{seed_indexes:?}");
    let missing: Vec<_> = seed_indexes.difference(&indexes).collect();
    assert!(missing.is_empty(), "missing seed indexes: {missing:?}");
    assert!(indexes.contains("idx_chats_pending_updated_at"), "the acquisition index");

    let constraints: BTreeSet<String> =
        sqlx::query_scalar("SELECT conname::text FROM pg_constraint")
            .fetch_all(&pool)
            .await
            .expect("constraints")
            .into_iter()
            .collect();
    let seed_constraints = seed_names("CONSTRAINT ");
    assert_eq!(seed_constraints.len(), 5, "{seed_constraints:?}");
    let missing: Vec<_> = seed_constraints.difference(&constraints).collect();
    assert!(missing.is_empty(), "missing seed constraints: {missing:?}");

    for (enum_name, values) in [
        // The seed's six values, then the one BEHAVIOUR §16 adds; the core's list must agree.
        (
            "chat_status",
            vec![
                "waiting",
                "pending",
                "running",
                "paused",
                "completed",
                "error",
                "requires_action",
            ],
        ),
        ("chat_message_visibility", vec!["user", "model", "both"]),
    ] {
        let actual: Vec<String> = sqlx::query_scalar(
            "SELECT e.enumlabel::text FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid \
             WHERE t.typname = $1 ORDER BY e.enumsortorder",
        )
        .bind(enum_name)
        .fetch_all(&pool)
        .await
        .expect("enum");
        assert_eq!(actual, values, "{enum_name}");
    }
    let core: Vec<&str> = chatd_core::ChatStatus::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(
        core,
        ["waiting", "pending", "running", "paused", "completed", "error", "requires_action"]
    );
    let unlogged: String = sqlx::query_scalar(
        "SELECT relpersistence::text FROM pg_class WHERE relname = 'chat_stream_parts'",
    )
    .fetch_one(&pool)
    .await
    .expect("part log");
    assert_eq!(unlogged, "u", "the part log is UNLOGGED");
}
