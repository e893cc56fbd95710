//! # chatd-store-postgres
//!
//! [`PostgresChatStore`]: the [`chatd_core::store::ChatStore`] for many processes sharing one
//! PostgreSQL (13 or newer). Any number of workers acquire chats with
//! `FOR UPDATE SKIP LOCKED` and prove ownership on every write with a fencing epoch, so no
//! chat is ever run by two workers and a worker that lost its lease writes nothing.
//!
//! ## Design
//!
//! - **One transaction per intent.** Each `ChatStore` method is one transaction (often one
//!   statement). Intents lock the chat row (`FOR UPDATE`), ask
//!   [`ChatStatus::decide`](chatd_core::status::ChatStatus::decide) what to do, and apply the decision before committing, so
//!   both stores implement the same state machine.
//! - **Fencing.** Worker writes are conditional on `status = 'running' AND worker_id = $w AND
//!   lease_epoch = $e`; `acquire` bumps `lease_epoch`. `commit_step` is a single statement
//!   (fence + rows + part-log cleanup), so a commit costs one round trip.
//! - **Schema.** [`MIGRATOR`] creates the seed schema (host foreign keys become plain UUID
//!   columns) and chatd's additions: `archived`, `last_error`, `lease_epoch`, stop requests,
//!   the UNLOGGED `chat_stream_parts` part log (one row per flush), `dbcrypt_keys`, and the indexes the queries
//!   need (notably a partial index on `updated_at WHERE status = 'pending'`, which keeps
//!   acquisition independent of the backlog).
//! - **SQL.** Fixed-shape statements are static strings; dynamic ones (filters, partial
//!   updates) are built with sea-query in one module. Values are always bound.
//! - **Errors** are mapped by SQLSTATE class and constraint name, never by message text.
//!
//! - **Beside the host's schema.** Migrations are recorded in `_chatd_migrations`, not in
//!   sqlx's default table, so a host's own `sqlx::migrate!()` and chatd's apply in either
//!   order; [`PostgresChatStore::connect_in_schema`] keeps every chatd table, type and
//!   function in a schema of its own.
//!
//! ```no_run
//! use chatd_store_postgres::PostgresChatStore;
//!
//! # async fn demo() -> Result<(), chatd_core::StoreError> {
//! let store = PostgresChatStore::connect_in_schema("postgres://app@db/app", "chatd").await?;
//! store.migrate().await?; // creates schema `chatd` and `chatd._chatd_migrations`
//! # Ok(()) }
//! ```
//!
//! Schema names are checked before anything connects (runnable without a server):
//!
//! ```
//! use chatd_store_postgres::PostgresChatStore;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let refused = PostgresChatStore::connect_in_schema("postgres://app@db/app", "Chat-D").await;
//! assert!(refused.is_err_and(|err| err.to_string().contains("schema")));
//! # }
//! ```

#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod calls;
mod changes;
mod chats;
mod config;
mod diff;
mod error;
mod feed;
mod files;
mod intents;
mod messages;
mod notifier;
mod query;
mod retention;
mod rows;
mod spend;
mod tx;
mod usage;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chatd_core::feed::ChangeFeed;
use chatd_core::status::Trigger;
use chatd_core::store::{
    ChatStore, Compaction, EditOutcome, Fence, Lease, LeaseStatus, MessageQuery, NewPart,
    PartPosition, PartRecord, Result, SendMessage, SendOutcome, Step,
};
use chatd_core::{
    Chat, ChatFilter, ChatId, ChatUpdate, DiffReference, DiffRefresh, DiffStatus, Message,
    MessageId, ModelConfig, ModelConfigId, ModelConfigUpdate, NewChat, NewModelConfig, NewProvider,
    Page, Part, ProviderConfig, ProviderKind, ProviderUpdate, QueuedMessage, QueuedMessageId,
    StoreError, TurnOutcome, WorkerId,
};
use sqlx::PgPool;

pub use feed::{PgChangeFeed, PgFeedOptions};
use sqlx::postgres::PgPoolOptions;
#[doc(hidden)] // for the benchmark's raw baseline only; not part of the API
pub use worker::{ACQUIRE_SQL, RELEASE_SQL};

/// The table in which chatd records its own migrations, apart from the host's
/// (`_sqlx_migrations`), so both sets can be applied in either order.
pub const MIGRATIONS_TABLE: &str = "_chatd_migrations";

