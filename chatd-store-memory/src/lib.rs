//! # chatd-store-memory
//!
//! [`InMemoryChatStore`]: the reference implementation of
//! [`chatd_core::store::ChatStore`] and chatd's embedded default. It keeps
//! everything in one process; use `chatd-store-postgres` to share chats between processes.
//!
//! ## A turn, end to end
//!
//! The store, a scripted model (chatd-core's `testing` feature) that asks for a tool and
//! then answers, a tool with typed arguments, a worker, and the service that sends a message
//! and waits for the turn that answers it:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use chatd_core::provider::{ModelProvider, ProviderError};
//! use chatd_core::runtime::tools::{ToolContext, ToolError, ToolSet, Typed, TypedTool};
//! use chatd_core::runtime::turn::{ProviderSource, TurnRunner};
//! use chatd_core::runtime::worker::Worker;
//! use chatd_core::store::SendMessage;
//! use chatd_core::testing::{ScriptedCall, ScriptedProvider};
//! use chatd_core::{Actor, ChatStore, Chatd, ModelConfig, NewChat, NewModelConfig, NewProvider};
//! use chatd_core::{ProviderKind, UserId};
//! use chatd_store_memory::InMemoryChatStore;
//! use serde_json::{Value, json};
//!
//! /// Arguments of `greet`.
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct GreetArgs {
//!     /// Who to greet.
//!     name: String,
//! }
//!
//! struct Greet;
//!
//! #[async_trait::async_trait]
//! impl TypedTool for Greet {
//!     type Args = GreetArgs;
//!     fn name(&self) -> &str { "greet" }
//!     fn description(&self) -> &str { "Greet someone." }
//!     async fn call(&self, _ctx: &ToolContext, args: GreetArgs) -> Result<Value, ToolError> {
//!         Ok(json!({"greeting": format!("hello, {}", args.name)}))
//!     }
//! }
//!
//! /// Every model config gets the scripted model (an application uses
//! /// `chatd_providers::StoreProviderSource`).
//! struct Scripted(Arc<ScriptedProvider>);
//!
//! #[async_trait::async_trait]
//! impl ProviderSource for Scripted {
//!     async fn provider(&self, _: &ModelConfig) -> Result<Arc<dyn ModelProvider>, ProviderError> {
//!         Ok(Arc::clone(&self.0) as Arc<dyn ModelProvider>)
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let store: Arc<dyn ChatStore> = Arc::new(InMemoryChatStore::new());
//!     store.create_provider(NewProvider::new(ProviderKind::Anthropic)).await?;
//!     store
//!         .create_model_config(NewModelConfig::new(ProviderKind::Anthropic, "claude-x", 200_000))
//!         .await?;
//!     let model = Arc::new(ScriptedProvider::new(ProviderKind::Anthropic, vec![
//!         ScriptedCall::tool_calls(&[("c1", "greet", json!({"name": "Ada"}))], None),
//!         ScriptedCall::text("I greeted Ada.", None),
//!     ]));
//!     let tools = ToolSet::new().with(Arc::new(Typed(Greet)));
//!     let runner = TurnRunner::new(Arc::clone(&store), Arc::new(Scripted(model)), tools)
//!         .with_titles(false);
//!     let shutdown = tokio_util::sync::CancellationToken::new();
//!     let worker = tokio::spawn(Worker::new(Arc::clone(&store), runner).run(shutdown.clone()));
//!
//!     let chatd = Chatd::new(Arc::clone(&store));
//!     let me = Actor::user(UserId::new());
//!     let owner = me.user_id().ok_or("a user")?;
//!     let chat = chatd.create_chat(&me, NewChat::new(owner)).await?;
//!     let message = SendMessage::text("Greet Ada");
//!     let turn = chatd.send_and_wait(&me, chat.id, message, Duration::from_secs(10)).await?;
//!     let texts: Vec<String> = turn.messages.iter().map(|m| m.text()).collect();
//!     assert_eq!(texts.last().map(String::as_str), Some("I greeted Ada."));
//!     shutdown.cancel();
//!     worker.await?;
//!     Ok(())
//! }
//! ```
//!
//! ## Design
//!
//! All state sits behind one `std::sync::Mutex`. Every trait method takes the lock once,
//! runs to completion without awaiting, and releases it, so each intent is atomic and
//! linearisable exactly like a transaction in the SQL store. Each operation checks
//! everything that can fail before it mutates anything, so a failed call changes nothing.
//! Secondary indexes (pending chats by `updated_at`, chats by owner and creation time,
//! uncompressed system rows) keep acquisition, listing and prompt loading independent of
//! the store's size, mirroring the PostgreSQL indexes.
//!
//! Clones share state: hand a clone to each worker and to the service.
//!
//! ```
//! use chatd_core::{ChatStore, NewChat, NewModelConfig, NewProvider, ProviderKind, UserId};
//! use chatd_store_memory::InMemoryChatStore;
//!
//! # async fn demo() -> Result<(), chatd_core::StoreError> {
//! let store = InMemoryChatStore::new();
//! store.create_provider(NewProvider::new(ProviderKind::OpenAi)).await?;
//! store.create_model_config(NewModelConfig::new(ProviderKind::OpenAi, "gpt-5", 400_000)).await?;
//! let chat = store.create_chat(NewChat::new(UserId::new()).with_text("hello")).await?;
//! assert_eq!(chat.status, chatd_core::ChatStatus::Pending);
//! # Ok(()) }
//! # tokio_test_shim::block_on(demo()).unwrap();
//! # mod tokio_test_shim { pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
//! #   tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f) } }
//! ```

#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod chats;
mod config;
mod diff;
mod files;
mod intents;
mod messages;
mod retention;
mod state;
mod usage;
mod worker;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chatd_core::feed::{BroadcastFeed, ChangeFeed};
use chatd_core::store::{
    ChatChanges, ChatStore, Compaction, EditOutcome, Fence, Lease, LeaseStatus, ListCursor,
    MessageQuery, NewPart, PartPosition, PartRecord, Result, SendMessage, SendOutcome, Step,
};
use chatd_core::{
    Chat, ChatFilter, ChatId, ChatUpdate, DiffReference, DiffRefresh, DiffStatus, Message,
    MessageId, ModelConfig, ModelConfigId, ModelConfigUpdate, NewChat, NewModelConfig, NewProvider,
    Page, Part, ProviderConfig, ProviderKind, ProviderUpdate, QueuedMessage, QueuedMessageId,
    TurnOutcome, UserId, WorkerId,
};

use crate::state::State;

/// A [`ChatStore`] held in process memory. Cheap to clone; clones share state.
#[derive(Debug, Clone, Default)]
pub struct InMemoryChatStore {
    state: Arc<Mutex<State>>,
    feed: BroadcastFeed,
    keys: Arc<chatd_core::store::ProviderKeys>,
    /// Spend admissions, one at a time per owner (BEHAVIOUR §17).
    admissions: usage::AdmissionLocks,
    /// Where files are kept instead of this store's own map (`with_file_store`).
    files: Option<Arc<dyn chatd_core::FileStore>>,
}

impl InMemoryChatStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks user input against `limits` instead of the defaults (BEHAVIOUR §12).
    #[must_use]
    pub fn with_limits(self, limits: chatd_core::store::Limits) -> Self {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).limits = limits;
        self
    }

    /// Keeps files (BEHAVIOUR §19) in `files` — for example an
    /// `ObjectFileStore` on disk — instead of this store's memory. Such a file store deletes
    /// a chat's files when asked (`FileStore::delete_chat_files`), not with the chat.
    #[must_use]
    pub fn with_file_store(mut self, files: Arc<dyn chatd_core::FileStore>) -> Self {
        self.files = Some(files);
        self
    }

    /// The store's change feed: every successful intent announces itself here.
    #[must_use]
    pub fn feed(&self) -> BroadcastFeed {
        self.feed.clone()
    }

    /// Runs `f` under the store's lock, then publishes the hints it recorded if it
    /// succeeded (a failed operation changed nothing and announces nothing). A panic in an
    /// earlier critical section cannot leave half-applied state behind (operations validate
    /// before mutating), so a poisoned lock is recovered rather than propagated.
    fn with<T>(&self, f: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        let (result, hints) = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let result = f(&mut state);
            (result, std::mem::take(&mut state.outbox))
        };
        if result.is_ok() {
            for hint in hints {
                self.feed.publish(hint);
            }
        }
        result
    }
}

