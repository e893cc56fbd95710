//! [`Chatd`], the service an application embeds (DESIGN "Runtime"): every operation a chat
//! product needs, each taking an [`Actor`] and enforcing [BEHAVIOUR §11](crate::behaviour#11-authorization) — a user sees and changes
//! only their own chats (another user's chat is *not found*: existence does not leak),
//! within their scopes; provider and model-config writes are admin-only; non-admins see
//! only enabled model configs; API keys are never returned.

mod actor;
mod files;
mod wait;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use serde::Serialize;

pub use actor::{Actor, Scope, User};
pub use wait::TurnResult;

use crate::chat::{Chat, ChatFilter, NewChat, Page};
use crate::events::{self, ChatEvent, Cursor, OwnerEvent, SubscribeOptions};
use crate::ids::{ChatId, MessageId, ModelConfigId, QueuedMessageId, UserId};
use crate::message::{Message, QueuedMessage};
use crate::model_config::{ModelConfig, ModelConfigUpdate, NewModelConfig};
use crate::part::Part;
use crate::provider_config::{NewProvider, ProviderConfig, ProviderKind, ProviderUpdate};
use crate::runtime::compaction::{CompactionError, CompactionSink, Compactor};
use crate::runtime::tools::Provisioner;
use crate::runtime::turn::ProviderSource;
use crate::store::{
    ChatStore, EditOutcome, Entity, MessageQuery, SendMessage, SendOutcome, StoreError,
};

/// Why an operation was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChatdError {
    /// The actor lacks a scope, or is not an administrator.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The store refused or failed (including *not found* for another user's chat).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A manual compaction's summary failed.
    #[error("{0}")]
    Compaction(String),
    /// [`Chatd::send_and_wait`] gave up waiting (the turn goes on).
    #[error("the turn did not end within {0:?}")]
    TimedOut(std::time::Duration),
    /// The spend policy refused the send ([BEHAVIOUR §17](crate::behaviour#17-usage-cost-limits-and-fairness)): nothing was sent.
    #[error(transparent)]
    SpendLimit(#[from] crate::limits::SpendRefusal),
}

/// The result of a [`Chatd`] operation.
pub type Result<T> = std::result::Result<T, ChatdError>;

/// A provider as the API shows it: whether a key is stored, never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderView {
    /// Its kind.
    pub provider: ProviderKind,
    /// Its display name.
    pub display_name: String,
    /// Whether chats may use it.
    pub enabled: bool,
    /// Its endpoint override (empty: the provider's default).
    pub base_url: String,
    /// Whether an API key is stored.
    pub has_api_key: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<ProviderConfig> for ProviderView {
    fn from(config: ProviderConfig) -> Self {
        ProviderView {
            has_api_key: config.has_api_key(),
            provider: config.provider,
            display_name: config.display_name,
            enabled: config.enabled,
            base_url: config.base_url,
            created_at: config.created_at,
            updated_at: config.updated_at,
        }
    }
}

/// The chat service. Cheap to clone.
#[derive(Clone)]
pub struct Chatd {
    store: Arc<dyn ChatStore>,
    providers: Option<Arc<dyn ProviderSource>>,
    compactor: Compactor,
    subscribe: SubscribeOptions,
    streams: events::Streams,
    diff: Option<crate::runtime::diff::DiffRefresher>,
    provisioner: Option<Arc<dyn Provisioner>>,
    spend: Option<Arc<dyn crate::limits::SpendPolicy>>,
    files: Option<Arc<dyn crate::store::files::FileStore>>,
    file_limits: crate::store::Limits,
}

impl std::fmt::Debug for Chatd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chatd").finish_non_exhaustive()
    }
}

struct Quiet;

#[async_trait::async_trait]
impl CompactionSink for Quiet {
    async fn part(&self, _chat: ChatId, _event: &crate::provider::StreamEvent) {}
    async fn persisted(&self, _chat: ChatId, _messages: &[Message]) {}
}

impl Chatd {
    /// The service over `store`. Manual compaction needs [`Chatd::with_providers`].
    #[must_use]
    pub fn new(store: Arc<dyn ChatStore>) -> Self {
        Chatd {
            streams: events::Streams::new(Arc::clone(&store), SubscribeOptions::default()),
            files: store.file_store(),
            file_limits: crate::store::Limits::default(),
            store,
            providers: None,
            compactor: Compactor::new(),
            subscribe: SubscribeOptions::default(),
            diff: None,
            provisioner: None,
            spend: None,
        }
    }

