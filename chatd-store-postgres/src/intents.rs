//! User intents. Each one locks the chat row (`FOR UPDATE`), asks the state machine, and
//! applies its decision in the same transaction.

use chatd_core::StopRequest;
use chatd_core::status::{MessageAction, Trigger};
use chatd_core::store::{
    Delivery, EditOutcome, Entity, Result, SendMessage, SendOutcome, StoreError,
};
use chatd_core::{
    ChangeHint, ChangeKind, Chat, ChatId, MessageId, Part, QueuedMessage, QueuedMessageId, Role,
};

use crate::error::db;
use crate::rows::{self, deleted_columns, message_columns};
use crate::{PostgresChatStore, tx};

impl PostgresChatStore {
    /// Appends `send` to the chat's queue (within the queue cap) and moves the chat's
    /// model config if the message names one.
    async fn enqueue(
        &self,
        tx: &mut sqlx::PgConnection,
        hints: &mut tx::Hints,
        id: ChatId,
        send: &SendMessage,
    ) -> Result<QueuedMessage> {
        if tx::queue_len(tx, id).await? >= self.limits.max_queued_messages {
            return Err(StoreError::QueueFull { max: self.limits.max_queued_messages });
        }
        let row = sqlx::query(
            "INSERT INTO chat_queued_messages (chat_id, content, client_id) VALUES ($1, $2, $3) \
             RETURNING id, chat_id, content, created_at, client_id",
        )
        .bind(id.0)
        .bind(chatd_core::Part::content_to_json(&send.content))
        .bind(send.client_id.as_deref())
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let queued = rows::queued(&row)?;
        hints.push(ChangeHint::new(id, ChangeKind::Queue));
        if let Some(config) = send.model_config_id {
            sqlx::query("UPDATE chats SET last_model_config_id = $2 WHERE id = $1")
                .bind(id.0)
                .bind(config.0)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        Ok(queued)
    }

    pub(crate) async fn send_message_tx(
        &self,
        id: ChatId,
        send: SendMessage,
    ) -> Result<SendOutcome> {
        self.limits.check_send(&send)?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let mut hints = tx::Hints::new();
        let chat = tx::chat(&mut tx, id, true).await?;
        if let Some(config) = send.model_config_id {
            tx::live_model_config(&mut tx, config).await?;
        }
        let trigger = send.busy.trigger();
        let decision = match chat.status.decide(trigger) {
            Ok(decision) => decision,
            Err(err) => return Err(tx::refuse(tx, err).await),
        };
        let delivery = match decision.message {
            MessageAction::Queue => {
                let queued = self.enqueue(&mut tx, &mut hints, id, &send).await?;
                if let Some(kind) = decision.stop {
                    tx::write_stop(
                        &mut tx,
                        &mut hints,
                        id,
                        StopRequest::merge(chat.stop_request, kind, Some(queued.id)),
                    )
                    .await?;
                }
                Delivery::Queued(queued)
            }
            MessageAction::Insert | MessageAction::None
                if chat.status.answers_queue_first() && tx::queue_len(&mut tx, id).await? > 0 =>
            {
                // BEHAVIOUR §2: an idle chat that still has queued messages answers them first:
                // the head enters the history, then the new message joins the tail (so a full
                // queue takes it and stays at its cap).
                tx::promote_from_queue(&mut tx, &mut hints, id, None).await?;
                let queued = self.enqueue(&mut tx, &mut hints, id, &send).await?;
                Delivery::Queued(queued)
            }
            MessageAction::Insert | MessageAction::None => {
                tx::close_step(&mut tx, &mut hints, id).await?;
                let message = send.into_new_message();
                Delivery::Inserted(tx::insert_message(&mut tx, &mut hints, id, message).await?)
            }
        };
        if !decision.keeps(chat.status) {
            tx::write_status(&mut tx, &mut hints, id, decision.next, None).await?;
        }
        let chat = tx::chat(&mut tx, id, false).await?;
        tx.commit().await.map_err(db)?;
        self.announce(hints);
        Ok(SendOutcome { chat, delivery })
    }

    pub(crate) async fn edit_message_tx(
        &self,
        id: ChatId,
        message: MessageId,
        content: Vec<Part>,
    ) -> Result<EditOutcome> {
        self.limits.check_content(&content)?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let mut hints = tx::Hints::new();
        let chat = tx::chat(&mut tx, id, true).await?;
        let role: Option<String> =
            sqlx::query_scalar("SELECT role FROM chat_messages WHERE id = $1 AND chat_id = $2")
                .bind(message.0)
                .bind(id.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        match role.as_deref() {
            None => return Err(StoreError::not_found(Entity::Message, message)),
            Some(role) if role != Role::User.as_str() => {
                return Err(StoreError::validation(
                    "message_id",
                    "Only user messages can be edited.",
                ));
            }
            Some(_) => {}
        }
        let decision = match chat.status.decide(Trigger::Edit) {
            Ok(decision) => decision,
            Err(err) => return Err(tx::refuse(tx, err).await),
        };
        // The history as it stood is kept (BEHAVIOUR §18): the replaced content, then every
        // later message, move to `chat_deleted_messages` under the revision they belonged to.
        sqlx::query(concat!(
            "INSERT INTO chat_deleted_messages (",
            deleted_columns!(),
            ", revision) SELECT ",
            deleted_columns!(),
            ", $2 FROM chat_messages WHERE id = $1"
        ))
        .bind(message.0)
        .bind(chat.history_version)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let row = sqlx::query(concat!(
            "UPDATE chat_messages SET content = $2 WHERE id = $1 RETURNING ",
            message_columns!()
        ))
        .bind(message.0)
        .bind(chatd_core::Part::content_to_json(&content))
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let edited = rows::message(&row)?;
        hints.push(ChangeHint::new(id, ChangeKind::Messages).at(edited.id));
        let deleted_messages = sqlx::query(concat!(
            "WITH cut AS (DELETE FROM chat_messages WHERE chat_id = $1 AND id > $2 RETURNING *) \
             INSERT INTO chat_deleted_messages (",
            deleted_columns!(),
            ", revision) SELECT ",
            deleted_columns!(),
            ", $3 FROM cut"
        ))
        .bind(id.0)
        .bind(message.0)
        .bind(chat.history_version)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        // The recorded step's rows came after the edited message: its calls go with them.
        tx::write_calls(&mut tx, &mut hints, id, &[]).await?;
        let deleted_queued = sqlx::query("DELETE FROM chat_queued_messages WHERE chat_id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        if deleted_queued > 0 {
            hints.push(ChangeHint::new(id, ChangeKind::Queue));
        }
        sqlx::query(
            "UPDATE chats SET history_version = history_version + 1, rewritten_after = $2 \
             WHERE id = $1",
        )
        .bind(id.0)
        .bind(message.0 - 1)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx::write_status(&mut tx, &mut hints, id, decision.next, None).await?;
        let chat = tx::chat(&mut tx, id, false).await?;
        tx.commit().await.map_err(db)?;
        self.announce(hints);
        Ok(EditOutcome {
            chat,
            message: edited,
            deleted_messages: usize::try_from(deleted_messages).unwrap_or(usize::MAX),
            deleted_queued: usize::try_from(deleted_queued).unwrap_or(usize::MAX),
        })
    }

    /// Applies a stop request or a direct status change, as decided for `trigger`.
    pub(crate) async fn stop_or_transition_tx(&self, id: ChatId, trigger: Trigger) -> Result<Chat> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let mut hints = tx::Hints::new();
        let chat = tx::chat(&mut tx, id, true).await?;
        let decision = match chat.status.decide(trigger) {
            Ok(decision) => decision,
            Err(err) => return Err(tx::refuse(tx, err).await),
        };
        if let Some(kind) = decision.stop {
            tx::write_stop(
                &mut tx,
                &mut hints,
                id,
                StopRequest::merge(chat.stop_request, kind, None),
            )
            .await?;
        } else if !decision.keeps(chat.status) {
            tx::apply_idle(&mut tx, &mut hints, id, &decision).await?;
        }
        let chat = tx::chat(&mut tx, id, false).await?;
        tx.commit().await.map_err(db)?;
        self.announce(hints);
        Ok(chat)
    }

    pub(crate) async fn resume_tx(&self, id: ChatId) -> Result<Chat> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let mut hints = tx::Hints::new();
        let chat = tx::chat(&mut tx, id, true).await?;
        let unanswered = tx::has_unanswered_message(&mut tx, id).await?;
        let queued = tx::queue_len(&mut tx, id).await?;
        let trigger = Trigger::resume(&chat.tool_calls, unanswered, queued);
        let decision = match chat.status.decide(trigger) {
            Ok(decision) => decision,
            Err(err) => return Err(tx::refuse(tx, err).await),
        };
        tx::apply_idle(&mut tx, &mut hints, id, &decision).await?;
        let chat = tx::chat(&mut tx, id, false).await?;
        tx.commit().await.map_err(db)?;
        self.announce(hints);
        Ok(chat)
    }