/// The schema migrations, recorded in [`MIGRATIONS_TABLE`] (run them with
/// [`PostgresChatStore::migrate`] or `MIGRATOR.run(&pool)`; for a named schema, see
/// [`PostgresChatStore::connect_in_schema`]).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate::Migrator {
    table_name: std::borrow::Cow::Borrowed(MIGRATIONS_TABLE),
    ..sqlx::migrate!("./migrations")
};

/// A [`ChatStore`] on PostgreSQL. Cheap to clone (it holds a connection pool).
#[derive(Debug, Clone)]
pub struct PostgresChatStore {
    pool: PgPool,
    feed_options: PgFeedOptions,
    feed: Arc<tokio::sync::OnceCell<feed::SharedFeed>>,
    notifier: Arc<std::sync::Mutex<Option<notifier::Notifier>>>,
    keys: Arc<chatd_core::store::ProviderKeys>,
    limits: chatd_core::store::Limits,
    /// The schema chatd's tables live in (`None`: the sessions' default, `public`).
    schema: Option<String>,
    /// Spend admissions open at once: at most half the pool, so that the reads made inside
    /// them always find a connection.
    admissions: Arc<tokio::sync::Semaphore>,
    /// Where files are kept instead of `chat_files` (`with_file_store`).
    files: Option<Arc<dyn chatd_core::FileStore>>,
}

impl PostgresChatStore {
    /// Keeps files (BEHAVIOUR §19) in `files` — for example an `ObjectFileStore` over S3 —
    /// instead of the `chat_files` table. Such a file store deletes a chat's files when asked
    /// (`FileStore::delete_chat_files`), not with the chat's row.
    #[must_use]
    pub fn with_file_store(mut self, files: Arc<dyn chatd_core::FileStore>) -> Self {
        self.files = Some(files);
        self
    }

