//! The storage contract.
//!
//! [`ChatStore`] is intent-level: each method is one user or worker intent (send a
//! message, commit a step, release a chat) and is atomic — one transaction in PostgreSQL,
//! one critical section in memory. Status changes are decided by
//! [`crate::status::decide`] inside that atomic operation, so every store implements the
//! same state machine.
//!
//! # Contract
//!
//! - **Atomicity.** A method either applies all of its effects or returns an error and
//!   changes nothing.
//! - **Fencing.** Worker-side writes ([`heartbeat`](ChatStore::heartbeat),
//!   [`commit_step`](ChatStore::commit_step), [`append_parts`](ChatStore::append_parts),
//!   [`write_compaction`](ChatStore::write_compaction) with a lease,
//!   [`release`](ChatStore::release)) succeed only while the chat is `running` under the
//!   lease's worker and epoch; otherwise they return [`StoreError::LeaseLost`].
//! - **Ordering.** Message ids increase in insertion order across the whole store; a
//!   chat's messages are always listed by id. The queue is FIFO by id.
//! - **Time.** Timestamps come from the store's clock, at microsecond precision.
//! - **No authorization.** The store trusts its caller; owner checks live in the service.

mod error;
mod types;

use std::time::Duration;

use async_trait::async_trait;

pub use error::{Entity, MAX_QUEUED_MESSAGES, Result, StoreError};
pub use types::{
    BusyBehavior, Compaction, Delivery, EditOutcome, Fence, Lease, LeaseStatus, MessageQuery,
    NewPart, PartPosition, PartRecord, SendMessage, SendOutcome, Step, VisibilityFilter,
};

use crate::chat::{Chat, ChatFilter, ChatUpdate, NewChat, Page};
use crate::diff_status::{DiffReference, DiffRefresh, DiffStatus};
use crate::ids::{ChatId, MessageId, ModelConfigId, QueuedMessageId, WorkerId};
use crate::message::{Message, QueuedMessage};
use crate::model_config::{ModelConfig, ModelConfigUpdate, NewModelConfig};
use crate::part::Part;
use crate::provider_config::{NewProvider, ProviderConfig, ProviderKind, ProviderUpdate};
use crate::status::TurnOutcome;

