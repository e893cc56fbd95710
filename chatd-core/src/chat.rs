//! Chats (`chats`) and the inputs that create, change and list them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{
    ChatId, ModelConfigId, QueuedMessageId, UserId, WorkerId, WorkspaceAgentId, WorkspaceId,
};
use crate::part::Part;
use crate::status::{ChatStatus, StopKind};

/// The title of a chat created without a first message (the seed's column default).
pub(crate) const DEFAULT_TITLE: &str = "New Chat";

/// A stop that a person requested for the running turn; the worker applies it when it
/// releases the chat. Only present while the chat is `running`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopRequest {
    /// Whether the turn is interrupted, or the chat paused once the turn stops.
    pub kind: StopKind,
    /// A queued message to promote when the turn has stopped (an interrupting send or an
    /// explicit promotion), ahead of older queued messages.
    pub promote: Option<QueuedMessageId>,
}

impl StopRequest {
    /// Merges a new request into the chat's current one: a pause is never downgraded to an
    /// interrupt, and the newest message to promote wins.
    #[must_use]
    pub fn merge(
        current: Option<StopRequest>,
        kind: StopKind,
        promote: Option<QueuedMessageId>,
    ) -> Self {
        let kind = match current {
            Some(StopRequest { kind: StopKind::Pause, .. }) => StopKind::Pause,
            _ => kind,
        };
        StopRequest { kind, promote: promote.or(current.and_then(|c| c.promote)) }
    }
}

/// A chat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chat {
    /// Assigned by the store at creation (the built-in stores make UUIDv7s, which sort by
    /// creation time).
    pub id: ChatId,
    /// The user who owns it.
    pub owner_id: UserId,
    /// The workspace the chat's tools act on.
    pub workspace_id: Option<WorkspaceId>,
    /// The workspace agent the chat's tools act on.
    pub workspace_agent_id: Option<WorkspaceAgentId>,
    /// Its title: given, automatic from the first message, or generated (at most
    /// `Limits::max_title_chars`).
    pub title: String,
    /// Where it is in the state machine ([`ChatStatus`]).
    pub status: ChatStatus,
    /// The worker running it (only while `running`).
    pub worker_id: Option<WorkerId>,
    /// When the current run started (only while `running`).
    pub started_at: Option<DateTime<Utc>>,
    /// The owner's last heartbeat (only while `running`).
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// The last status or metadata change.
    pub updated_at: DateTime<Utc>,
    /// The chat that spawned this one (sub-agents).
    pub parent_chat_id: Option<ChatId>,
    /// The root of its tree as stored: `None` for a root chat (see [`Chat::root_id`]).
    pub root_chat_id: Option<ChatId>,
    /// The model configuration of the latest message that named one.
    pub last_model_config_id: ModelConfigId,
    /// Hidden from the default list view.
    pub archived: bool,
    /// Why the last turn failed (only while `error`).
    pub last_error: Option<String>,
    /// The lease fencing epoch: bumped on every acquisition.
    pub lease_epoch: i64,
    /// A stop requested for the running turn.
    pub stop_request: Option<StopRequest>,
    /// How the turn of `lease_epoch` ended: `None` while it runs (or before the first turn).
    pub last_turn: Option<crate::status::TurnEnding>,
    /// The id of the chat's last message when the turn of `lease_epoch` started: the
    /// turn's messages are the ones after it (and before the next user message).
    pub turn_started_after: i64,
    /// How the turn before the one of `lease_epoch` (turn `lease_epoch − 1`) ended; `None`
    /// before a second turn. Acquiring a turn moves `last_turn` here, so a follower that
    /// saw that turn start hears it end even when the next turn has already begun.
    #[serde(default)]
    pub previous_turn: Option<crate::status::TurnEnding>,
    /// `turn_started_after` of the turn before the one of `lease_epoch`.
    #[serde(default)]
    pub previous_turn_started_after: i64,
    /// How many edits have rewritten this chat's history.
    pub history_version: i64,
    /// The latest edit removed every message with a greater id (the edited message itself
    /// was rewritten in place and is the first message after it).
    pub rewritten_after: i64,
    /// The local tool calls of the chat's unfinished step, in call order ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes)):
    /// empty unless a step's calls wait for a person or a client, or a step with side
    /// effects is between its assistant row and its tool rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<crate::tool_call::ToolCall>,
    /// What this chat's model calls have used and cost ([BEHAVIOUR §17](crate::behaviour#17-usage-cost-limits-and-fairness)).
    #[serde(default)]
    pub spent: crate::usage::Spend,
    /// What the model calls of this chat's whole tree have used and cost: kept on the root
    /// chat (zero on a sub-agent's chat; read its root).
    #[serde(default)]
    pub tree_spent: crate::usage::Spend,
    /// Its labels, `key → value` ([BEHAVIOUR §18](crate::behaviour#18-history-you-keep)): at most `MAX_LABELS`, set with
    /// [`ChatUpdate::labels`] and matched by [`ChatFilter::with_label`].
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// The chat and message this chat was forked from ([BEHAVIOUR §18](crate::behaviour#18-history-you-keep)); `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forked_from: Option<ForkedFrom>,
}

