//! Building blocks shared by the intents, each taking the intent's transaction.

use chatd_core::StopRequest;
use chatd_core::status::ChatStatus;
use chatd_core::store::CallRecords;
use chatd_core::store::{Entity, Lease, Result, StoreError};
use chatd_core::{ChangeHint, ChangeKind, Chat, ChatId, Message, NewMessage, QueuedMessageId};
use sqlx::PgConnection;

use crate::error::db;

/// Ends a transaction that refuses its intent: rolls back now (a dropped transaction rolls
/// back in the background, and until then the chat row stays locked, so a worker's
/// `SKIP LOCKED` acquisition would pass the chat over) and returns the refusal.
pub(crate) async fn refuse(
    tx: sqlx::Transaction<'_, sqlx::Postgres>,
    err: impl Into<StoreError>,
) -> StoreError {
    let _ = tx.rollback().await;
    err.into()
}
use crate::rows::{self, chat_columns};

/// The `LISTEN`/`NOTIFY` channel of change hints.
pub(crate) const CHANNEL: &str = "chatd_changes";

/// Hints collected during an intent, announced once it has committed.
pub(crate) type Hints = Vec<ChangeHint>;

/// Reads a chat, optionally locking its row for the rest of the transaction.
pub(crate) async fn chat(conn: &mut PgConnection, id: ChatId, lock: bool) -> Result<Chat> {
    let sql = if lock {
        concat!("SELECT ", chat_columns!(), " FROM chats WHERE id = $1 FOR UPDATE")
    } else {
        concat!("SELECT ", chat_columns!(), " FROM chats WHERE id = $1")
    };
    let row = sqlx::query(sql).bind(id.0).fetch_optional(&mut *conn).await.map_err(db)?;
    match row {
        Some(row) => rows::chat(&row),
        None => Err(StoreError::not_found(Entity::Chat, id)),
    }
}

/// Locks the chat and checks that `lease` is current.
pub(crate) async fn fenced_chat(conn: &mut PgConnection, lease: &Lease) -> Result<Chat> {
    match chat(conn, lease.chat_id, true).await {
        Ok(chat) if Lease::of(&chat) == Some(*lease) => Ok(chat),
        Ok(_) | Err(StoreError::NotFound { .. }) => {
            Err(StoreError::LeaseLost { chat_id: lease.chat_id })
        }
        Err(other) => Err(other),
    }
}

/// The rows of a multi-row insert as parallel arrays, bound as `$2..=$12` and expanded by
/// [`unnest_messages!`] into a row source `r` in input order.
pub(crate) struct MessageArrays {
    roles: Vec<&'static str>,
    contents: Vec<serde_json::Value>,
    visibilities: Vec<&'static str>,
    configs: Vec<Option<uuid::Uuid>>,
    tokens: [Vec<Option<i64>>; 6],
    limits: Vec<Option<i64>>,
    /// The last model config named by a row, for `chats.last_model_config_id`.
    pub(crate) last_config: Option<chatd_core::ModelConfigId>,
}

impl MessageArrays {
    pub(crate) fn new(messages: &[NewMessage]) -> Self {
        let mut arrays = MessageArrays {
            roles: Vec::with_capacity(messages.len()),
            contents: Vec::with_capacity(messages.len()),
            visibilities: Vec::with_capacity(messages.len()),
            configs: Vec::with_capacity(messages.len()),
            tokens: Default::default(),
            limits: Vec::with_capacity(messages.len()),
            last_config: messages.iter().rev().find_map(|m| m.model_config_id),
        };
        for message in messages {
            arrays.roles.push(message.role.as_str());
            arrays.contents.push(chatd_core::Part::content_to_json(&message.content));
            arrays.visibilities.push(message.visibility.as_str());
            arrays.configs.push(message.model_config_id.map(|c| c.0));
            let usage = message.usage;
            let values = usage.map(|u| {
                [
                    u.input_tokens,
                    u.output_tokens,
                    u.total_tokens,
                    u.reasoning_tokens,
                    u.cache_creation_tokens,
                    u.cache_read_tokens,
                ]
            });
            for (index, column) in arrays.tokens.iter_mut().enumerate() {
                column.push(values.map(|v| v[index]));
            }
            arrays.limits.push(message.context_limit);
        }
        arrays
    }

    /// Binds the arrays as the next eleven parameters (`$2..=$12` after the chat id).
    pub(crate) fn bind<'q>(
        self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        let [input, output, total, reasoning, cache_creation, cache_read] = self.tokens;
        query
            .bind(self.roles)
            .bind(self.contents)
            .bind(self.visibilities)
            .bind(self.configs)
            .bind(input)
            .bind(output)
            .bind(total)
            .bind(reasoning)
            .bind(cache_creation)
            .bind(cache_read)
            .bind(self.limits)
    }
}

