//! Message reads and compaction writes.

use chatd_core::status::Trigger;
use chatd_core::store::{Compaction, Fence, MessageQuery, Result, StoreError};
use chatd_core::{ChatId, Message};

use crate::error::db;
use crate::rows::{self, message_columns};
use crate::{PostgresChatStore, query, tx};

impl PostgresChatStore {
    pub(crate) async fn list_messages_query(
        &self,
        chat: ChatId,
        filter: MessageQuery,
    ) -> Result<Vec<Message>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        tx::chat(&mut conn, chat, false).await?;
        let (sql, values) = query::list_messages(chat, filter);
        let rows = sqlx::query_with(sqlx::AssertSqlSafe(sql), values)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
        rows::all(&rows, rows::message)
    }

    /// BEHAVIOUR §5, in one statement: the latest boundary comes from a partial index scanned
    /// backwards, the system rows from another partial index, and the tail from a range
    /// scan of `(chat_id, id)` starting at the boundary — nothing reads the history before
    /// the boundary.
    pub(crate) async fn prompt_messages_query(&self, chat: ChatId) -> Result<Vec<Message>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        tx::chat(&mut conn, chat, false).await?;
        let rows = sqlx::query(concat!(
            "WITH boundary AS (",
            "  SELECT COALESCE(MAX(id), 0) AS boundary_id FROM (",
            "    SELECT id FROM chat_messages WHERE chat_id = $1 AND compressed = TRUE ",
            "    AND role = 'system' AND visibility IN ('model', 'both') ORDER BY id DESC LIMIT 1",
            "  ) latest",
            ") ",
            "SELECT ",
            message_columns!(),
            " FROM chat_messages, boundary ",
            "WHERE chat_id = $1 AND compressed = FALSE AND role = 'system' AND id < boundary_id ",
            "UNION ALL ",
            "SELECT ",
            message_columns!(),
            " FROM chat_messages, boundary ",
            "WHERE chat_id = $1 AND id = boundary_id ",
            "UNION ALL ",
            "SELECT ",
            message_columns!(),
            " FROM chat_messages, boundary ",
            "WHERE chat_id = $1 AND id > boundary_id AND compressed = FALSE ",
            "AND visibility IN ('model', 'both') ",
            "ORDER BY id"
        ))
        .bind(chat.0)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        rows::all(&rows, rows::message)
    }

    pub(crate) async fn write_compaction_tx(
        &self,
        fence: Fence,
        mut compaction: Compaction,
    ) -> Result<Vec<Message>> {
        self.limits.check_compaction(&mut compaction)?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let mut hints = tx::Hints::new();
        let allowed = match fence {
            Fence::Lease(lease) => tx::fenced_chat(&mut tx, &lease).await.map(|_| ()),
            Fence::Idle(chat) => match tx::chat(&mut tx, chat, true).await {
                Ok(current) => {
                    current.status.decide(Trigger::Compact).map(|_| ()).map_err(StoreError::from)
                }
                Err(err) => Err(err),
            },
        };
        if let Err(err) = allowed {
            return Err(tx::refuse(tx, err).await);
        }
        let rows = compaction.into_rows().to_vec();
        let written = tx::insert_messages(&mut tx, &mut hints, fence.chat_id(), rows, true).await?;
        tx.commit().await.map_err(db)?;
        self.announce(hints);
        Ok(written)
    }
}