/// How many labels a chat carries at most.
pub(crate) const MAX_LABELS: usize = 50;
/// The longest label key, in characters (letters, digits, `-`, `_`, `.`, `/`).
pub(crate) const MAX_LABEL_KEY_CHARS: usize = 64;
/// The longest label value, in characters (no control characters).
pub(crate) const MAX_LABEL_VALUE_CHARS: usize = 128;
/// The longest search query, in characters.
pub(crate) const MAX_QUERY_CHARS: usize = 256;

/// Where a fork came from: its history is the source's up to and including this message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkedFrom {
    /// The source chat (it may since have been deleted).
    pub chat_id: ChatId,
    /// The source's message the fork's history ends with (before the tool results answering
    /// it, which are copied with it).
    pub message_id: crate::ids::MessageId,
}

/// The title of a fork of a chat titled `source`: the source's with a fork marker, within
/// `max_chars` characters.
#[must_use]
pub(crate) fn fork_title(source: &str, max_chars: usize) -> String {
    const MARK: &str = " (fork)";
    let room = max_chars.saturating_sub(MARK.chars().count());
    let kept: String = source.chars().take(room).collect();
    format!("{}{MARK}", kept.trim_end())
}

/// How many of `history`'s rows (the source's current history, in id order) a fork at `at`
/// copies: through `at` and the tool results right after it; `None` when `at` is not in it.
#[must_use]
pub fn fork_cut(history: &[crate::message::Message], at: crate::ids::MessageId) -> Option<usize> {
    let index = history.iter().position(|m| m.id == at)?;
    let results =
        history[index + 1..].iter().take_while(|m| m.role == crate::message::Role::Tool).count();
    Some(index + 1 + results)
}

/// Whether a chat is a root chat or a delegated sub-agent ([BEHAVIOUR §13](crate::behaviour#13-tools)):
/// a child is told it is one and is not offered the root-only tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChatKind {
    /// A chat a person started.
    Root,
    /// A sub-agent's chat, started by its root's `spawn_agent`.
    Child,
}

impl ChatKind {
    /// Whether this is [`ChatKind::Child`].
    #[must_use]
    pub fn is_child(self) -> bool {
        self == ChatKind::Child
    }
}

impl Chat {
    /// The tool calls waiting for a person's approval or a client's result, in call order
    /// ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes)):
    /// what a `requires_action` chat waits for.
    #[must_use]
    pub fn open_calls(&self) -> Vec<crate::tool_call::OpenCall> {
        crate::tool_call::open_calls(&self.tool_calls)
    }

    /// Whether this is a root chat or a sub-agent.
    #[must_use]
    pub fn kind(&self) -> ChatKind {
        if self.is_root() { ChatKind::Root } else { ChatKind::Child }
    }

    /// The id of the root of this chat's tree (its own id for a root chat).
    #[must_use]
    pub fn root_id(&self) -> ChatId {
        self.root_chat_id.unwrap_or(self.id)
    }

    /// Whether this is a root chat (not a sub-agent).
    #[must_use]
    pub fn is_root(&self) -> bool {
        self.parent_chat_id.is_none()
    }
}