/// Durable storage for chats, their messages, queues, configuration and diff statuses.
/// Object-safe: use it as `Arc<dyn ChatStore>`.
#[async_trait]
pub trait ChatStore: Send + Sync + 'static {
    // ----- chats -------------------------------------------------------------------

    /// Creates a chat, its optional system prompt (a `system` row visible to the model) and
    /// its optional first user message, atomically. With a message the chat is `pending`,
    /// without one `waiting`. The title is the given one, else the automatic title of the
    /// first message, else `New Chat`. A child's `root_chat_id` is its parent's root.
    ///
    /// # Errors
    /// `Validation` for empty content or title; `NotFound` for an unknown parent or model
    /// config; `Validation` (`no default chat model config is available`) when no config is
    /// named and there is no default.
    async fn create_chat(&self, new: NewChat) -> Result<Chat>;

    /// Reads a chat.
    ///
    /// # Errors
    /// `NotFound`.
    async fn get_chat(&self, id: ChatId) -> Result<Chat>;

    /// Lists chats, newest first (`created_at DESC, id DESC`), one keyset page at a time.
    ///
    /// # Errors
    /// `Backend` only.
    async fn list_chats(&self, filter: ChatFilter) -> Result<Page<Chat>>;

    /// Changes a chat's title or workspace. A title with `expected_title` is written only if
    /// the current title matches (otherwise the chat is returned unchanged).
    ///
    /// # Errors
    /// `NotFound`; `Validation` for an empty title.
    async fn update_chat(&self, id: ChatId, update: ChatUpdate) -> Result<Chat>;

    /// Archives or unarchives a chat; for a root chat, its whole tree. Returns the ids of the
    /// chats changed.
    ///
    /// # Errors
    /// `NotFound`.
    async fn set_archived(&self, id: ChatId, archived: bool) -> Result<Vec<ChatId>>;

    /// Deletes a chat with its messages, queue, parts and diff status. Its children are
    /// kept and lose their parent and root references (the seed's `ON DELETE SET NULL`).
    ///
    /// # Errors
    /// `NotFound`.
    async fn delete_chat(&self, id: ChatId) -> Result<()>;

    /// The direct children of a chat, oldest first.
    ///
    /// # Errors
    /// `NotFound` for an unknown chat.
    async fn list_children(&self, id: ChatId) -> Result<Vec<Chat>>;

    // ----- messages ----------------------------------------------------------------

    /// Lists a chat's messages by id.
    ///
    /// # Errors
    /// `NotFound` for an unknown chat.
    async fn list_messages(&self, chat: ChatId, query: MessageQuery) -> Result<Vec<Message>>;

    /// The prompt history (SPEC §5): without a compaction, every uncompressed model-visible
    /// message; after one, every uncompressed `system` row, the latest boundary, and every
    /// uncompressed model-visible row after it. Its cost does not depend on how many
    /// messages precede the latest boundary.
    ///
    /// # Errors
    /// `NotFound` for an unknown chat.
    async fn prompt_messages(&self, chat: ChatId) -> Result<Vec<Message>>;

    /// Writes the three rows of a compaction atomically and returns them.
    ///
    /// # Errors
    /// `LeaseLost` for a stale lease; `InvalidTransition` for an idle write on a busy chat;
    /// `Validation` for a malformed compaction; `NotFound`.
    async fn write_compaction(&self, fence: Fence, compaction: Compaction) -> Result<Vec<Message>>;

    // ----- user intents ------------------------------------------------------------

    /// Sends a user message: inserted (and the chat made `pending`) or queued, as the state
    /// machine decides for the chat's status and the busy behaviour.
    ///
    /// # Errors
    /// `Validation` for empty content; `QueueFull` when the queue already holds
    /// [`MAX_QUEUED_MESSAGES`]; `NotFound`.
    async fn send_message(&self, chat: ChatId, send: SendMessage) -> Result<SendOutcome>;

    /// Replaces a user message's content (same id), deletes every later message and the
    /// whole queue, and makes the chat `pending`, revoking a running worker's lease.
    ///
    /// # Errors
    /// `NotFound` (`Chat message not found.`) for a message of another chat or an unknown
    /// one; `Validation` (`Only user messages can be edited.`); `Validation` for empty
    /// content.
    async fn edit_message(
        &self,
        chat: ChatId,
        message: MessageId,
        content: Vec<Part>,
    ) -> Result<EditOutcome>;

    /// Asks the running turn to stop (it persists its partial output and releases the chat
    /// to `waiting`). A no-op on a chat that is not running.
    ///
    /// # Errors
    /// `NotFound`.
    async fn interrupt(&self, chat: ChatId) -> Result<Chat>;

    /// Pauses a chat (a running one after its turn stops).
    ///
    /// # Errors
    /// `InvalidTransition` for a completed chat; `NotFound`.
    async fn pause(&self, chat: ChatId) -> Result<Chat>;

    /// Resumes a paused chat: `pending` when a message is unanswered or queued (the queue
    /// head is promoted), else `waiting`.
    ///
    /// # Errors
    /// `InvalidTransition` when the chat is not paused; `NotFound`.
    async fn resume(&self, chat: ChatId) -> Result<Chat>;

    /// Marks a chat as done.
    ///
    /// # Errors
    /// `InvalidTransition` while work is pending or running; `NotFound`.
    async fn complete(&self, chat: ChatId) -> Result<Chat>;

    /// The chat's queue, FIFO.
    ///
    /// # Errors
    /// `NotFound`.
    async fn list_queued(&self, chat: ChatId) -> Result<Vec<QueuedMessage>>;

    /// Sends a queued message now: it leaves the queue and becomes a user message; on a
    /// running chat the turn is asked to stop and the message is promoted when it has.
    ///
    /// # Errors
    /// `NotFound` for the chat or the queued message.
    async fn promote_queued(&self, chat: ChatId, id: QueuedMessageId) -> Result<SendOutcome>;

    /// Deletes a queued message and returns the remaining queue.
    ///
    /// # Errors
    /// `NotFound` for the chat or the queued message.
    async fn delete_queued(&self, chat: ChatId, id: QueuedMessageId) -> Result<Vec<QueuedMessage>>;

    // ----- workers -----------------------------------------------------------------

    /// Claims up to `limit` `pending` chats, oldest `updated_at` first, for `worker`. No chat
    /// is ever returned to two callers for the same epoch.
    ///
    /// # Errors
    /// `Backend` only.
    async fn acquire(&self, worker: WorkerId, limit: usize) -> Result<Vec<Lease>>;

    /// Renews all of a worker's leases in one operation. The result is aligned with
    /// `leases`.
    ///
    /// # Errors
    /// `Backend` only (a lost lease is reported as [`LeaseStatus::Lost`]).
    async fn heartbeat(&self, worker: WorkerId, leases: &[Lease]) -> Result<Vec<LeaseStatus>>;

    /// Persists one step — the assistant row and its tool rows — atomically, and clears the
    /// chat's part log (the step is now in history).
    ///
    /// # Errors
    /// `LeaseLost`; `Validation` for wrong roles.
    async fn commit_step(&self, lease: &Lease, step: Step) -> Result<Vec<Message>>;

    /// Ends the turn: writes the status the state machine decides for `outcome` and the
    /// chat's stop request, promotes the queue head when it says so, and clears the part
    /// log.
    ///
    /// # Errors
    /// `LeaseLost`.
    async fn release(&self, lease: &Lease, outcome: TurnOutcome) -> Result<Chat>;

    /// Returns every `running` chat whose heartbeat is older than `stale_after` to
    /// `pending` (no `last_error`), and returns their ids.
    ///
    /// # Errors
    /// `Backend` only.
    async fn recover_stale(&self, stale_after: Duration) -> Result<Vec<ChatId>>;

    /// Appends parts of the step in flight to the durable part log.
    ///
    /// # Errors
    /// `LeaseLost`; `Conflict` when a position is not after the log's last one.
    async fn append_parts(&self, lease: &Lease, parts: Vec<NewPart>) -> Result<()>;

    /// Reads the part log of a chat after `after` (all of it with `None`).
    ///
    /// # Errors
    /// `NotFound` for an unknown chat.
    async fn read_parts(
        &self,
        chat: ChatId,
        after: Option<PartPosition>,
    ) -> Result<Vec<PartRecord>>;

    // ----- providers ---------------------------------------------------------------

    /// Configures a provider (one per kind).
    ///
    /// # Errors
    /// `Conflict` when the kind is configured already; `Validation` for a bad base URL.
    async fn create_provider(&self, new: NewProvider) -> Result<ProviderConfig>;

    /// Changes a provider.
    ///
    /// # Errors
    /// `NotFound`; `Validation` for a bad base URL.
    async fn update_provider(
        &self,
        kind: ProviderKind,
        update: ProviderUpdate,
    ) -> Result<ProviderConfig>;

    /// Reads a provider.
    ///
    /// # Errors
    /// `NotFound`.
    async fn get_provider(&self, kind: ProviderKind) -> Result<ProviderConfig>;

    /// Every configured provider, by kind.
    ///
    /// # Errors
    /// `Backend` only.
    async fn list_providers(&self) -> Result<Vec<ProviderConfig>>;

    /// Removes a provider and its model configs (the seed's `ON DELETE CASCADE`).
    ///
    /// # Errors
    /// `NotFound`; `Conflict` while a chat or message refers to one of its model configs.
    async fn delete_provider(&self, kind: ProviderKind) -> Result<()>;

    // ----- model configs -----------------------------------------------------------

    /// Creates a model config. The first one becomes the default; one created with
    /// `is_default` takes the default over.
    ///
    /// # Errors
    /// `Validation` (empty model, `context_limit <= 0`, threshold outside 0..=100, a
    /// provider that is not configured).
    async fn create_model_config(&self, new: NewModelConfig) -> Result<ModelConfig>;

    /// Changes a model config, keeping exactly one default.
    ///
    /// # Errors
    /// `NotFound` (also for a deleted config); `Validation` as for create.
    async fn update_model_config(
        &self,
        id: ModelConfigId,
        update: ModelConfigUpdate,
    ) -> Result<ModelConfig>;

    /// Soft-deletes a model config; if it was the default, the oldest remaining config
    /// becomes the default.
    ///
    /// # Errors
    /// `NotFound` (also when already deleted).
    async fn delete_model_config(&self, id: ModelConfigId) -> Result<()>;

    /// Reads a model config, deleted or not.
    ///
    /// # Errors
    /// `NotFound`.
    async fn get_model_config(&self, id: ModelConfigId) -> Result<ModelConfig>;

    /// Non-deleted model configs, oldest first (`include_disabled = false`: enabled only).
    ///
    /// # Errors
    /// `Backend` only.
    async fn list_model_configs(&self, include_disabled: bool) -> Result<Vec<ModelConfig>>;

    /// The default model config, if any config exists.
    ///
    /// # Errors
    /// `Backend` only.
    async fn default_model_config(&self) -> Result<Option<ModelConfig>>;

    // ----- change feed -------------------------------------------------------------

    /// The feed on which this store announces committed intents (see [`crate::feed`]). Every
    /// call returns the same feed. A subscriber sees every hint of intents that commit after
    /// it subscribed — and possibly hints of intents that committed just before, since
    /// hints may be delivered after the intent returned (they are idempotent).
    ///
    /// # Errors
    /// `Backend` when the feed cannot be started (PostgreSQL: the listener connection).
    async fn change_feed(&self) -> Result<std::sync::Arc<dyn crate::feed::ChangeFeed>>;

    // ----- diff statuses -----------------------------------------------------------

    /// A chat's diff status, if one was ever written.
    ///
    /// # Errors
    /// `NotFound` for an unknown chat.
    async fn get_diff_status(&self, chat: ChatId) -> Result<Option<DiffStatus>>;

    /// Upserts the git reference; empty fields keep the stored values; the row becomes
    /// stale now.
    ///
    /// # Errors
    /// `NotFound` for an unknown chat.
    async fn upsert_diff_reference(
        &self,
        chat: ChatId,
        reference: DiffReference,
    ) -> Result<DiffStatus>;

    /// Writes a refresh result (`refreshed_at = now`).
    ///
    /// # Errors
    /// `NotFound` for an unknown chat.
    async fn upsert_diff_refresh(&self, chat: ChatId, refresh: DiffRefresh) -> Result<DiffStatus>;

    /// Claims up to `limit` rows whose `stale_at` has passed, pushing their `stale_at`
    /// `hold_for` into the future so no other refresher claims them meanwhile.
    ///
    /// # Errors
    /// `Backend` only.
    async fn claim_stale_diff_statuses(
        &self,
        limit: usize,
        hold_for: Duration,
    ) -> Result<Vec<DiffStatus>>;
}
