//! The store's state and the helpers every operation shares.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use chatd_core::status::{ChatStatus, Decision, Trigger, TurnEnding};
use chatd_core::store::CallRecords;
use chatd_core::store::{Entity, FieldClocks, Lease, PartRecord, Result, StoreError};
use chatd_core::{ChangeHint, ChangeKind};
use chatd_core::{
    Chat, ChatId, Deletion, DiffStatus, Message, MessageId, ModelConfig, ModelConfigId, NewMessage,
    ProviderConfig, ProviderKind, QueuedMessage, Role, UserId,
};
use chrono::{DateTime, SubsecRound, Utc};

/// The store's clock: UTC at microsecond precision, like PostgreSQL's `timestamptz`.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// One chat and everything that hangs off it.
#[derive(Debug)]
pub(crate) struct ChatEntry {
    pub(crate) chat: Chat,
    /// Sorted by id.
    pub(crate) messages: Vec<Message>,
    /// What edits took out of the history (BEHAVIOUR §18), each with its `deleted`, in the
    /// order they left it.
    pub(crate) deleted: Vec<Message>,
    /// Indices into `messages` of uncompressed `system` rows (kept in prompts forever).
    pub(crate) system_rows: Vec<usize>,
    pub(crate) queue: VecDeque<QueuedMessage>,
    pub(crate) parts: Vec<PartRecord>,
    pub(crate) diff: Option<DiffStatus>,
    pub(crate) children: Vec<ChatId>,
    /// When each kind of list-visible change last happened (the store's change clock).
    pub(crate) clocks: FieldClocks,
}

impl ChatEntry {
    pub(crate) fn new(chat: Chat) -> Self {
        ChatEntry {
            chat,
            messages: Vec::new(),
            deleted: Vec::new(),
            system_rows: Vec::new(),
            queue: VecDeque::new(),
            parts: Vec::new(),
            diff: None,
            children: Vec::new(),
            clocks: FieldClocks::default(),
        }
    }

    /// Whether the last model-visible, non-system message is a user message.
    pub(crate) fn has_unanswered_message(&self) -> bool {
        self.messages
            .iter()
            .rev()
            .find(|m| m.visibility.is_model_visible() && m.role != Role::System)
            .is_some_and(|m| m.role == Role::User)
    }

    /// Keeps only the messages up to and including index `keep_through`; the rest are kept
    /// as deleted with `deletion`.
    pub(crate) fn truncate_after(&mut self, keep_through: usize, deletion: Deletion) -> usize {
        let cut = self.messages.split_off((keep_through + 1).min(self.messages.len()));
        let removed = cut.len();
        self.deleted.extend(cut.into_iter().map(|m| Message { deleted: Some(deletion), ..m }));
        self.system_rows.retain(|&index| index <= keep_through);
        removed
    }
}

/// Secondary indexes: what PostgreSQL's indexes do for the SQL store.
#[derive(Debug, Default)]
pub(crate) struct Indexes {
    /// Pending chats by `(updated_at, id)`: the acquisition order.
    pub(crate) pending: BTreeSet<(DateTime<Utc>, ChatId)>,
    pub(crate) running: HashSet<ChatId>,
    /// All chats by `(created_at, id)`: the list order.
    pub(crate) by_created: BTreeSet<(DateTime<Utc>, ChatId)>,
    pub(crate) by_owner: HashMap<UserId, BTreeSet<(DateTime<Utc>, ChatId)>>,
}

impl Indexes {
    pub(crate) fn add_chat(&mut self, chat: &Chat) {
        let key = (chat.created_at, chat.id);
        self.by_created.insert(key);
        self.by_owner.entry(chat.owner_id).or_default().insert(key);
        self.track_status(chat);
    }

    pub(crate) fn remove_chat(&mut self, chat: &Chat) {
        let key = (chat.created_at, chat.id);
        self.by_created.remove(&key);
        if let Some(owned) = self.by_owner.get_mut(&chat.owner_id) {
            owned.remove(&key);
        }
        self.untrack_status(chat);
    }

    fn track_status(&mut self, chat: &Chat) {
        match chat.status {
            ChatStatus::Pending => {
                self.pending.insert((chat.updated_at, chat.id));
            }
            ChatStatus::Running => {
                self.running.insert(chat.id);
            }
            _ => {}
        }
    }

    fn untrack_status(&mut self, chat: &Chat) {
        self.pending.remove(&(chat.updated_at, chat.id));
        self.running.remove(&chat.id);
    }
}

/// Monotonic sequences (the BIGSERIAL columns).
#[derive(Debug, Default)]
pub(crate) struct Sequences {
    message: i64,
    queued: i64,
}

