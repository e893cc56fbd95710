//! An owner's chat-list changes, by position: what the list view (`watch`) reads to resume
//! without a gap or a duplicate.

use std::fmt;
use std::str::FromStr;

use crate::chat::Chat;
use crate::diff_status::DiffStatus;
use crate::ids::ChatId;

/// A position in an owner's chat-list changes: the store's change clock, then the chat id
/// (one change may touch several chats), then the event within that chat's change (one
/// change may say several things: a new status and a new title). A cursor handed to a
/// client also says which position the changes it is reading are relative to (`since`):
/// a chat listed at its latest change reports everything that changed after `since`.
/// Ordered by position; printed as `clock.chat.event.since_clock.since_chat` (chat ids in
/// hex without dashes, `since_clock` −1 for "from the beginning"), parsed back with
/// [`str::parse`]. Stores list positions with `event` 0 and ignore the rest in cursors.
///
/// The clock is store-specific: a counter in memory; in PostgreSQL the id of the
/// transaction that made the change, read only once every older transaction has ended,
/// so a change that commits late can never land behind a cursor already handed out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ListCursor {
    /// The change clock.
    pub clock: i64,
    /// The chat, to order changes made at the same clock.
    pub chat: uuid::Uuid,
    /// The event within the chat's change (`0`: the first).
    pub event: u32,
    /// The clock of the position the reading is relative to (−1: none, every chat new).
    pub since_clock: i64,
    /// The chat of that position.
    pub since_chat: uuid::Uuid,
}

impl ListCursor {
    /// The position of a chat's change at `clock`.
    #[must_use]
    pub fn at(clock: i64, chat: uuid::Uuid) -> Self {
        ListCursor { clock, chat, event: 0, since_clock: -1, since_chat: uuid::Uuid::nil() }
    }

    /// The position alone (`event` and `since` cleared).
    #[must_use]
    pub fn position(&self) -> Self {
        ListCursor::at(self.clock, self.chat)
    }

    /// The position the reading is relative to.
    #[must_use]
    pub fn since(&self) -> Option<Self> {
        (self.since_clock >= 0).then(|| ListCursor::at(self.since_clock, self.since_chat))
    }

    /// The position just before this change's first event: listing after it lists this
    /// change again (there is no chat id between `chat − 1` and `chat`).
    #[must_use]
    pub fn just_before(&self) -> Self {
        match self.chat.as_u128().checked_sub(1) {
            Some(chat) => ListCursor::at(self.clock, uuid::Uuid::from_u128(chat)),
            None => ListCursor::at(self.clock - 1, uuid::Uuid::max()),
        }
    }
}

impl fmt::Display for ListCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}.{}.{}",
            self.clock,
            self.chat.simple(),
            self.event,
            self.since_clock,
            self.since_chat.simple()
        )
    }
}

/// A list cursor that is not `clock.chat`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid list cursor {0:?}: expected clock.chat.event.since_clock.since_chat")]
pub struct InvalidListCursor(pub String);

impl FromStr for ListCursor {
    type Err = InvalidListCursor;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidListCursor(s.chars().take(64).collect());
        let fields: Vec<&str> = s.split('.').collect();
        let [clock, chat, event, since_clock, since_chat] = fields[..] else {
            return Err(bad());
        };
        let clock = clock.parse::<i64>().ok().filter(|c| *c >= 0).ok_or_else(bad)?;
        let chat = uuid::Uuid::try_parse(chat).map_err(|_| bad())?;
        let event = event.parse::<u32>().map_err(|_| bad())?;
        let since_clock = since_clock.parse::<i64>().ok().filter(|c| *c >= -1).ok_or_else(bad)?;
        let since_chat = uuid::Uuid::try_parse(since_chat).map_err(|_| bad())?;
        Ok(ListCursor { clock, chat, event, since_clock, since_chat })
    }
}

impl serde::Serialize for ListCursor {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ListCursor {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <String as serde::Deserialize>::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

/// What changed about a chat since the cursor a listing was asked from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct ChangedFields {
    /// The chat was created after the cursor (the other flags are then `false`).
    pub created: bool,
    /// Its status changed.
    pub status: bool,
    /// Its title changed.
    pub title: bool,
    /// It was archived or unarchived.
    pub archived: bool,
    /// Its diff status changed.
    pub diff: bool,
}

/// One chat's changes after a cursor, at its latest position.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ChatChange {
    /// Where this change is: hand it back to list what follows.
    pub position: ListCursor,
    /// The chat.
    pub chat_id: ChatId,
    /// The chat as it is now; `None` when it was deleted.
    pub chat: Option<Box<Chat>>,
    /// Its diff status, if it has one.
    pub diff_status: Option<Box<DiffStatus>>,
    /// When each kind of change last happened (for a deleted chat: its creation only).
    pub clocks: FieldClocks,
}