    /// A store over an existing pool. Run [`PostgresChatStore::migrate`] once before use.
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        let slots = (pool.options().get_max_connections() as usize / 2).max(1);
        PostgresChatStore {
            admissions: Arc::new(tokio::sync::Semaphore::new(slots)),
            pool,
            feed_options: PgFeedOptions::default(),
            feed: Arc::default(),
            notifier: Arc::default(),
            keys: Arc::default(),
            limits: chatd_core::store::Limits::default(),
            schema: None,
            files: None,
        }
    }

    /// A store whose tables live in `schema` (created by [`PostgresChatStore::migrate`] if
    /// missing), on a new pool with the connect options of `pool` and every session's
    /// `search_path` set to `schema` — so chatd's tables, types and functions stay out of
    /// the host's schemas, and its migration history is `schema._chatd_migrations`.
    ///
    /// # Errors
    /// `Validation` unless `schema` is a plain lower-case identifier (`[a-z_][a-z0-9_]*`,
    /// at most 63 bytes); `Backend` when the server cannot be reached.
    pub async fn in_schema(pool: &PgPool, schema: &str) -> Result<Self> {
        let schema = schema_name(schema)?;
        let options = pool.connect_options().as_ref().clone().options([("search_path", schema)]);
        let pool = open_pool(options, pool.options().get_max_connections()).await?;
        let mut store = Self::new(pool);
        store.schema = Some(schema.to_owned());
        Ok(store)
    }

    /// [`PostgresChatStore::connect`], with chatd's tables in `schema` (see
    /// [`PostgresChatStore::in_schema`]).
    ///
    /// # Errors
    /// As `connect` and `in_schema`.
    pub async fn connect_in_schema(url: &str, schema: &str) -> Result<Self> {
        let schema = schema_name(schema)?;
        let options: sqlx::postgres::PgConnectOptions = url.parse().map_err(error::db)?;
        let options = options
            .options([("idle_in_transaction_session_timeout", "5000"), ("search_path", schema)]);
        let pool = open_pool(options, 16).await?;
        let mut store = Self::new(pool);
        store.schema = Some(schema.to_owned());
        Ok(store)
    }

    /// The schema chatd's tables live in, when one was named.
    #[must_use]
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// Checks user input against `limits` instead of the defaults (BEHAVIOUR §12).
    #[must_use]
    pub fn with_limits(mut self, limits: chatd_core::store::Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets how the store's change feed runs (before the first
    /// [`change_feed`](ChatStore::change_feed) call).
    #[must_use]
    pub fn with_feed_options(mut self, options: PgFeedOptions) -> Self {
        self.feed_options = options;
        self
    }

    /// Connects to `url` with a pool of up to 16 connections. The sessions get
    /// `idle_in_transaction_session_timeout = 5 s`: a process frozen in the middle of a
    /// transaction (a paused VM, SIGSTOP) would otherwise keep its row locks, and the chat it
    /// was running could not be recovered by another worker until it woke up. Pools passed
    /// to [`PostgresChatStore::new`] should set it too.
    ///
    /// # Errors
    /// `Backend` when the URL is malformed or the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self> {
        let options: sqlx::postgres::PgConnectOptions = url.parse().map_err(error::db)?;
        let options = options.options([("idle_in_transaction_session_timeout", "5000")]);
        let pool = open_pool(options, 16).await?;
        Ok(Self::new(pool))
    }

    /// Applies pending migrations.
    ///
    /// # Errors
    /// `Backend` when a migration fails.
    pub async fn migrate(&self) -> Result<()> {
        let Some(schema) = &self.schema else {
            return MIGRATOR.run(&self.pool).await.map_err(StoreError::backend);
        };
        let mut migrator = sqlx::migrate::Migrator {
            migrations: MIGRATOR.migrations.clone(),
            table_name: format!("{schema}.{MIGRATIONS_TABLE}").into(),
            ..sqlx::migrate::Migrator::DEFAULT
        };
        migrator.create_schema(schema.clone());
        migrator.run(&self.pool).await.map_err(StoreError::backend)
    }

    /// Announces the hints of a committed intent (see the `notifier` module).
    pub(crate) fn announce(&self, hints: tx::Hints) {
        if hints.is_empty() || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let mut slot = self.notifier.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let notifier = slot.get_or_insert_with(|| notifier::Notifier::start(self.pool.clone()));
        if let Err(hints) = notifier.send(hints) {
            // The task died with the runtime that started it: start one on this runtime.
            let fresh = notifier::Notifier::start(self.pool.clone());
            let _ = fresh.send(hints);
            *slot = Some(fresh);
        }
    }

    /// The connection pool.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl ChatStore for PostgresChatStore {
    async fn create_chat(&self, new: NewChat) -> Result<Chat> {
        self.create_chat_tx(new).await
    }

    fn file_store(&self) -> Option<Arc<dyn chatd_core::FileStore>> {
        Some(self.files.clone().unwrap_or_else(|| Arc::new(self.clone())))
    }

    async fn apply_retention(
        &self,
        policy: &chatd_core::store::RetentionPolicy,
        limit: usize,
    ) -> Result<chatd_core::store::RetentionPass> {
        self.apply_retention_query(policy, limit).await
    }

    async fn fork_chat(&self, source: ChatId, at: MessageId) -> Result<Chat> {
        self.fork_chat_tx(source, at).await
    }

    async fn get_chat(&self, id: ChatId) -> Result<Chat> {
        let mut conn = self.pool.acquire().await.map_err(error::db)?;
        tx::chat(&mut conn, id, false).await
    }

    async fn list_chats(&self, filter: ChatFilter) -> Result<Page<Chat>> {
        self.list_chats_query(filter).await
    }

    async fn update_chat(&self, id: ChatId, update: ChatUpdate) -> Result<Chat> {
        self.update_chat_tx(id, update).await
    }

    async fn set_archived(&self, id: ChatId, archived: bool) -> Result<Vec<ChatId>> {
        self.set_archived_tx(id, archived).await
    }

    async fn delete_chat(&self, id: ChatId) -> Result<()> {
        self.delete_chat_tx(id).await
    }

    async fn list_children(&self, id: ChatId) -> Result<Vec<Chat>> {
        self.list_children_query(id).await
    }

    async fn list_messages(&self, chat: ChatId, query: MessageQuery) -> Result<Vec<Message>> {
        self.list_messages_query(chat, query).await
    }

    async fn prompt_messages(&self, chat: ChatId) -> Result<Vec<Message>> {
        self.prompt_messages_query(chat).await
    }

    async fn write_compaction(&self, fence: Fence, compaction: Compaction) -> Result<Vec<Message>> {
        self.write_compaction_tx(fence, compaction).await
    }

    async fn send_message(&self, chat: ChatId, send: SendMessage) -> Result<SendOutcome> {
        self.send_message_tx(chat, send).await
    }

    async fn edit_message(
        &self,
        chat: ChatId,
        message: MessageId,
        content: Vec<Part>,
    ) -> Result<EditOutcome> {
        self.edit_message_tx(chat, message, content).await
    }

    async fn interrupt(&self, chat: ChatId) -> Result<Chat> {
        self.stop_or_transition_tx(chat, Trigger::Interrupt).await
    }

    async fn pause(&self, chat: ChatId) -> Result<Chat> {
        self.stop_or_transition_tx(chat, Trigger::Pause).await
    }

    async fn resume(&self, chat: ChatId) -> Result<Chat> {
        self.resume_tx(chat).await
    }

    async fn complete(&self, chat: ChatId) -> Result<Chat> {
        self.stop_or_transition_tx(chat, Trigger::Complete).await
    }

    async fn list_queued(&self, chat: ChatId) -> Result<Vec<QueuedMessage>> {
        self.list_queued_query(chat).await
    }

    async fn promote_queued(&self, chat: ChatId, id: QueuedMessageId) -> Result<SendOutcome> {
        self.promote_queued_tx(chat, id).await
    }

    async fn delete_queued(&self, chat: ChatId, id: QueuedMessageId) -> Result<Vec<QueuedMessage>> {
        self.delete_queued_tx(chat, id).await
    }

    async fn acquire_capped(
        &self,
        worker: WorkerId,
        limit: usize,
        caps: chatd_core::store::RunningCaps,
    ) -> Result<Vec<Lease>> {
        self.acquire_query(worker, limit, caps).await
    }

    async fn heartbeat(&self, worker: WorkerId, leases: &[Lease]) -> Result<Vec<LeaseStatus>> {
        self.heartbeat_query(worker, leases).await
    }

    async fn commit_step(&self, lease: &Lease, step: Step) -> Result<Vec<Message>> {
        if step.calls.is_some() {
            return self.commit_recorded_tx(lease, step).await;
        }
        self.commit_step_query(lease, step).await
    }

    async fn release(&self, lease: &Lease, outcome: TurnOutcome) -> Result<Chat> {
        self.release_query(lease, outcome).await
    }

    async fn resolve_tool_calls(
        &self,
        chat: ChatId,
        decisions: Vec<chatd_core::tool_call::Decision>,
    ) -> Result<Chat> {
        self.resolve_tool_calls_tx(chat, decisions).await
    }

    async fn expire_tool_calls(&self, limit: usize) -> Result<Vec<ChatId>> {
        self.expire_tool_calls_tx(limit).await
    }

    async fn recover_stale(&self, stale_after: Duration) -> Result<Vec<ChatId>> {
        self.recover_stale_query(stale_after).await
    }

    async fn append_parts(&self, lease: &Lease, parts: Vec<NewPart>) -> Result<()> {
        self.append_parts_query(lease, parts).await
    }

    async fn read_parts(
        &self,
        chat: ChatId,
        after: Option<PartPosition>,
    ) -> Result<Vec<PartRecord>> {
        self.read_parts_query(chat, after).await
    }

    async fn create_provider(&self, new: NewProvider) -> Result<ProviderConfig> {
        self.create_provider_tx(new).await
    }

    async fn update_provider(
        &self,
        kind: ProviderKind,
        update: ProviderUpdate,
    ) -> Result<ProviderConfig> {
        self.update_provider_tx(kind, update).await
    }

    async fn get_provider(&self, kind: ProviderKind) -> Result<ProviderConfig> {
        self.keys.open(self.get_provider_query(kind).await?)
    }

    async fn list_providers(&self) -> Result<Vec<ProviderConfig>> {
        let stored = self.list_providers_query().await?;
        stored.into_iter().map(|config| self.keys.open(config)).collect()
    }

    async fn use_cipher(&self, cipher: Arc<chatd_core::SecretCipher>) -> Result<()> {
        self.use_cipher_tx(cipher).await
    }

    async fn rotate_provider_keys(&self) -> Result<usize> {
        self.rotate_provider_keys_tx().await
    }

    async fn revoke_key(&self, digest: &str) -> Result<()> {
        self.revoke_key_tx(digest).await
    }

    async fn provider_key_at_rest(
        &self,
        kind: ProviderKind,
    ) -> Result<(chatd_core::Secret, Option<String>)> {
        let stored = self.get_provider_query(kind).await?;
        Ok((stored.api_key, stored.api_key_key_id))
    }

    async fn delete_provider(&self, kind: ProviderKind) -> Result<()> {
        self.delete_provider_tx(kind).await
    }

    async fn create_model_config(&self, new: NewModelConfig) -> Result<ModelConfig> {
        self.create_model_config_tx(new).await
    }

    async fn update_model_config(
        &self,
        id: ModelConfigId,
        update: ModelConfigUpdate,
    ) -> Result<ModelConfig> {
        self.update_model_config_tx(id, update).await
    }

    async fn delete_model_config(&self, id: ModelConfigId) -> Result<()> {
        self.delete_model_config_tx(id).await
    }

    async fn get_model_config(&self, id: ModelConfigId) -> Result<ModelConfig> {
        self.get_model_config_query(id).await
    }

    async fn list_model_configs(&self, include_disabled: bool) -> Result<Vec<ModelConfig>> {
        self.list_model_configs_query(include_disabled).await
    }

    async fn default_model_config(&self) -> Result<Option<ModelConfig>> {
        self.default_model_config_query().await
    }

    async fn get_diff_status(&self, chat: ChatId) -> Result<Option<DiffStatus>> {
        self.get_diff_status_query(chat).await
    }

    async fn upsert_diff_reference(
        &self,
        chat: ChatId,
        reference: DiffReference,
    ) -> Result<DiffStatus> {
        self.upsert_diff_reference_tx(chat, reference).await
    }

    async fn upsert_diff_refresh(&self, chat: ChatId, refresh: DiffRefresh) -> Result<DiffStatus> {
        self.upsert_diff_refresh_tx(chat, refresh).await
    }

    async fn change_feed(&self) -> Result<Arc<dyn ChangeFeed>> {
        let feed = self
            .feed
            .get_or_try_init(|| async {
                PgChangeFeed::start(self.pool.clone(), self.feed_options.clone())
                    .await
                    .map(Arc::new)
            })
            .await?;
        Ok(Arc::clone(feed) as Arc<dyn ChangeFeed>)
    }

    async fn claim_stale_diff_statuses(
        &self,
        limit: usize,
        hold_for: Duration,
    ) -> Result<Vec<DiffStatus>> {
        self.claim_stale_diff_statuses_query(limit, hold_for).await
    }

    async fn list_chat_changes(
        &self,
        owner: chatd_core::UserId,
        after: Option<chatd_core::store::ListCursor>,
        limit: usize,
    ) -> Result<chatd_core::store::ChatChanges> {
        self.list_chat_changes_query(owner, after, limit).await
    }

    async fn prune_tombstones(&self, older_than: Duration) -> Result<u64> {
        self.prune_tombstones_query(older_than).await
    }

    async fn record_usage(
        &self,
        usage: chatd_core::usage::NewUsage,
    ) -> Result<chatd_core::usage::UsageRecord> {
        self.record_usage_tx(usage).await
    }

    async fn begin_spend_admission(
        &self,
        owner: chatd_core::UserId,
    ) -> Result<Box<dyn chatd_core::store::SpendAdmission>> {
        self.begin_admission(owner).await
    }

    async fn usage_report(
        &self,
        query: chatd_core::usage::UsageQuery,
    ) -> Result<Vec<chatd_core::usage::UsageBucket>> {
        self.usage_report_query(query).await
    }
}

/// `schema` if it is a plain lower-case identifier (no quoting needed anywhere).
fn schema_name(schema: &str) -> Result<&str> {
    let plain = !schema.is_empty()
        && schema.len() <= 63
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        Ok(schema)
    } else {
        Err(StoreError::validation(
            "schema",
            "a schema name must be a lower-case identifier ([a-z_][a-z0-9_]*, at most 63 bytes)",
        ))
    }
}

/// A pool of up to `max` connections with a 10 s acquire timeout.
async fn open_pool(options: sqlx::postgres::PgConnectOptions, max: u32) -> Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(error::db)
}