/// Input of [`ChatStore::create_chat`](crate::store::ChatStore::create_chat).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NewChat {
    /// The user who owns it: through `Chatd`, other users never see it.
    pub owner_id: UserId,
    /// The workspace, if already known.
    pub workspace_id: Option<WorkspaceId>,
    /// The workspace agent, if already known.
    pub workspace_agent_id: Option<WorkspaceAgentId>,
    /// An explicit title; `None` derives one from the first message ([BEHAVIOUR §14](crate::behaviour#14-titles)).
    pub title: Option<String>,
    /// The model configuration; `None` uses the default one.
    pub model_config_id: Option<ModelConfigId>,
    /// The parent chat, for a sub-agent.
    pub parent_chat_id: Option<ChatId>,
    /// A system prompt stored as the first (model-only) message.
    pub system_prompt: Option<String>,
    /// The first user message; with one the chat starts `pending`.
    pub message: Option<Vec<Part>>,
    /// With a parent: the most open (not archived) children the parent may have, this one
    /// included ([`NewChat::with_open_children_limit`]). The store checks it in the
    /// transaction that creates the chat, so concurrent creations never pass it.
    pub open_children_limit: Option<usize>,
}

impl NewChat {
    /// Refuses to create this child while its parent already has `limit` open (not
    /// archived) children — one atomic check in the store ([BEHAVIOUR §13](crate::behaviour#13-tools): at most 16
    /// sub-agents per root).
    #[must_use]
    pub fn with_open_children_limit(mut self, limit: usize) -> Self {
        self.open_children_limit = Some(limit);
        self
    }

    /// A chat for `owner` with no message yet.
    #[must_use]
    pub fn new(owner_id: UserId) -> Self {
        NewChat {
            owner_id,
            workspace_id: None,
            workspace_agent_id: None,
            title: None,
            model_config_id: None,
            parent_chat_id: None,
            system_prompt: None,
            message: None,
            open_children_limit: None,
        }
    }

    /// Sets the first user message.
    #[must_use]
    pub fn with_message(mut self, content: Vec<Part>) -> Self {
        self.message = Some(content);
        self
    }

    /// Sets the first user message to one text part.
    #[must_use]
    pub fn with_text(self, text: impl Into<String>) -> Self {
        self.with_message(vec![Part::text(text)])
    }

    /// Sets the system prompt.
    #[must_use]
    pub fn with_system_prompt(mut self, prompt: impl Into<String>) -> Self {
        self.system_prompt = Some(prompt.into());
        self
    }

    /// Sets an explicit title.
    #[must_use]
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Sets the model configuration.
    #[must_use]
    pub fn with_model_config(mut self, id: ModelConfigId) -> Self {
        self.model_config_id = Some(id);
        self
    }

    /// Makes the chat a sub-agent of `parent`.
    #[must_use]
    pub fn with_parent(mut self, parent: ChatId) -> Self {
        self.parent_chat_id = Some(parent);
        self
    }

    /// Sets the workspace.
    #[must_use]
    pub fn with_workspace(
        mut self,
        workspace: WorkspaceId,
        agent: Option<WorkspaceAgentId>,
    ) -> Self {
        self.workspace_id = Some(workspace);
        self.workspace_agent_id = agent;
        self
    }
}

/// Input of [`ChatStore::update_chat`](crate::store::ChatStore::update_chat): each `Some`
/// field is written.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ChatUpdate {
    /// A new title (trimmed, cut at `Limits::max_title_chars`; blank is refused).
    pub title: Option<String>,
    /// Write `title` only if the current title equals this (compare-and-set; used by the
    /// background title generator so it never overwrites a person's title).
    pub expected_title: Option<String>,
    /// A new workspace (`Some(None)` clears it).
    pub workspace_id: Option<Option<WorkspaceId>>,
    /// A new workspace agent (`Some(None)` clears it).
    pub workspace_agent_id: Option<Option<WorkspaceAgentId>>,
    /// New labels, replacing all of them (an empty map clears them).
    pub labels: Option<std::collections::BTreeMap<String, String>>,
}

impl ChatUpdate {
    /// Sets the title.
    #[must_use]
    pub fn title(title: impl Into<String>) -> Self {
        ChatUpdate { title: Some(title.into()), ..ChatUpdate::default() }
    }

    /// Sets the title only if it is still `expected`.
    #[must_use]
    pub fn title_if(expected: impl Into<String>, title: impl Into<String>) -> Self {
        ChatUpdate {
            title: Some(title.into()),
            expected_title: Some(expected.into()),
            ..ChatUpdate::default()
        }
    }

