//! Retention (BEHAVIOUR §18): one bounded batch of a host's policy, one statement per kind.
//! `SKIP LOCKED` leaves a chat an intent or another replica holds for the next batch.

use std::time::Duration;

use chatd_core::store::{Result, RetentionPass, RetentionPolicy};
use chatd_core::{ChangeHint, ChangeKind, ChatId};
use uuid::Uuid;

use crate::PostgresChatStore;
use crate::error::db;
use crate::tx;

/// Microseconds in `duration`, saturating (bound as `$n * interval '1 microsecond'`).
fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

impl PostgresChatStore {
    pub(crate) async fn apply_retention_query(
        &self,
        policy: &RetentionPolicy,
        limit: usize,
    ) -> Result<RetentionPass> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut pass = RetentionPass::default();
        let mut hints = tx::Hints::new();
        if let Some(after) = policy.archive_idle_after {
            // Idle roots none of whose sub-agents is busy, and their trees.
            let rows: Vec<(Uuid, bool)> = sqlx::query_as(
                "WITH roots AS ( \
                   SELECT id FROM chats r \
                   WHERE parent_chat_id IS NULL AND NOT archived \
                     AND status IN ('waiting', 'completed', 'error', 'paused') \
                     AND updated_at <= now() - $1 * interval '1 microsecond' \
                     AND NOT EXISTS (SELECT 1 FROM chats c WHERE c.root_chat_id = r.id \
                                     AND c.status IN ('running', 'pending', 'requires_action')) \
                   ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
                 UPDATE chats SET archived = true, updated_at = now() \
                 WHERE id IN (SELECT id FROM roots) OR root_chat_id IN (SELECT id FROM roots) \
                 RETURNING id, parent_chat_id IS NULL",
            )
            .bind(micros(after))
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
            for (id, root) in rows {
                hints.push(ChangeHint::new(ChatId(id), ChangeKind::Chat));
                if root {
                    pass.archived.push(ChatId(id));
                }
            }
        }
        if let Some(after) = policy.purge_archived_after {
            // The chats' rows go with them (foreign keys cascade); the delete trigger writes
            // each one's list tombstone. Usage records stay (BEHAVIOUR §17).
            let rows: Vec<Uuid> = sqlx::query_scalar(
                "DELETE FROM chats WHERE id IN ( \
                   SELECT id FROM chats \
                   WHERE archived AND status NOT IN ('running', 'pending', 'requires_action') \
                     AND updated_at <= now() - $1 * interval '1 microsecond' \
                   ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
                 RETURNING id",
            )
            .bind(micros(after))
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
            for id in rows {
                hints.push(ChangeHint::new(ChatId(id), ChangeKind::Deleted));
                pass.purged.push(ChatId(id));
            }
        }
        if let Some(after) = policy.purge_deleted_messages_after {
            let purged = sqlx::query(
                "DELETE FROM chat_deleted_messages WHERE (id, revision) IN ( \
                   SELECT id, revision FROM chat_deleted_messages \
                   WHERE deleted_at <= now() - $1 * interval '1 microsecond' \
                   ORDER BY deleted_at LIMIT $2)",
            )
            .bind(micros(after))
            .bind(limit)
            .execute(&self.pool)
            .await
            .map_err(db)?;
            pass.deleted_messages_purged = purged.rows_affected();
        }
        self.announce(hints);
        Ok(pass)
    }
}
