//! One read of a chat for its followers: the persisted messages after a cursor, the parts
//! of the step in flight after it, and the chat's state — from the store, or from the
//! shared tail of the chat (`tail.rs`) when that is at least as new.

use std::sync::Arc;

use crate::chat::Chat;
use crate::ids::ChatId;
use crate::message::Message;
use crate::part_log::LivePart;
use crate::status::{ChatStatus, TurnEnding};
use crate::store::{ChatStore, MessageQuery, PartPosition, PartRecord, StoreError};

use super::Cursor;

/// What a follower needs of the chat row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChatState {
    pub(crate) status: ChatStatus,
    pub(crate) last_error: Option<String>,
    pub(crate) lease_epoch: i64,
    pub(crate) last_turn: Option<TurnEnding>,
    pub(crate) turn_started_after: i64,
    pub(crate) previous_turn: Option<TurnEnding>,
    pub(crate) previous_turn_started_after: i64,
    pub(crate) history_version: i64,
    pub(crate) rewritten_after: i64,
    pub(crate) open_calls: Vec<crate::tool_call::OpenCall>,
}

impl From<&Chat> for ChatState {
    fn from(chat: &Chat) -> Self {
        ChatState {
            status: chat.status,
            last_error: chat.last_error.clone(),
            lease_epoch: chat.lease_epoch,
            last_turn: chat.last_turn.clone(),
            turn_started_after: chat.turn_started_after,
            previous_turn: chat.previous_turn.clone(),
            previous_turn_started_after: chat.previous_turn_started_after,
            history_version: chat.history_version,
            rewritten_after: chat.rewritten_after,
            open_calls: crate::tool_call::open_calls(&chat.tool_calls),
        }
    }
}

/// A part of the log, decoded once (`None`: a kind this version does not know).
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) position: PartPosition,
    pub(crate) live: Option<LivePart>,
}

/// Parts read together, decoded once and shared by every subscriber that tells them (one
/// reference count per chunk, not per part: a thousand subscribers of one chat would
/// otherwise contend on every part's count).
pub(crate) type Chunk = Arc<[Decoded]>;

/// Decodes the parts of one read.
pub(crate) fn decode(chat: ChatId, records: Vec<PartRecord>) -> Chunk {
    records
        .into_iter()
        .map(|record| {
            let live = match serde_json::from_value::<LivePart>(record.payload) {
                Ok(live) => Some(live),
                Err(err) => {
                    tracing::debug!(chat = %chat, error = %err, "skipping an unknown part");
                    None
                }
            };
            Decoded { position: record.position, live }
        })
        .collect()
}

/// The parts `chunk[from..]`, in log order.
#[derive(Debug)]
pub(crate) struct PartRun {
    pub(crate) chunk: Chunk,
    pub(crate) from: usize,
}

/// Everything after a cursor, read consistently.
#[derive(Debug)]
pub(crate) struct View {
    pub(crate) messages: Vec<Message>,
    pub(crate) parts: Vec<PartRun>,
    /// Read before the history: a turn it shows as ended has all its messages in the view.
    pub(crate) before: ChatState,
    /// Read after the history: at least as new (the turn of the parts read).
    pub(crate) chat: ChatState,
}

/// How many times a read is repeated while the chat changes under it (see
/// [`View::overtaken`]) before it is used anyway.
pub(crate) const SETTLE_ATTEMPTS: u32 = 4;

impl View {
    /// The chat changed under the read: between the first chat read and the second, a turn
    /// ended, a turn began, or an edit rewrote the history. The history read between them
    /// may then hold messages from after that change (a promoted queued message) or from
    /// before it (text an edit replaced), while turn boundaries are placed from the first
    /// read and the history version is taken from the second — an ending told after the
    /// message that followed it, or never once the next start moved the client past it; a
    /// replaced text delivered as current. Read again: the next read's first chat read shows
    /// the change (`last_turn`, `previous_turn`, the new history version).
    pub(crate) fn overtaken(&self) -> bool {
        overtaken(&self.before, &self.chat)
    }
}

/// See [`View::overtaken`].
pub(crate) fn overtaken(before: &ChatState, after: &ChatState) -> bool {
    (before.status == ChatStatus::Running && after.status != ChatStatus::Running)
        || after.lease_epoch != before.lease_epoch
        || after.history_version != before.history_version
}

/// Reads the store after `cursor` (again while the read is overtaken, up to
/// [`SETTLE_ATTEMPTS`] times). `Ok(None)`: the chat is gone.
pub(crate) async fn read_store(
    store: &dyn ChatStore,
    chat: ChatId,
    cursor: Cursor,
) -> Result<Option<View>, StoreError> {
    let mut attempts = 0;
    loop {
        let Some(before) = chat_state(store, chat).await? else { return Ok(None) };
        let (messages, parts) = consistent_read(store, chat, cursor).await?;
        let Some(state) = chat_state(store, chat).await? else { return Ok(None) };
        let chunk = decode(chat, parts);
        let parts = if chunk.is_empty() { Vec::new() } else { vec![PartRun { chunk, from: 0 }] };
        let view = View { messages, parts, before, chat: state };
        attempts += 1;
        if !view.overtaken() || attempts >= SETTLE_ATTEMPTS {
            return Ok(Some(view));
        }
    }
}

/// The chat's state; `None` when it is gone.
pub(crate) async fn chat_state(
    store: &dyn ChatStore,
    chat: ChatId,
) -> Result<Option<ChatState>, StoreError> {
    match store.get_chat(chat).await {
        Ok(row) => Ok(Some(ChatState::from(&row))),
        Err(err) if err.is_not_found() => Ok(None),
        Err(err) => Err(err),
    }
}

/// Messages after the cursor and the parts of the step after the last of them.
///
/// A commit inserts the step's rows and clears the part log atomically, but messages and
/// parts are two reads: read messages, then parts, then check again for messages. When
/// none appeared, the parts are of the step after the last message read; otherwise retry.
pub(crate) async fn consistent_read(
    store: &dyn ChatStore,
    chat: ChatId,
    cursor: Cursor,
) -> Result<(Vec<Message>, Vec<PartRecord>), StoreError> {
    let mut after = cursor.message_id();
    let mut messages = Vec::new();
    for _ in 0..8 {
        let new = store.list_messages(chat, MessageQuery::user_visible_after(after)).await?;
        after = new.last().map(|m| m.id).or(after);
        messages.extend(new);
        let parts = store.read_parts(chat, cursor.part()).await?;
        let check = MessageQuery::user_visible_after(after).with_limit(1);
        if store.list_messages(chat, check).await?.is_empty() {
            return Ok((messages, parts));
        }
    }
    // Commits keep landing between reads: deliver the messages now, the parts next round.
    Ok((messages, Vec::new()))
}