    /// Replaces the labels.
    #[must_use]
    pub fn labels(labels: std::collections::BTreeMap<String, String>) -> Self {
        ChatUpdate { labels: Some(labels), ..ChatUpdate::default() }
    }

    /// Sets the workspace.
    #[must_use]
    pub fn workspace(workspace: Option<WorkspaceId>, agent: Option<WorkspaceAgentId>) -> Self {
        ChatUpdate {
            workspace_id: Some(workspace),
            workspace_agent_id: Some(agent),
            ..ChatUpdate::default()
        }
    }
}

/// The position after which a chat list page starts: keyset pagination on
/// `(created_at DESC, id DESC)`, which never shows a chat twice or skips one while paging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatCursor {
    /// `created_at` of the last chat of the previous page.
    pub created_at: DateTime<Utc>,
    /// `id` of the last chat of the previous page.
    pub id: ChatId,
}

impl ChatCursor {
    /// The cursor just after `chat`.
    #[must_use]
    pub fn after(chat: &Chat) -> Self {
        ChatCursor { created_at: chat.created_at, id: chat.id }
    }
}

/// Input of [`ChatStore::list_chats`](crate::store::ChatStore::list_chats).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ChatFilter {
    /// Only this owner's chats (`None`: everyone's, for system actors).
    pub owner_id: Option<UserId>,
    /// Only these statuses (empty: all).
    pub statuses: Vec<ChatStatus>,
    /// Only archived (`Some(true)`) or unarchived (`Some(false)`) chats.
    pub archived: Option<bool>,
    /// Only root chats (no sub-agents).
    pub roots_only: bool,
    /// Page size (clamped to 1..=1000).
    pub limit: usize,
    /// Start after this position.
    pub after: Option<ChatCursor>,
    /// Only chats carrying every one of these labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Only chats whose title or a user-visible message matches this text (every word;
    /// PostgreSQL: full-text search, `simple` configuration; memory: case-insensitive
    /// words). At most `MAX_QUERY_CHARS`.
    pub query: Option<String>,
}

impl ChatFilter {
    /// The maximum page size.
    pub const MAX_LIMIT: usize = 1000;

    /// Unarchived chats of `owner`, newest first, 50 a page.
    #[must_use]
    pub fn owner(owner_id: UserId) -> Self {
        ChatFilter {
            owner_id: Some(owner_id),
            statuses: Vec::new(),
            archived: Some(false),
            roots_only: false,
            limit: 50,
            after: None,
            labels: std::collections::BTreeMap::new(),
            query: None,
        }
    }

    /// Only chats carrying `key: value` (with others, all must match).
    #[must_use]
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Only chats matching `query` (see [`ChatFilter::query`]); a blank query matches all.
    #[must_use]
    pub fn with_query(mut self, query: impl Into<String>) -> Self {
        let query = query.into();
        self.query = (!query.trim().is_empty()).then_some(query);
        self
    }

    /// The words of the query, lowercased (what the memory store matches).
    #[must_use]
    pub fn query_words(&self) -> Vec<String> {
        self.query
            .as_deref()
            .map_or_else(Vec::new, |q| q.split_whitespace().map(str::to_lowercase).collect())
    }

    /// Every chat of every owner (system use).
    #[must_use]
    pub fn everyone() -> Self {
        ChatFilter {
            owner_id: None,
            archived: None,
            ..ChatFilter::owner(UserId(uuid::Uuid::nil()))
        }
    }

    /// The clamped page size.
    #[must_use]
    pub fn page_size(&self) -> usize {
        self.limit.clamp(1, Self::MAX_LIMIT)
    }

    /// Whether `chat` passes the filter (cursor excluded).
    #[must_use]
    pub fn matches(&self, chat: &Chat) -> bool {
        self.owner_id.is_none_or(|owner| chat.owner_id == owner)
            && (self.statuses.is_empty() || self.statuses.contains(&chat.status))
            && self.archived.is_none_or(|archived| chat.archived == archived)
            && (!self.roots_only || chat.is_root())
            && self.labels.iter().all(|(k, v)| chat.labels.get(k) == Some(v))
    }
}

/// One page of a keyset-paginated list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items, in list order.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<ChatCursor>,
}
