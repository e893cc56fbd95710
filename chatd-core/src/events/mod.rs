//! What clients follow ([BEHAVIOUR §7](crate::behaviour#7-streams)): a chat's event stream, resumable from any event's cursor,
//! and an owner's chat-list events. Both are built here once, over any [`ChatStore`] and its
//! change feed, so every store gets the same guarantees: on reconnection a client hands back
//! the cursor of the last event it received and gets everything after it — no gap, no
//! duplicate — whichever replica runs the turn and whichever serves the client.
//!
//! [`ChatStore`]: crate::store::ChatStore

mod follow;
mod tail;
mod view;
mod watch;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use follow::{SubscribeOptions, subscribe};
pub use tail::Streams;
pub use watch::{OwnerEvent, OwnerEventKind, watch};

use crate::ids::{ChatId, MessageId};
use crate::message::{Message, QueuedMessage};
use crate::provider::StreamEvent;
use crate::status::{ChatStatus, TurnEnding};
use crate::store::PartPosition;

/// Where a client is in a chat's stream: the history version it holds, the last persisted
/// message it has, and the last part of the step in flight (or turn boundary) it saw.
/// Totally ordered; printed as `message.episode.seq`, with `.history` appended once the
/// chat has been edited (usable as an SSE `id:`), and parsed back with [`str::parse`].
///
/// Turn boundaries sit in the part positions: the start of turn `n` (its lease epoch) is
/// episode `n·2^24`, seq 0 — before every part of that turn; its end is episode
/// `n·2^24 + 2^24 − 1`, seq 0 — after them and before the next turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    /// How many history rewrites (edits) the client has applied.
    pub history: i64,
    /// The last persisted message received (`0`: none).
    pub message: i64,
    /// The episode of the last part received (`0`: none).
    pub episode: i64,
    /// The sequence number of that part in its episode.
    pub seq: i64,
}

impl Cursor {
    /// The start of a chat: everything follows.
    pub const START: Cursor = Cursor { history: 0, message: 0, episode: 0, seq: 0 };

    /// A cursor at a message and part position, before any edit.
    #[must_use]
    pub fn new(message: i64, episode: i64, seq: i64) -> Self {
        Cursor { history: 0, message, episode, seq }
    }

    /// The position of turn `turn`'s `turn_started` event.
    #[must_use]
    pub fn turn_start(turn: i64) -> (i64, i64) {
        (turn.saturating_mul(TURN_SPAN), 0)
    }

    /// The position of turn `turn`'s `turn_ended` event.
    #[must_use]
    pub fn turn_end(turn: i64) -> (i64, i64) {
        (turn.saturating_mul(TURN_SPAN).saturating_add(TURN_SPAN - 1), 0)
    }

    /// The part position `(episode, seq)`.
    #[must_use]
    pub fn position(&self) -> (i64, i64) {
        (self.episode, self.seq)
    }

    /// The last message received.
    #[must_use]
    pub fn message_id(&self) -> Option<MessageId> {
        (self.message > 0).then_some(MessageId(self.message))
    }

    /// The last part received.
    #[must_use]
    pub fn part(&self) -> Option<PartPosition> {
        (self.episode > 0 || self.seq > 0)
            .then_some(PartPosition { episode: self.episode, seq: self.seq })
    }
}

/// The episodes of one turn (one lease epoch): see [`Cursor`].
const TURN_SPAN: i64 = 1 << 24;

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.message, self.episode, self.seq)?;
        if self.history > 0 {
            write!(f, ".{}", self.history)?;
        }
        Ok(())
    }
}

/// A cursor that is not `message.episode.seq`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cursor {0:?}: expected three or four non-negative integers joined by '.'")]
pub struct InvalidCursor(pub String);

impl FromStr for Cursor {
    type Err = InvalidCursor;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidCursor(s.chars().take(64).collect());
        let mut fields = s.split('.').map(|f| f.parse::<i64>().ok().filter(|n| *n >= 0));
        let (Some(Some(message)), Some(Some(episode)), Some(Some(seq))) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err(bad());
        };
        let history = match (fields.next(), fields.next()) {
            (None, None) => 0,
            (Some(Some(history)), None) => history,
            _ => return Err(bad()),
        };
        Ok(Cursor { history, message, episode, seq })
    }
}

