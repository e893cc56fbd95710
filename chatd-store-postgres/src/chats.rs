//! Chat lifecycle.

use chatd_core::status::ChatStatus;
use chatd_core::store::{Entity, Result, StoreError};
use chatd_core::{
    ChangeHint, ChangeKind, Chat, ChatCursor, ChatFilter, ChatId, ChatUpdate, MessageId, NewChat,
    NewMessage, Page,
};

use crate::error::db;
use crate::rows::{self, chat_columns};
use crate::{PostgresChatStore, query, tx};

impl PostgresChatStore {
    pub(crate) async fn create_chat_tx(&self, new: NewChat) -> Result<Chat> {
        let title = self.limits.check_new_chat(&new)?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let mut hints = tx::Hints::new();
        let model_config_id = match new.model_config_id {
            Some(id) => {
                tx::live_model_config(&mut tx, id).await?;
                id
            }
            None => {
                let id: Option<uuid::Uuid> = sqlx::query_scalar(
                    "SELECT id FROM chat_model_configs WHERE is_default AND NOT deleted",
                )
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
                id.map(chatd_core::ModelConfigId).ok_or_else(|| {
                    StoreError::validation(
                        "model_config_id",
                        "no default chat model config is available",
                    )
                })?
            }
        };
        let root_chat_id = match new.parent_chat_id {
            Some(parent) => Some(tx::chat(&mut tx, parent, false).await?.root_id()),
            None => None,
        };
        if let (Some(parent), Some(limit)) = (new.parent_chat_id, new.open_children_limit) {
            // The parent's row lock orders concurrent creations of its children: each counts
            // after the one before it committed. `NO KEY` keeps the parent's own turn (and
            // the children's foreign keys) unblocked.
            sqlx::query("SELECT 1 FROM chats WHERE id = $1 FOR NO KEY UPDATE")
                .bind(parent.0)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            let open: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM chats WHERE parent_chat_id = $1 AND NOT archived",
            )
            .bind(parent.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
            let open = usize::try_from(open).unwrap_or(usize::MAX);
            if open >= limit {
                return Err(StoreError::too_many_children(open, limit));
            }
        }
        let id = ChatId::new();
        sqlx::query(
            "INSERT INTO chats (id, owner_id, workspace_id, workspace_agent_id, title, status, \
             parent_chat_id, root_chat_id, last_model_config_id) \
             VALUES ($1, $2, $3, $4, $5, $6::chat_status, $7, $8, $9)",
        )
        .bind(id.0)
        .bind(new.owner_id.0)
        .bind(new.workspace_id.map(|w| w.0))
        .bind(new.workspace_agent_id.map(|w| w.0))
        .bind(&title)
        .bind(ChatStatus::initial(new.message.is_some()).as_str())
        .bind(new.parent_chat_id.map(|p| p.0))
        .bind(root_chat_id.map(|r| r.0))
        .bind(model_config_id.0)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        hints.push(ChangeHint::new(id, ChangeKind::Chat));
        if new.message.is_some() {
            hints.push(ChangeHint::new(id, ChangeKind::Pending));
        }
        let mut first = Vec::new();
        if let Some(prompt) = new.system_prompt.filter(|p| !p.trim().is_empty()) {
            first.push(NewMessage::system(prompt));
        }
        if let Some(content) = new.message {
            first.push(NewMessage::user(content).with_model_config(model_config_id));
        }
        tx::insert_messages(&mut tx, &mut hints, id, first, false).await?;
        let chat = tx::chat(&mut tx, id, false).await?;
        tx.commit().await.map_err(db)?;
        self.announce(hints);
        Ok(chat)
    }