    /// Consults `policy` before every send (and chat created with a message): a refusal is
    /// [`ChatdError::SpendLimit`] and nothing is sent ([BEHAVIOUR §17](crate::behaviour#17-usage-cost-limits-and-fairness)). Give the workers'
    /// [`TurnRunner`](crate::runtime::turn::TurnRunner) the same policy
    /// (`with_spend_policy`) to check every model call too.
    #[must_use]
    pub fn with_spend_policy(mut self, policy: Arc<dyn crate::limits::SpendPolicy>) -> Self {
        self.spend = Some(policy);
        self
    }

    /// `Err` when the spend policy refuses a message to `chat` answered with `config` (the
    /// chat's current config when `None`).
    async fn check_spend(&self, chat: &Chat, config: Option<ModelConfigId>) -> Result<()> {
        if self.spend.is_none() {
            return Ok(());
        }
        let config = config.unwrap_or(chat.last_model_config_id);
        self.check_spend_for(chat.owner_id, Some(chat), Some(chat.root_id()), Some(config)).await
    }

    /// The spend check for a message by `owner` to `chat` (`None`: one being created) in the
    /// tree `root` (`None`: a new tree) answered with `config` (`None`: the default config).
    async fn check_spend_for(
        &self,
        owner: UserId,
        chat: Option<&Chat>,
        root: Option<ChatId>,
        config: Option<ModelConfigId>,
    ) -> Result<()> {
        let Some(policy) = &self.spend else { return Ok(()) };
        let config = match config {
            Some(id) => self.store.get_model_config(id).await?,
            None => match self.store.default_model_config().await? {
                Some(config) => config,
                None => return Ok(()), // nothing can answer: the store refuses the chat
            },
        };
        let now = chrono::Utc::now();
        let spent =
            crate::limits::SpentSoFar::read_for(self.store.as_ref(), owner, root, now).await?;
        let context = crate::limits::SpendContext {
            owner,
            chat,
            model_config: &config,
            spent,
            before_send: true,
        };
        policy.check(&context).await?;
        Ok(())
    }

    /// The provisioner that says who owns a workspace ([BEHAVIOUR §11](crate::behaviour#11-authorization)): with it, a user may create
    /// a chat bound to a workspace that user owns; without it, only the system actor may
    /// name a workspace.
    #[must_use]
    pub fn with_provisioner(mut self, provisioner: Arc<dyn Provisioner>) -> Self {
        self.provisioner = Some(provisioner);
        self
    }

    /// Refuses a non-administrator's use of a model config that is disabled ([BEHAVIOUR §11](crate::behaviour#11-authorization): a
    /// disabled config named by id is a validation error; a deleted one is not found).
    async fn check_model_config(&self, actor: &Actor, id: Option<ModelConfigId>) -> Result<()> {
        let Some(id) = id else { return Ok(()) };
        if actor.is_admin() {
            return Ok(());
        }
        let config = self.store.get_model_config(id).await?;
        if config.deleted {
            return Err(StoreError::not_found(Entity::ModelConfig, id).into());
        }
        if !config.enabled {
            return Err(StoreError::validation(
                "model_config_id",
                format!("Model config {id} is not available."),
            )
            .into());
        }
        Ok(())
    }

