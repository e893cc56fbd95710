//! Retention ([BEHAVIOUR §18](crate::behaviour#18-history-you-keep)): what a host keeps, applied by workers in bounded batches.

use std::time::Duration;

use crate::ids::ChatId;

/// How long a host keeps what (all off by default: nothing is archived or purged).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionPolicy {
    /// Archive root chats (with their trees) idle — `waiting`, `completed`, `error` or
    /// `paused` — and unchanged this long.
    pub archive_idle_after: Option<Duration>,
    /// Purge (hard-delete, every row, leaving a list tombstone) chats archived and unchanged
    /// this long, unless running or waiting for work (`running`, `pending`,
    /// `requires_action`).
    pub purge_archived_after: Option<Duration>,
    /// Purge messages edits took out of the history this long ago.
    pub purge_deleted_messages_after: Option<Duration>,
    /// Purge uploaded files no message referred to (never bound to a chat) this long after
    /// their upload ([BEHAVIOUR §19](crate::behaviour#19-attachments)). Applied by workers through the file store.
    pub purge_unbound_files_after: Option<Duration>,
}

impl RetentionPolicy {
    /// Nothing archived or purged.
    #[must_use]
    pub fn off() -> Self {
        RetentionPolicy::default()
    }

    /// Whether the policy does nothing.
    #[must_use]
    pub fn is_off(&self) -> bool {
        *self == RetentionPolicy::off()
    }

    /// Archives idle root chats unchanged for `after`.
    #[must_use]
    pub fn with_archive_idle_after(mut self, after: Duration) -> Self {
        self.archive_idle_after = Some(after);
        self
    }

    /// Purges archived chats unchanged for `after`.
    #[must_use]
    pub fn with_purge_archived_after(mut self, after: Duration) -> Self {
        self.purge_archived_after = Some(after);
        self
    }

    /// Purges deleted messages (earlier revisions) older than `after`.
    #[must_use]
    pub fn with_purge_deleted_messages_after(mut self, after: Duration) -> Self {
        self.purge_deleted_messages_after = Some(after);
        self
    }

    /// Purges uploads never bound to a chat once older than `after`.
    #[must_use]
    pub fn with_purge_unbound_files_after(mut self, after: Duration) -> Self {
        self.purge_unbound_files_after = Some(after);
        self
    }
}

/// What one retention batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionPass {
    /// Root chats archived (their trees with them).
    pub archived: Vec<ChatId>,
    /// Chats purged.
    pub purged: Vec<ChatId>,
    /// Deleted messages purged.
    pub deleted_messages_purged: u64,
}

impl RetentionPass {
    /// Whether any part of the batch was full (so another batch may find more).
    #[must_use]
    pub fn full(&self, limit: usize) -> bool {
        self.archived.len() >= limit
            || self.purged.len() >= limit
            || self.deleted_messages_purged >= u64::try_from(limit).unwrap_or(u64::MAX)
    }
}
