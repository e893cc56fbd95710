//! `watch(owner, after)`: the events a chat-list view needs ([BEHAVIOUR §7](crate::behaviour#7-streams)) — a chat was created,
//! changed status or title, was archived or unarchived, was deleted, or its diff status
//! changed — each with a [`ListCursor`] to resume from.
//!
//! The watcher reads the store's position-ordered changes
//! ([`ChatStore::list_chat_changes`]) after its cursor whenever a hint (or the poll) says
//! something may have changed. A resumed client gets, for every chat that changed since its
//! cursor, the events for what changed, with the chat's current values: nothing twice,
//! nothing missed, and an archived chat is reported as `archived` — never as deleted.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};

use super::{SubscribeOptions, hints_of};
use crate::chat::Chat;
use crate::diff_status::DiffStatus;
use crate::feed::{ChangeHint, ChangeKind};
use crate::ids::{ChatId, UserId};
use crate::status::ChatStatus;
use crate::store::{ChangedFields, ChatChange, ChatStore, ListCursor, StoreError};

/// How many changes one read takes.
const PAGE: usize = 500;

/// The `event` of a cursor on the last event of a change (other events carry the code of
/// their kind: created/deleted 0, status 1, title 2, archived 3, diff status 4).
const COMPLETE: u32 = u32::MAX;

/// One chat-list event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OwnerEvent {
    /// The chat.
    pub chat_id: ChatId,
    /// Hand this back to [`watch`] to resume after this event.
    pub cursor: ListCursor,
    /// What happened.
    #[serde(flatten)]
    pub kind: OwnerEventKind,
}

/// What an [`OwnerEvent`] says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum OwnerEventKind {
    /// A chat was created (or, on a first watch, exists).
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
    /// A chat was archived or unarchived.
    Archived {
        /// Whether it is archived now.
        archived: bool,
    },
    /// A chat was deleted.
    Deleted,
    /// A chat's diff status changed.
    DiffStatusChange {
        /// The new diff status.
        diff_status: Box<DiffStatus>,
    },
    /// The cursor resumed from is older than the deletions the store still remembers
    /// ([`ChatStore::prune_tombstones`]): drop every chat shown; the whole list follows as
    /// `created` events. (Its `chat_id` is nil; resuming from its cursor resets again.)
    Reset,
}

impl OwnerEventKind {
    /// The event's name: its serialized `type` (`created`, `status_change`, ...).
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            OwnerEventKind::Created { .. } => "created",
            OwnerEventKind::StatusChange { .. } => "status_change",
            OwnerEventKind::TitleChange { .. } => "title_change",
            OwnerEventKind::Archived { .. } => "archived",
            OwnerEventKind::Deleted => "deleted",
            OwnerEventKind::DiffStatusChange { .. } => "diff_status_change",
            OwnerEventKind::Reset => "reset",
        }
    }
}

struct Watcher {
    store: Arc<dyn ChatStore>,
    owner: UserId,
    /// In a mutex only to make the state `Sync` (it is only used through `&mut self`).
    hints: std::sync::Mutex<BoxStream<'static, ChangeHint>>,
    cursor: Option<ListCursor>,
    pending: VecDeque<OwnerEvent>,
    poll: Duration,
    /// Read at once (the first read, or a full page that may have more behind it).
    read_now: bool,
    /// What the changes being read are relative to (`None`: every chat is new).
    since: Option<ListCursor>,
}

/// Follows the chats of `owner` after `after` (the cursor of the last event the client
/// received; `None`: every chat the owner has, as `created` events, then changes).
///
/// # Errors
/// The store's error when its change feed cannot be opened.
pub async fn watch(
    store: Arc<dyn ChatStore>,
    owner: UserId,
    after: Option<ListCursor>,
    options: SubscribeOptions,
) -> Result<BoxStream<'static, OwnerEvent>, StoreError> {
    let hints = store.change_feed().await?.subscribe();
    let watcher = Watcher {
        store,
        owner,
        hints: std::sync::Mutex::new(hints),
        cursor: after,
        pending: VecDeque::new(),
        poll: options.poll,
        read_now: true,
        since: after.and_then(|c| c.since()),
    };
    Ok(Box::pin(futures::stream::unfold(watcher, |mut watcher| async move {
        loop {
            if let Some(event) = watcher.pending.pop_front() {
                return Some((event, watcher));
            }
            if !watcher.read_now {
                watcher.wait().await;
            }
            if let Err(err) = watcher.read().await {
                tracing::debug!(error = %err, "chat-list watch re-read failed");
                watcher.read_now = false;
            }
        }
    })))
}