/// `INSERT INTO chat_messages` from the [`MessageArrays`] parameters `$2..=$12`, with the chat
/// id, `compressed` and the client ids (a `text[]`, shorter arrays padded with NULL) taken
/// from the given SQL expressions, in input order.
macro_rules! insert_messages_sql {
    ($chat:literal, $compressed:literal, $clients:literal, $from:literal) => {
        $crate::tx::insert_messages_sql!(
            $chat, $compressed, $clients, $from, $crate::rows::message_columns!()
        )
    };
    ($chat:literal, $compressed:literal, $clients:literal, $from:literal, $returning:expr) => {
        concat!(
            "INSERT INTO chat_messages (chat_id, role, content, visibility, model_config_id, \
             input_tokens, output_tokens, total_tokens, reasoning_tokens, cache_creation_tokens, \
             cache_read_tokens, context_limit, client_id, compressed) \
             SELECT ", $chat, ", r.role, r.content, r.visibility::chat_message_visibility, r.config, \
             r.input, r.output, r.total, r.reasoning, r.cache_creation, r.cache_read, r.context_limit, \
             r.client_id, ",
            $compressed,
            " FROM ", $from, " UNNEST($2::text[], $3::jsonb[], $4::text[], $5::uuid[], $6::bigint[], \
             $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], ",
            $clients,
            "::text[]) WITH ORDINALITY AS r(role, content, visibility, config, input, output, total, \
             reasoning, cache_creation, cache_read, context_limit, client_id, ord) \
             ORDER BY r.ord RETURNING ",
            $returning
        )
    };
}
pub(crate) use insert_messages_sql;

/// Inserts messages in order (one statement) and moves `last_model_config_id` to the last
/// one that names a config.
pub(crate) async fn insert_messages(
    conn: &mut PgConnection,
    hints: &mut Hints,
    chat: ChatId,
    messages: Vec<NewMessage>,
    compressed: bool,
) -> Result<Vec<Message>> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let arrays = MessageArrays::new(&messages);
    let last_config = arrays.last_config;
    let client_ids: Vec<Option<&str>> = messages.iter().map(|m| m.client_id.as_deref()).collect();
    let query = sqlx::query(insert_messages_sql!("$1", "$13", "$14", "")).bind(chat.0);
    let query = arrays.bind(query).bind(compressed).bind(client_ids);
    let rows = query.fetch_all(&mut *conn).await.map_err(db)?;
    let mut inserted = rows::all(&rows, rows::message)?;
    inserted.sort_by_key(|m| m.id);
    if let Some(last) = inserted.last() {
        hints.push(ChangeHint::new(chat, ChangeKind::Messages).at(last.id));
    }
    if let Some(config) = last_config {
        sqlx::query("UPDATE chats SET last_model_config_id = $2 WHERE id = $1")
            .bind(chat.0)
            .bind(config.0)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    Ok(inserted)
}

/// Inserts one message.
pub(crate) async fn insert_message(
    conn: &mut PgConnection,
    hints: &mut Hints,
    chat: ChatId,
    message: NewMessage,
) -> Result<Message> {
    insert_messages(conn, hints, chat, vec![message], false)
        .await?
        .pop()
        .ok_or_else(|| StoreError::backend("INSERT returned no row"))
}

