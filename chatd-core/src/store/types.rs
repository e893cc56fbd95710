//! Inputs and outputs of the storage contract.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::chat::Chat;
use crate::ids::{ChatId, MessageId, ModelConfigId, WorkerId};
use crate::message::{Message, NewMessage, QueuedMessage};
use crate::part::Part;
use crate::status::StopKind;

/// Proof that a worker owns a running chat. Every worker-side write is conditional on the
/// chat still being `running` under this worker and epoch (fencing): a zombie worker whose
/// lease was recovered, revoked by an edit, or re-acquired, can write nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Lease {
    /// The chat the lease runs a turn of.
    pub chat_id: ChatId,
    /// The worker that holds it; only it may write the turn's steps.
    pub worker_id: WorkerId,
    /// The chat's `lease_epoch` at acquisition.
    pub epoch: i64,
}

impl Lease {
    /// The first episode number of the turn this lease holds (`epoch · 2^24`): later turns
    /// of the chat start above every episode of earlier ones, so a reader of the part log
    /// tells a new turn's parts from a replayed one's.
    #[must_use]
    pub fn episode_base(&self) -> i64 {
        self.epoch.saturating_mul(1 << 24)
    }

    /// The lease `chat` is under: `Some` while it is `running` with a worker.
    #[must_use]
    pub fn of(chat: &crate::chat::Chat) -> Option<Lease> {
        match (chat.status, chat.worker_id) {
            (crate::status::ChatStatus::Running, Some(worker_id)) => {
                Some(Lease { chat_id: chat.id, worker_id, epoch: chat.lease_epoch })
            }
            _ => None,
        }
    }
}

/// What [`heartbeat`](super::ChatStore::heartbeat) found for one lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeaseStatus {
    /// Still held; renewed.
    Held,
    /// Still held and renewed, but a person asked the turn to stop.
    StopRequested(StopKind),
    /// No longer held: the worker must stop the turn at once.
    Lost,
}

/// What to do when a message arrives while the chat is busy ([BEHAVIOUR §2](crate::behaviour#2-chat-status)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BusyBehavior {
    /// Queue it behind the running turn (default).
    #[default]
    Queue,
    /// Interrupt the running turn; the message is answered next.
    Interrupt,
}

impl BusyBehavior {
    /// The state-machine trigger a send with this behaviour applies.
    #[must_use]
    pub fn trigger(self) -> crate::status::Trigger {
        match self {
            BusyBehavior::Queue => crate::status::Trigger::SendQueue,
            BusyBehavior::Interrupt => crate::status::Trigger::SendInterrupt,
        }
    }
}

/// Input of [`send_message`](super::ChatStore::send_message).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SendMessage {
    /// The user's message.
    pub content: Vec<Part>,
    /// What to do if the chat is busy.
    pub busy: BusyBehavior,
    /// Answer with this model configuration (also becomes the chat's last one).
    pub model_config_id: Option<ModelConfigId>,
    /// The id the client knows the message by, kept on it through the queue, promotion and
    /// edits ([BEHAVIOUR §1](crate::behaviour#1-data-model) "Client message ids"): 1 to 128 bytes, no control characters.
    pub client_id: Option<String>,
}

impl SendMessage {
    /// The longest client message id, in bytes ([BEHAVIOUR §1](crate::behaviour#1-data-model)
    /// "Client message ids").
    pub const MAX_CLIENT_ID_BYTES: usize = crate::store::validate::MAX_CLIENT_ID_BYTES;

    /// A message with the default busy behaviour.
    #[must_use]
    pub fn new(content: Vec<Part>) -> Self {
        SendMessage { content, busy: BusyBehavior::Queue, model_config_id: None, client_id: None }
    }

    /// A one-part text message.
    #[must_use]
    pub fn text(text: impl Into<String>) -> Self {
        Self::new(vec![Part::text(text)])
    }

    /// Sets the busy behaviour.
    #[must_use]
    pub fn with_busy(mut self, busy: BusyBehavior) -> Self {
        self.busy = busy;
        self
    }

    /// Sets the model configuration.
    #[must_use]
    pub fn with_model_config(mut self, id: ModelConfigId) -> Self {
        self.model_config_id = Some(id);
        self
    }

    /// Sets the client's id for the message.
    #[must_use]
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// The message as it enters the history.
    #[must_use]
    pub fn into_new_message(self) -> crate::NewMessage {
        let mut message = crate::NewMessage::user(self.content).with_client_id(self.client_id);
        message.model_config_id = self.model_config_id;
        message
    }
}

/// Where a sent or promoted message went.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Delivery {
    /// Into the history.
    Inserted(Message),
    /// Into the queue.
    Queued(QueuedMessage),
    /// Nowhere yet: the running turn was asked to stop and the message is promoted when it
    /// has (explicit promotion of a queued message on a running chat).
    AfterStop,
}