    pub(crate) async fn list_queued_query(&self, id: ChatId) -> Result<Vec<QueuedMessage>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        tx::chat(&mut conn, id, false).await?;
        tx::queue(&mut conn, id).await
    }

    pub(crate) async fn promote_queued_tx(
        &self,
        id: ChatId,
        queued: QueuedMessageId,
    ) -> Result<SendOutcome> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let mut hints = tx::Hints::new();
        let chat = tx::chat(&mut tx, id, true).await?;
        let exists: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM chat_queued_messages WHERE id = $1 AND chat_id = $2",
        )
        .bind(queued.0)
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        if exists.is_none() {
            return Err(StoreError::not_found(Entity::QueuedMessage, queued));
        }
        let decision = match chat.status.decide(Trigger::PromoteQueued) {
            Ok(decision) => decision,
            Err(err) => return Err(tx::refuse(tx, err).await),
        };
        let delivery = match (decision.message, decision.stop) {
            (MessageAction::Insert, _) => {
                match tx::promote_from_queue(&mut tx, &mut hints, id, Some(queued)).await? {
                    Some(message) => Delivery::Inserted(message),
                    None => return Err(StoreError::not_found(Entity::QueuedMessage, queued)),
                }
            }
            (_, Some(kind)) => {
                tx::write_stop(
                    &mut tx,
                    &mut hints,
                    id,
                    StopRequest::merge(chat.stop_request, kind, Some(queued)),
                )
                .await?;
                Delivery::AfterStop
            }
            _ => Delivery::AfterStop,
        };
        if !decision.keeps(chat.status) {
            tx::write_status(&mut tx, &mut hints, id, decision.next, None).await?;
        }
        let chat = tx::chat(&mut tx, id, false).await?;
        tx.commit().await.map_err(db)?;
        self.announce(hints);
        Ok(SendOutcome { chat, delivery })
    }

    pub(crate) async fn delete_queued_tx(
        &self,
        id: ChatId,
        queued: QueuedMessageId,
    ) -> Result<Vec<QueuedMessage>> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let mut hints = tx::Hints::new();
        tx::chat(&mut tx, id, true).await?;
        let deleted =
            sqlx::query("DELETE FROM chat_queued_messages WHERE id = $1 AND chat_id = $2")
                .bind(queued.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::not_found(Entity::QueuedMessage, queued));
        }
        hints.push(ChangeHint::new(id, ChangeKind::Queue));
        sqlx::query(
            "UPDATE chats SET stop_promote_id = NULL WHERE id = $1 AND stop_promote_id = $2",
        )
        .bind(id.0)
        .bind(queued.0)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let rest = tx::queue(&mut tx, id).await?;
        tx.commit().await.map_err(db)?;
        self.announce(hints);
        Ok(rest)
    }
}