impl Serialize for Cursor {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cursor {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

/// One event of a chat's stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatEvent {
    /// The chat.
    pub chat_id: ChatId,
    /// Hand this back to resume after this event.
    pub cursor: Cursor,
    /// What happened.
    #[serde(flatten)]
    pub kind: ChatEventKind,
}

/// What a [`ChatEvent`] says ([BEHAVIOUR §7](crate::behaviour#7-streams)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChatEventKind {
    /// The chat's status (always the first event, then on every change).
    Status {
        /// The status.
        status: ChatStatus,
        /// Why the last turn failed (status `error`).
        last_error: Option<String>,
    },
    /// A part of the step in flight.
    MessagePart {
        /// The part.
        part: StreamEvent,
    },
    /// A persisted, user-visible message (it replaces the preview built from parts).
    Message {
        /// The message.
        message: Message,
    },
    /// The whole queue, after it changed.
    QueueUpdate {
        /// The queued messages, oldest first.
        queue: Vec<QueuedMessage>,
    },
    /// The turn failed.
    Error {
        /// Why.
        message: String,
    },
    /// The model call failed and will be retried; a `PreviewReset` follows.
    Retry {
        /// The retry's number (1 for the first retry).
        attempt: u32,
        /// How long the turn waits.
        delay_ms: u64,
        /// The error being retried.
        error: String,
        /// When the next attempt starts.
        retrying_at: DateTime<Utc>,
    },
    /// Drop the parts received since the last persisted message: that attempt was
    /// superseded (a retry, or the worker running it died and the step re-runs).
    PreviewReset,
    /// A turn started (a worker took the chat). Turns are numbered by the chat's lease
    /// epoch; a shut-down or lost turn re-runs as a new turn.
    TurnStarted {
        /// The turn.
        turn: i64,
    },
    /// A turn ended. A subscriber that arrives after the chat's latest turn ended gets this
    /// event too (after the history), so "follow until the turn ends" never hangs.
    TurnEnded {
        /// The turn.
        turn: i64,
        /// How it ended.
        #[serde(flatten)]
        ending: TurnEnding,
    },
    /// The chat waits for decisions on these tool calls ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes)): after a `status`
    /// event of `requires_action`, and again whenever the open calls change.
    ActionRequired {
        /// The open calls, in call order.
        calls: Vec<crate::tool_call::OpenCall>,
    },
    /// An edit rewrote the history: drop every message with an id greater than
    /// `after_message_id` (and any preview); the rewritten messages follow.
    HistoryRewritten {
        /// The last message that is still as the client has it (`0`: drop them all).
        after_message_id: i64,
    },
}

impl ChatEventKind {
    /// The event's name: its serialized `type` (`status`, `message_part`, ...), e.g. for an
    /// SSE `event:` field without serializing the event twice.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            ChatEventKind::Status { .. } => "status",
            ChatEventKind::MessagePart { .. } => "message_part",
            ChatEventKind::Message { .. } => "message",
            ChatEventKind::QueueUpdate { .. } => "queue_update",
            ChatEventKind::Error { .. } => "error",
            ChatEventKind::Retry { .. } => "retry",
            ChatEventKind::PreviewReset => "preview_reset",
            ChatEventKind::TurnStarted { .. } => "turn_started",
            ChatEventKind::TurnEnded { .. } => "turn_ended",
            ChatEventKind::HistoryRewritten { .. } => "history_rewritten",
            ChatEventKind::ActionRequired { .. } => "action_required",
        }
    }

    /// Whether the event moves the cursor (a message, a part, a turn boundary or a history
    /// rewrite): such events are never delivered twice to a client that resumes.
    #[must_use]
    pub fn advances(&self) -> bool {
        matches!(
            self,
            ChatEventKind::Message { .. }
                | ChatEventKind::MessagePart { .. }
                | ChatEventKind::TurnStarted { .. }
                | ChatEventKind::TurnEnded { .. }
                | ChatEventKind::HistoryRewritten { .. }
        )
    }
}

/// The hint stream inside its `Sync`-making mutex.
fn hints_of<'a>(
    hints: &'a mut std::sync::Mutex<futures::stream::BoxStream<'static, crate::feed::ChangeHint>>,
) -> &'a mut futures::stream::BoxStream<'static, crate::feed::ChangeHint> {
    hints.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