/// Output of [`send_message`](super::ChatStore::send_message) and
/// [`promote_queued`](super::ChatStore::promote_queued).
#[derive(Debug, Clone, PartialEq)]
pub struct SendOutcome {
    /// The chat after the operation.
    pub chat: Chat,
    /// Where the message went.
    pub delivery: Delivery,
}

/// Output of [`edit_message`](super::ChatStore::edit_message).
#[derive(Debug, Clone, PartialEq)]
pub struct EditOutcome {
    /// The chat after the edit (`pending`).
    pub chat: Chat,
    /// The edited message (same id, new content).
    pub message: Message,
    /// How many later messages left the history (kept as deleted, [BEHAVIOUR §18](crate::behaviour#18-history-you-keep)).
    pub deleted_messages: usize,
    /// How many queued messages were deleted.
    pub deleted_queued: usize,
}

/// One persisted step of a turn ([BEHAVIOUR §3](crate::behaviour#3-a-turn) item 6).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Step {
    /// The assistant row, if the step produced any parts.
    pub assistant: Option<NewMessage>,
    /// One `tool` row per local tool result, in call order.
    pub tool_results: Vec<NewMessage>,
    /// The chat's tool-call records after this write ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes)): `Some` replaces the
    /// stored ones (`Some(vec![])` clears them once a recorded step's tool rows are written);
    /// `None`, a step that was never recorded, leaves them as they are.
    pub calls: Option<Vec<crate::tool_call::ToolCall>>,
}

impl Step {
    /// A whole step, written at once: an assistant row and its tool results.
    #[must_use]
    pub fn new(assistant: Option<NewMessage>, tool_results: Vec<NewMessage>) -> Self {
        Step { assistant, tool_results, calls: None }
    }

    /// The first write of a recorded step: its assistant row and one record per local call.
    #[must_use]
    pub fn recorded(assistant: Option<NewMessage>, calls: Vec<crate::tool_call::ToolCall>) -> Self {
        Step { assistant, tool_results: Vec::new(), calls: Some(calls) }
    }

    /// A write of the records alone (calls marked started, results kept).
    #[must_use]
    pub fn records(calls: Vec<crate::tool_call::ToolCall>) -> Self {
        Step { assistant: None, tool_results: Vec::new(), calls: Some(calls) }
    }

    /// The last write of a recorded step: its tool rows, in call order; the records go.
    #[must_use]
    pub fn closing(tool_results: Vec<NewMessage>) -> Self {
        Step { assistant: None, tool_results, calls: Some(Vec::new()) }
    }
}

/// Who is allowed to write a compaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fence {
    /// A running turn, fenced by its lease.
    Lease(Lease),
    /// A manual compaction of an idle chat (refused while the chat is `pending`/`running`).
    Idle(ChatId),
}

impl Fence {
    /// The chat the write is for.
    #[must_use]
    pub fn chat_id(&self) -> ChatId {
        match self {
            Fence::Lease(lease) => lease.chat_id,
            Fence::Idle(chat_id) => *chat_id,
        }
    }
}

/// The three rows of a compaction ([BEHAVIOUR §5](crate::behaviour#5-compaction)). The store writes them with the fixed roles and
/// visibilities (`system`/`model` boundary, `assistant`/`user` call, `tool`/`user` result),
/// all `compressed = true`, atomically.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Compaction {
    /// The boundary: a continuation preamble plus the summary.
    pub boundary: Vec<Part>,
    /// The `chat_summarized` tool call shown to people.
    pub call: Part,
    /// Its result `{summary, source, threshold_percent, ...}`.
    pub result: Part,
    /// The model configuration that wrote the summary.
    pub model_config_id: Option<ModelConfigId>,
}

impl Compaction {
    /// A compaction with its boundary, the `chat_summarized` call and its result.
    #[must_use]
    pub fn new(boundary: Vec<Part>, call: Part, result: Part) -> Self {
        Compaction { boundary, call, result, model_config_id: None }
    }

    /// The three rows to insert, with their fixed roles and visibilities: the boundary
    /// (`system`, model-only), the call and the result (`assistant` and `tool`, people-only).
    /// Stores write them with `compressed = true`.
    #[must_use]
    pub fn into_rows(self) -> [NewMessage; 3] {
        let config = self.model_config_id;
        let with_config = |message: NewMessage| match config {
            Some(id) => message.with_model_config(id),
            None => message,
        };
        [
            with_config(
                NewMessage::new(crate::message::Role::System, self.boundary)
                    .with_visibility(crate::message::Visibility::Model),
            ),
            with_config(
                NewMessage::assistant(vec![self.call])
                    .with_visibility(crate::message::Visibility::User),
            ),
            with_config(
                NewMessage::tool(self.result).with_visibility(crate::message::Visibility::User),
            ),
        ]
    }