    /// Refuses a user's workspace binding unless the provisioner confirms that the user
    /// owns the workspace. The refusal reads the same whether the workspace exists or not.
    async fn check_workspace(&self, user: UserId, new: &NewChat) -> Result<()> {
        let Some(workspace) = new.workspace_id else {
            return match new.workspace_agent_id {
                // An agent runs in a workspace: naming one without it binds nothing checkable.
                Some(agent) => Err(StoreError::validation(
                    "workspace_agent_id",
                    format!("agent {agent} needs the workspace_id it runs in"),
                )
                .into()),
                None => Ok(()),
            };
        };
        let owner = match &self.provisioner {
            Some(provisioner) => provisioner.workspace_owner(workspace).await.map_err(|err| {
                tracing::warn!(%workspace, error = %err, "workspace owner lookup failed");
                StoreError::validation("workspace_id", "the workspace cannot be checked now")
            })?,
            None => None,
        };
        if owner != Some(user) {
            return Err(StoreError::validation(
                "workspace_id",
                format!("no workspace {workspace} belongs to you"),
            )
            .into());
        }
        let Some(agent) = new.workspace_agent_id else { return Ok(()) };
        let runs_in = match &self.provisioner {
            Some(provisioner) => provisioner.agent_workspace(agent).await.map_err(|err| {
                tracing::warn!(%agent, error = %err, "workspace agent lookup failed");
                StoreError::validation("workspace_agent_id", "the agent cannot be checked now")
            })?,
            None => None,
        };
        if runs_in == Some(workspace) {
            Ok(())
        } else {
            Err(StoreError::validation(
                "workspace_agent_id",
                format!("no agent {agent} belongs to workspace {workspace}"),
            )
            .into())
        }
    }

    /// Where manual compaction gets its model adapter (the workers' provider source).
    #[must_use]
    pub fn with_providers(mut self, providers: Arc<dyn ProviderSource>) -> Self {
        self.providers = Some(providers);
        self
    }

    /// The compactor of manual compactions (its summary timeout; default 90 s, [BEHAVIOUR §15](crate::behaviour#15-defaults)).
    #[must_use]
    pub fn with_compactor(mut self, compactor: Compactor) -> Self {
        self.compactor = compactor;
        self
    }

    /// Where reported git references are refreshed (see [`Chatd::report_git_reference`]).
    #[must_use]
    pub fn with_diff_refresher(mut self, refresher: crate::runtime::diff::DiffRefresher) -> Self {
        self.diff = Some(refresher);
        self
    }

    /// How subscriptions re-read without hints.
    #[must_use]
    pub fn with_subscribe_options(mut self, options: SubscribeOptions) -> Self {
        self.subscribe = options;
        self.streams = events::Streams::new(Arc::clone(&self.store), options);
        self
    }

    /// The chat streams of this service: one shared reader per followed chat.
    #[must_use]
    pub fn streams(&self) -> &events::Streams {
        &self.streams
    }

