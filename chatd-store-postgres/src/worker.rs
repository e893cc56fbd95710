//! Worker-side operations. Every write is fenced on `(status = running, worker_id,
//! lease_epoch)`; a lost lease changes nothing and reports `LeaseLost`.

use std::time::Duration;

use chatd_core::status::{ChatStatus, StopKind, Trigger, TurnEnding, TurnOutcome};
use chatd_core::store::{
    Lease, LeaseStatus, NewPart, PartPosition, PartRecord, Result, RunningCaps, Step, StoreError,
    fair_window,
};
use chatd_core::{ChangeHint, ChangeKind, Chat, ChatId, Message, MessageId, WorkerId};
use uuid::Uuid;

use crate::PostgresChatStore;
use crate::error::db;
use crate::rows;
use crate::tx::{self, MessageArrays, insert_messages_sql};

/// The statement behind [`ChatStore::acquire`](chatd_core::store::ChatStore::acquire) and
/// `acquire_capped`: `$1` worker id, `$2` limit, `$3` the status `Pending.decide(Acquire)`
/// returns, `$4` the window (`fair_window(limit)`), `$5` the per-owner cap and `$6` the
/// total cap on running turns (each `NULL` for none). Public so benchmarks can run the same
/// SQL without the library around it.
pub const ACQUIRE_SQL: &str = "WITH full_owners AS ( \
               SELECT owner_id FROM chats WHERE $5::bigint IS NOT NULL AND status = 'running' \
               GROUP BY owner_id HAVING count(*) >= $5::bigint), \
             oldest AS ( \
               SELECT id, owner_id, updated_at FROM chats WHERE status = 'pending' \
                 AND owner_id NOT IN (SELECT owner_id FROM full_owners) \
               ORDER BY updated_at, id LIMIT $4), \
             ranked AS ( \
               SELECT id, owner_id, updated_at, \
                 row_number() OVER (PARTITION BY owner_id ORDER BY updated_at, id) AS round \
               FROM oldest), \
             busy AS ( \
               SELECT owner_id, count(*) AS running FROM chats \
               WHERE status = 'running' AND $5::bigint IS NOT NULL \
                 AND owner_id IN (SELECT owner_id FROM oldest) \
               GROUP BY owner_id), \
             room AS ( \
               SELECT CASE WHEN $6::bigint IS NULL THEN $2::bigint \
                 ELSE LEAST($2::bigint, GREATEST($6::bigint - \
                   (SELECT count(*) FROM chats WHERE status = 'running'), 0)) END AS n), \
             eligible AS ( \
               SELECT r.id, r.round, r.updated_at FROM ranked r LEFT JOIN busy b USING (owner_id) \
               WHERE $5::bigint IS NULL OR coalesce(b.running, 0) + r.round <= $5::bigint), \
             picked AS ( \
               SELECT c.id, c.updated_at FROM chats c JOIN eligible e ON e.id = c.id \
               WHERE c.status = 'pending' ORDER BY e.round, e.updated_at, e.id \
               LIMIT (SELECT n FROM room) FOR UPDATE OF c SKIP LOCKED) \
             UPDATE chats SET status = $3::chat_status, worker_id = $1, started_at = now(), \
               heartbeat_at = now(), updated_at = now(), lease_epoch = chats.lease_epoch + 1, \
               last_error = NULL, stop_request = NULL, stop_promote_id = NULL, \
               turn_started_after = COALESCE((SELECT max(m.id) FROM chat_messages m \
                 WHERE m.chat_id = chats.id), 0) \
             FROM picked WHERE chats.id = picked.id \
             RETURNING chats.id, chats.lease_epoch, picked.updated_at";

/// The key of the transaction-scoped advisory lock that serializes capped acquisitions
/// across processes (so that two workers cannot both take an owner's last slot).
const ACQUIRE_LOCK: i64 = 0x6368_6174_645f_6171; // "chatd_aq"

