//! Column lists and row decoding. Enum columns are read as text and parsed with the core's
//! parsers, so a value the library does not know is an error, never a panic.

use chatd_core::StopRequest;
use chatd_core::status::StopKind;
use chatd_core::store::{PartPosition, PartRecord, Result};
use chatd_core::{
    CallOptions, Chat, ChatId, Deletion, DiffStatus, Message, MessageId, ModelConfig,
    ModelConfigId, ProviderConfig, ProviderId, QueuedMessage, QueuedMessageId, Secret, Usage,
    UserId, WorkerId, WorkspaceAgentId, WorkspaceId,
};
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use crate::error::{corrupt, db};

/// The columns of `chats` in the order `chat` reads them.
macro_rules! chat_columns {
    () => {
        "id, owner_id, workspace_id, workspace_agent_id, title, status::text AS status, \
         worker_id, started_at, heartbeat_at, created_at, updated_at, parent_chat_id, \
         root_chat_id, last_model_config_id, archived, last_error, lease_epoch, stop_request, \
         stop_promote_id, last_turn, turn_started_after, history_version, rewritten_after, \
         previous_turn, previous_turn_started_after, tool_calls, spent_calls, spent_tokens, \
         spent_micros, tree_spent_calls, tree_spent_tokens, tree_spent_micros, \
         forked_from_chat_id, forked_from_message_id, labels"
    };
}
pub(crate) use chat_columns;

/// The columns of `chat_messages`.
macro_rules! message_columns {
    () => {
        "id, chat_id, model_config_id, created_at, role, content, \
         visibility::text AS visibility, input_tokens, output_tokens, total_tokens, \
         reasoning_tokens, cache_creation_tokens, cache_read_tokens, context_limit, compressed, client_id"
    };
}
pub(crate) use message_columns;

/// The columns `chat_deleted_messages` shares with `chat_messages`, as stored.
macro_rules! deleted_columns {
    () => {
        "id, chat_id, model_config_id, created_at, role, content, visibility, input_tokens,          output_tokens, total_tokens, reasoning_tokens, cache_creation_tokens,          cache_read_tokens, context_limit, compressed, client_id"
    };
}
pub(crate) use deleted_columns;

/// The columns of `chat_model_configs`.
macro_rules! model_config_columns {
    () => {
        "id, provider, model, display_name, created_by, updated_by, enabled, is_default, \
         deleted, deleted_at, created_at, updated_at, context_limit, compression_threshold, options, \
         prices"
    };
}
pub(crate) use model_config_columns;

/// The columns of `chat_providers`.
macro_rules! provider_columns {
    () => {
        "id, provider, display_name, api_key, api_key_key_id, created_by, enabled, created_at, \
         updated_at, base_url"
    };
}
pub(crate) use provider_columns;

/// The columns of `chat_diff_statuses`.
macro_rules! diff_columns {
    () => {
        "chat_id, url, pull_request_state, changes_requested, additions, deletions, \
         changed_files, refreshed_at, stale_at, created_at, updated_at, git_branch, \
         git_remote_origin"
    };
}
pub(crate) use diff_columns;

fn get<'r, T>(row: &'r PgRow, column: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(column).map_err(db)
}

fn parse<T: std::str::FromStr>(what: &str, raw: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    raw.parse().map_err(|err| corrupt(what, err))
}

