//! The usage ledger (BEHAVIOUR §17): a record per model call, priced in the same statement
//! that writes it and adds it to the chat's and the tree's totals.

use chatd_core::store::{Entity, Result, StoreError};
use chatd_core::usage::{NewUsage, UsageBucket, UsageQuery, UsageRecord};
use chatd_core::{ChatId, ModelConfigId, UserId};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::PostgresChatStore;
use crate::error::{corrupt, db};

/// Prices the call at the config's prices now (`prices` JSON in micro-units per million,
/// rounded up), inserts the record, and adds it to the totals of the chat (`$1`) and of its
/// root (`$2`) in one `UPDATE` (a root chat is both), and settles a step's spend hold. No
/// record when the config is unknown.
const RECORD_SQL: &str = "WITH config AS ( \
       SELECT provider, model, prices FROM chat_model_configs WHERE id = $4), \
     priced AS ( \
       SELECT provider, model, CASE WHEN prices IS NULL THEN NULL ELSE ceil(( \
         $6::numeric * coalesce((prices->>'input')::numeric, 0) \
         + $7::numeric * coalesce((prices->>'output')::numeric, 0) \
         + $10::numeric * coalesce((prices->>'cache_read')::numeric, 0) \
         + $11::numeric * coalesce((prices->>'cache_write')::numeric, 0)) / 1000000)::bigint \
       END AS cost FROM config), \
     ins AS ( \
       INSERT INTO chat_usage (chat_id, root_chat_id, owner_id, model_config_id, provider, model, \
         kind, input_tokens, output_tokens, total_tokens, reasoning_tokens, cache_read_tokens, \
         cache_write_tokens, cost_micros, estimated) \
       SELECT $1, $2, $3, $4, provider, model, $5, $6, $7, $8, $9, $10, $11, cost, $13 FROM priced \
       RETURNING *), \
     totals AS ( \
       UPDATE chats SET \
         spent_calls = spent_calls + CASE WHEN chats.id = $1 THEN 1 ELSE 0 END, \
         spent_tokens = spent_tokens + CASE WHEN chats.id = $1 THEN $12 ELSE 0 END, \
         spent_micros = spent_micros + CASE WHEN chats.id = $1 THEN coalesce(ins.cost_micros, 0) ELSE 0 END, \
         tree_spent_calls = tree_spent_calls + CASE WHEN chats.id = $2 THEN 1 ELSE 0 END, \
         tree_spent_tokens = tree_spent_tokens + CASE WHEN chats.id = $2 THEN $12 ELSE 0 END, \
         tree_spent_micros = tree_spent_micros + CASE WHEN chats.id = $2 THEN coalesce(ins.cost_micros, 0) ELSE 0 END \
       FROM ins WHERE chats.id IN ($1, $2)), \
     settled AS ( \
       DELETE FROM chat_spend_holds WHERE chat_id = $1 AND $5 = 'step' AND EXISTS (SELECT 1 FROM ins)) \
     SELECT * FROM ins";

impl PostgresChatStore {
    pub(crate) async fn record_usage_tx(&self, new: NewUsage) -> Result<UsageRecord> {
        self.limits.check_usage(&new.usage)?;
        let usage = new.usage;
        let row = sqlx::query(RECORD_SQL)
            .bind(new.chat_id.0)
            .bind(new.root_chat_id.0)
            .bind(new.owner_id.0)
            .bind(new.model_config_id.0)
            .bind(new.kind.as_str())
            .bind(usage.input_tokens)
            .bind(usage.output_tokens)
            .bind(usage.total_tokens)
            .bind(usage.reasoning_tokens)
            .bind(usage.cache_read_tokens)
            .bind(usage.cache_creation_tokens)
            .bind(usage.billed_tokens())
            .bind(new.estimated)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        let row =
            row.ok_or_else(|| StoreError::not_found(Entity::ModelConfig, new.model_config_id))?;
        record(&row)
    }

    pub(crate) async fn usage_report_query(&self, query: UsageQuery) -> Result<Vec<UsageBucket>> {
        let rows = report(&query, "").fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(bucket).collect()
    }

    /// The plan PostgreSQL makes for [`usage_report`](chatd_core::ChatStore::usage_report)
    /// with `query` (`EXPLAIN`'s text, one line per node): how the tests show that a report
    /// reads the ledger's indexes and never the messages.
    ///
    /// # Errors
    /// `Backend` when the database refuses.
    #[doc(hidden)]
    pub async fn explain_usage_report(&self, query: UsageQuery) -> Result<String> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        // Small test tables are cheaper to scan: ask for the plan the index allows.
        sqlx::query("SET enable_seqscan = off").execute(&mut *conn).await.map_err(db)?;
        let rows = report(&query, "EXPLAIN ").fetch_all(&mut *conn).await;
        let reset = sqlx::query("RESET enable_seqscan").execute(&mut *conn).await;
        let rows = rows.map_err(db)?;
        reset.map_err(db)?;
        let lines: Result<Vec<String>> = rows.iter().map(|r| get(r, "QUERY PLAN")).collect();
        Ok(lines?.join("\n"))
    }
}