/// Writes a status with the state machine's invariants: `updated_at = now()`, ownership,
/// stop request and part log only while running, `last_error` only while in error.
pub(crate) async fn write_status(
    conn: &mut PgConnection,
    hints: &mut Hints,
    chat: ChatId,
    next: ChatStatus,
    last_error: Option<String>,
) -> Result<()> {
    hints.push(ChangeHint::new(chat, ChangeKind::Chat));
    if next == ChatStatus::Pending {
        hints.push(ChangeHint::new(chat, ChangeKind::Pending));
    }
    if next == ChatStatus::Running {
        sqlx::query(
            "UPDATE chats SET status = $2::chat_status, updated_at = now(), last_error = NULL \
             WHERE id = $1",
        )
        .bind(chat.0)
        .bind(next.as_str())
        .execute(&mut *conn)
        .await
        .map_err(db)?;
        return Ok(());
    }
    let last_error = if next == ChatStatus::Error { last_error } else { None };
    sqlx::query(
        "WITH parts AS (DELETE FROM chat_stream_parts WHERE chat_id = $1) \
         UPDATE chats SET status = $2::chat_status, updated_at = now(), last_error = $3, \
         worker_id = NULL, started_at = NULL, heartbeat_at = NULL, stop_request = NULL, \
         stop_promote_id = NULL WHERE id = $1",
    )
    .bind(chat.0)
    .bind(next.as_str())
    .bind(last_error)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Applies a decision that changes the status of a chat no worker holds: closes its
/// recorded step when the decision says so, promotes the queue head when it says so (the
/// chat is then `pending`), and writes the status.
pub(crate) async fn apply_idle(
    conn: &mut PgConnection,
    hints: &mut Hints,
    chat: ChatId,
    decision: &chatd_core::status::Decision,
) -> Result<()> {
    if decision.close_calls {
        close_step(conn, hints, chat).await?;
    }
    let promoted = if decision.promote_queue_head {
        promote_from_queue(conn, hints, chat, None).await?
    } else {
        None
    };
    let next = if promoted.is_some() { ChatStatus::Pending } else { decision.next };
    write_status(conn, hints, chat, next, None).await
}

/// Records a stop request for the running turn.
pub(crate) async fn write_stop(
    conn: &mut PgConnection,
    hints: &mut Hints,
    chat: ChatId,
    stop: StopRequest,
) -> Result<()> {
    hints.push(ChangeHint::new(chat, ChangeKind::Chat));
    sqlx::query("UPDATE chats SET stop_request = $2, stop_promote_id = $3 WHERE id = $1")
        .bind(chat.0)
        .bind(stop.kind.as_str())
        .bind(stop.promote.map(|id| id.0))
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}

/// Replaces a chat's tool-call records (and the earliest deadline the sweep looks up).
pub(crate) async fn write_calls(
    conn: &mut PgConnection,
    hints: &mut Hints,
    chat: ChatId,
    calls: &[chatd_core::ToolCall],
) -> Result<()> {
    let json = serde_json::to_value(calls)
        .map_err(|err| StoreError::backend(format!("cannot encode tool calls: {err}")))?;
    sqlx::query("UPDATE chats SET tool_calls = $2, action_deadline = $3 WHERE id = $1")
        .bind(chat.0)
        .bind(json)
        .bind(calls.earliest_deadline())
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    hints.push(ChangeHint::new(chat, ChangeKind::Chat));
    Ok(())
}

/// Ends the chat's recorded step, if it has one (BEHAVIOUR §16): one tool row per call in
/// call order (its result, the in-doubt result when started, else the interrupted one), and
/// no records left. The chat row must be locked.
pub(crate) async fn close_step(
    conn: &mut PgConnection,
    hints: &mut Hints,
    chat: ChatId,
) -> Result<()> {
    let raw: serde_json::Value = sqlx::query_scalar("SELECT tool_calls FROM chats WHERE id = $1")
        .bind(chat.0)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    let calls: Vec<chatd_core::ToolCall> = serde_json::from_value(raw)
        .map_err(|err| crate::error::corrupt("chats.tool_calls", err))?;
    if calls.is_empty() {
        return Ok(());
    }
    let rows = calls.closing_rows();
    insert_messages(conn, hints, chat, rows, false).await?;
    write_calls(conn, hints, chat, &[]).await
}

/// Moves a queued message (the preferred one if still queued, else the head) into history.
pub(crate) async fn promote_from_queue(
    conn: &mut PgConnection,
    hints: &mut Hints,
    chat: ChatId,
    preferred: Option<QueuedMessageId>,
) -> Result<Option<Message>> {
    let row = sqlx::query(
        "DELETE FROM chat_queued_messages WHERE id = ( \
           SELECT id FROM chat_queued_messages WHERE chat_id = $1 \
           ORDER BY (id IS NOT DISTINCT FROM $2) DESC, id LIMIT 1) \
         RETURNING content, client_id",
    )
    .bind(chat.0)
    .bind(preferred.map(|id| id.0))
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    let Some(row) = row else { return Ok(None) };
    hints.push(ChangeHint::new(chat, ChangeKind::Queue));
    close_step(conn, hints, chat).await?;
    let content: serde_json::Value = sqlx::Row::try_get(&row, "content").map_err(db)?;
    let content = chatd_core::Part::content_from_json(content)
        .map_err(|err| crate::error::corrupt("chat_queued_messages.content", err))?;
    let client_id: Option<String> = sqlx::Row::try_get(&row, "client_id").map_err(db)?;
    let message = NewMessage::user(content).with_client_id(client_id);
    Ok(Some(insert_message(conn, hints, chat, message).await?))
}

/// Whether the last model-visible, non-system message is a user message.
pub(crate) async fn has_unanswered_message(conn: &mut PgConnection, chat: ChatId) -> Result<bool> {
    let role: Option<String> = sqlx::query_scalar(
        "SELECT role FROM chat_messages WHERE chat_id = $1 AND role <> 'system' \
         AND visibility IN ('model', 'both') ORDER BY id DESC LIMIT 1",
    )
    .bind(chat.0)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    Ok(role.as_deref() == Some("user"))
}

/// How many messages are queued.
pub(crate) async fn queue_len(conn: &mut PgConnection, chat: ChatId) -> Result<usize> {
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM chat_queued_messages WHERE chat_id = $1")
            .bind(chat.0)
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
    Ok(usize::try_from(count).unwrap_or(usize::MAX))
}

/// The chat's queue, FIFO.
pub(crate) async fn queue(
    conn: &mut PgConnection,
    chat: ChatId,
) -> Result<Vec<chatd_core::QueuedMessage>> {
    let rows = sqlx::query(
        "SELECT id, chat_id, content, created_at, client_id FROM chat_queued_messages WHERE chat_id = $1 ORDER BY id",
    )
    .bind(chat.0)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    rows::all(&rows, rows::queued)
}

/// Checks that a model config exists and is not deleted.
pub(crate) async fn live_model_config(
    conn: &mut PgConnection,
    id: chatd_core::ModelConfigId,
) -> Result<()> {
    let live: Option<bool> =
        sqlx::query_scalar("SELECT NOT deleted FROM chat_model_configs WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
    match live {
        Some(true) => Ok(()),
        _ => Err(StoreError::not_found(Entity::ModelConfig, id)),
    }
}
