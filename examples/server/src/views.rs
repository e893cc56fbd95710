//! The JSON bodies the REST API answers with, as types: each handler returns `Json<T>` of
//! the library's own serializable types (`Chat`, `Message`, `ModelConfig`, …) or of one of
//! these envelopes, so a body's shape is stated once and checked by the compiler.

use chatd_core::store::{Delivery, EditOutcome, SendOutcome};
use chatd_core::usage::UsageBucket;
use chatd_core::{Chat, ChatId, FileId, FileMeta, Message, QueuedMessage, ToolCall, UserId};
use serde::Serialize;

/// `GET /api/me`.
#[derive(Debug, Serialize)]
pub struct Me {
    /// The caller's user id (`None` for the system actor).
    pub user_id: Option<UserId>,
    /// The caller's display name.
    pub name: String,
    /// Whether the caller administers the server.
    pub admin: bool,
}

/// A page of chats: `next` is the `after` of the following page, `None` on the last.
#[derive(Debug, Serialize)]
pub struct ChatPage {
    /// The chats, newest first.
    pub chats: Vec<Chat>,
    /// Where the next page starts.
    pub next: Option<String>,
}

/// A chat's messages.
#[derive(Debug, Serialize)]
pub struct MessageList {
    /// The messages, in order.
    pub messages: Vec<Message>,
}

/// Where a sent or promoted message went: `delivery` is `inserted` (with `message`),
/// `queued` (with `queued`) or `after_stop`.
#[derive(Debug, Serialize)]
pub struct Sent {
    /// The chat after the send.
    pub chat: Chat,
    /// `inserted`, `queued` or `after_stop`.
    pub delivery: &'static str,
    /// The message, when it went into the history.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
    /// The queued message, when it was queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued: Option<QueuedMessage>,
}

impl From<SendOutcome> for Sent {
    fn from(outcome: SendOutcome) -> Self {
        let (delivery, message, queued) = match outcome.delivery {
            Delivery::Inserted(message) => ("inserted", Some(message), None),
            Delivery::Queued(queued) => ("queued", None, Some(queued)),
            _ => ("after_stop", None, None),
        };
        Sent { chat: outcome.chat, delivery, message, queued }
    }
}

/// An edited message and what the edit took out of the history.
#[derive(Debug, Serialize)]
pub struct Edited {
    /// The chat after the edit.
    pub chat: Chat,
    /// The edited message.
    pub message: Message,
    /// How many later messages left the history.
    pub deleted_messages: usize,
    /// How many queued messages were deleted.
    pub deleted_queued: usize,
}

impl From<EditOutcome> for Edited {
    fn from(outcome: EditOutcome) -> Self {
        Edited {
            chat: outcome.chat,
            message: outcome.message,
            deleted_messages: outcome.deleted_messages,
            deleted_queued: outcome.deleted_queued,
        }
    }
}

/// A chat's tool calls.
#[derive(Debug, Serialize)]
pub struct ToolCallList {
    /// The calls of the chat's unfinished step, in call order.
    pub tool_calls: Vec<ToolCall>,
}

/// Whether the demo asks before its side-effecting tools run, and which tools those are.
#[derive(Debug, Serialize)]
pub struct AskState {
    /// Asking is on for this chat.
    pub on: bool,
    /// The tools that are asked for.
    pub tools: [&'static str; 3],
}

/// Usage buckets.
#[derive(Debug, Serialize)]
pub struct UsageBuckets {
    /// One bucket per group, as the query asked.
    pub buckets: Vec<UsageBucket>,
}

/// A stored file as the API describes it.
#[derive(Debug, Serialize)]
pub struct FileView {
    /// The file's id.
    pub id: FileId,
    /// Its base name.
    pub name: String,
    /// Its sniffed media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// The chat it is bound to.
    pub chat_id: Option<ChatId>,
    /// When it was stored.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Where to download it.
    pub url: String,
}

impl From<&FileMeta> for FileView {
    fn from(meta: &FileMeta) -> Self {
        FileView {
            id: meta.id,
            name: meta.name.clone(),
            media_type: meta.media_type.clone(),
            size: meta.size,
            chat_id: meta.chat_id,
            created_at: meta.created_at,
            url: crate::ai_sdk::ui::file_url(meta.id),
        }
    }
}

/// A chat's files.
#[derive(Debug, Serialize)]
pub struct FileList {
    /// The files, oldest first.
    pub files: Vec<FileView>,
}
