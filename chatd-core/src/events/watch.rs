//! `watch(owner)`: the events a chat-list view needs (SPEC §7): a chat was created, changed
//! status or title, was deleted, or its diff status changed.

use std::collections::HashMap;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use super::hints_of;
use crate::chat::{Chat, ChatFilter};
use crate::diff_status::DiffStatus;
use crate::feed::{ChangeHint, ChangeKind};
use crate::ids::{ChatId, UserId};
use crate::status::ChatStatus;
use crate::store::{ChatStore, StoreError};

/// One chat-list event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OwnerEvent {
    /// The chat.
    pub chat_id: ChatId,
    /// What happened.
    #[serde(flatten)]
    pub kind: OwnerEventKind,
}

/// What an [`OwnerEvent`] says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum OwnerEventKind {
    /// A chat was created.
    Created {
        /// The chat.
        chat: Box<Chat>,
    },
    /// A chat's status changed.
    StatusChange {
        /// The new status.
        status: ChatStatus,
    },
    /// A chat's title changed.
    TitleChange {
        /// The new title.
        title: String,
    },
    /// A chat was deleted.
    Deleted,
    /// A chat's diff status changed.
    DiffStatusChange {
        /// The new diff status.
        diff_status: Box<DiffStatus>,
    },
}

struct Watcher {
    store: Arc<dyn ChatStore>,
    owner: UserId,
    /// In a mutex only to make the state `Sync` (it is only used through `&mut self`).
    hints: std::sync::Mutex<BoxStream<'static, ChangeHint>>,
    known: HashMap<ChatId, (ChatStatus, String)>,
    pending: VecDeque<OwnerEvent>,
}

/// Follows the chats of `owner` from now on. Each event is derived by re-reading the chat,
/// so it reflects the chat's state when it was read.
///
/// # Errors
/// The store's error when the owner's chats cannot be listed.
pub async fn watch(
    store: Arc<dyn ChatStore>,
    owner: UserId,
) -> Result<BoxStream<'static, OwnerEvent>, StoreError> {
    let hints = store.change_feed().await?.subscribe();
    let mut watcher = Watcher {
        store,
        owner,
        hints: std::sync::Mutex::new(hints),
        known: HashMap::new(),
        pending: VecDeque::new(),
    };
    watcher.known =
        watcher.load().await?.into_iter().map(|c| (c.id, (c.status, c.title))).collect();
    Ok(Box::pin(futures::stream::unfold(watcher, |mut watcher| async move {
        loop {
            if let Some(event) = watcher.pending.pop_front() {
                return Some((event, watcher));
            }
            let hint = hints_of(&mut watcher.hints).next().await?;
            if let Err(err) = watcher.apply(hint).await {
                tracing::debug!(error = %err, "chat-list watch re-read failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    })))
}

impl Watcher {
    async fn load(&self) -> Result<Vec<Chat>, StoreError> {
        let mut chats = Vec::new();
        let mut filter = ChatFilter::owner(self.owner);
        filter.limit = ChatFilter::MAX_LIMIT;
        loop {
            let page = self.store.list_chats(filter.clone()).await?;
            chats.extend(page.items);
            match page.next {
                Some(next) => filter.after = Some(next),
                None => return Ok(chats),
            }
        }
    }

    fn push(&mut self, chat_id: ChatId, kind: OwnerEventKind) {
        self.pending.push_back(OwnerEvent { chat_id, kind });
    }

    fn forget(&mut self, chat_id: ChatId) {
        if self.known.remove(&chat_id).is_some() {
            self.push(chat_id, OwnerEventKind::Deleted);
        }
    }

    /// Compares `chat` with what was known of it and queues the differences.
    fn observe(&mut self, chat: Chat) {
        let state = (chat.status, chat.title.clone());
        match self.known.insert(chat.id, state) {
            None => self.push(chat.id, OwnerEventKind::Created { chat: Box::new(chat) }),
            Some((old_status, old_title)) => {
                if old_status != chat.status {
                    self.push(chat.id, OwnerEventKind::StatusChange { status: chat.status });
                }
                if old_title != chat.title {
                    self.push(chat.id, OwnerEventKind::TitleChange { title: chat.title });
                }
            }
        }
    }

    async fn apply(&mut self, hint: ChangeHint) -> Result<(), StoreError> {
        let Some(chat_id) = hint.chat_id else {
            // Resync: compare everything with a fresh listing.
            let now = self.load().await?;
            let ids: std::collections::HashSet<ChatId> = now.iter().map(|c| c.id).collect();
            for id in self.known.keys().copied().collect::<Vec<_>>() {
                if !ids.contains(&id) {
                    self.forget(id);
                }
            }
            for chat in now {
                self.observe(chat);
            }
            return Ok(());
        };
        match hint.kind {
            ChangeKind::Deleted => self.forget(chat_id),
            ChangeKind::Diff if self.known.contains_key(&chat_id) => {
                if let Some(diff) = self.store.get_diff_status(chat_id).await? {
                    self.push(
                        chat_id,
                        OwnerEventKind::DiffStatusChange { diff_status: Box::new(diff) },
                    );
                }
            }
            ChangeKind::Chat | ChangeKind::Pending => match self.store.get_chat(chat_id).await {
                Ok(chat) if chat.owner_id == self.owner => self.observe(chat),
                Ok(_) => {}
                Err(err) if err.is_not_found() => self.forget(chat_id),
                Err(err) => return Err(err),
            },
            _ => {}
        }
        Ok(())
    }
}