impl Sequences {
    pub(crate) fn next_message(&mut self) -> MessageId {
        self.message += 1;
        MessageId(self.message)
    }

    pub(crate) fn next_queued(&mut self) -> chatd_core::QueuedMessageId {
        self.queued += 1;
        chatd_core::QueuedMessageId(self.queued)
    }
}

/// Everything the store holds.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) chats: HashMap<ChatId, ChatEntry>,
    pub(crate) idx: Indexes,
    pub(crate) seq: Sequences,
    pub(crate) providers: BTreeMap<ProviderKind, ProviderConfig>,
    pub(crate) model_configs: HashMap<ModelConfigId, ModelConfig>,
    /// Input limits (`InMemoryChatStore::with_limits`).
    pub(crate) limits: chatd_core::store::Limits,
    /// Encryption key digests (`dbcrypt_keys`): `true` when revoked.
    pub(crate) key_digests: BTreeMap<String, bool>,
    /// Hints of the operation in progress, published when it succeeds.
    pub(crate) outbox: Vec<ChangeHint>,
    /// The change clock of chat-list changes (`list_chat_changes`).
    pub(crate) clock: i64,
    /// Deleted chats, for list views resuming from before the deletion.
    pub(crate) tombstones: Vec<Tombstone>,
    /// The position (clock, chat) of the newest tombstone pruned: older list cursors are
    /// expired.
    pub(crate) pruned_through: Option<(i64, ChatId)>,
    /// The usage ledger, oldest first (BEHAVIOUR §17).
    pub(crate) usage: Vec<chatd_core::UsageRecord>,
    /// What model calls in flight hold, by chat (BEHAVIOUR §17).
    pub(crate) spend_holds: HashMap<ChatId, chatd_core::store::NewSpendHold>,
    /// Stored files by id (BEHAVIOUR §19).
    pub(crate) files: HashMap<chatd_core::FileId, chatd_core::files::StoredFile>,
}

/// A deleted chat, as `list_chat_changes` reports it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tombstone {
    pub(crate) owner: UserId,
    pub(crate) chat: ChatId,
    pub(crate) created: i64,
    pub(crate) clock: i64,
    /// When the chat was deleted.
    pub(crate) at: DateTime<Utc>,
}

impl State {
    /// Advances the change clock.
    pub(crate) fn tick(&mut self) -> i64 {
        self.clock += 1;
        self.clock
    }

    /// Records a list-visible change of `id`'s field `field`.
    pub(crate) fn touch(&mut self, id: ChatId, field: fn(&mut FieldClocks) -> &mut i64) {
        let clock = self.tick();
        if let Some(entry) = self.chats.get_mut(&id) {
            *field(&mut entry.clocks) = clock;
        }
    }

    pub(crate) fn entry(&self, id: ChatId) -> Result<&ChatEntry> {
        self.chats.get(&id).ok_or_else(|| StoreError::not_found(Entity::Chat, id))
    }

    pub(crate) fn entry_mut(&mut self, id: ChatId) -> Result<&mut ChatEntry> {
        self.chats.get_mut(&id).ok_or_else(|| StoreError::not_found(Entity::Chat, id))
    }

    /// The decision for `trigger` on the chat's current status.
    pub(crate) fn decide(&self, id: ChatId, trigger: Trigger) -> Result<Decision> {
        Ok(self.entry(id)?.chat.status.decide(trigger)?)
    }

    /// Checks a lease: the chat is running under this worker and epoch.
    pub(crate) fn check_lease(&self, lease: &Lease) -> Result<()> {
        match self.chats.get(&lease.chat_id) {
            Some(entry) if Lease::of(&entry.chat) == Some(*lease) => Ok(()),
            _ => Err(StoreError::LeaseLost { chat_id: lease.chat_id }),
        }
    }

    /// A model config that exists and is not deleted.
    pub(crate) fn live_model_config(&self, id: ModelConfigId) -> Result<&ModelConfig> {
        self.model_configs
            .get(&id)
            .filter(|config| !config.deleted)
            .ok_or_else(|| StoreError::not_found(Entity::ModelConfig, id))
    }

    /// A model config that exists, deleted or not (a turn may outlive its config).
    pub(crate) fn known_model_config(&self, id: ModelConfigId) -> Result<()> {
        if self.model_configs.contains_key(&id) {
            Ok(())
        } else {
            Err(StoreError::not_found(Entity::ModelConfig, id))
        }
    }