#[async_trait]
impl ChatStore for InMemoryChatStore {
    async fn create_chat(&self, new: NewChat) -> Result<Chat> {
        self.with(|s| s.create_chat(new))
    }

    fn file_store(&self) -> Option<Arc<dyn chatd_core::FileStore>> {
        Some(self.files.clone().unwrap_or_else(|| Arc::new(self.clone())))
    }

    async fn apply_retention(
        &self,
        policy: &chatd_core::store::RetentionPolicy,
        limit: usize,
    ) -> Result<chatd_core::store::RetentionPass> {
        self.with(|s| s.apply_retention(policy, limit))
    }

    async fn fork_chat(&self, source: ChatId, at: MessageId) -> Result<Chat> {
        self.with(|s| s.fork_chat(source, at))
    }

    async fn get_chat(&self, id: ChatId) -> Result<Chat> {
        self.with(|s| s.chat(id))
    }

    async fn list_chats(&self, filter: ChatFilter) -> Result<Page<Chat>> {
        self.with(|s| {
            s.limits.check_chat_filter(&filter)?;
            Ok(s.list_chats(&filter))
        })
    }

    async fn update_chat(&self, id: ChatId, update: ChatUpdate) -> Result<Chat> {
        self.with(|s| s.update_chat(id, update))
    }

