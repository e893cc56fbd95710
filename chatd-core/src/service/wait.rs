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
    ///
    /// # Examples
    ///
    /// A worker runs turns in-process; the model here answers with the person's words.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// use chatd_core::provider::{
    ///     EventStream, FinishReason, ModelRequest, ProviderError, StreamEvent,
    /// };
    /// use chatd_core::{
    ///     Actor, ChatStore, Chatd, ModelConfig, ModelProvider, NewChat, NewModelConfig,
    ///     NewProvider, ProviderKind, ProviderSource, SendMessage, ToolSet, TurnRunner, UserId,
    ///     Worker,
    /// };
    /// use tokio_util::sync::CancellationToken;
    ///
    /// /// A model that repeats the last message.
    /// struct Parrot;
    ///
    /// #[async_trait::async_trait]
    /// impl ModelProvider for Parrot {
    ///     fn kind(&self) -> ProviderKind {
    ///         ProviderKind::OpenAi
    ///     }
    ///     async fn stream(
    ///         &self,
    ///         request: ModelRequest,
    ///         _cancel: CancellationToken,
    ///     ) -> Result<EventStream, ProviderError> {
    ///         let last = request.messages.last().and_then(|m| m.content.first());
    ///         let said = last.and_then(|part| part.as_text()).unwrap_or_default();
    ///         let events = [
    ///             StreamEvent::TextStart { id: "t".into() },
    ///             StreamEvent::TextDelta { id: "t".into(), delta: format!("you said: {said}") },
    ///             StreamEvent::TextEnd { id: "t".into(), provider_metadata: None },
    ///             StreamEvent::Finish {
    ///                 reason: FinishReason::Stop,
    ///                 usage: None,
    ///                 context_window: None,
    ///                 provider_metadata: None,
    ///             },
    ///         ];
    ///         Ok(Box::pin(futures::stream::iter(events.map(Ok))))
    ///     }
    /// }
    ///
    /// struct Parrots;
    ///
    /// #[async_trait::async_trait]
    /// impl ProviderSource for Parrots {
    ///     async fn provider(&self, _: &ModelConfig) -> Result<Arc<dyn ModelProvider>, ProviderError> {
    ///         Ok(Arc::new(Parrot))
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store: Arc<dyn ChatStore> = Arc::new(chatd_store_memory::InMemoryChatStore::new());
    /// store.create_provider(NewProvider::new(ProviderKind::OpenAi)).await?;
    /// store.create_model_config(NewModelConfig::new(ProviderKind::OpenAi, "m", 8_000)).await?;
    ///
    /// let runner = TurnRunner::new(Arc::clone(&store), Arc::new(Parrots), ToolSet::new());
    /// let shutdown = CancellationToken::new();
    /// let worker = tokio::spawn(Worker::new(Arc::clone(&store), runner).run(shutdown.clone()));
    ///
    /// let chatd = Chatd::new(Arc::clone(&store));
    /// let alice = UserId::new();
    /// let chat = chatd.create_chat(&Actor::user(alice), NewChat::new(alice)).await?;
    /// let done = chatd
    ///     .send_and_wait(&Actor::user(alice), chat.id, SendMessage::text("hello"), Duration::from_secs(10))
    ///     .await?;
    /// assert_eq!(done.messages.last().map(|m| m.text()).as_deref(), Some("you said: hello"));
    ///
    /// shutdown.cancel();
    /// worker.await?;
    /// # Ok(())
    /// # }
    /// ```
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
