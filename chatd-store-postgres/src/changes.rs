//! `list_chat_changes`: an owner's chat-list changes by position. The clock is the id of
//! the transaction that made the change (`xid8`, kept per kind by a trigger); a change is
//! listed only below `pg_snapshot_xmin` — once every transaction that could still commit an
//! older position has ended — so a cursor handed out is never overtaken by a late commit.
//! Chats and tombstones are listed by one statement (one snapshot, one horizon), which also
//! says whether changes after the cursor were held back by the horizon.

use std::collections::HashMap;
use std::time::Duration;

use chatd_core::store::{ChatChange, ChatChanges, FieldClocks, ListCursor, Result};
use chatd_core::{Chat, ChatId, DiffStatus, UserId};
use sqlx::Row;
use uuid::Uuid;

use crate::PostgresChatStore;
use crate::error::db;
use crate::rows::{self, chat_columns, diff_columns};

/// `$1` owner, `$2` cursor clock (NULL: from the start), `$3` cursor chat, `$4` limit.
const CHANGES: &str = "WITH horizon AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS x), \
     after AS (SELECT $2::bigint::text::xid8 AS clock, $3::uuid AS chat), \
     listed AS ( \
       (SELECT c.id, c.change_xid, FALSE AS deleted, c.created_xid, c.status_xid, c.title_xid, \
               c.archived_xid, c.diff_xid \
        FROM chats c, horizon, after WHERE c.owner_id = $1 AND c.change_xid < horizon.x \
          AND ($2::bigint IS NULL OR (c.change_xid, c.id) > (after.clock, after.chat)) \
        ORDER BY c.change_xid, c.id LIMIT $4) \
       UNION ALL \
       (SELECT t.chat_id, t.change_xid, TRUE, t.created_xid, '0', '0', '0', '0' \
        FROM chat_tombstones t, horizon, after \
        WHERE $2::bigint IS NOT NULL AND t.owner_id = $1 AND t.change_xid < horizon.x \
          AND (t.change_xid, t.chat_id) > (after.clock, after.chat) \
        ORDER BY t.change_xid, t.chat_id LIMIT $4)), \
     held AS (SELECT EXISTS ( \
         SELECT 1 FROM chats c, horizon, after WHERE c.owner_id = $1 AND c.change_xid >= horizon.x \
           AND ($2::bigint IS NULL OR (c.change_xid, c.id) > (after.clock, after.chat))) \
       OR EXISTS ( \
         SELECT 1 FROM chat_tombstones t, horizon WHERE t.owner_id = $1 \
           AND t.change_xid >= horizon.x) AS held_back, \
       ($2::bigint IS NOT NULL AND EXISTS (SELECT 1 FROM chat_tombstone_horizon p, after \
           WHERE (after.clock, after.chat) < (p.pruned_through, p.pruned_chat))) AS expired) \
     SELECT held.held_back, held.expired, listed.id, listed.deleted, \
       listed.change_xid::text::bigint AS clock, listed.created_xid::text::bigint AS created, \
       listed.status_xid::text::bigint AS status, listed.title_xid::text::bigint AS title, \
       listed.archived_xid::text::bigint AS archived, listed.diff_xid::text::bigint AS diff \
     FROM held LEFT JOIN listed ON TRUE \
     ORDER BY listed.change_xid, listed.id LIMIT $4";

impl PostgresChatStore {
    pub(crate) async fn list_chat_changes_query(
        &self,
        owner: UserId,
        after: Option<ListCursor>,
        limit: usize,
    ) -> Result<ChatChanges> {
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let rows = sqlx::query(CHANGES)
            .bind(owner.0)
            .bind(after.map(|a| a.clock))
            .bind(after.map_or(Uuid::nil(), |a| a.chat))
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let (mut held_back, mut expired) = (false, false);
        let mut listed = Vec::with_capacity(rows.len());
        for row in &rows {
            held_back |= row.try_get::<bool, _>("held_back").map_err(db)?;
            expired |= row.try_get::<bool, _>("expired").map_err(db)?;
            let Some(id) = row.try_get::<Option<Uuid>, _>("id").map_err(db)? else { continue };
            let clock = |name: &str| row.try_get::<i64, _>(name).map_err(db);
            let clocks = FieldClocks {
                created: clock("created")?,
                status: clock("status")?,
                title: clock("title")?,
                archived: clock("archived")?,
                diff: clock("diff")?,
            };
            let deleted: bool = row.try_get("deleted").map_err(db)?;
            listed.push((ListCursor::at(clock("clock")?, id), deleted, clocks));
        }
        let present: Vec<Uuid> =
            listed.iter().filter(|(_, deleted, _)| !deleted).map(|(p, _, _)| p.chat).collect();
        let (mut chats, mut diffs) = self.chats_and_diffs(&present).await?;
        let mut changes = Vec::with_capacity(listed.len());
        for (position, deleted, clocks) in listed {
            let id = ChatId(position.chat);
            if deleted {
                changes.push(ChatChange::deleted(position, id, clocks.created));
            } else if let Some(chat) = chats.remove(&id) {
                changes.push(ChatChange::present(position, chat, diffs.remove(&id), clocks));
            }
            // Otherwise deleted since the listing: its tombstone comes next time.
        }
        Ok(ChatChanges::new(changes, held_back).with_expired(expired))
    }

    pub(crate) async fn prune_tombstones_query(&self, older_than: Duration) -> Result<u64> {
        // The newest of the pruned positions and the old horizon becomes the horizon.
        let pruned: i64 = sqlx::query_scalar(
            "WITH gone AS (DELETE FROM chat_tombstones \
               WHERE deleted_at < now() - make_interval(secs => $1) \
               RETURNING change_xid, chat_id), \
             newest AS (SELECT change_xid, chat_id FROM ( \
                 SELECT change_xid, chat_id FROM gone \
                 UNION ALL SELECT pruned_through, pruned_chat FROM chat_tombstone_horizon) p \
               ORDER BY change_xid DESC, chat_id DESC LIMIT 1), \
             moved AS (UPDATE chat_tombstone_horizon h \
               SET pruned_through = newest.change_xid, pruned_chat = newest.chat_id \
               FROM newest WHERE EXISTS (SELECT 1 FROM gone)) \
             SELECT count(*) FROM gone",
        )
        // A century at most: `make_interval` refuses what does not fit an interval.
        .bind(older_than.as_secs_f64().min(100.0 * 365.0 * 86_400.0))
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        Ok(u64::try_from(pruned).unwrap_or(0))
    }

    async fn chats_and_diffs(
        &self,
        ids: &[Uuid],
    ) -> Result<(HashMap<ChatId, Chat>, HashMap<ChatId, DiffStatus>)> {
        if ids.is_empty() {
            return Ok((HashMap::new(), HashMap::new()));
        }
        let rows =
            sqlx::query(concat!("SELECT ", chat_columns!(), " FROM chats WHERE id = ANY($1)"))
                .bind(ids)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        let chats =
            rows.iter().map(|row| rows::chat(row).map(|c| (c.id, c))).collect::<Result<_>>()?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            diff_columns!(),
            " FROM chat_diff_statuses WHERE chat_id = ANY($1)"
        ))
        .bind(ids)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let diffs = rows
            .iter()
            .map(|row| rows::diff(row).map(|d| (d.chat_id, d)))
            .collect::<Result<_>>()?;
        Ok((chats, diffs))
    }
}
