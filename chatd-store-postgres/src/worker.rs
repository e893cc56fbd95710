//! Worker-side operations. Every write is fenced on `(status = running, worker_id,
//! lease_epoch)`; a lost lease changes nothing and reports `LeaseLost`.

use std::time::Duration;

use chatd_core::status::{ChatStatus, Trigger, TurnOutcome, decide, release_trigger};
use chatd_core::store::{
    Lease, LeaseStatus, NewPart, PartPosition, PartRecord, Result, Step, StoreError,
};
use chatd_core::{ChangeHint, ChangeKind, Chat, ChatId, Message, WorkerId, validate};
use uuid::Uuid;

use crate::PostgresChatStore;
use crate::error::db;
use crate::rows;
use crate::tx::{self, MessageArrays, insert_messages_sql};

/// Microseconds in `duration`, saturating (bound as `$n * interval '1 microsecond'`).
fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

impl PostgresChatStore {
    /// One statement: pick the oldest pending chats with `SKIP LOCKED` (served by the partial
    /// index on `updated_at`) and claim them.
    pub(crate) async fn acquire_query(&self, worker: WorkerId, limit: usize) -> Result<Vec<Lease>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let decision = decide(ChatStatus::Pending, Trigger::Acquire)?;
        let rows: Vec<(Uuid, i64, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
            "WITH picked AS ( \
               SELECT id, updated_at FROM chats WHERE status = 'pending' \
               ORDER BY updated_at, id LIMIT $2 FOR UPDATE SKIP LOCKED), \
             claimed AS ( \
               UPDATE chats SET status = $3::chat_status, worker_id = $1, started_at = now(), \
                 heartbeat_at = now(), updated_at = now(), lease_epoch = chats.lease_epoch + 1, \
                 last_error = NULL, stop_request = NULL, stop_promote_id = NULL \
               FROM picked WHERE chats.id = picked.id \
               RETURNING chats.id, chats.lease_epoch, picked.updated_at), \
             notified AS (SELECT pg_notify($4, id::text || '|chat|') FROM claimed) \
             SELECT id, lease_epoch, updated_at FROM claimed \
             WHERE (SELECT count(*) FROM notified) >= 0",
        )
        .bind(worker.0)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(decision.next.as_str())
        .bind(tx::CHANNEL)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut rows = rows;
        rows.sort_by_key(|(id, _, updated_at)| (*updated_at, *id));
        Ok(rows
            .into_iter()
            .map(|(id, epoch, _)| Lease { chat_id: ChatId(id), worker_id: worker, epoch })
            .collect())
    }

    /// One statement for all of a worker's leases.
    pub(crate) async fn heartbeat_query(
        &self,
        worker: WorkerId,
        leases: &[Lease],
    ) -> Result<Vec<LeaseStatus>> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = leases.iter().map(|l| l.chat_id.0).collect();
        let epochs: Vec<i64> = leases.iter().map(|l| l.epoch).collect();
        let renewed: Vec<(Uuid, i64, Option<String>)> = sqlx::query_as(
            "UPDATE chats SET heartbeat_at = now() \
             FROM UNNEST($2::uuid[], $3::bigint[]) AS l(id, epoch) \
             WHERE chats.id = l.id AND chats.lease_epoch = l.epoch \
               AND chats.worker_id = $1 AND chats.status = 'running' \
             RETURNING chats.id, chats.lease_epoch, chats.stop_request",
        )
        .bind(worker.0)
        .bind(&ids)
        .bind(&epochs)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(leases
            .iter()
            .map(|lease| {
                if lease.worker_id != worker {
                    return LeaseStatus::Lost;
                }
                match renewed
                    .iter()
                    .find(|(id, epoch, _)| *id == lease.chat_id.0 && *epoch == lease.epoch)
                {
                    None => LeaseStatus::Lost,
                    Some((_, _, None)) => LeaseStatus::Held,
                    Some((_, _, Some(stop))) => match stop.as_str() {
                        "pause" => LeaseStatus::StopRequested(chatd_core::status::StopKind::Pause),
                        _ => LeaseStatus::StopRequested(chatd_core::status::StopKind::Interrupt),
                    },
                }
            })
            .collect())
    }

    /// One statement: the fence (which also renews the heartbeat), the rows, and clearing
    /// the part log, so a commit costs one round trip.
    pub(crate) async fn commit_step_query(
        &self,
        lease: &Lease,
        step: Step,
    ) -> Result<Vec<Message>> {
        validate::step(&step)?;
        let messages: Vec<_> = step.assistant.into_iter().chain(step.tool_results).collect();
        let arrays = MessageArrays::new(&messages);
        let last_config = arrays.last_config.map(|c| c.0);
        let query = sqlx::query(concat!(
            "WITH fence AS ( \
               UPDATE chats SET heartbeat_at = now(), \
                 last_model_config_id = COALESCE($14, last_model_config_id) \
               WHERE id = $1 AND status = 'running' AND worker_id = $15 AND lease_epoch = $16 \
               RETURNING id), \
             parts AS (DELETE FROM chat_stream_parts WHERE chat_id IN (SELECT id FROM fence)), \
             inserted AS (",
            insert_messages_sql!("fence.id", "$13", "fence,"),
            "), notified AS ( \
               SELECT pg_notify($17, $1::text || '|messages|' || max(id)::text) FROM inserted \
               HAVING count(*) > 0) \
             SELECT (SELECT count(*) FROM fence) AS fenced, (SELECT count(*) FROM notified) AS notified, \
               inserted.* FROM (SELECT 1) AS one LEFT JOIN inserted ON TRUE"
        ))
        .bind(lease.chat_id.0);
        let rows = arrays
            .bind(query)
            .bind(false)
            .bind(last_config)
            .bind(lease.worker_id.0)
            .bind(lease.epoch)
            .bind(tx::CHANNEL)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let fenced: i64 = match rows.first() {
            Some(row) => sqlx::Row::try_get(row, "fenced").map_err(db)?,
            None => 0,
        };
        if fenced == 0 {
            return Err(StoreError::LeaseLost { chat_id: lease.chat_id });
        }
        let mut written = Vec::with_capacity(messages.len());
        for row in &rows {
            let id: Option<i64> = sqlx::Row::try_get(row, "id").map_err(db)?;
            if id.is_some() {
                written.push(rows::message(row)?);
            }
        }
        written.sort_by_key(|m| m.id);
        Ok(written)
    }

    pub(crate) async fn release_tx(&self, lease: &Lease, outcome: TurnOutcome) -> Result<Chat> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let mut hints = tx::Hints::new();
        let chat = tx::fenced_chat(&mut tx, lease).await?;
        let stop = chat.stop_request;
        let decision = decide(chat.status, release_trigger(&outcome, stop.map(|s| s.kind)))?;
        let promoted = if decision.promote_queue_head {
            tx::promote_from_queue(&mut tx, &mut hints, lease.chat_id, stop.and_then(|s| s.promote))
                .await?
        } else {
            None
        };
        let next = if promoted.is_some() { ChatStatus::Pending } else { decision.next };
        let last_error = match outcome {
            TurnOutcome::Failed(reason) => Some(reason),
            _ => None,
        };
        tx::write_status(&mut tx, &mut hints, lease.chat_id, next, last_error).await?;
        let chat = tx::chat(&mut tx, lease.chat_id, false).await?;
        tx::notify(&mut tx, &hints).await?;
        tx.commit().await.map_err(db)?;
        Ok(chat)
    }

    /// One statement; applies the same invariants as `tx::write_status` to every stale chat.
    pub(crate) async fn recover_stale_query(&self, stale_after: Duration) -> Result<Vec<ChatId>> {
        let decision = decide(ChatStatus::Running, Trigger::RecoverStale)?;
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "WITH stale AS ( \
               SELECT id FROM chats WHERE status = 'running' \
               AND heartbeat_at < now() - $1 * interval '1 microsecond' \
               FOR UPDATE SKIP LOCKED), \
             parts AS (DELETE FROM chat_stream_parts WHERE chat_id IN (SELECT id FROM stale)), \
             recovered AS ( \
               UPDATE chats SET status = $2::chat_status, updated_at = now(), worker_id = NULL, \
                 started_at = NULL, heartbeat_at = NULL, stop_request = NULL, \
                 stop_promote_id = NULL, last_error = NULL \
               FROM stale WHERE chats.id = stale.id RETURNING chats.id), \
             notified AS ( \
               SELECT pg_notify($3, r.id::text || k.kind) FROM recovered r, \
               (VALUES ('|chat|'), ('|pending|')) AS k(kind)) \
             SELECT id FROM recovered WHERE (SELECT count(*) FROM notified) >= 0",
        )
        .bind(micros(stale_after))
        .bind(decision.next.as_str())
        .bind(tx::CHANNEL)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(ids.into_iter().map(ChatId).collect())
    }

    pub(crate) async fn append_parts_tx(&self, lease: &Lease, parts: Vec<NewPart>) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let mut hints = tx::Hints::new();
        let fenced: Option<Uuid> = sqlx::query_scalar(
            "SELECT id FROM chats WHERE id = $1 AND status = 'running' AND worker_id = $2 \
             AND lease_epoch = $3 FOR SHARE",
        )
        .bind(lease.chat_id.0)
        .bind(lease.worker_id.0)
        .bind(lease.epoch)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        if fenced.is_none() {
            return Err(StoreError::LeaseLost { chat_id: lease.chat_id });
        }
        let last: Option<(i64, i64)> = sqlx::query_as(
            "SELECT episode, seq FROM chat_stream_parts WHERE chat_id = $1 \
             ORDER BY episode DESC, seq DESC LIMIT 1",
        )
        .bind(lease.chat_id.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let mut last = last.map(|(episode, seq)| PartPosition { episode, seq });
        for part in &parts {
            if last.is_some_and(|last| part.position <= last) {
                return Err(StoreError::Conflict(format!(
                    "part position {}.{} is not after the last appended part",
                    part.position.episode, part.position.seq
                )));
            }
            last = Some(part.position);
        }
        if let Some(last) = last {
            hints.push(
                ChangeHint::new(lease.chat_id, ChangeKind::Parts)
                    .at(format_args!("{}.{}", last.episode, last.seq)),
            );
        }
        let episodes: Vec<i64> = parts.iter().map(|p| p.position.episode).collect();
        let seqs: Vec<i64> = parts.iter().map(|p| p.position.seq).collect();
        let payloads: Vec<serde_json::Value> = parts.into_iter().map(|p| p.payload).collect();
        sqlx::query(
            "INSERT INTO chat_stream_parts (chat_id, episode, seq, payload) \
             SELECT $1, p.episode, p.seq, p.payload \
             FROM UNNEST($2::bigint[], $3::bigint[], $4::jsonb[]) AS p(episode, seq, payload)",
        )
        .bind(lease.chat_id.0)
        .bind(&episodes)
        .bind(&seqs)
        .bind(&payloads)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx::notify(&mut tx, &hints).await?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    pub(crate) async fn read_parts_query(
        &self,
        chat: ChatId,
        after: Option<PartPosition>,
    ) -> Result<Vec<PartRecord>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        tx::chat(&mut conn, chat, false).await?;
        let after = after.unwrap_or(PartPosition { episode: i64::MIN, seq: i64::MIN });
        let rows = sqlx::query(
            "SELECT chat_id, episode, seq, payload, created_at FROM chat_stream_parts \
             WHERE chat_id = $1 AND (episode, seq) > ($2, $3) ORDER BY episode, seq",
        )
        .bind(chat.0)
        .bind(after.episode)
        .bind(after.seq)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        rows::all(&rows, rows::part)
    }
}