pub(crate) fn chat(row: &PgRow) -> Result<Chat> {
    let stop_kind: Option<String> = get(row, "stop_request")?;
    let stop_request = match stop_kind.as_deref() {
        None => None,
        Some(raw) => {
            let kind = match raw {
                "interrupt" => StopKind::Interrupt,
                "pause" => StopKind::Pause,
                other => return Err(corrupt("chats.stop_request", other)),
            };
            let promote: Option<i64> = get(row, "stop_promote_id")?;
            Some(StopRequest { kind, promote: promote.map(QueuedMessageId) })
        }
    };
    Ok(Chat {
        id: ChatId(get(row, "id")?),
        owner_id: UserId(get(row, "owner_id")?),
        workspace_id: get::<Option<Uuid>>(row, "workspace_id")?.map(WorkspaceId),
        workspace_agent_id: get::<Option<Uuid>>(row, "workspace_agent_id")?.map(WorkspaceAgentId),
        title: get(row, "title")?,
        status: parse("chats.status", &get::<String>(row, "status")?)?,
        worker_id: get::<Option<Uuid>>(row, "worker_id")?.map(WorkerId),
        started_at: get(row, "started_at")?,
        heartbeat_at: get(row, "heartbeat_at")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
        parent_chat_id: get::<Option<Uuid>>(row, "parent_chat_id")?.map(ChatId),
        root_chat_id: get::<Option<Uuid>>(row, "root_chat_id")?.map(ChatId),
        last_model_config_id: ModelConfigId(get(row, "last_model_config_id")?),
        archived: get(row, "archived")?,
        last_error: get(row, "last_error")?,
        lease_epoch: get(row, "lease_epoch")?,
        stop_request,
        // Lenient: an ending this version does not know reads as none.
        last_turn: get::<Option<serde_json::Value>>(row, "last_turn")?
            .and_then(|raw| serde_json::from_value(raw).ok()),
        turn_started_after: get(row, "turn_started_after")?,
        previous_turn: get::<Option<serde_json::Value>>(row, "previous_turn")?
            .and_then(|raw| serde_json::from_value(raw).ok()),
        previous_turn_started_after: get(row, "previous_turn_started_after")?,
        history_version: get(row, "history_version")?,
        rewritten_after: get(row, "rewritten_after")?,
        // Strict: a record that cannot be read could hide a started call (run twice).
        tool_calls: serde_json::from_value(get(row, "tool_calls")?)
            .map_err(|err| corrupt("chats.tool_calls", err))?,
        spent: chatd_core::Spend {
            calls: get(row, "spent_calls")?,
            tokens: get(row, "spent_tokens")?,
            cost_micros: get(row, "spent_micros")?,
        },
        tree_spent: chatd_core::Spend {
            calls: get(row, "tree_spent_calls")?,
            tokens: get(row, "tree_spent_tokens")?,
            cost_micros: get(row, "tree_spent_micros")?,
        },
        labels: serde_json::from_value(get(row, "labels")?)
            .map_err(|err| corrupt("chats.labels", err))?,
        forked_from: get::<Option<Uuid>>(row, "forked_from_chat_id")?
            .zip(get::<Option<i64>>(row, "forked_from_message_id")?)
            .map(|(chat_id, message_id)| chatd_core::ForkedFrom {
                chat_id: ChatId(chat_id),
                message_id: MessageId(message_id),
            }),
    })
}

pub(crate) fn message(row: &PgRow) -> Result<Message> {
    let content: Option<serde_json::Value> = get(row, "content")?;
    let content = chatd_core::Part::content_from_json(content.unwrap_or(serde_json::Value::Null))
        .map_err(|err| corrupt("chat_messages.content", err))?;
    let tokens: [Option<i64>; 6] = [
        get(row, "input_tokens")?,
        get(row, "output_tokens")?,
        get(row, "total_tokens")?,
        get(row, "reasoning_tokens")?,
        get(row, "cache_creation_tokens")?,
        get(row, "cache_read_tokens")?,
    ];
    let usage = tokens.iter().any(Option::is_some).then(|| Usage {
        input_tokens: tokens[0].unwrap_or(0),
        output_tokens: tokens[1].unwrap_or(0),
        total_tokens: tokens[2].unwrap_or(0),
        reasoning_tokens: tokens[3].unwrap_or(0),
        cache_creation_tokens: tokens[4].unwrap_or(0),
        cache_read_tokens: tokens[5].unwrap_or(0),
    });
    Ok(Message {
        id: MessageId(get(row, "id")?),
        chat_id: ChatId(get(row, "chat_id")?),
        model_config_id: get::<Option<Uuid>>(row, "model_config_id")?.map(ModelConfigId),
        created_at: get(row, "created_at")?,
        role: parse("chat_messages.role", &get::<String>(row, "role")?)?,
        content,
        visibility: parse("chat_messages.visibility", &get::<String>(row, "visibility")?)?,
        usage,
        context_limit: get(row, "context_limit")?,
        compressed: get(row, "compressed")?,
        client_id: get(row, "client_id")?,
        deleted: deletion(row)?,
    })
}