    /// The store underneath.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn ChatStore> {
        &self.store
    }

    fn require(actor: &Actor, scope: Scope) -> Result<()> {
        if actor.has(scope) {
            Ok(())
        } else {
            Err(ChatdError::Forbidden(format!("the {} scope is required", scope.as_str())))
        }
    }

    fn require_admin(actor: &Actor) -> Result<()> {
        if actor.is_admin() {
            Ok(())
        } else {
            Err(ChatdError::Forbidden(
                "only administrators can change providers and model configs".into(),
            ))
        }
    }

    /// The chat, if the actor may see it (another user's chat is `NotFound`).
    async fn owned(&self, actor: &Actor, chat: ChatId, scope: Scope) -> Result<Chat> {
        Self::require(actor, scope)?;
        let found = self.store.get_chat(chat).await?;
        match actor.user_id() {
            Some(user) if user != found.owner_id => {
                Err(StoreError::not_found(Entity::Chat, chat).into())
            }
            _ => Ok(found),
        }
    }

    // ----- chats ---------------------------------------------------------------------

    /// Creates a chat owned by the actor (`new.owner_id` is replaced by the actor's id).
    /// A user may bind it to a workspace (`new.workspace_id`) only if the provisioner (see
    /// [`Chatd::with_provisioner`]) confirms that the user owns it, and to a workspace agent
    /// (`new.workspace_agent_id`) only if the provisioner places that agent in that
    /// workspace; the system actor may bind any.
    ///
    /// # Errors
    /// `Forbidden` without `chat:create`; a validation error on `workspace_id` for a
    /// workspace the user does not own, on `workspace_agent_id` for an agent that is not in
    /// it (or named without a workspace); the store's validation errors.
    pub async fn create_chat(&self, actor: &Actor, mut new: NewChat) -> Result<Chat> {
        Self::require(actor, Scope::Create)?;
        if let Some(user) = actor.user_id() {
            new.owner_id = user;
            if let Some(parent) = new.parent_chat_id {
                self.owned(actor, parent, Scope::Read).await?;
            }
            self.check_workspace(user, &new).await?;
        }
        self.check_model_config(actor, new.model_config_id).await?;
        if new.message.is_some() && self.spend.is_some() {
            let root = match new.parent_chat_id {
                Some(parent) => Some(self.store.get_chat(parent).await?.root_id()),
                None => None,
            };
            self.check_spend_for(new.owner_id, None, root, new.model_config_id).await?;
        }
        let owner = new.owner_id;
        let unbound = match new.message.as_mut() {
            Some(content) => self.prepare_content(owner, None, content).await?,
            None => Vec::new(),
        };
        let chat = self.store.create_chat(new).await?;
        self.bind_new_chat_files(owner, chat.id, &unbound).await;
        Ok(chat)
    }

    /// Forks the actor's chat at one of its messages ([BEHAVIOUR §18](crate::behaviour#18-history-you-keep)): a new chat of the same
    /// owner holding a copy of the history up to and including that message (see
    /// [`ChatStore::fork_chat`]); it answers the message anew when it is a question. Owner
    /// only (another user's chat is not found).
    ///
    /// # Errors
    /// `NotFound` for an unknown chat or a message not in its current history; `Forbidden`
    /// without `chat:create` and `chat:read`.
    pub async fn fork_chat(&self, actor: &Actor, chat: ChatId, at: MessageId) -> Result<Chat> {
        Self::require(actor, Scope::Create)?;
        self.owned(actor, chat, Scope::Read).await?;
        Ok(self.store.fork_chat(chat, at).await?)
    }

    /// One chat.
    ///
    /// # Errors
    /// `NotFound` (also for another user's chat); `Forbidden` without `chat:read`.
    pub async fn get_chat(&self, actor: &Actor, chat: ChatId) -> Result<Chat> {
        self.owned(actor, chat, Scope::Read).await
    }

    /// The actor's chats (a user's filter is always narrowed to their own).
    ///
    /// # Errors
    /// `Forbidden` without `chat:read`.
    pub async fn list_chats(&self, actor: &Actor, mut filter: ChatFilter) -> Result<Page<Chat>> {
        Self::require(actor, Scope::Read)?;
        if let Some(user) = actor.user_id() {
            filter.owner_id = Some(user);
        }
        Ok(self.store.list_chats(filter).await?)
    }

    /// The user-visible messages after `after`.
    ///
    /// # Errors
    /// `NotFound`; `Forbidden` without `chat:read`.
    pub async fn list_messages(
        &self,
        actor: &Actor,
        chat: ChatId,
        after: Option<MessageId>,
    ) -> Result<Vec<Message>> {
        self.owned(actor, chat, Scope::Read).await?;
        Ok(self.store.list_messages(chat, MessageQuery::user_visible_after(after)).await?)
    }

    /// The user-visible messages after `after`, with those edits took out of the history
    /// (each with its [`Deletion`](crate::message::Deletion), [BEHAVIOUR §18](crate::behaviour#18-history-you-keep)).
    ///
    /// # Errors
    /// `NotFound`; `Forbidden` without `chat:read`.
    pub async fn list_messages_with_deleted(
        &self,
        actor: &Actor,
        chat: ChatId,
        after: Option<MessageId>,
    ) -> Result<Vec<Message>> {
        self.owned(actor, chat, Scope::Read).await?;
        let query = MessageQuery::user_visible_after(after).with_deleted();
        Ok(self.store.list_messages(chat, query).await?)
    }

    /// Sends a user message (inserted, or queued while the chat is busy).
    ///
    /// # Errors
    /// `NotFound`; `Forbidden` without `chat:update`; `QueueFull`; validation.
    ///
    /// # Examples
    ///
    /// Another user's chat is *not found*: existence does not leak ([BEHAVIOUR §11](crate::behaviour#11-authorization)).
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// use chatd_core::store::Delivery;
    /// use chatd_core::{Actor, Chatd, NewChat, NewModelConfig, NewProvider, ProviderKind};
    /// use chatd_core::{SendMessage, UserId};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), chatd_core::ChatdError> {
    /// let chatd = Chatd::new(Arc::new(chatd_store_memory::InMemoryChatStore::new()));
    /// let admin = Actor::admin(UserId::new());
    /// chatd.create_provider(&admin, NewProvider::new(ProviderKind::OpenAi)).await?;
    /// let config = NewModelConfig::new(ProviderKind::OpenAi, "gpt-5", 400_000);
    /// chatd.create_model_config(&admin, config).await?;
    ///
    /// let (alice, bob) = (UserId::new(), UserId::new());
    /// let chat = chatd.create_chat(&Actor::user(alice), NewChat::new(alice)).await?;
    /// let sent = chatd.send_message(&Actor::user(alice), chat.id, SendMessage::text("hi")).await?;
    /// assert!(matches!(sent.delivery, Delivery::Inserted(_)), "an idle chat takes it at once");
    ///
    /// let refused = chatd.send_message(&Actor::user(bob), chat.id, SendMessage::text("hi")).await;
    /// assert!(matches!(refused, Err(chatd_core::ChatdError::Store(ref e)) if e.is_not_found()));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn send_message(
        &self,
        actor: &Actor,
        chat: ChatId,
        send: SendMessage,
    ) -> Result<SendOutcome> {
        let found = self.owned(actor, chat, Scope::Update).await?;
        self.check_model_config(actor, send.model_config_id).await?;
        self.check_spend(&found, send.model_config_id).await?;
        let mut send = send;
        self.prepare_content(found.owner_id, Some(chat), &mut send.content).await?;
        let sent = self.store.send_message(chat, send).await?;
        if matches!(sent.delivery, crate::store::Delivery::Queued(_))
            && let Ok(queue) = self.store.list_queued(chat).await
        {
            crate::telemetry::queued(queue.len());
        }
        Ok(sent)
    }

    /// Renames a chat (a person's title: background titles never overwrite it, [BEHAVIOUR §14](crate::behaviour#14-titles)).
    ///
    /// # Errors
    /// `NotFound`; `Forbidden` without `chat:update`; `Title is required.`
    pub async fn rename(&self, actor: &Actor, chat: ChatId, title: &str) -> Result<Chat> {
        self.owned(actor, chat, Scope::Update).await?;
        Ok(self.store.update_chat(chat, crate::chat::ChatUpdate::title(title)).await?)
    }

    /// Replaces the chat's labels ([BEHAVIOUR §18](crate::behaviour#18-history-you-keep)).
    ///
    /// # Errors
    /// `NotFound`; `Forbidden` without `chat:update`; a validation error on `labels`.
    pub async fn set_labels(
        &self,
        actor: &Actor,
        chat: ChatId,
        labels: std::collections::BTreeMap<String, String>,
    ) -> Result<Chat> {
        self.owned(actor, chat, Scope::Update).await?;
        Ok(self.store.update_chat(chat, crate::chat::ChatUpdate::labels(labels)).await?)
    }

    /// Edits a user message: later history leaves the history (kept as deleted, see
    /// [`Chatd::list_messages_with_deleted`]), the queue is dropped, the chat re-runs.
    ///
    /// # Errors
    /// `Chat message not found.` / `Only user messages can be edited.`; `Forbidden`.
    pub async fn edit_message(
        &self,
        actor: &Actor,
        chat: ChatId,
        message: MessageId,
        content: Vec<Part>,
    ) -> Result<EditOutcome> {
        let found = self.owned(actor, chat, Scope::Update).await?;
        let mut content = content;
        self.prepare_content(found.owner_id, Some(chat), &mut content).await?;
        Ok(self.store.edit_message(chat, message, content).await?)
    }

    /// Interrupts the running turn (a no-op otherwise).
    ///
    /// # Errors
    /// `NotFound`; `Forbidden` without `chat:update`.
    pub async fn interrupt(&self, actor: &Actor, chat: ChatId) -> Result<Chat> {
        self.owned(actor, chat, Scope::Update).await?;
        Ok(self.store.interrupt(chat).await?)
    }

    /// The tool calls of the chat's unfinished step, in call order ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes)): the open
    /// ones wait for [`Chatd::resolve_tool_calls`]. Empty when no step is recorded.
    ///
    /// # Errors
    /// `NotFound`; `Forbidden` without `chat:read`.
    pub async fn tool_calls(
        &self,
        actor: &Actor,
        chat: ChatId,
    ) -> Result<Vec<crate::tool_call::ToolCall>> {
        Ok(self.owned(actor, chat, Scope::Read).await?.tool_calls)
    }

    /// Decides open tool calls of the chat's waiting step ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes)): approve (with
    /// edited arguments), deny (with a reason), or give a client tool's result. All or
    /// nothing; decisions may come in several requests, and the chat goes back to work in the
    /// request that decides the last open call.
    ///
    /// # Errors
    /// `NotFound`; `Forbidden` without `chat:update`; `Conflict` (HTTP 409) naming a call that
    /// is not open (unknown, decided, or of an earlier step); a validation error (400) for a
    /// decision of the wrong kind or edited arguments that are not a JSON object within the
    /// size limit.
    pub async fn resolve_tool_calls(
        &self,
        actor: &Actor,
        chat: ChatId,
        decisions: Vec<crate::tool_call::Decision>,
    ) -> Result<Chat> {
        self.owned(actor, chat, Scope::Update).await?;
        Ok(self.store.resolve_tool_calls(chat, decisions).await?)
    }

    /// Pauses a chat.
    ///
    /// # Errors
    /// `InvalidTransition`; `NotFound`; `Forbidden`.
    pub async fn pause(&self, actor: &Actor, chat: ChatId) -> Result<Chat> {
        self.owned(actor, chat, Scope::Update).await?;
        Ok(self.store.pause(chat).await?)
    }

    /// Resumes a paused chat.
    ///
    /// # Errors
    /// `InvalidTransition`; `NotFound`; `Forbidden`.
    pub async fn resume(&self, actor: &Actor, chat: ChatId) -> Result<Chat> {
        self.owned(actor, chat, Scope::Update).await?;
        Ok(self.store.resume(chat).await?)
    }

    /// Marks a chat as done.
    ///
    /// # Errors
    /// `InvalidTransition`; `NotFound`; `Forbidden`.
    pub async fn complete(&self, actor: &Actor, chat: ChatId) -> Result<Chat> {
        self.owned(actor, chat, Scope::Update).await?;
        Ok(self.store.complete(chat).await?)
    }

    /// Archives (or unarchives) a chat and its whole tree; returns the chats changed.
    ///
    /// # Errors
    /// `NotFound`; `Forbidden` without `chat:update`.
    pub async fn set_archived(
        &self,
        actor: &Actor,
        chat: ChatId,
        archived: bool,
    ) -> Result<Vec<ChatId>> {
        self.owned(actor, chat, Scope::Update).await?;
        Ok(self.store.set_archived(chat, archived).await?)
    }

    /// Deletes a chat.
    ///
    /// # Errors
    /// `NotFound`; `Forbidden` without `chat:delete`.
    pub async fn delete_chat(&self, actor: &Actor, chat: ChatId) -> Result<()> {
        self.owned(actor, chat, Scope::Delete).await?;
        self.store.delete_chat(chat).await?;
        self.forget_chat_files(chat).await;
        Ok(())
    }

    // ----- queue ---------------------------------------------------------------------

    /// The chat's queue.
    ///
    /// # Errors
    /// `NotFound`; `Forbidden` without `chat:read`.
    pub async fn list_queued(&self, actor: &Actor, chat: ChatId) -> Result<Vec<QueuedMessage>> {
        self.owned(actor, chat, Scope::Read).await?;
        Ok(self.store.list_queued(chat).await?)
    }

    /// Promotes a queued message (interrupting a running turn).
    ///
    /// # Errors
    /// `NotFound`; `Forbidden` without `chat:update`.
    pub async fn promote_queued(
        &self,
        actor: &Actor,
        chat: ChatId,
        id: QueuedMessageId,
    ) -> Result<SendOutcome> {
        self.owned(actor, chat, Scope::Update).await?;
        Ok(self.store.promote_queued(chat, id).await?)
    }

    /// Deletes a queued message; returns the queue.
    ///
    /// # Errors
    /// `NotFound`; `Forbidden` without `chat:update`.
    pub async fn delete_queued(
        &self,
        actor: &Actor,
        chat: ChatId,
        id: QueuedMessageId,
    ) -> Result<Vec<QueuedMessage>> {
        self.owned(actor, chat, Scope::Update).await?;
        Ok(self.store.delete_queued(chat, id).await?)
    }

    /// Compacts an idle chat now, whatever its usage ([BEHAVIOUR §5](crate::behaviour#5-compaction), `source: "manual"`).
    ///
    /// # Errors
    /// `Conflict` when there is nothing to compact; `InvalidTransition` while busy;
    /// `Compaction` when the summary fails or no provider source is configured.
    pub async fn compact(&self, actor: &Actor, chat: ChatId) -> Result<Vec<Message>> {
        let found = self.owned(actor, chat, Scope::Update).await?;
        let Some(providers) = &self.providers else {
            return Err(ChatdError::Compaction(
                "manual compaction needs a provider source (Chatd::with_providers)".into(),
            ));
        };
        let config = match self.store.get_model_config(found.last_model_config_id).await {
            Ok(config) if !config.deleted => config,
            _ => self.store.default_model_config().await?.ok_or_else(|| {
                ChatdError::Compaction(crate::runtime::turn::NO_DEFAULT_MODEL.into())
            })?,
        };
        let provider = providers
            .provider(&config)
            .await
            .map_err(|err| ChatdError::Compaction(err.to_string()))?;
        match self
            .compactor
            .compact_idle(self.store.as_ref(), &provider, &config, &found, &Quiet)
            .await
        {
            Ok(rows) => Ok(rows),
            Err(CompactionError::Store(err)) => Err(err.into()),
            Err(err) => Err(ChatdError::Compaction(err.to_string())),
        }
    }

    // ----- diff status ---------------------------------------------------------------

    /// The chat's diff status (`None` until a reference was reported).
    ///
    /// # Errors
    /// `NotFound`; `Forbidden` without `chat:read`.
    pub async fn diff_status(
        &self,
        actor: &Actor,
        chat: ChatId,
    ) -> Result<Option<crate::diff_status::DiffStatus>> {
        self.owned(actor, chat, Scope::Read).await?;
        Ok(self.store.get_diff_status(chat).await?)
    }

    /// Records the git remote and branch a chat's workspace works on (empty strings keep
    /// the stored values) and looks up its pull request at once, retrying after 1, 3, 5,
    /// 10 and 20 s while none is found. Without a refresher only the reference is stored.
    ///
    /// # Errors
    /// `NotFound`; `Forbidden` without `chat:update`.
    pub async fn report_git_reference(
        &self,
        actor: &Actor,
        chat: ChatId,
        remote: &str,
        branch: &str,
    ) -> Result<crate::diff_status::DiffStatus> {
        self.owned(actor, chat, Scope::Update).await?;
        Ok(match &self.diff {
            Some(refresher) => refresher.report_git_reference(chat, remote, branch).await?,
            None => {
                let reference = crate::diff_status::DiffReference::new(remote, branch);
                self.store.upsert_diff_reference(chat, reference).await?
            }
        })
    }

    // ----- streams -------------------------------------------------------------------

    /// Follows a chat from `after` (see [`events::subscribe`]).
    ///
    /// # Errors
    /// `NotFound`; `Forbidden` without `chat:read`.
    pub async fn subscribe(
        &self,
        actor: &Actor,
        chat: ChatId,
        after: Option<Cursor>,
    ) -> Result<BoxStream<'static, ChatEvent>> {
        self.owned(actor, chat, Scope::Read).await?;
        Ok(self.streams().subscribe(chat, after).await?)
    }

    /// Follows the actor's chat list from `after` (see [`events::watch`]; `None`: every
    /// chat the actor owns, then changes).
    ///
    /// # Errors
    /// `Forbidden` without `chat:read`, or for the system (it owns no chats).
    pub async fn watch(
        &self,
        actor: &Actor,
        after: Option<crate::store::ListCursor>,
    ) -> Result<BoxStream<'static, OwnerEvent>> {
        Self::require(actor, Scope::Read)?;
        let Some(owner) = actor.user_id() else {
            return Err(ChatdError::Forbidden("the system owns no chats to watch".into()));
        };
        Ok(events::watch(Arc::clone(&self.store), owner, after, self.subscribe).await?)
    }

    // ----- usage (BEHAVIOUR §17) -----------------------------------------------------------

    /// What model calls used and cost, summed as `query` says. A user reads their own records
    /// only (the query is narrowed to them); an administrator and the system read anyone's.
    ///
    /// # Errors
    /// `Forbidden` without `chat:read`, or for a user asking for another owner's usage; the
    /// store's.
    pub async fn usage(
        &self,
        actor: &Actor,
        mut query: crate::usage::UsageQuery,
    ) -> Result<Vec<crate::usage::UsageBucket>> {
        Self::require(actor, Scope::Read)?;
        if !actor.is_admin()
            && let Some(user) = actor.user_id()
        {
            if query.owner.is_some_and(|owner| owner != user) {
                return Err(ChatdError::Forbidden("a user reads only their own usage".into()));
            }
            query.owner = Some(user);
        }
        Ok(self.store.usage_report(query).await?)
    }

    // ----- configuration -----------------------------------------------------------------

    /// The model catalog: every config for an administrator, enabled ones for others.
    ///
    /// # Errors
    /// `Forbidden` without `chat:read`; the store's.
    pub async fn model_configs(&self, actor: &Actor) -> Result<Vec<ModelConfig>> {
        Self::require(actor, Scope::Read)?;
        Ok(self.store.list_model_configs(actor.is_admin()).await?)
    }

    /// The providers, keys shown only as `has_api_key`.
    ///
    /// # Errors
    /// `Forbidden` for non-administrators.
    pub async fn providers(&self, actor: &Actor) -> Result<Vec<ProviderView>> {
        Self::require_admin(actor)?;
        Ok(self.store.list_providers().await?.into_iter().map(ProviderView::from).collect())
    }

    /// Configures a provider.
    ///
    /// # Errors
    /// `Forbidden` for non-administrators; validation; `Conflict` for a second row of a kind.
    pub async fn create_provider(&self, actor: &Actor, new: NewProvider) -> Result<ProviderView> {
        Self::require_admin(actor)?;
        Ok(self.store.create_provider(new).await?.into())
    }

    /// Changes a provider.
    ///
    /// # Errors
    /// `Forbidden` for non-administrators; `NotFound`; validation.
    pub async fn update_provider(
        &self,
        actor: &Actor,
        kind: ProviderKind,
        update: ProviderUpdate,
    ) -> Result<ProviderView> {
        Self::require_admin(actor)?;
        Ok(self.store.update_provider(kind, update).await?.into())
    }

    /// Deletes a provider (and its model configs).
    ///
    /// # Errors
    /// `Forbidden` for non-administrators; `NotFound`; `Conflict` while in use.
    pub async fn delete_provider(&self, actor: &Actor, kind: ProviderKind) -> Result<()> {
        Self::require_admin(actor)?;
        Ok(self.store.delete_provider(kind).await?)
    }

    /// Adds a model config. Its provider and model id are kept verbatim ([BEHAVIOUR §9.4](crate::behaviour#9-providers));
    /// [`NewModelConfig::from_spec`] resolves a bare `provider:model` spec.
    ///
    /// # Errors
    /// `Forbidden` for non-administrators; validation.
    pub async fn create_model_config(
        &self,
        actor: &Actor,
        new: NewModelConfig,
    ) -> Result<ModelConfig> {
        Self::require_admin(actor)?;
        // BEHAVIOUR §9.4: a config created with a provider keeps it and its model id verbatim
        // (OpenRouter's `anthropic/claude-sonnet-4` stays OpenRouter's); resolving a bare spec
        // is `NewModelConfig::from_spec`'s job.
        Ok(self.store.create_model_config(new).await?)
    }

    /// Changes a model config.
    ///
    /// # Errors
    /// `Forbidden` for non-administrators; `NotFound`; validation.
    pub async fn update_model_config(
        &self,
        actor: &Actor,
        id: ModelConfigId,
        update: ModelConfigUpdate,
    ) -> Result<ModelConfig> {
        Self::require_admin(actor)?;
        Ok(self.store.update_model_config(id, update).await?)
    }

    /// Deletes a model config.
    ///
    /// # Errors
    /// `Forbidden` for non-administrators; `NotFound`.
    pub async fn delete_model_config(&self, actor: &Actor, id: ModelConfigId) -> Result<()> {
        Self::require_admin(actor)?;
        Ok(self.store.delete_model_config(id).await?)
    }
}
