//! Change hints: how replicas learn that something changed without polling hard.
//!
//! A store announces every committed intent with one or more [`ChangeHint`]s, only after it
//! committed, so a failed intent announces nothing (PostgreSQL: a per-process notifier sends
//! them as batched `NOTIFY`s; memory: a broadcast channel after the critical section). A hint carries no data — only
//! which chat changed, what kind of change it was, and a cursor — so a consumer always
//! re-reads the store by cursor, and a lost or duplicated hint costs latency, never
//! correctness. Feeds also emit [`ChangeKind::Resync`] whenever hints may have been lost (a
//! reconnect, a lagging subscriber, and on every poll-fallback tick), telling consumers to
//! re-read everything they follow.

use std::fmt;
use std::str::FromStr;

use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::ids::ChatId;

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// The chat row: status, title, archive flag, workspace.
    Chat,
    /// New persisted messages (cursor: the last message id), or history was cut by an edit.
    Messages,
    /// Parts of the step in flight were flushed (cursor: `episode.seq` of the last one).
    Parts,
    /// The queue changed.
    Queue,
    /// The chat became `pending`: a worker should try to acquire.
    Pending,
    /// The chat was deleted.
    Deleted,
    /// The chat's diff status changed.
    Diff,
    /// Hints may have been lost: re-read everything (no chat id).
    Resync,
}

impl ChangeKind {
    /// The wire spelling.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Chat => "chat",
            ChangeKind::Messages => "messages",
            ChangeKind::Parts => "parts",
            ChangeKind::Queue => "queue",
            ChangeKind::Pending => "pending",
            ChangeKind::Deleted => "deleted",
            ChangeKind::Diff => "diff",
            ChangeKind::Resync => "resync",
        }
    }
}

impl FromStr for ChangeKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            ChangeKind::Chat,
            ChangeKind::Messages,
            ChangeKind::Parts,
            ChangeKind::Queue,
            ChangeKind::Pending,
            ChangeKind::Deleted,
            ChangeKind::Diff,
            ChangeKind::Resync,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == s)
        .ok_or_else(|| format!("unknown change kind `{s}`"))
    }
}

/// One hint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChangeHint {
    /// The chat (`None` only for [`ChangeKind::Resync`]).
    pub chat_id: Option<ChatId>,
    /// What changed.
    pub kind: ChangeKind,
    /// Where the change ends (a message id, a part position), when the kind has one.
    pub cursor: Option<String>,
}

impl ChangeHint {
    /// A hint about `chat`.
    #[must_use]
    pub fn new(chat: ChatId, kind: ChangeKind) -> Self {
        ChangeHint { chat_id: Some(chat), kind, cursor: None }
    }

    /// Adds a cursor.
    #[must_use]
    pub fn at(mut self, cursor: impl fmt::Display) -> Self {
        self.cursor = Some(cursor.to_string());
        self
    }

    /// "Re-read everything".
    #[must_use]
    pub fn resync() -> Self {
        ChangeHint { chat_id: None, kind: ChangeKind::Resync, cursor: None }
    }

    /// The compact wire form `chat|kind|cursor` (at most ~90 bytes, well under `NOTIFY`'s
    /// 8 000-byte payload limit).
    #[must_use]
    pub fn encode(&self) -> String {
        format!(
            "{}|{}|{}",
            self.chat_id.map(|c| c.to_string()).unwrap_or_default(),
            self.kind.as_str(),
            self.cursor.as_deref().unwrap_or_default()
        )
    }

    /// Parses [`ChangeHint::encode`]'s form.
    ///
    /// # Errors
    /// A description of what is malformed.
    pub fn decode(raw: &str) -> Result<Self, String> {
        let mut fields = raw.splitn(3, '|');
        let (Some(chat), Some(kind), Some(cursor)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(format!("malformed change hint `{raw}`"));
        };
        let chat_id = if chat.is_empty() {
            None
        } else {
            Some(chat.parse::<ChatId>().map_err(|err| format!("bad chat id in hint: {err}"))?)
        };
        Ok(ChangeHint {
            chat_id,
            kind: kind.parse()?,
            cursor: (!cursor.is_empty()).then(|| cursor.to_owned()),
        })
    }
}

/// A source of change hints, shared by every subscriber of one process.
pub trait ChangeFeed: Send + Sync + 'static {
    /// A stream of every hint from now on. A subscriber that falls behind receives a
    /// [`ChangeKind::Resync`] in place of what it missed.
    fn subscribe(&self) -> BoxStream<'static, ChangeHint>;
}

/// A [`ChangeFeed`] over a `tokio::sync::broadcast` channel: the in-process feed, and the
/// fan-out stage of database-backed feeds.
#[derive(Debug, Clone)]
pub struct BroadcastFeed {
    sender: tokio::sync::broadcast::Sender<ChangeHint>,
}

impl BroadcastFeed {
    /// A feed whose subscribers may lag by up to `capacity` hints before they get a resync.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = tokio::sync::broadcast::channel(capacity.max(1));
        BroadcastFeed { sender }
    }

    /// Publishes a hint to current subscribers (none listening is fine).
    pub fn publish(&self, hint: ChangeHint) {
        let _ = self.sender.send(hint);
    }
}

impl Default for BroadcastFeed {
    fn default() -> Self {
        Self::new(4096)
    }
}

impl ChangeFeed for BroadcastFeed {
    fn subscribe(&self) -> BoxStream<'static, ChangeHint> {
        let receiver = self.sender.subscribe();
        Box::pin(futures::stream::unfold(receiver, |mut receiver| async move {
            use tokio::sync::broadcast::error::RecvError;
            match receiver.recv().await {
                Ok(hint) => Some((hint, receiver)),
                Err(RecvError::Lagged(_)) => Some((ChangeHint::resync(), receiver)),
                Err(RecvError::Closed) => None,
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    #[test]
    fn hints_round_trip_through_the_wire_form() {
        let chat = ChatId::new();
        for hint in [
            ChangeHint::new(chat, ChangeKind::Messages).at(42),
            ChangeHint::new(chat, ChangeKind::Parts).at("7.3"),
            ChangeHint::new(chat, ChangeKind::Pending),
            ChangeHint::resync(),
        ] {
            assert_eq!(ChangeHint::decode(&hint.encode()), Ok(hint));
        }
        assert!(ChangeHint::decode("nonsense").is_err());
        assert!(ChangeHint::decode("not-a-uuid|chat|").is_err());
        assert!(ChangeHint::decode("|teleport|").is_err());
    }

    #[tokio::test]
    async fn a_lagging_subscriber_gets_a_resync() {
        let feed = BroadcastFeed::new(2);
        let mut stream = feed.subscribe();
        let chat = ChatId::new();
        for seq in 0..5 {
            feed.publish(ChangeHint::new(chat, ChangeKind::Parts).at(seq));
        }
        assert_eq!(stream.next().await, Some(ChangeHint::resync()));
        assert_eq!(stream.next().await.and_then(|h| h.cursor), Some("3".to_owned()));
    }
}