    /// Records which model configuration wrote the summary.
    #[must_use]
    pub fn with_model_config(mut self, id: ModelConfigId) -> Self {
        self.model_config_id = Some(id);
        self
    }
}

/// Which messages a listing returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum VisibilityFilter {
    /// Everything.
    #[default]
    All,
    /// What people see (`user|both`).
    User,
    /// What the model sees (`model|both`).
    Model,
}

impl VisibilityFilter {
    /// Whether a message with `visibility` passes.
    #[must_use]
    pub fn admits(self, visibility: crate::message::Visibility) -> bool {
        match self {
            VisibilityFilter::All => true,
            VisibilityFilter::User => visibility.is_user_visible(),
            VisibilityFilter::Model => visibility.is_model_visible(),
        }
    }
}

/// Input of [`list_messages`](super::ChatStore::list_messages).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageQuery {
    /// Only messages with a greater id.
    pub after: Option<MessageId>,
    /// Which visibilities.
    pub visibility: VisibilityFilter,
    /// At most this many (oldest first).
    pub limit: Option<usize>,
    /// Also the messages edits took out of the history, each with its
    /// [`Deletion`](crate::message::Deletion) ([BEHAVIOUR §18](crate::behaviour#18-history-you-keep)), in id order, a replaced
    /// content before the current one of the same id.
    pub include_deleted: bool,
}

impl MessageQuery {
    /// Everything.
    #[must_use]
    pub fn all() -> Self {
        MessageQuery::default()
    }

    /// Only messages after `after`.
    #[must_use]
    pub fn after(mut self, after: MessageId) -> Self {
        self.after = Some(after);
        self
    }

    /// Only messages of this visibility.
    #[must_use]
    pub fn with_visibility(mut self, visibility: VisibilityFilter) -> Self {
        self.visibility = visibility;
        self
    }

    /// At most `limit` messages.
    #[must_use]
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Also the messages edits took out of the history (see
    /// [`include_deleted`](Self::include_deleted)).
    #[must_use]
    pub fn with_deleted(mut self) -> Self {
        self.include_deleted = true;
        self
    }

    /// What people see, after `after`.
    #[must_use]
    pub fn user_visible_after(after: Option<MessageId>) -> Self {
        MessageQuery { after, visibility: VisibilityFilter::User, ..MessageQuery::default() }
    }
}

/// The position of a part in the durable part log: totally ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PartPosition {
    /// The episode (one model call attempt); increases within a chat.
    pub episode: i64,
    /// The part's sequence number within its episode.
    pub seq: i64,
}

/// A part to append to the durable log of the step in flight.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPart {
    /// Where it goes; must be after every part already in the log for the chat.
    pub position: PartPosition,
    /// The serialised stream event.
    pub payload: Value,
}

/// A part read back from the durable log.
#[derive(Debug, Clone, PartialEq)]
pub struct PartRecord {
    /// The chat whose part log holds it.
    pub chat_id: ChatId,
    /// Its position in the part log (episode, then sequence).
    pub position: PartPosition,
    /// The serialised stream event.
    pub payload: Value,
    /// When it was appended.
    pub created_at: DateTime<Utc>,
}

/// How many of the oldest pending chats an acquisition looks at to interleave owners: its
/// cost stays flat however long the backlog (an owner whose chats all lie beyond it waits
/// until older ones are taken).
pub(crate) const FAIR_WINDOW: usize = 512;

/// How many of the oldest pending chats an acquisition of `limit` interleaves: 16 per chat
/// wanted, at least 64, at most 512 (a claim's cost grows with it).
#[must_use]
pub fn fair_window(limit: usize) -> usize {
    limit.saturating_mul(16).clamp(64, FAIR_WINDOW)
}

/// Cluster-wide caps on running turns ([BEHAVIOUR §17](crate::behaviour#17-usage-cost-limits-and-fairness) "Fairness"); each optional. Every
/// worker of a cluster should use the same.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunningCaps {
    /// The most turns one owner has running at once.
    pub per_owner: Option<usize>,
    /// The most turns running at once in all.
    pub total: Option<usize>,
}

impl RunningCaps {
    /// No caps.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// At most `turns` running per owner.
    #[must_use]
    pub fn per_owner(mut self, turns: usize) -> Self {
        self.per_owner = Some(turns);
        self
    }

    /// At most `turns` running in all.
    #[must_use]
    pub fn total(mut self, turns: usize) -> Self {
        self.total = Some(turns);
        self
    }

    /// Whether any cap is set.
    #[must_use]
    pub fn any(&self) -> bool {
        self.per_owner.is_some() || self.total.is_some()
    }
}