    async fn set_archived(&self, id: ChatId, archived: bool) -> Result<Vec<ChatId>> {
        self.with(|s| s.set_archived(id, archived))
    }

    async fn delete_chat(&self, id: ChatId) -> Result<()> {
        self.with(|s| s.delete_chat(id))
    }

    async fn list_children(&self, id: ChatId) -> Result<Vec<Chat>> {
        self.with(|s| s.list_children(id))
    }

    async fn list_messages(&self, chat: ChatId, query: MessageQuery) -> Result<Vec<Message>> {
        self.with(|s| s.list_messages(chat, query))
    }

    async fn prompt_messages(&self, chat: ChatId) -> Result<Vec<Message>> {
        self.with(|s| s.prompt_messages(chat))
    }

    async fn write_compaction(&self, fence: Fence, compaction: Compaction) -> Result<Vec<Message>> {
        self.with(|s| s.write_compaction(fence, compaction))
    }

    async fn send_message(&self, chat: ChatId, send: SendMessage) -> Result<SendOutcome> {
        self.with(|s| s.send_message(chat, send))
    }

    async fn edit_message(
        &self,
        chat: ChatId,
        message: MessageId,
        content: Vec<Part>,
    ) -> Result<EditOutcome> {
        self.with(|s| s.edit_message(chat, message, content))
    }

    async fn interrupt(&self, chat: ChatId) -> Result<Chat> {
        self.with(|s| s.interrupt(chat))
    }

    async fn pause(&self, chat: ChatId) -> Result<Chat> {
        self.with(|s| s.pause(chat))
    }

    async fn resume(&self, chat: ChatId) -> Result<Chat> {
        self.with(|s| s.resume(chat))
    }

    async fn complete(&self, chat: ChatId) -> Result<Chat> {
        self.with(|s| s.complete(chat))
    }

    async fn list_queued(&self, chat: ChatId) -> Result<Vec<QueuedMessage>> {
        self.with(|s| s.list_queued(chat))
    }

    async fn promote_queued(&self, chat: ChatId, id: QueuedMessageId) -> Result<SendOutcome> {
        self.with(|s| s.promote_queued(chat, id))
    }

    async fn delete_queued(&self, chat: ChatId, id: QueuedMessageId) -> Result<Vec<QueuedMessage>> {
        self.with(|s| s.delete_queued(chat, id))
    }