/// The statement behind [`ChatStore::release`](chatd_core::store::ChatStore::release): `$1`
/// chat, `$2` worker, `$3` epoch, `$4` the next status and `$5` the promote flag for each
/// stop request (none, interrupt, pause) as `decide` returns them, `$6` the failure reason,
/// `$7` the turn ending (`TurnEnding` as JSON) for each stop request.
pub const RELEASE_SQL: &str = concat!(
    "WITH fence AS ( \
               SELECT id, stop_request, stop_promote_id, \
                 CASE stop_request WHEN 'interrupt' THEN 2 WHEN 'pause' THEN 3 ELSE 1 END AS pick \
               FROM chats WHERE id = $1 AND status = 'running' AND worker_id = $2 \
                 AND lease_epoch = $3 AND tool_calls = '[]'::jsonb FOR UPDATE), \
             decision AS ( \
               SELECT id, stop_promote_id, ($4::text[])[pick] AS next, ($5::bool[])[pick] AS promote, \
                 ($7::jsonb[])[pick] AS ending \
               FROM fence), \
             head AS ( \
               DELETE FROM chat_queued_messages WHERE id = ( \
                 SELECT q.id FROM chat_queued_messages q, decision d \
                 WHERE q.chat_id = d.id AND d.promote \
                 ORDER BY (q.id IS NOT DISTINCT FROM d.stop_promote_id) DESC, q.id LIMIT 1) \
               RETURNING chat_id, content, client_id), \
             promoted AS ( \
               INSERT INTO chat_messages (chat_id, role, content, visibility, client_id) \
               SELECT chat_id, 'user', content, 'both', client_id FROM head RETURNING id, chat_id), \
             parts AS (DELETE FROM chat_stream_parts WHERE chat_id IN (SELECT id FROM fence)), \
             released AS ( \
               UPDATE chats SET \
                 status = (CASE WHEN EXISTS (SELECT 1 FROM head) THEN 'pending' ELSE d.next END)::chat_status, \
                 updated_at = now(), worker_id = NULL, started_at = NULL, heartbeat_at = NULL, \
                 stop_request = NULL, stop_promote_id = NULL, last_turn = d.ending, \
                 last_error = CASE WHEN d.next = 'error' AND NOT EXISTS (SELECT 1 FROM head) THEN $6 END \
               FROM decision d WHERE chats.id = d.id \
               RETURNING chats.*), \
             promoted_id AS (SELECT max(id) AS id FROM promoted) \
             SELECT (SELECT id FROM promoted_id) AS promoted_message_id, ",
    crate::rows::chat_columns!(),
    " FROM released"
);

/// Microseconds in `duration`, saturating (bound as `$n * interval '1 microsecond'`).
fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

