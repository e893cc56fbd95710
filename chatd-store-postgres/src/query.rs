//! Every dynamic query, built with sea-query. Identifiers are string constants; every value
//! is bound (`build_sqlx` returns the values separately), so the SQL handed to
//! `sqlx::AssertSqlSafe` never contains user input. Fixed-shape intents use static SQL.

use chatd_core::store::MessageQuery;
use chatd_core::store::VisibilityFilter;
use chatd_core::{
    ChatFilter, ChatId, ChatUpdate, ModelConfigId, ModelConfigUpdate, ProviderKind, ProviderUpdate,
};
use sea_query::{Expr, ExprTrait, Order, PostgresQueryBuilder, Query};
use sea_query_sqlx::{SqlxBinder, SqlxValues};

use crate::rows::{chat_columns, message_columns, model_config_columns, provider_columns};

/// `SELECT` a page of chats (`limit` rows) matching `filter`, newest first.
pub(crate) fn list_chats(filter: &ChatFilter, limit: usize) -> (String, SqlxValues) {
    let mut query = Query::select();
    query.expr(Expr::cust(chat_columns!())).from("chats");
    if let Some(owner) = filter.owner_id {
        query.and_where(Expr::col("owner_id").eq(owner.0));
    }
    if !filter.statuses.is_empty() {
        query.and_where(
            Expr::cust("status::text").is_in(filter.statuses.iter().map(|s| s.as_str())),
        );
    }
    if let Some(archived) = filter.archived {
        query.and_where(Expr::col("archived").eq(archived));
    }
    if filter.roots_only {
        query.and_where(Expr::col("parent_chat_id").is_null());
    }
    if !filter.labels.is_empty() {
        let labels = serde_json::to_value(&filter.labels).unwrap_or_default();
        query.and_where(Expr::cust_with_values("labels @> $1::jsonb", [labels]));
    }
    if let Some(text) = &filter.query {
        // The title's index, or the messages' (user-visible rows only: the partial index's
        // predicate), then the chats of this page's owner among them.
        query.and_where(Expr::cust_with_values(
            "(to_tsvector('simple', title) @@ websearch_to_tsquery('simple', $1) \
              OR id IN (SELECT chat_id FROM chat_messages \
                        WHERE visibility IN ('user', 'both') \
                        AND to_tsvector('simple', chat_message_text(content)) \
                            @@ websearch_to_tsquery('simple', $2)))",
            [text.clone(), text.clone()],
        ));
    }
    if let Some(after) = filter.after {
        query.and_where(
            Expr::tuple([Expr::col("created_at"), Expr::col("id")])
                .lt(Expr::tuple([Expr::val(after.created_at), Expr::val(after.id.0)])),
        );
    }
    query
        .order_by("created_at", Order::Desc)
        .order_by("id", Order::Desc)
        .limit(u64::try_from(limit).unwrap_or(u64::MAX));
    query.build_sqlx(PostgresQueryBuilder)
}

/// `SELECT` a chat's messages.
pub(crate) fn list_messages(chat: ChatId, filter: MessageQuery) -> (String, SqlxValues) {
    let mut query = Query::select();
    if filter.include_deleted {
        query
            .expr(Expr::cust(concat!(message_columns!(), ", revision, deleted_at")))
            .from("chat_messages_with_deleted");
    } else {
        query.expr(Expr::cust(message_columns!())).from("chat_messages");
    }
    query.and_where(Expr::col("chat_id").eq(chat.0));
    if let Some(after) = filter.after {
        query.and_where(Expr::col("id").gt(after.0));
    }
    let visible = match filter.visibility {
        VisibilityFilter::All => None,
        VisibilityFilter::User => Some(["user", "both"]),
        VisibilityFilter::Model => Some(["model", "both"]),
    };
    if let Some(visible) = visible {
        query.and_where(Expr::cust("visibility::text").is_in(visible));
    }
    query.order_by("id", Order::Asc);
    if filter.include_deleted {
        // A replaced content before the current one (whose revision is NULL).
        query
            .order_by_expr(Expr::cust("revision"), Order::Asc)
            .order_by_expr(Expr::cust("revision IS NULL"), Order::Asc);
    }
    if let Some(limit) = filter.limit {
        query.limit(u64::try_from(limit).unwrap_or(u64::MAX));
    }
    query.build_sqlx(PostgresQueryBuilder)
}

