//! Durable tool calls (BEHAVIOUR §16): the writes of a recorded step, a release that must look
//! at its records, and the decisions and deadlines of open calls. Each is one transaction on
//! the locked chat row, so a decision and the deadline sweep never both decide a call.

use chatd_core::status::{ChatStatus, Trigger, TurnEnding, TurnOutcome};
use chatd_core::store::CallRecords;
use chatd_core::store::{Lease, Result, Step};
use chatd_core::tool_call::{self, Decision};
use chatd_core::{Chat, ChatId, Message};
use uuid::Uuid;

use crate::PostgresChatStore;
use crate::error::db;
use crate::tx;

impl PostgresChatStore {
    /// A step write that replaces the chat's records (`step.calls` is `Some`): the fence, the
    /// rows, the records and the part-log cleanup in one transaction.
    pub(crate) async fn commit_recorded_tx(
        &self,
        lease: &Lease,
        mut step: Step,
    ) -> Result<Vec<Message>> {
        self.limits.check_step(&mut step)?;
        let mut conn = self.pool.begin().await.map_err(db)?;
        let mut hints = tx::Hints::new();
        tx::fenced_chat(&mut conn, lease).await?;
        let messages: Vec<_> = step.assistant.into_iter().chain(step.tool_results).collect();
        let written =
            tx::insert_messages(&mut conn, &mut hints, lease.chat_id, messages, false).await?;
        if let Some(calls) = &step.calls {
            tx::write_calls(&mut conn, &mut hints, lease.chat_id, calls).await?;
        }
        sqlx::query("DELETE FROM chat_stream_parts WHERE chat_id = $1")
            .bind(lease.chat_id.0)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        conn.commit().await.map_err(db)?;
        self.announce(hints);
        Ok(written)
    }

    /// The release of a chat that has records (the one-statement release leaves such chats
    /// to this): the same decision, plus closing the records when the decision says so, or
    /// `requires_action` for a turn that ends waiting.
    pub(crate) async fn release_recorded_tx(
        &self,
        lease: &Lease,
        outcome: TurnOutcome,
    ) -> Result<Chat> {
        let mut conn = self.pool.begin().await.map_err(db)?;
        let mut hints = tx::Hints::new();
        let chat = tx::fenced_chat(&mut conn, lease).await?;
        let id = lease.chat_id;
        let stop = chat.stop_request;
        let trigger = Trigger::release(&outcome, stop.map(|s| s.kind));
        let decision = match chat.status.decide(trigger) {
            Ok(decision) => decision,
            Err(err) => return Err(tx::refuse(conn, err).await),
        };
        if decision.close_calls {
            tx::close_step(&mut conn, &mut hints, id).await?;
        }
        let promoted = if decision.promote_queue_head {
            tx::promote_from_queue(&mut conn, &mut hints, id, stop.and_then(|s| s.promote)).await?
        } else {
            None
        };
        let next = if promoted.is_some() { ChatStatus::Pending } else { decision.next };
        let next = next.settle_release(&chat.tool_calls);
        let last_error = match &outcome {
            TurnOutcome::Failed(reason) => Some(self.limits.failure_text(reason)),
            _ => None,
        };
        let ending = match TurnEnding::of_release(trigger, &outcome) {
            TurnEnding::Failed { .. } => {
                TurnEnding::Failed { reason: last_error.clone().unwrap_or_default() }
            }
            ending => ending,
        };
        sqlx::query("UPDATE chats SET last_turn = $2 WHERE id = $1")
            .bind(id.0)
            .bind(serde_json::to_value(ending).unwrap_or_default())
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        tx::write_status(&mut conn, &mut hints, id, next, last_error).await?;
        let chat = tx::chat(&mut conn, id, false).await?;
        conn.commit().await.map_err(db)?;
        self.announce(hints);
        Ok(chat)
    }

    pub(crate) async fn resolve_tool_calls_tx(
        &self,
        id: ChatId,
        mut decisions: Vec<Decision>,
    ) -> Result<Chat> {
        self.limits.check_decisions(&mut decisions)?;
        let mut conn = self.pool.begin().await.map_err(db)?;
        let mut hints = tx::Hints::new();
        let chat = tx::chat(&mut conn, id, true).await?;
        let mut calls = chat.tool_calls.clone();
        if let Err(err) = calls.apply_decisions(&decisions) {
            return Err(tx::refuse(conn, err).await);
        }
        self.settle(&mut conn, &mut hints, &chat, calls).await?;
        let chat = tx::chat(&mut conn, id, false).await?;
        conn.commit().await.map_err(db)?;
        self.announce(hints);
        Ok(chat)
    }

    /// Writes decided records and, when none is left open, the status the state machine
    /// gives `ActionsResolved`.
    async fn settle(
        &self,
        conn: &mut sqlx::PgConnection,
        hints: &mut tx::Hints,
        chat: &Chat,
        mut calls: Vec<tool_call::ToolCall>,
    ) -> Result<()> {
        self.limits.check_tool_calls(&mut calls);
        tx::write_calls(conn, hints, chat.id, &calls).await?;
        if !calls.any_open() {
            let decision = chat.status.decide(Trigger::ActionsResolved)?;
            if !decision.keeps(chat.status) {
                tx::write_status(conn, hints, chat.id, decision.next, None).await?;
            }
        }
        Ok(())
    }

    pub(crate) async fn expire_tool_calls_tx(&self, limit: usize) -> Result<Vec<ChatId>> {
        let mut conn = self.pool.begin().await.map_err(db)?;
        let mut hints = tx::Hints::new();
        // Rows a resolve holds are skipped: the next sweep sees them decided, or still due.
        let due: Vec<(Uuid, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
            "SELECT id, now() FROM chats WHERE action_deadline <= now() \
             ORDER BY action_deadline LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        let mut changed = Vec::with_capacity(due.len());
        for (id, now) in due {
            let chat = tx::chat(&mut conn, ChatId(id), false).await?;
            let mut calls = chat.tool_calls.clone();
            calls.expire(now);
            self.settle(&mut conn, &mut hints, &chat, calls).await?;
            changed.push(chat.id);
        }
        conn.commit().await.map_err(db)?;
        self.announce(hints);
        Ok(changed)
    }
}