/// The report statement for `query`, after `prefix` (`""` or `"EXPLAIN "`), with its values
/// bound.
fn report(
    query: &UsageQuery,
    prefix: &'static str,
) -> sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let (day, model, owner) = query.group.keys();
    // Assembled from the fragments below only; every value is bound.
    let mut sql = format!("{prefix}SELECT ");
    sql.push_str(if day {
        "(created_at AT TIME ZONE 'UTC')::date AS day, "
    } else {
        "NULL::date AS day, "
    });
    sql.push_str(if model {
        "model_config_id, (array_agg(model ORDER BY id DESC))[1] AS model, "
    } else {
        "NULL::uuid AS model_config_id, NULL::text AS model, "
    });
    sql.push_str(if owner { "owner_id, " } else { "NULL::uuid AS owner_id, " });
    sql.push_str(
        "count(*) AS calls, sum(input_tokens)::bigint AS input_tokens, \
         sum(output_tokens)::bigint AS output_tokens, \
         sum(cache_read_tokens)::bigint AS cache_read_tokens, \
         sum(cache_write_tokens)::bigint AS cache_write_tokens, \
         coalesce(sum(cost_micros), 0)::bigint AS cost_micros, \
         count(*) FILTER (WHERE cost_micros IS NULL) AS unpriced_calls, \
         count(*) FILTER (WHERE estimated) AS estimated_calls \
         FROM chat_usage WHERE TRUE",
    );
    let mut next = 0;
    let mut param = || {
        next += 1;
        format!("${next}")
    };
    let mut filters = Vec::new();
    if query.owner.is_some() {
        filters.push(format!(" AND owner_id = {}", param()));
    }
    if query.root_chat.is_some() {
        filters.push(format!(" AND root_chat_id = {}", param()));
    }
    if query.model_config.is_some() {
        filters.push(format!(" AND model_config_id = {}", param()));
    }
    if query.from.is_some() {
        filters.push(format!(" AND created_at >= {}", param()));
    }
    if query.to.is_some() {
        filters.push(format!(" AND created_at < {}", param()));
    }
    sql.push_str(&filters.concat());
    let keys: Vec<&str> = [(day, "1"), (model, "model_config_id"), (owner, "owner_id")]
        .into_iter()
        .filter_map(|(on, key)| on.then_some(key))
        .collect();
    if keys.is_empty() {
        sql.push_str(" HAVING count(*) > 0");
    } else {
        let keys = keys.join(", ");
        sql.push_str(&format!(" GROUP BY {keys} ORDER BY {keys}"));
    }
    let mut statement = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in
        [query.owner.map(|o| o.0), query.root_chat.map(|c| c.0), query.model_config.map(|m| m.0)]
            .into_iter()
            .flatten()
    {
        statement = statement.bind(id);
    }
    for at in [query.from, query.to].into_iter().flatten() {
        statement = statement.bind(at);
    }
    statement
}

fn get<'r, T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>>(
    row: &'r PgRow,
    column: &str,
) -> Result<T> {
    row.try_get(column).map_err(db)
}

fn record(row: &PgRow) -> Result<UsageRecord> {
    Ok(UsageRecord {
        id: get(row, "id")?,
        chat_id: ChatId(get(row, "chat_id")?),
        root_chat_id: ChatId(get(row, "root_chat_id")?),
        owner_id: UserId(get(row, "owner_id")?),
        model_config_id: ModelConfigId(get(row, "model_config_id")?),
        provider: get::<String>(row, "provider")?
            .parse()
            .map_err(|err| corrupt("chat_usage.provider", err))?,
        model: get(row, "model")?,
        kind: get::<String>(row, "kind")?.parse().map_err(|err| corrupt("chat_usage.kind", err))?,
        usage: chatd_core::Usage {
            input_tokens: get(row, "input_tokens")?,
            output_tokens: get(row, "output_tokens")?,
            total_tokens: get(row, "total_tokens")?,
            reasoning_tokens: get(row, "reasoning_tokens")?,
            cache_creation_tokens: get(row, "cache_write_tokens")?,
            cache_read_tokens: get(row, "cache_read_tokens")?,
        },
        cost_micros: get(row, "cost_micros")?,
        estimated: get(row, "estimated")?,
        created_at: get(row, "created_at")?,
    })
}

fn bucket(row: &PgRow) -> Result<UsageBucket> {
    Ok(UsageBucket {
        day: get(row, "day")?,
        model_config_id: get::<Option<uuid::Uuid>>(row, "model_config_id")?.map(ModelConfigId),
        model: get(row, "model")?,
        owner_id: get::<Option<uuid::Uuid>>(row, "owner_id")?.map(UserId),
        calls: get(row, "calls")?,
        input_tokens: get(row, "input_tokens")?,
        output_tokens: get(row, "output_tokens")?,
        cache_read_tokens: get(row, "cache_read_tokens")?,
        cache_write_tokens: get(row, "cache_write_tokens")?,
        cost_micros: get(row, "cost_micros")?,
        unpriced_calls: get(row, "unpriced_calls")?,
        estimated_calls: get(row, "estimated_calls")?,
    })
}
