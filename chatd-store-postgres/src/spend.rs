//! Spend admission (BEHAVIOUR §17): one owner's admissions serialized across processes by a
//! transaction-scoped advisory lock; holds of calls in flight in `chat_spend_holds`, counted
//! only while their chat runs under the lease that took them.

use std::sync::Arc;

use async_trait::async_trait;
use chatd_core::store::{Held, NewSpendHold, Result, SpendAdmission, StoreError};
use chatd_core::{ChatId, UserId};
use sqlx::{Postgres, Transaction};

use crate::PostgresChatStore;
use crate::error::db;

/// The first key of the two-key advisory lock taken per owner ("chsp"); the second is the
/// owner's hash. Two-key locks never meet the one-key lock of acquisition.
const SPEND_LOCK_CLASS: i32 = 0x6368_7370;

/// Drops the owner's (`$1`) lapsed holds: those whose chat no longer runs under the lease
/// that took them.
const LAPSED_SQL: &str = "DELETE FROM chat_spend_holds h WHERE h.owner_id = $1 \
     AND NOT EXISTS (SELECT 1 FROM chats c WHERE c.id = h.chat_id AND c.status = 'running' \
       AND c.worker_id = h.worker_id AND c.lease_epoch = h.lease_epoch)";

/// An open admission: a transaction holding the owner's lock, and one of the store's
/// admission slots.
struct PgAdmission {
    tx: Transaction<'static, Postgres>,
    owner: UserId,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl PostgresChatStore {
    pub(crate) async fn begin_admission(&self, owner: UserId) -> Result<Box<dyn SpendAdmission>> {
        // A slot first: admissions never hold every connection while their reads wait.
        let slot = Arc::clone(&self.admissions)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::unavailable("the store's admissions are closed"))?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2::text))")
            .bind(SPEND_LOCK_CLASS)
            .bind(owner.0)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        Ok(Box::new(PgAdmission { tx, owner, _slot: slot }))
    }
}

#[async_trait]
impl SpendAdmission for PgAdmission {
    async fn held(&mut self, chat: ChatId, root: ChatId) -> Result<Held> {
        sqlx::query(LAPSED_SQL).bind(self.owner.0).execute(&mut *self.tx).await.map_err(db)?;
        let (calls, owner_micros, tree_micros): (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*), coalesce(sum(cost_micros), 0)::bigint, \
               coalesce(sum(cost_micros) FILTER (WHERE root_chat_id = $3), 0)::bigint \
             FROM chat_spend_holds WHERE owner_id = $1 AND chat_id <> $2",
        )
        .bind(self.owner.0)
        .bind(chat.0)
        .bind(root.0)
        .fetch_one(&mut *self.tx)
        .await
        .map_err(db)?;
        Ok(Held { calls, owner_micros, tree_micros })
    }

    async fn finish(self: Box<Self>, hold: Option<NewSpendHold>) -> Result<()> {
        let mut tx = self.tx;
        if let Some(hold) = hold {
            let taken = sqlx::query(
                "INSERT INTO chat_spend_holds \
                   (chat_id, owner_id, root_chat_id, worker_id, lease_epoch, cost_micros) \
                 SELECT $1, $2, $3, $4, $5, $6 FROM chats c WHERE c.id = $1 \
                   AND c.status = 'running' AND c.worker_id = $4 AND c.lease_epoch = $5 \
                 ON CONFLICT (chat_id) DO UPDATE SET owner_id = EXCLUDED.owner_id, \
                   root_chat_id = EXCLUDED.root_chat_id, worker_id = EXCLUDED.worker_id, \
                   lease_epoch = EXCLUDED.lease_epoch, cost_micros = EXCLUDED.cost_micros, \
                   created_at = now()",
            )
            .bind(hold.lease.chat_id.0)
            .bind(hold.owner_id.0)
            .bind(hold.root_chat_id.0)
            .bind(hold.lease.worker_id.0)
            .bind(hold.lease.epoch)
            .bind(hold.cost_micros)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            if taken.rows_affected() == 0 {
                tx.rollback().await.map_err(db)?;
                return Err(StoreError::LeaseLost { chat_id: hold.lease.chat_id });
            }
        }
        tx.commit().await.map_err(db)
    }
}