    async fn acquire_capped(
        &self,
        worker: WorkerId,
        limit: usize,
        caps: chatd_core::store::RunningCaps,
    ) -> Result<Vec<Lease>> {
        self.with(|s| s.acquire(worker, limit, caps))
    }

    async fn heartbeat(&self, worker: WorkerId, leases: &[Lease]) -> Result<Vec<LeaseStatus>> {
        self.with(|s| Ok(s.heartbeat(worker, leases)))
    }

    async fn commit_step(&self, lease: &Lease, step: Step) -> Result<Vec<Message>> {
        self.with(|s| s.commit_step(lease, step))
    }

    async fn release(&self, lease: &Lease, outcome: TurnOutcome) -> Result<Chat> {
        self.with(|s| s.release(lease, outcome))
    }

    async fn resolve_tool_calls(
        &self,
        chat: ChatId,
        decisions: Vec<chatd_core::tool_call::Decision>,
    ) -> Result<Chat> {
        self.with(|s| s.resolve_tool_calls(chat, decisions))
    }

    async fn expire_tool_calls(&self, limit: usize) -> Result<Vec<ChatId>> {
        self.with(|s| s.expire_tool_calls(limit))
    }

    async fn recover_stale(&self, stale_after: Duration) -> Result<Vec<ChatId>> {
        self.with(|s| s.recover_stale(stale_after))
    }

    async fn append_parts(&self, lease: &Lease, parts: Vec<NewPart>) -> Result<()> {
        self.with(|s| s.append_parts(lease, parts))
    }

    async fn read_parts(
        &self,
        chat: ChatId,
        after: Option<PartPosition>,
    ) -> Result<Vec<PartRecord>> {
        self.with(|s| s.read_parts(chat, after))
    }

    async fn create_provider(&self, mut new: NewProvider) -> Result<ProviderConfig> {
        let (key, digest) = self.keys.seal(
            new.provider,
            new.base_url.trim(),
            &new.api_key,
            new.api_key_key_id.as_deref(),
        )?;
        (new.api_key, new.api_key_key_id) = (key, digest);
        let stored = self.with(|s| {
            s.register_digest(new.api_key_key_id.as_deref())?;
            s.create_provider(new)
        })?;
        self.keys.open(stored)
    }

    async fn update_provider(
        &self,
        kind: ProviderKind,
        mut update: ProviderUpdate,
    ) -> Result<ProviderConfig> {
        // Under the state lock: the rule sees the row the update changes.
        let stored = self.with(|s| {
            let current = s.get_provider(kind)?;
            self.keys.seal_update(&current, &mut update)?;
            if let Some((_, digest)) = &update.api_key {
                s.register_digest(digest.as_deref())?;
            }
            s.update_provider(kind, update)
        })?;
        self.keys.open(stored)
    }

    async fn get_provider(&self, kind: ProviderKind) -> Result<ProviderConfig> {
        self.keys.open(self.with(|s| s.get_provider(kind))?)
    }

    async fn list_providers(&self) -> Result<Vec<ProviderConfig>> {
        let stored = self.with(|s| Ok(s.providers.values().cloned().collect::<Vec<_>>()))?;
        stored.into_iter().map(|config| self.keys.open(config)).collect()
    }

    async fn use_cipher(&self, cipher: Arc<chatd_core::SecretCipher>) -> Result<()> {
        // Under the state lock, so no key is written between the check and the switch.
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let stored: Vec<ProviderConfig> = state.providers.values().cloned().collect();
        let revoked = state.revoked_digests();
        self.keys.install(cipher, &stored, &revoked)
    }

    async fn rotate_provider_keys(&self) -> Result<usize> {
        self.with(|s| {
            // Validate everything first: the rotation changes all keys or none.
            let mut changes = Vec::new();
            for config in s.providers.values() {
                if let Some(sealed) = self.keys.reseal(config)? {
                    changes.push((config.provider, sealed));
                }
            }
            let count = changes.len();
            // A revoked active key refuses before anything changes.
            for (_, (_, digest)) in &changes {
                s.register_digest(Some(digest))?;
            }
            for (kind, (key, digest)) in changes {
                if let Some(config) = s.providers.get_mut(&kind) {
                    config.api_key = key;
                    config.api_key_key_id = Some(digest);
                }
            }
            Ok(count)
        })
    }

