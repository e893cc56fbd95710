//! `subscribe(chat, after)`: a chat's event stream, resumable by cursor (SPEC §7).
//!
//! Every change hint for the chat (or a resync, or the safety poll) makes the follower
//! re-read the store from its cursor: persisted user-visible messages after
//! `cursor.message`, then the part log after `cursor.part`. Hints carry no data, so a lost
//! or duplicated hint costs latency, never correctness.
//!
//! Ordering. A commit inserts the step's rows and clears the part log atomically, but the
//! follower reads messages and parts in two calls. It reads messages, then parts, then
//! checks again for messages: when none appeared, the parts it read are of the step after
//! the last message it read, and it emits messages first, then parts. Otherwise it retries
//! the round.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};

use super::{ChatEvent, ChatEventKind, Cursor, hints_of};
use crate::feed::{ChangeHint, ChangeKind};
use crate::ids::ChatId;
use crate::message::Message;
use crate::runtime::live::LivePart;
use crate::status::ChatStatus;
use crate::store::{ChatStore, MessageQuery, PartRecord, StoreError};

/// How a subscription re-reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscribeOptions {
    /// Re-read this often even without a hint (a safety net under the feed's own poll
    /// fallback). Default 2 s.
    pub poll: Duration,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions { poll: Duration::from_secs(2) }
    }
}

impl SubscribeOptions {
    /// Re-reads every `poll` without hints.
    #[must_use]
    pub fn with_poll(mut self, poll: Duration) -> Self {
        self.poll = poll.max(Duration::from_millis(1));
        self
    }
}

/// Follows `chat` from `after` (the cursor of the last event the client received; `None`
/// for the whole history). Yields, in order: the chat's status; every persisted
/// user-visible message after the cursor; the parts of the step in flight after it; then
/// live events. The stream ends when the chat is deleted. A disconnecting client simply
/// drops the stream: it never stops the turn.
///
/// # Errors
/// `NotFound` for an unknown chat; the store's error if the first read fails.
pub async fn subscribe(
    store: Arc<dyn ChatStore>,
    chat: ChatId,
    after: Option<Cursor>,
    options: SubscribeOptions,
) -> Result<BoxStream<'static, ChatEvent>, StoreError> {
    // Hints first, so nothing committed after the first read goes unnoticed.
    let hints = store.change_feed().await?.subscribe();
    let after = after.unwrap_or_default();
    let mut follower = Follower {
        store,
        chat,
        hints: std::sync::Mutex::new(hints),
        cursor: after,
        status: None,
        // A resuming client may still show parts of an attempt that has since been
        // superseded: until a message or a part of that same episode says otherwise,
        // treat its preview as present.
        dirty: after.part().is_some(),
        episode: after.part().map(|p| p.episode),
        pending: VecDeque::new(),
        queue: None,
        poll: options.poll,
        done: false,
    };
    follower.refresh(true).await?;
    Ok(Box::pin(futures::stream::unfold(follower, |mut follower| async move {
        loop {
            if let Some(event) = follower.pending.pop_front() {
                return Some((event, follower));
            }
            if follower.done {
                return None;
            }
            follower.wait().await;
        }
    })))
}

struct Follower {
    store: Arc<dyn ChatStore>,
    chat: ChatId,
    /// In a mutex only to make the state `Sync` (it is only used through `&mut self`).
    hints: std::sync::Mutex<BoxStream<'static, ChangeHint>>,
    cursor: Cursor,
    status: Option<(ChatStatus, Option<String>)>,
    /// Parts were emitted since the last message or reset.
    dirty: bool,
    /// The episode of the preview being built.
    episode: Option<i64>,
    pending: VecDeque<ChatEvent>,
    /// The queue last sent (updates are sent only when it changed).
    queue: Option<Vec<crate::message::QueuedMessage>>,
    poll: Duration,
    done: bool,
}

/// The lease epoch an episode number was derived from (see `runtime::live`).
fn episode_epoch(episode: i64) -> i64 {
    episode >> 24
}

impl Follower {
    fn push(&mut self, kind: ChatEventKind) {
        self.pending.push_back(ChatEvent { chat_id: self.chat, cursor: self.cursor, kind });
    }

    /// Waits for a hint about the chat (or the poll), coalesces what else is ready, and
    /// re-reads. Read failures are retried at the next wake-up.
    async fn wait(&mut self) {
        let mut queue = false;
        let relevant = |hint: &ChangeHint, chat: ChatId| {
            hint.kind == ChangeKind::Resync || hint.chat_id == Some(chat)
        };
        tokio::select! {
            hint = hints_of(&mut self.hints).next() => match hint {
                Some(hint) if relevant(&hint, self.chat) => {
                    queue |= matches!(hint.kind, ChangeKind::Queue | ChangeKind::Resync);
                    if hint.kind == ChangeKind::Deleted {
                        self.done = true;
                        return;
                    }
                }
                Some(_) => return,
                None => {
                    // The feed is gone (its store was dropped): fall back to polling.
                    *hints_of(&mut self.hints) = Box::pin(futures::stream::pending());
                    return;
                }
            },
            () = tokio::time::sleep(self.poll) => queue = true,
        }
        while let Some(Some(hint)) = hints_of(&mut self.hints).next().now_or_never() {
            if relevant(&hint, self.chat) {
                queue |= matches!(hint.kind, ChangeKind::Queue | ChangeKind::Resync);
                self.done |= hint.kind == ChangeKind::Deleted;
            }
        }
        if self.done {
            return;
        }
        if let Err(err) = self.refresh(queue).await {
            tracing::debug!(chat = %self.chat, error = %err, "subscription re-read failed; retrying");
        }
    }