    /// BEHAVIOUR §18, in one transaction: the source is read under a share lock (an edit or
    /// a commit of it waits), its rows through the cut are copied in id order, and the fork
    /// is `pending` when they end with an unanswered user message.
    pub(crate) async fn fork_chat_tx(&self, source: ChatId, at: MessageId) -> Result<Chat> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let mut hints = tx::Hints::new();
        let from = tx::chat(&mut tx, source, false).await?;
        // Through `at` and the tool results right after it (`chatd_core::store::fork_cut`).
        let cut: Option<i64> = sqlx::query_scalar(
            "WITH src AS (SELECT id FROM chats WHERE id = $1 FOR SHARE), \
             at AS (SELECT id FROM chat_messages WHERE chat_id = $1 AND id = $2), \
             next AS (SELECT min(id) AS id FROM chat_messages \
                      WHERE chat_id = $1 AND id > $2 AND role <> 'tool') \
             SELECT COALESCE((SELECT max(m.id) FROM chat_messages m, next \
                              WHERE m.chat_id = $1 AND m.id > $2 AND m.role = 'tool' \
                              AND (next.id IS NULL OR m.id < next.id)), at.id) \
             FROM at, src",
        )
        .bind(source.0)
        .bind(at.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(cut) = cut else {
            return Err(StoreError::not_found(Entity::Message, at));
        };
        let id = ChatId::new();
        let title = self.limits.fork_title(&from.title);
        sqlx::query(
            "INSERT INTO chats (id, owner_id, title, status, last_model_config_id, \
             forked_from_chat_id, forked_from_message_id, labels) \
             VALUES ($1, $2, $3, 'waiting', $4, $5, $6, $7)",
        )
        .bind(id.0)
        .bind(from.owner_id.0)
        .bind(&title)
        .bind(from.last_model_config_id.0)
        .bind(source.0)
        .bind(at.0)
        .bind(serde_json::to_value(&from.labels).unwrap_or_default())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let last: Option<i64> = sqlx::query_scalar(
            "WITH copied AS (INSERT INTO chat_messages (chat_id, model_config_id, created_at, \
             role, content, visibility, input_tokens, output_tokens, total_tokens, \
             reasoning_tokens, cache_creation_tokens, cache_read_tokens, context_limit, \
             compressed) \
             SELECT $1, model_config_id, created_at, role, content, visibility, input_tokens, \
             output_tokens, total_tokens, reasoning_tokens, cache_creation_tokens, \
             cache_read_tokens, context_limit, compressed \
             FROM chat_messages WHERE chat_id = $2 AND id <= $3 ORDER BY id RETURNING id) \
             SELECT max(id) FROM copied",
        )
        .bind(id.0)
        .bind(source.0)
        .bind(cut)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        hints.push(ChangeHint::new(id, ChangeKind::Chat));
        if let Some(last) = last {
            hints.push(ChangeHint::new(id, ChangeKind::Messages).at(last));
        }
        if tx::has_unanswered_message(&mut tx, id).await? {
            tx::write_status(&mut tx, &mut hints, id, ChatStatus::Pending, None).await?;
        }
        let chat = tx::chat(&mut tx, id, false).await?;
        tx.commit().await.map_err(db)?;
        self.announce(hints);
        Ok(chat)
    }

    pub(crate) async fn list_chats_query(&self, filter: ChatFilter) -> Result<Page<Chat>> {
        self.limits.check_chat_filter(&filter)?;
        let size = filter.page_size();
        let (sql, values) = query::list_chats(&filter, size + 1);
        let rows = sqlx::query_with(sqlx::AssertSqlSafe(sql), values)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let mut items = rows::all(&rows, rows::chat)?;
        let next = if items.len() > size {
            items.truncate(size);
            items.last().map(ChatCursor::after)
        } else {
            None
        };
        Ok(Page { items, next })
    }

    pub(crate) async fn update_chat_tx(&self, id: ChatId, update: ChatUpdate) -> Result<Chat> {
        let title = self.limits.check_chat_update(&update)?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let mut hints = tx::Hints::new();
        let current = tx::chat(&mut tx, id, true).await?;
        if let (Some(expected), Some(_)) = (&update.expected_title, &title)
            && &current.title != expected
        {
            return Ok(current);
        }
        hints.push(ChangeHint::new(id, ChangeKind::Chat));
        let (sql, values) = query::update_chat(id, title, &update);
        let row = sqlx::query_with(sqlx::AssertSqlSafe(sql), values)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        let chat = rows::chat(&row)?;
        tx.commit().await.map_err(db)?;
        self.announce(hints);
        Ok(chat)
    }

    pub(crate) async fn set_archived_tx(&self, id: ChatId, archived: bool) -> Result<Vec<ChatId>> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let rows: Vec<uuid::Uuid> = sqlx::query_scalar(
            "WITH target AS (SELECT id, parent_chat_id IS NULL AS is_root FROM chats WHERE id = $1) \
             UPDATE chats SET archived = $2, updated_at = now() \
             WHERE id = $1 OR (root_chat_id = $1 AND (SELECT is_root FROM target)) \
             RETURNING id",
        )
        .bind(id.0)
        .bind(archived)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        if rows.is_empty() {
            return Err(StoreError::not_found(Entity::Chat, id));
        }
        let mut ids: Vec<ChatId> = rows.into_iter().map(ChatId).collect();
        // The chat itself first, then its tree in creation order (ids are time-ordered).
        ids.sort_by_key(|chat| (*chat != id, *chat));
        let hints: tx::Hints =
            ids.iter().map(|chat| ChangeHint::new(*chat, ChangeKind::Chat)).collect();
        tx.commit().await.map_err(db)?;
        self.announce(hints);
        Ok(ids)
    }

    pub(crate) async fn delete_chat_tx(&self, id: ChatId) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let deleted = sqlx::query("DELETE FROM chats WHERE id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::not_found(Entity::Chat, id));
        }
        tx.commit().await.map_err(db)?;
        self.announce(vec![ChangeHint::new(id, ChangeKind::Deleted)]);
        Ok(())
    }

    pub(crate) async fn list_children_query(&self, id: ChatId) -> Result<Vec<Chat>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        tx::chat(&mut conn, id, false).await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            chat_columns!(),
            " FROM chats WHERE parent_chat_id = $1 ORDER BY created_at, id"
        ))
        .bind(id.0)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        rows::all(&rows, rows::chat)
    }
}