    async fn revoke_key(&self, digest: &str) -> Result<()> {
        self.with(|s| s.revoke_digest(digest))
    }

    async fn provider_key_at_rest(
        &self,
        kind: ProviderKind,
    ) -> Result<(chatd_core::Secret, Option<String>)> {
        let stored = self.with(|s| s.get_provider(kind))?;
        Ok((stored.api_key, stored.api_key_key_id))
    }

    async fn delete_provider(&self, kind: ProviderKind) -> Result<()> {
        self.with(|s| s.delete_provider(kind))
    }

    async fn create_model_config(&self, new: NewModelConfig) -> Result<ModelConfig> {
        self.with(|s| s.create_model_config(new))
    }

    async fn update_model_config(
        &self,
        id: ModelConfigId,
        update: ModelConfigUpdate,
    ) -> Result<ModelConfig> {
        self.with(|s| s.update_model_config(id, update))
    }

    async fn delete_model_config(&self, id: ModelConfigId) -> Result<()> {
        self.with(|s| s.delete_model_config(id))
    }

    async fn get_model_config(&self, id: ModelConfigId) -> Result<ModelConfig> {
        self.with(|s| s.get_model_config(id))
    }

    async fn list_model_configs(&self, include_disabled: bool) -> Result<Vec<ModelConfig>> {
        self.with(|s| Ok(s.list_model_configs(include_disabled)))
    }

    async fn default_model_config(&self) -> Result<Option<ModelConfig>> {
        self.with(|s| Ok(s.default_model_config()))
    }

    async fn get_diff_status(&self, chat: ChatId) -> Result<Option<DiffStatus>> {
        self.with(|s| s.get_diff_status(chat))
    }

    async fn upsert_diff_reference(
        &self,
        chat: ChatId,
        reference: DiffReference,
    ) -> Result<DiffStatus> {
        self.with(|s| s.upsert_diff_reference(chat, reference))
    }

    async fn upsert_diff_refresh(&self, chat: ChatId, refresh: DiffRefresh) -> Result<DiffStatus> {
        self.with(|s| s.upsert_diff_refresh(chat, refresh))
    }

    async fn change_feed(&self) -> Result<Arc<dyn ChangeFeed>> {
        Ok(Arc::new(self.feed.clone()))
    }

    async fn claim_stale_diff_statuses(
        &self,
        limit: usize,
        hold_for: Duration,
    ) -> Result<Vec<DiffStatus>> {
        self.with(|s| Ok(s.claim_stale_diff_statuses(limit, hold_for)))
    }

    async fn list_chat_changes(
        &self,
        owner: UserId,
        after: Option<ListCursor>,
        limit: usize,
    ) -> Result<ChatChanges> {
        self.with(|s| {
            let expired = s.list_cursor_expired(after);
            Ok(ChatChanges::new(s.list_chat_changes(owner, after, limit), false)
                .with_expired(expired))
        })
    }

    async fn prune_tombstones(&self, older_than: std::time::Duration) -> Result<u64> {
        self.with(|s| Ok(s.prune_tombstones(older_than)))
    }

    async fn record_usage(
        &self,
        usage: chatd_core::usage::NewUsage,
    ) -> Result<chatd_core::usage::UsageRecord> {
        self.with(|s| s.record_usage(usage))
    }

    async fn begin_spend_admission(
        &self,
        owner: chatd_core::UserId,
    ) -> Result<Box<dyn chatd_core::store::SpendAdmission>> {
        Ok(Box::new(usage::Admission::begin(&self.admissions, &self.state, owner).await))
    }

    async fn usage_report(
        &self,
        query: chatd_core::usage::UsageQuery,
    ) -> Result<Vec<chatd_core::usage::UsageBucket>> {
        self.with(|s| Ok(s.usage_report(&query)))
    }
}