/// The `revision` and `deleted_at` of a row read with its deleted messages (absent from
/// reads of the history as it stands).
fn deletion(row: &PgRow) -> Result<Option<Deletion>> {
    if !row.columns().iter().any(|c| sqlx::Column::name(c) == "revision") {
        return Ok(None);
    }
    let revision: Option<i64> = get(row, "revision")?;
    let at: Option<chrono::DateTime<chrono::Utc>> = get(row, "deleted_at")?;
    Ok(revision.zip(at).map(|(revision, at)| Deletion { at, revision }))
}

pub(crate) fn queued(row: &PgRow) -> Result<QueuedMessage> {
    let content = chatd_core::Part::content_from_json(get(row, "content")?)
        .map_err(|err| corrupt("chat_queued_messages.content", err))?;
    Ok(QueuedMessage {
        id: QueuedMessageId(get(row, "id")?),
        chat_id: ChatId(get(row, "chat_id")?),
        content,
        created_at: get(row, "created_at")?,
        client_id: get(row, "client_id")?,
    })
}

pub(crate) fn model_config(row: &PgRow) -> Result<ModelConfig> {
    // Strict on write, lenient on read (BEHAVIOUR §9.3).
    let options = CallOptions::from_json_lenient(&get::<serde_json::Value>(row, "options")?);
    Ok(ModelConfig {
        id: ModelConfigId(get(row, "id")?),
        provider: parse("chat_model_configs.provider", &get::<String>(row, "provider")?)?,
        model: get(row, "model")?,
        display_name: get(row, "display_name")?,
        created_by: get::<Option<Uuid>>(row, "created_by")?.map(UserId),
        updated_by: get::<Option<Uuid>>(row, "updated_by")?.map(UserId),
        enabled: get(row, "enabled")?,
        is_default: get(row, "is_default")?,
        deleted: get(row, "deleted")?,
        deleted_at: get(row, "deleted_at")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
        context_limit: get(row, "context_limit")?,
        compression_threshold: get(row, "compression_threshold")?,
        options,
        prices: get::<Option<serde_json::Value>>(row, "prices")?
            .map(serde_json::from_value)
            .transpose()
            .map_err(|err| corrupt("chat_model_configs.prices", err))?,
    })
}

pub(crate) fn provider(row: &PgRow) -> Result<ProviderConfig> {
    Ok(ProviderConfig {
        id: ProviderId(get(row, "id")?),
        provider: parse("chat_providers.provider", &get::<String>(row, "provider")?)?,
        display_name: get(row, "display_name")?,
        api_key: Secret::new(get::<String>(row, "api_key")?),
        api_key_key_id: get(row, "api_key_key_id")?,
        created_by: get::<Option<Uuid>>(row, "created_by")?.map(UserId),
        enabled: get(row, "enabled")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
        base_url: get(row, "base_url")?,
    })
}

pub(crate) fn diff(row: &PgRow) -> Result<DiffStatus> {
    Ok(DiffStatus {
        chat_id: ChatId(get(row, "chat_id")?),
        url: get(row, "url")?,
        pull_request_state: get(row, "pull_request_state")?,
        changes_requested: get(row, "changes_requested")?,
        additions: get(row, "additions")?,
        deletions: get(row, "deletions")?,
        changed_files: get(row, "changed_files")?,
        refreshed_at: get(row, "refreshed_at")?,
        stale_at: get(row, "stale_at")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
        git_branch: get(row, "git_branch")?,
        git_remote_origin: get(row, "git_remote_origin")?,
    })
}

pub(crate) fn part(row: &PgRow) -> Result<PartRecord> {
    Ok(PartRecord {
        chat_id: ChatId(get(row, "chat_id")?),
        position: PartPosition { episode: get(row, "episode")?, seq: get(row, "seq")? },
        payload: get(row, "payload")?,
        created_at: get(row, "created_at")?,
    })
}

/// Decodes every row with `decode`.
pub(crate) fn all<T>(rows: &[PgRow], decode: fn(&PgRow) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(decode).collect()
}