    /// Reads everything after the cursor and queues the events.
    async fn refresh(&mut self, queue: bool) -> Result<(), StoreError> {
        let (messages, parts) = self.consistent_read().await?;
        // Read after the history, so the status and lease epoch are at least as new.
        let chat = match self.store.get_chat(self.chat).await {
            Ok(chat) => chat,
            Err(err) if err.is_not_found() && self.status.is_some() => {
                self.done = true;
                return Ok(());
            }
            Err(err) => return Err(err),
        };
        let first = self.status.is_none();
        let status = (chat.status, chat.last_error.clone());
        if first {
            self.push(ChatEventKind::Status { status: status.0, last_error: status.1.clone() });
        }
        // A preview from an earlier lease than the chat's current one was superseded (its
        // worker died, or lost the chat to an edit): say so before the re-run's messages.
        let stale_preview = self.episode.is_some_and(|e| episode_epoch(e) < chat.lease_epoch);
        if self.dirty && stale_preview && !messages.is_empty() {
            self.reset();
        }
        for message in messages {
            self.cursor.message = message.id.0;
            self.dirty = false;
            self.episode = None;
            self.push(ChatEventKind::Message { message });
        }
        // A turn that started is announced before its parts; one that ended, after them
        // (its last parts were read before it ended), so a subscriber that reads rarely
        // sees the same order as one that reads often.
        let changed = !first && self.status.as_ref() != Some(&status);
        if changed && status.0 == ChatStatus::Running {
            self.push(ChatEventKind::Status { status: status.0, last_error: status.1.clone() });
        }
        for record in parts {
            self.part(record);
        }
        if changed && status.0 != ChatStatus::Running {
            if self.dirty {
                // The turn ended without persisting what was previewed (shutdown, death).
                self.reset();
            }
            self.push(ChatEventKind::Status { status: status.0, last_error: status.1.clone() });
            if status.0 == ChatStatus::Error {
                let message = status.1.clone().unwrap_or_else(|| "the turn failed".to_owned());
                self.push(ChatEventKind::Error { message });
            }
        }
        self.status = Some(status);
        if queue {
            let queue = self.store.list_queued(self.chat).await?;
            if self.queue.as_ref() != Some(&queue) {
                self.queue = Some(queue.clone());
                self.push(ChatEventKind::QueueUpdate { queue });
            }
        }
        Ok(())
    }

    /// Messages after the cursor and the parts of the step after the last of them.
    async fn consistent_read(&self) -> Result<(Vec<Message>, Vec<PartRecord>), StoreError> {
        let mut after = self.cursor.message_id();
        let mut messages = Vec::new();
        for _ in 0..8 {
            let new = self
                .store
                .list_messages(self.chat, MessageQuery::user_visible_after(after))
                .await?;
            after = new.last().map(|m| m.id).or(after);
            messages.extend(new);
            let parts = self.store.read_parts(self.chat, self.cursor.part()).await?;
            let check = MessageQuery::user_visible_after(after).with_limit(1);
            if self.store.list_messages(self.chat, check).await?.is_empty() {
                return Ok((messages, parts));
            }
        }
        // Commits keep landing between reads: deliver the messages now, the parts on the
        // next round.
        Ok((messages, Vec::new()))
    }

    fn reset(&mut self) {
        self.dirty = false;
        self.episode = None;
        self.push(ChatEventKind::PreviewReset);
    }

    fn part(&mut self, record: PartRecord) {
        let episode = record.position.episode;
        if self.episode != Some(episode) {
            if self.dirty {
                self.reset();
            }
            self.episode = Some(episode);
        }
        self.cursor.episode = episode;
        self.cursor.seq = record.position.seq;
        match serde_json::from_value::<LivePart>(record.payload) {
            Ok(LivePart::Stream { event }) => {
                self.dirty = true;
                self.push(ChatEventKind::MessagePart { part: event });
            }
            Ok(LivePart::Retry { attempt, delay_ms, error, retrying_at }) => {
                self.push(ChatEventKind::Retry { attempt, delay_ms, error, retrying_at });
                self.reset();
            }
            // A part this version does not know (written by a newer worker): skip it.
            Err(err) => {
                tracing::debug!(chat = %self.chat, error = %err, "skipping an unknown part")
            }
        }
    }
}