    /// Writes a status with the invariants of the state machine: `updated_at = now`,
    /// ownership only while running, `last_error` only while in error, a stop request only
    /// while running.
    pub(crate) fn set_status(
        &mut self,
        id: ChatId,
        next: ChatStatus,
        last_error: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let State { chats, idx, .. } = self;
        let entry = chats.get_mut(&id).ok_or_else(|| StoreError::not_found(Entity::Chat, id))?;
        let was = entry.chat.status;
        idx.untrack_status(&entry.chat);
        let chat = &mut entry.chat;
        if next == ChatStatus::Running {
            // The turn that now becomes the previous one (acquiring bumps the epoch next).
            chat.previous_turn = chat.last_turn.take();
            chat.previous_turn_started_after = chat.turn_started_after;
        } else if was == ChatStatus::Running && chat.last_turn.is_none() {
            // Ended without its worker's word (an edit): a person stopped it.
            chat.last_turn = Some(TurnEnding::Interrupted);
        }
        chat.status = next;
        chat.updated_at = at;
        if next != ChatStatus::Running {
            chat.worker_id = None;
            chat.started_at = None;
            chat.heartbeat_at = None;
            chat.stop_request = None;
            // The part log holds the step in flight; without a turn there is none.
            entry.parts.clear();
        }
        chat.last_error = if next == ChatStatus::Error { last_error } else { None };
        idx.track_status(chat);
        self.outbox.push(ChangeHint::new(id, ChangeKind::Chat));
        if next != was {
            self.touch(id, |c| &mut c.status);
        }
        if next == ChatStatus::Pending && was != ChatStatus::Pending {
            self.outbox.push(ChangeHint::new(id, ChangeKind::Pending));
        }
        Ok(())
    }

    /// Appends a message to a chat's history (the chat must exist).
    pub(crate) fn insert_message(
        &mut self,
        id: ChatId,
        new: NewMessage,
        at: DateTime<Utc>,
        compressed: bool,
    ) -> Result<Message> {
        let State { chats, seq, .. } = self;
        let entry = chats.get_mut(&id).ok_or_else(|| StoreError::not_found(Entity::Chat, id))?;
        let message = Message {
            id: seq.next_message(),
            chat_id: id,
            model_config_id: new.model_config_id,
            created_at: at,
            role: new.role,
            content: new.content,
            visibility: new.visibility,
            usage: new.usage,
            context_limit: new.context_limit,
            compressed,
            client_id: new.client_id,
            deleted: None,
        };
        if let Some(config) = message.model_config_id {
            entry.chat.last_model_config_id = config;
        }
        if message.role == Role::System && !compressed {
            entry.system_rows.push(entry.messages.len());
        }
        entry.messages.push(message.clone());
        self.outbox.push(ChangeHint::new(id, ChangeKind::Messages).at(message.id));
        Ok(message)
    }

    /// Ends the chat's recorded step, if it has one (BEHAVIOUR §16): one tool row per call
    /// in call order — its result when answered, the in-doubt result when started, the
    /// interrupted result otherwise — and no records left.
    pub(crate) fn close_step(&mut self, id: ChatId, at: DateTime<Utc>) -> Result<()> {
        let entry = self.entry_mut(id)?;
        if entry.chat.tool_calls.is_empty() {
            return Ok(());
        }
        let calls = std::mem::take(&mut entry.chat.tool_calls);
        let rows = calls.closing_rows();
        for row in rows {
            self.insert_message(id, row, at, false)?;
        }
        self.hint(id, ChangeKind::Chat);
        Ok(())
    }

    /// Moves a queued message (the given one, else the head) into history as a user
    /// message, after closing a recorded step. Returns it, or `None` when the queue is
    /// empty.
    pub(crate) fn promote_from_queue(
        &mut self,
        id: ChatId,
        preferred: Option<chatd_core::QueuedMessageId>,
        at: DateTime<Utc>,
    ) -> Result<Option<Message>> {
        let entry = self.entry_mut(id)?;
        let position = preferred
            .and_then(|wanted| entry.queue.iter().position(|q| q.id == wanted))
            .or(if entry.queue.is_empty() { None } else { Some(0) });
        let Some(position) = position else { return Ok(None) };
        let Some(queued) = entry.queue.remove(position) else { return Ok(None) };
        self.outbox.push(ChangeHint::new(id, ChangeKind::Queue));
        self.close_step(id, at)?;
        let new = NewMessage::user(queued.content).with_client_id(queued.client_id);
        let message = self.insert_message(id, new, at, false)?;
        Ok(Some(message))
    }

    /// Records a hint for the operation in progress.
    pub(crate) fn hint(&mut self, chat: ChatId, kind: ChangeKind) {
        self.outbox.push(ChangeHint::new(chat, kind));
    }

    pub(crate) fn chat(&self, id: ChatId) -> Result<Chat> {
        Ok(self.entry(id)?.chat.clone())
    }
}