impl ChatChange {
    /// A change of a chat that still exists.
    #[must_use]
    pub fn present(
        position: ListCursor,
        chat: Chat,
        diff_status: Option<DiffStatus>,
        clocks: FieldClocks,
    ) -> Self {
        ChatChange {
            position,
            chat_id: chat.id,
            chat: Some(Box::new(chat)),
            diff_status: diff_status.map(Box::new),
            clocks,
        }
    }

    /// A deleted chat, created at clock `created`.
    #[must_use]
    pub fn deleted(position: ListCursor, chat_id: ChatId, created: i64) -> Self {
        ChatChange {
            position,
            chat_id,
            chat: None,
            diff_status: None,
            clocks: FieldClocks { created, ..FieldClocks::default() },
        }
    }
}

/// What [`ChatStore::list_chat_changes`](super::ChatStore::list_chat_changes) returns.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct ChatChanges {
    /// The changes, in position order.
    pub changes: Vec<ChatChange>,
    /// Some changes after the cursor exist but could not be listed yet (PostgreSQL: their
    /// transactions are not below the horizon). A chat's earlier changes are then folded
    /// into a later position, so a reader must not treat this listing as complete.
    pub held_back: bool,
    /// The cursor is older than the newest deletion the store has forgotten
    /// ([`prune_tombstones`](super::ChatStore::prune_tombstones)): deletions after it may be
    /// missing from `changes`, so the reader must start its list over (read from `None`).
    pub expired: bool,
}

impl ChatChanges {
    /// A listing.
    #[must_use]
    pub fn new(changes: Vec<ChatChange>, held_back: bool) -> Self {
        ChatChanges { changes, held_back, expired: false }
    }

    /// The same listing, marked expired or not.
    #[must_use]
    pub fn with_expired(mut self, expired: bool) -> Self {
        self.expired = expired;
        self
    }
}

impl ChangedFields {
    /// Flags for `chat`, whose per-field clocks are given, relative to the position `after`
    /// (`None`: the client knows nothing, so every chat is new). A field changed at the
    /// cursor's own clock is new only for chats ordered after the cursor's chat.
    #[must_use]
    pub(crate) fn since(after: Option<ListCursor>, chat: ChatId, clocks: FieldClocks) -> Self {
        let Some(after) = after else {
            return ChangedFields { created: true, ..ChangedFields::default() };
        };
        let newer = |clock: i64| (clock, chat.0) > (after.clock, after.chat);
        if newer(clocks.created) {
            return ChangedFields { created: true, ..ChangedFields::default() };
        }
        ChangedFields {
            created: false,
            status: newer(clocks.status),
            title: newer(clocks.title),
            archived: newer(clocks.archived),
            diff: newer(clocks.diff),
        }
    }
}

/// The clocks of a chat's last change of each kind (a store-side helper: stores read them
/// and the watcher turns them into per-field flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FieldClocks {
    /// The clock of the chat's creation.
    pub created: i64,
    /// The last status change.
    pub status: i64,
    /// The last title change.
    pub title: i64,
    /// The last archive or unarchive.
    pub archived: i64,
    /// The last diff status change.
    pub diff: i64,
}

impl FieldClocks {
    /// Every clock at `clock` (a chat just created).
    #[must_use]
    pub fn all(clock: i64) -> Self {
        FieldClocks { created: clock, status: clock, title: clock, archived: clock, diff: 0 }
    }

    /// The latest of them.
    #[must_use]
    pub fn latest(&self) -> i64 {
        self.created.max(self.status).max(self.title).max(self.archived).max(self.diff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_cursors_print_parse_and_order() {
        let chat = uuid::Uuid::from_u128(0xabc);
        let cursor = ListCursor { event: 2, since_clock: 5, ..ListCursor::at(7, chat) };
        let printed = cursor.to_string();
        assert_eq!(
            printed,
            "7.00000000000000000000000000000abc.2.5.00000000000000000000000000000000"
        );
        assert_eq!(printed.parse::<ListCursor>(), Ok(cursor));
        assert_eq!(cursor.since(), Some(ListCursor::at(5, uuid::Uuid::nil())));
        assert_eq!(ListCursor::at(7, chat).since(), None);
        for bad in ["", "7", "7.abc.0.0.abc", "-1.abc.0.-1.abc", &printed[1..], "7.x.0.-1.0"] {
            assert!(bad.parse::<ListCursor>().is_err(), "{bad}");
        }
        assert!(ListCursor::at(7, chat) < cursor);
        let before = cursor.just_before();
        assert!(before < ListCursor::at(7, chat) && before > ListCursor::at(6, uuid::Uuid::max()));
        let first = ListCursor::at(3, uuid::Uuid::nil());
        assert_eq!(first.just_before(), ListCursor::at(2, uuid::Uuid::max()));
    }
}