impl Watcher {
    /// Waits for a hint about any chat (the owner of a chat is not in its hint), or the
    /// poll, and drains what else is ready.
    async fn wait(&mut self) {
        let listed = |hint: &ChangeHint| {
            matches!(
                hint.kind,
                ChangeKind::Chat
                    | ChangeKind::Pending
                    | ChangeKind::Deleted
                    | ChangeKind::Diff
                    | ChangeKind::Resync
            )
        };
        loop {
            tokio::select! {
                hint = hints_of(&mut self.hints).next() => match hint {
                    Some(hint) if listed(&hint) => break,
                    Some(_) => {}
                    None => {
                        *hints_of(&mut self.hints) = Box::pin(futures::stream::pending());
                    }
                },
                () = tokio::time::sleep(self.poll) => break,
            }
        }
        while let Some(Some(_)) = hints_of(&mut self.hints).next().now_or_never() {}
    }

    async fn read(&mut self) -> Result<(), StoreError> {
        // A cursor inside a change (not its last event) lists that change again and skips
        // what was delivered of it: relative to the same `since`, its events are the same.
        let inside = self.cursor.filter(|c| c.event != COMPLETE);
        let from = match inside {
            Some(cursor) => Some(cursor.just_before()),
            None => self.cursor.map(|c| c.position()),
        };
        let listed = self.store.list_chat_changes(self.owner, from, PAGE).await?;
        if listed.expired {
            // Deletions after the cursor may be forgotten: start the list over.
            if let Some(stale) = self.cursor {
                let kind = OwnerEventKind::Reset;
                self.pending.push_back(OwnerEvent {
                    chat_id: ChatId(uuid::Uuid::nil()),
                    cursor: stale,
                    kind,
                });
            }
            (self.cursor, self.since, self.read_now) = (None, None, true);
            return Ok(());
        }
        let changes = listed.changes;
        let full = changes.len() == PAGE;
        // Caught up only when nothing was left for a later page or held back: a chat held
        // back has earlier changes that its later position reports relative to `since`.
        let complete = !full && !listed.held_back;
        for change in changes {
            let skip = inside.filter(|c| c.position() == change.position).map(|c| c.event);
            self.events(change, skip);
        }
        self.read_now = full;
        if complete {
            // Caught up: what comes next is relative to here.
            self.since = self.cursor.map(|c| c.position());
        }
        Ok(())
    }

    fn events(&mut self, change: ChatChange, skip: Option<u32>) {
        let ChatChange { position, chat_id, chat, diff_status, clocks, .. } = change;
        let mut kinds: Vec<(u32, OwnerEventKind)> = Vec::new();
        match chat {
            // Possibly a chat this client never saw (created and deleted meanwhile): a list
            // view ignores a deletion of a chat it does not show.
            None => kinds.push((0, OwnerEventKind::Deleted)),
            Some(chat) => {
                let changed = ChangedFields::since(self.since, chat_id, clocks);
                if changed.created {
                    kinds.push((0, OwnerEventKind::Created { chat: chat.clone() }));
                } else {
                    if changed.status {
                        kinds.push((1, OwnerEventKind::StatusChange { status: chat.status }));
                    }
                    if changed.title {
                        kinds.push((2, OwnerEventKind::TitleChange { title: chat.title.clone() }));
                    }
                    if changed.archived {
                        kinds.push((3, OwnerEventKind::Archived { archived: chat.archived }));
                    }
                }
                if let Some(diff_status) = diff_status.filter(|_| changed.created || changed.diff) {
                    kinds.push((4, OwnerEventKind::DiffStatusChange { diff_status }));
                }
            }
        }
        let (since_clock, since_chat) =
            self.since.map_or((-1, uuid::Uuid::nil()), |s| (s.clock, s.chat));
        let stamp = |event| ListCursor { event, since_clock, since_chat, ..position };
        let last = kinds.len().saturating_sub(1);
        let mut pushed = false;
        for (i, (code, kind)) in kinds.into_iter().enumerate() {
            if skip.is_some_and(|delivered| code <= delivered) {
                continue;
            }
            let cursor = stamp(if i == last { COMPLETE } else { code });
            self.cursor = Some(cursor);
            self.pending.push_back(OwnerEvent { chat_id, cursor, kind });
            pushed = true;
        }
        if !pushed {
            // Nothing (left) to tell of it: read past it next time.
            self.cursor = Some(stamp(COMPLETE));
        }
    }
}
