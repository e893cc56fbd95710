//! Diff statuses.

use std::time::Duration;

use chatd_core::store::Result;
use chatd_core::{ChangeHint, ChangeKind, ChatId, DiffReference, DiffRefresh, DiffStatus};

use crate::error::db;
use crate::rows::{self, diff_columns};
use crate::{PostgresChatStore, tx};

impl PostgresChatStore {
    pub(crate) async fn get_diff_status_query(&self, chat: ChatId) -> Result<Option<DiffStatus>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        tx::chat(&mut conn, chat, false).await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            diff_columns!(),
            " FROM chat_diff_statuses WHERE chat_id = $1"
        ))
        .bind(chat.0)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
        row.as_ref().map(rows::diff).transpose()
    }

    pub(crate) async fn upsert_diff_reference_tx(
        &self,
        chat: ChatId,
        reference: DiffReference,
    ) -> Result<DiffStatus> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let mut hints = tx::Hints::new();
        tx::chat(&mut tx, chat, false).await?;
        let url = reference.url.filter(|u| !u.trim().is_empty());
        let row = sqlx::query(concat!(
            "INSERT INTO chat_diff_statuses (chat_id, git_branch, git_remote_origin, url, stale_at) \
             VALUES ($1, $2, $3, $4, now()) \
             ON CONFLICT (chat_id) DO UPDATE SET \
               git_branch = CASE WHEN $2 = '' THEN chat_diff_statuses.git_branch ELSE $2 END, \
               git_remote_origin = CASE WHEN $3 = '' THEN chat_diff_statuses.git_remote_origin ELSE $3 END, \
               url = COALESCE($4, chat_diff_statuses.url), \
               stale_at = now(), updated_at = now() \
             RETURNING ",
            diff_columns!()
        ))
        .bind(chat.0)
        .bind(reference.git_branch.trim())
        .bind(reference.git_remote_origin.trim())
        .bind(url)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let status = rows::diff(&row)?;
        hints.push(ChangeHint::new(chat, ChangeKind::Diff));
        tx.commit().await.map_err(db)?;
        self.announce(hints);
        Ok(status)
    }

    pub(crate) async fn upsert_diff_refresh_tx(
        &self,
        chat: ChatId,
        refresh: DiffRefresh,
    ) -> Result<DiffStatus> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let mut hints = tx::Hints::new();
        tx::chat(&mut tx, chat, false).await?;
        let row = sqlx::query(concat!(
            "INSERT INTO chat_diff_statuses (chat_id, url, pull_request_state, changes_requested, \
               additions, deletions, changed_files, refreshed_at, stale_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, now(), $8) \
             ON CONFLICT (chat_id) DO UPDATE SET url = $2, pull_request_state = $3, \
               changes_requested = $4, additions = $5, deletions = $6, changed_files = $7, \
               refreshed_at = now(), stale_at = $8, updated_at = now() \
             RETURNING ",
            diff_columns!()
        ))
        .bind(chat.0)
        .bind(refresh.url)
        .bind(refresh.pull_request_state)
        .bind(refresh.changes_requested)
        .bind(refresh.additions)
        .bind(refresh.deletions)
        .bind(refresh.changed_files)
        .bind(refresh.stale_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let status = rows::diff(&row)?;
        hints.push(ChangeHint::new(chat, ChangeKind::Diff));
        tx.commit().await.map_err(db)?;
        self.announce(hints);
        Ok(status)
    }

    pub(crate) async fn claim_stale_diff_statuses_query(
        &self,
        limit: usize,
        hold_for: Duration,
    ) -> Result<Vec<DiffStatus>> {
        let rows = sqlx::query(concat!(
            "WITH picked AS ( \
               SELECT chat_id AS picked_id FROM chat_diff_statuses WHERE stale_at <= now() \
               ORDER BY stale_at LIMIT $1 FOR UPDATE SKIP LOCKED) \
             UPDATE chat_diff_statuses SET stale_at = now() + $2 * interval '1 microsecond' \
             FROM picked WHERE chat_id = picked.picked_id RETURNING ",
            diff_columns!()
        ))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(i64::try_from(hold_for.as_micros()).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows::all(&rows, rows::diff)
    }
}