impl PostgresChatStore {
    /// One statement: pick pending chats, owners interleaved among the oldest
    /// 512 chats (`fair_window`), with `SKIP LOCKED` (served by the partial index on `updated_at`) and
    /// claim them; with caps, inside a transaction holding [`ACQUIRE_LOCK`].
    pub(crate) async fn acquire_query(
        &self,
        worker: WorkerId,
        limit: usize,
        caps: RunningCaps,
    ) -> Result<Vec<Lease>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let decision = ChatStatus::Pending.decide(Trigger::Acquire)?;
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let query = sqlx::query_as(ACQUIRE_SQL)
            .bind(worker.0)
            .bind(count(limit))
            .bind(decision.next.as_str())
            .bind(count(fair_window(limit)))
            .bind(caps.per_owner.map(count))
            .bind(caps.total.map(count));
        let mut rows: Vec<(Uuid, i64, chrono::DateTime<chrono::Utc>)> = if caps.any() {
            let mut tx = self.pool.begin().await.map_err(db)?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(ACQUIRE_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            let rows = query.fetch_all(&mut *tx).await.map_err(db)?;
            tx.commit().await.map_err(db)?;
            rows
        } else {
            query.fetch_all(&self.pool).await.map_err(db)?
        };
        rows.sort_by_key(|(id, _, updated_at)| (*updated_at, *id));
        self.announce(
            rows.iter().map(|(id, _, _)| ChangeHint::new(ChatId(*id), ChangeKind::Chat)).collect(),
        );
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

    /// One statement: the fence (a share lock on the chat row, held to commit, so an edit
    /// cannot slip in between), the rows and the part-log cleanup, so a commit costs one
    /// round trip; the rows come back only if the fence held. (This flat shape measured
    /// 0.84 of a bare INSERT in pgbench; wrapping it to also report the fence separately
    /// cost 0.73.) It does not touch `heartbeat_at`: that column is indexed, and rewriting
    /// the chat row on every step would cost more than the step's own insert. Only ids and
    /// timestamps come back; the rest of each message is what was sent. A step of one
    /// message (a final answer) uses a plain single-row insert instead of the arrays built
    /// for several rows: pg-append went from 0.69 to 0.76–0.79 of a raw insert with it.
    pub(crate) async fn commit_step_query(
        &self,
        lease: &Lease,
        mut step: Step,
    ) -> Result<Vec<Message>> {
        self.limits.check_step(&mut step)?;
        let messages: Vec<_> = step.assistant.into_iter().chain(step.tool_results).collect();
        if messages.is_empty() {
            let fenced: Option<Uuid> = sqlx::query_scalar(
                "WITH fence AS ( \
                   SELECT id FROM chats \
                   WHERE id = $1 AND status = 'running' AND worker_id = $2 AND lease_epoch = $3 \
                   FOR SHARE), \
                 parts AS (DELETE FROM chat_stream_parts WHERE chat_id IN (SELECT id FROM fence)) \
                 SELECT id FROM fence",
            )
            .bind(lease.chat_id.0)
            .bind(lease.worker_id.0)
            .bind(lease.epoch)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
            return match fenced {
                Some(_) => Ok(Vec::new()),
                None => Err(StoreError::LeaseLost { chat_id: lease.chat_id }),
            };
        }
        let mut rows: Vec<(i64, chrono::DateTime<chrono::Utc>)> = match messages.as_slice() {
            // A step of one message (a final answer): a plain single-row insert, without the
            // arrays built for several rows (measured in BENCHMARKS.md, pg-append).
            [one] => self.commit_one(lease, one).await?.into_iter().collect(),
            _ => self.commit_many(lease, &messages).await?,
        };
        if rows.is_empty() {
            return Err(StoreError::LeaseLost { chat_id: lease.chat_id });
        }
        rows.sort_by_key(|(id, _)| *id);
        let written: Vec<Message> = rows
            .into_iter()
            .zip(messages)
            .map(|((id, created_at), new)| Message {
                id: MessageId(id),
                chat_id: lease.chat_id,
                model_config_id: new.model_config_id,
                created_at,
                role: new.role,
                content: new.content,
                visibility: new.visibility,
                usage: new.usage,
                context_limit: new.context_limit,
                compressed: false,
                // Steps hold assistant and tool rows: client ids belong to user messages.
                client_id: None,
                deleted: None,
            })
            .collect();
        if let Some(last) = written.last() {
            self.announce(vec![ChangeHint::new(lease.chat_id, ChangeKind::Messages).at(last.id)]);
        }
        Ok(written)
    }

    /// Inserts one message behind the fence (and clears the part log); `None` when the
    /// lease is gone.
    async fn commit_one(
        &self,
        lease: &Lease,
        one: &chatd_core::NewMessage,
    ) -> Result<Option<(i64, chrono::DateTime<chrono::Utc>)>> {
        const FENCE: &str = "WITH fence AS ( \
               SELECT id FROM chats \
               WHERE id = $1 AND status = 'running' AND worker_id = $2 AND lease_epoch = $3 \
               FOR SHARE), \
             parts AS (DELETE FROM chat_stream_parts WHERE chat_id IN (SELECT id FROM fence)), ";
        const CONFIG: &str = "config AS ( \
               UPDATE chats SET last_model_config_id = $7 \
               WHERE id IN (SELECT id FROM fence) \
                 AND last_model_config_id IS DISTINCT FROM $7::uuid), ";
        const INSERT: &str = "ins AS (INSERT INTO chat_messages (chat_id, role, content, \
               visibility, model_config_id, input_tokens, output_tokens, total_tokens, \
               reasoning_tokens, cache_creation_tokens, cache_read_tokens, context_limit) \
             SELECT fence.id, $4, $5, $6::chat_message_visibility, $7::uuid, $8, $9, $10, $11, \
               $12, $13, $14 FROM fence RETURNING id, created_at) \
             SELECT id, created_at FROM ins";
        // Assembled from the constants above only; every value is bound.
        let sql = if one.model_config_id.is_some() {
            [FENCE, CONFIG, INSERT].concat()
        } else {
            [FENCE, INSERT].concat()
        };
        let usage = one.usage;
        sqlx::query_as::<_, (i64, chrono::DateTime<chrono::Utc>)>(sqlx::AssertSqlSafe(sql))
            .bind(lease.chat_id.0)
            .bind(lease.worker_id.0)
            .bind(lease.epoch)
            .bind(one.role.as_str())
            .bind(chatd_core::Part::content_to_json(&one.content))
            .bind(one.visibility.as_str())
            .bind(one.model_config_id.map(|c| c.0))
            .bind(usage.map(|u| u.input_tokens))
            .bind(usage.map(|u| u.output_tokens))
            .bind(usage.map(|u| u.total_tokens))
            .bind(usage.map(|u| u.reasoning_tokens))
            .bind(usage.map(|u| u.cache_creation_tokens))
            .bind(usage.map(|u| u.cache_read_tokens))
            .bind(one.context_limit)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }

    /// Inserts several messages in order behind the fence (and clears the part log).
    async fn commit_many(
        &self,
        lease: &Lease,
        messages: &[chatd_core::NewMessage],
    ) -> Result<Vec<(i64, chrono::DateTime<chrono::Utc>)>> {
        let arrays = MessageArrays::new(messages);
        let last_config = arrays.last_config.map(|c| c.0);
        let query = sqlx::query(concat!(
            "WITH fence AS ( \
               SELECT id FROM chats \
               WHERE id = $1 AND status = 'running' AND worker_id = $15 AND lease_epoch = $16 \
               FOR SHARE), \
             config AS ( \
               UPDATE chats SET last_model_config_id = $14 \
               WHERE id IN (SELECT id FROM fence) AND $14::uuid IS NOT NULL \
                 AND last_model_config_id IS DISTINCT FROM $14::uuid), \
             parts AS (DELETE FROM chat_stream_parts WHERE chat_id IN (SELECT id FROM fence)) ",
            insert_messages_sql!("fence.id", "$13", "NULL", "fence,", "id, created_at"),
        ))
        .bind(lease.chat_id.0);
        arrays
            .bind(query)
            .bind(false)
            .bind(last_config)
            .bind(lease.worker_id.0)
            .bind(lease.epoch)
            .try_map(|row: sqlx::postgres::PgRow| {
                use sqlx::Row;
                Ok((row.try_get(0)?, row.try_get(1)?))
            })
            .fetch_all(&self.pool)
            .await
            .map_err(db)
    }

    /// One statement. The state machine's decision depends on the chat's stop request, which
    /// only the database knows at that instant, so the decisions for all three possibilities
    /// (none, interrupt, pause) are computed here with `decide` and bound; the statement
    /// picks the one matching the locked row, promotes the queue head when that decision
    /// says so, and applies `tx::write_status`'s invariants.
    pub(crate) async fn release_query(&self, lease: &Lease, outcome: TurnOutcome) -> Result<Chat> {
        if outcome == TurnOutcome::AwaitingAction {
            return self.release_recorded_tx(lease, outcome).await;
        }
        let mut nexts = Vec::with_capacity(3);
        let mut promotes = Vec::with_capacity(3);
        let mut endings = Vec::with_capacity(3);
        let last_error = match &outcome {
            TurnOutcome::Failed(reason) => Some(self.limits.failure_text(reason)),
            _ => None,
        };
        for stop in [None, Some(StopKind::Interrupt), Some(StopKind::Pause)] {
            let trigger = Trigger::release(&outcome, stop);
            let decision = ChatStatus::Running.decide(trigger)?;
            nexts.push(decision.next.as_str());
            promotes.push(decision.promote_queue_head);
            let ending = match TurnEnding::of_release(trigger, &outcome) {
                TurnEnding::Failed { .. } => {
                    TurnEnding::Failed { reason: last_error.clone().unwrap_or_default() }
                }
                ending => ending,
            };
            endings.push(serde_json::to_value(ending).unwrap_or_default());
        }
        let row = sqlx::query(RELEASE_SQL)
            .bind(lease.chat_id.0)
            .bind(lease.worker_id.0)
            .bind(lease.epoch)
            .bind(&nexts)
            .bind(&promotes)
            .bind(last_error)
            .bind(&endings)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        let Some(row) = row else {
            // The lease is gone, or the chat has tool-call records, which the statement
            // leaves to the transaction that can close them (it reports a lost lease too).
            return self.release_recorded_tx(lease, outcome).await;
        };
        let chat = rows::chat(&row)?;
        let promoted: Option<i64> = sqlx::Row::try_get(&row, "promoted_message_id").map_err(db)?;
        let mut hints = vec![ChangeHint::new(chat.id, ChangeKind::Chat)];
        if chat.status == ChatStatus::Pending {
            hints.push(ChangeHint::new(chat.id, ChangeKind::Pending));
        }
        if let Some(message) = promoted {
            hints.push(ChangeHint::new(chat.id, ChangeKind::Queue));
            hints.push(ChangeHint::new(chat.id, ChangeKind::Messages).at(message));
        }
        self.announce(hints);
        Ok(chat)
    }

    /// One statement; applies the same invariants as `tx::write_status` to every stale chat.
    pub(crate) async fn recover_stale_query(&self, stale_after: Duration) -> Result<Vec<ChatId>> {
        let decision = ChatStatus::Running.decide(Trigger::RecoverStale)?;
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "WITH stale AS ( \
               SELECT id FROM chats WHERE status = 'running' \
               AND heartbeat_at < now() - $1 * interval '1 microsecond' \
               FOR UPDATE SKIP LOCKED), \
             parts AS (DELETE FROM chat_stream_parts WHERE chat_id IN (SELECT id FROM stale)) \
             UPDATE chats SET status = $2::chat_status, updated_at = now(), worker_id = NULL, \
               started_at = NULL, heartbeat_at = NULL, stop_request = NULL, \
               stop_promote_id = NULL, last_error = NULL, last_turn = jsonb_build_object('outcome', 'lost') \
             FROM stale WHERE chats.id = stale.id RETURNING chats.id",
        )
        .bind(micros(stale_after))
        .bind(decision.next.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let ids: Vec<ChatId> = ids.into_iter().map(ChatId).collect();
        self.announce(
            ids.iter()
                .flat_map(|id| {
                    [
                        ChangeHint::new(*id, ChangeKind::Chat),
                        ChangeHint::new(*id, ChangeKind::Pending),
                    ]
                })
                .collect(),
        );
        Ok(ids)
    }

    /// One statement: the fence, the log's last position and the insert of the flush as one
    /// row (its key is its last part's position, its arrays hold the parts). Positions are
    /// checked in order within the flush here, and against the log's last one by the
    /// statement, which inserts nothing when the first is not after it.
    pub(crate) async fn append_parts_query(
        &self,
        lease: &Lease,
        mut parts: Vec<NewPart>,
    ) -> Result<()> {
        let last = self.limits.check_parts(None, &mut parts)?;
        let (Some(first), Some(last)) = (parts.first().map(|p| p.position), last) else {
            // Nothing to append: only the lease is checked.
            return self.fence_query(lease).await;
        };
        let episodes: Vec<i64> = parts.iter().map(|p| p.position.episode).collect();
        let seqs: Vec<i64> = parts.iter().map(|p| p.position.seq).collect();
        let payloads: Vec<serde_json::Value> = parts.into_iter().map(|p| p.payload).collect();
        let (fenced, tail_episode, tail_seq, inserted): (bool, Option<i64>, Option<i64>, bool) =
            sqlx::query_as(
                "WITH fence AS ( \
                   SELECT id FROM chats WHERE id = $1 AND status = 'running' AND worker_id = $2 \
                   AND lease_epoch = $3 FOR SHARE), \
                 tail AS ( \
                   SELECT episode, seq FROM chat_stream_parts WHERE chat_id = $1 \
                   ORDER BY episode DESC, seq DESC LIMIT 1), \
                 ins AS ( \
                   INSERT INTO chat_stream_parts (chat_id, episode, seq, episodes, seqs, payloads) \
                   SELECT id, $4, $5, $6, $7, $8 FROM fence \
                   WHERE NOT EXISTS (SELECT 1 FROM tail WHERE (tail.episode, tail.seq) >= ($9, $10)) \
                   RETURNING 1) \
                 SELECT EXISTS (SELECT 1 FROM fence), (SELECT episode FROM tail), \
                   (SELECT seq FROM tail), EXISTS (SELECT 1 FROM ins)",
            )
            .bind(lease.chat_id.0)
            .bind(lease.worker_id.0)
            .bind(lease.epoch)
            .bind(last.episode)
            .bind(last.seq)
            .bind(&episodes)
            .bind(&seqs)
            .bind(&payloads)
            .bind(first.episode)
            .bind(first.seq)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        if !fenced {
            return Err(StoreError::LeaseLost { chat_id: lease.chat_id });
        }
        if !inserted {
            // Reported as the in-memory check reports it.
            let tail =
                tail_episode.zip(tail_seq).map(|(episode, seq)| PartPosition { episode, seq });
            self.limits.check_parts(
                tail,
                &mut [NewPart { position: first, payload: serde_json::Value::Null }],
            )?;
            return Err(StoreError::Conflict("the part log changed during the append".into()));
        }
        let mut hints = tx::Hints::new();
        hints.push(
            ChangeHint::new(lease.chat_id, ChangeKind::Parts)
                .at(format_args!("{}.{}", last.episode, last.seq)),
        );
        self.announce(hints);
        Ok(())
    }

    /// Whether `lease` still holds its chat (`LeaseLost` if not).
    async fn fence_query(&self, lease: &Lease) -> Result<()> {
        let fenced: Option<Uuid> = sqlx::query_scalar(
            "SELECT id FROM chats WHERE id = $1 AND status = 'running' AND worker_id = $2 \
             AND lease_epoch = $3",
        )
        .bind(lease.chat_id.0)
        .bind(lease.worker_id.0)
        .bind(lease.epoch)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        match fenced {
            Some(_) => Ok(()),
            None => Err(StoreError::LeaseLost { chat_id: lease.chat_id }),
        }
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
            "SELECT b.chat_id, p.episode, p.seq, p.payload, b.created_at \
             FROM chat_stream_parts b, UNNEST(b.episodes, b.seqs, b.payloads) AS p(episode, seq, payload) \
             WHERE b.chat_id = $1 AND (b.episode, b.seq) > ($2, $3) AND (p.episode, p.seq) > ($2, $3) \
             ORDER BY p.episode, p.seq",
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
