//! `send_and_wait`: send a message and follow the chat until the turn that answers it ends.

use std::time::Duration;

use futures::StreamExt;

use super::{Actor, Chatd, ChatdError, Result, Scope};
use crate::events::{ChatEventKind, Cursor};
use crate::ids::ChatId;
use crate::message::Message;
use crate::status::TurnEnding;
use crate::store::{Delivery, MessageQuery, SendMessage, SendOutcome};

/// What [`Chatd::send_and_wait`] returns.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TurnResult {
    /// What sending did.
    pub sent: SendOutcome,
    /// The turn that answered (the chat's lease epoch while it ran).
    pub turn: i64,
    /// How it ended: finished, interrupted or failed (a shut-down or lost turn re-runs, and
    /// the wait goes on).
    pub ending: TurnEnding,
    /// The user-visible messages persisted after the message sent (for a queued message:
    /// after the last message before the answering turn started).
    pub messages: Vec<Message>,
}

impl Chatd {
    /// Sends a message and waits, up to `timeout`, for the turn that answers it to end — a
    /// message queued behind a running turn waits for its own turn. Needs workers running
    /// the chat somewhere (in this process or another).
    ///
    /// # Errors
    /// As [`Chatd::send_message`]; `TimedOut` when no answering turn ended in time (the
    /// turn itself goes on); `NotFound` if the chat is deleted meanwhile.
    pub async fn send_and_wait(
        &self,
        actor: &Actor,
        chat: ChatId,
        send: SendMessage,
        timeout: Duration,
    ) -> Result<TurnResult> {
        let before = self.owned(actor, chat, Scope::Update).await?;
        // Follow from the end of the chat's latest turn: only later turns are reported.
        let after = Cursor {
            history: before.history_version,
            message: i64::MAX,
            episode: Cursor::turn_end(before.lease_epoch).0,
            seq: 0,
        };
        let mut events = self.streams().subscribe(chat, Some(after)).await?;
        let sent = self.send_message(actor, chat, send).await?;
        let queued = match &sent.delivery {
            Delivery::Queued(queued) => Some(queued.id),
            _ => None,
        };
        let (mut mine, mut from) = (queued.is_none(), sent.chat.lease_epoch);
        let mut start_message = match &sent.delivery {
            Delivery::Inserted(message) => Some(message.id),
            _ => None,
        };
        let wait = async {
            while let Some(event) = events.next().await {
                match event.kind {
                    ChatEventKind::TurnStarted { turn } if !mine => {
                        let queue = self.store.list_queued(chat).await?;
                        if queued.is_some_and(|id| queue.iter().all(|q| q.id != id)) {
                            mine = true;
                            from = turn - 1;
                            let last = self
                                .store
                                .list_messages(chat, MessageQuery::user_visible_after(None))
                                .await?;
                            start_message = last
                                .iter()
                                .rev()
                                .find(|m| m.role == crate::Role::User)
                                .map(|m| m.id);
                        }
                    }
                    ChatEventKind::TurnEnded { turn, ending }
                        if mine && turn > from && ending.is_final() =>
                    {
                        return Ok(Some((turn, ending)));
                    }
                    _ => {}
                }
            }
            Ok::<_, ChatdError>(None)
        };
        let (turn, ending) = match tokio::time::timeout(timeout, wait).await {
            Err(_) => return Err(ChatdError::TimedOut(timeout)),
            Ok(result) => match result? {
                Some(found) => found,
                None => {
                    return Err(crate::store::StoreError::not_found(
                        crate::store::Entity::Chat,
                        chat,
                    )
                    .into());
                }
            },
        };
        let messages =
            self.store.list_messages(chat, MessageQuery::user_visible_after(start_message)).await?;
        Ok(TurnResult { sent, turn, ending, messages })
    }
}