/// `UPDATE` the set fields of a chat, returning it.
pub(crate) fn update_chat(
    chat: ChatId,
    title: Option<String>,
    update: &ChatUpdate,
) -> (String, SqlxValues) {
    let mut query = Query::update();
    query.table("chats").value("updated_at", Expr::cust("now()"));
    if let Some(title) = title {
        query.value("title", title);
    }
    if let Some(workspace) = update.workspace_id {
        query.value("workspace_id", workspace.map(|w| w.0));
    }
    if let Some(agent) = update.workspace_agent_id {
        query.value("workspace_agent_id", agent.map(|a| a.0));
    }
    if let Some(labels) = &update.labels {
        query.value("labels", serde_json::to_value(labels).unwrap_or_default());
    }
    query
        .and_where(Expr::col("id").eq(chat.0))
        .returning(Query::returning().expr(Expr::cust(chat_columns!())));
    query.build_sqlx(PostgresQueryBuilder)
}

/// `UPDATE` the set fields of a provider, returning it.
pub(crate) fn update_provider(kind: ProviderKind, update: &ProviderUpdate) -> (String, SqlxValues) {
    let mut query = Query::update();
    query.table("chat_providers").value("updated_at", Expr::cust("now()"));
    if let Some(name) = &update.display_name {
        query.value("display_name", name.clone());
    }
    if let Some((key, key_id)) = &update.api_key {
        query.value("api_key", key.expose().to_owned()).value("api_key_key_id", key_id.clone());
    }
    if let Some(url) = &update.base_url {
        query.value("base_url", url.trim().to_owned());
    }
    if let Some(enabled) = update.enabled {
        query.value("enabled", enabled);
    }
    query
        .and_where(Expr::col("provider").eq(kind.as_str()))
        .returning(Query::returning().expr(Expr::cust(provider_columns!())));
    query.build_sqlx(PostgresQueryBuilder)
}

/// `UPDATE` the set fields of a live model config (not the default flag), returning it.
pub(crate) fn update_model_config(
    id: ModelConfigId,
    update: &ModelConfigUpdate,
) -> (String, SqlxValues) {
    let mut query = Query::update();
    query.table("chat_model_configs").value("updated_at", Expr::cust("now()"));
    if let Some(model) = &update.model {
        query.value("model", model.trim().to_owned());
    }
    if let Some(name) = &update.display_name {
        query.value("display_name", name.clone());
    }
    if let Some(enabled) = update.enabled {
        query.value("enabled", enabled);
    }
    if let Some(limit) = update.context_limit {
        query.value("context_limit", limit);
    }
    if let Some(threshold) = update.compression_threshold {
        query.value("compression_threshold", threshold);
    }
    if let Some(options) = &update.options {
        query.value("options", options.to_json());
    }
    match update.prices {
        Some(Some(prices)) => {
            query.value("prices", serde_json::json!(prices));
        }
        Some(None) => {
            query.value("prices", Expr::cust("NULL"));
        }
        None => {}
    }
    if let Some(user) = update.updated_by {
        query.value("updated_by", user.0);
    }
    query
        .and_where(Expr::col("id").eq(id.0))
        .and_where(Expr::col("deleted").eq(false))
        .returning(Query::returning().expr(Expr::cust(model_config_columns!())));
    query.build_sqlx(PostgresQueryBuilder)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatd_core::{ChatStatus, UserId};

    #[test]
    fn list_chats_binds_every_value() {
        let mut filter = ChatFilter::owner(UserId::new());
        filter.statuses = vec![ChatStatus::Pending, ChatStatus::Error];
        let (sql, values) = list_chats(&filter, 51);
        assert!(sql.contains(r#""owner_id" = $1"#), "{sql}");
        assert!(sql.contains("(status::text) IN ($2, $3)"), "{sql}");
        assert!(sql.ends_with("LIMIT $5"), "{sql}");
        assert_eq!(values.0.0.len(), 5);
        assert!(!sql.contains("pending"), "values are bound, not inlined: {sql}");
    }

    #[test]
    fn update_provider_never_inlines_the_key() {
        let mut update = ProviderUpdate::default();
        update.api_key = Some((chatd_core::Secret::new("sk-inline-me"), None));
        let (sql, _values) = update_provider(ProviderKind::OpenAi, &update);
        assert!(!sql.contains("sk-inline-me"), "{sql}");
    }
}
