//! Sub-agents ([BEHAVIOUR §13](crate::behaviour#13-tools)): a root chat delegates work to child chats with `spawn_agent`,
//! collects their reports with `wait_agent`, steers them with `message_agent` and stops
//! them with `close_agent`. Nesting depth is 1: children get none of these tools, and a
//! child's call is refused. Every target must be a descendant of the calling chat.

use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ToolContext, ToolError, ToolSet, Typed, TypedTool};
use crate::chat::{Chat, NewChat};
use crate::ids::ChatId;
use crate::message::Role;
use crate::status::ChatStatus;
use crate::store::{BusyBehavior, ChatStore, Delivery, MessageQuery, SendMessage, StoreError};

/// What a child chat's `spawn_agent` call gets ([BEHAVIOUR §13](crate::behaviour#13-tools)).
pub(crate) const CHILD_CANNOT_SPAWN: &str = "delegated chats cannot create child subagents";
/// What a child chat's other sub-agent calls get.
pub(crate) const CHILD_CANNOT_MANAGE: &str = "delegated chats cannot manage subagents";
/// How long `wait_agent` waits by default ([BEHAVIOUR §15](crate::behaviour#15-defaults)).
pub(crate) const WAIT_TIMEOUT: Duration = Duration::from_secs(300);
/// The longest `wait_agent` waits ([BEHAVIOUR §15](crate::behaviour#15-defaults)); longer requests up to a day are clamped to
/// it, and larger (or negative, or non-finite) values are an error result.
pub(crate) const MAX_WAIT_TIMEOUT: Duration = Duration::from_secs(3600);
/// The most open (unarchived) sub-agents one root chat may have ([BEHAVIOUR §15](crate::behaviour#15-defaults)).
pub(crate) const MAX_SUB_AGENTS: usize = 16;
/// How often `wait_agent` looks at the child ([BEHAVIOUR §15](crate::behaviour#15-defaults)).
pub(crate) const WAIT_POLL: Duration = Duration::from_millis(200);

/// Arguments of `spawn_agent`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SpawnAgentArgs {
    /// The task: everything the sub-agent needs to know, since it sees nothing else.
    prompt: String,
    /// A short title for the sub-agent's chat.
    title: Option<String>,
}

/// Arguments of `wait_agent`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WaitAgentArgs {
    /// The sub-agent's chat id.
    #[schemars(with = "String")]
    chat_id: ChatId,
    /// How long to wait for it to finish, in seconds (default 300, at most 3600).
    timeout_seconds: Option<f64>,
}

/// Arguments of `message_agent`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MessageAgentArgs {
    /// The sub-agent's chat id.
    #[schemars(with = "String")]
    chat_id: ChatId,
    /// The message.
    message: String,
    /// Interrupt its current work so it reads the message now (default: queue it).
    #[serde(default)]
    interrupt: bool,
}

/// Arguments of `close_agent`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CloseAgentArgs {
    /// The sub-agent's chat id.
    #[schemars(with = "String")]
    chat_id: ChatId,
}

/// How the sub-agent tools behave ([BEHAVIOUR §13](crate::behaviour#13-tools), §15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AgentOptions {
    /// The most open sub-agents per root chat (default 16).
    pub max_children: usize,
    /// How long `wait_agent` waits when the call names no timeout (default
    /// `WAIT_TIMEOUT`, 5 min).
    pub wait_timeout: Duration,
    /// The longest wait a call may ask for (default `MAX_WAIT_TIMEOUT`, 1 h).
    pub max_wait_timeout: Duration,
    /// How often `wait_agent` looks at the child (default `WAIT_POLL`, 200 ms).
    pub poll: Duration,
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            max_children: MAX_SUB_AGENTS,
            wait_timeout: WAIT_TIMEOUT,
            max_wait_timeout: MAX_WAIT_TIMEOUT,
            poll: WAIT_POLL,
        }
    }
}

impl AgentOptions {
    /// Sets the most open sub-agents per root.
    #[must_use]
    pub fn with_max_children(mut self, children: usize) -> Self {
        self.max_children = children;
        self
    }

    /// Sets the default and the longest wait.
    #[must_use]
    pub fn with_wait(mut self, default: Duration, max: Duration) -> Self {
        self.max_wait_timeout = max;
        self.wait_timeout = default.min(max);
        self
    }

    /// Sets how often `wait_agent` looks at the child.
    #[must_use]
    pub fn with_poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }
}

/// What the sub-agent tools share.
#[derive(Clone)]
pub(super) struct Agents {
    store: Arc<dyn ChatStore>,
    options: AgentOptions,
}

/// The wait a model asked for: the default when absent, clamped to the maximum up to a
/// day; anything else is an error result the model can correct.
fn wait_timeout(seconds: Option<f64>, options: &AgentOptions) -> Result<Duration, ToolError> {
    const ABSURD: f64 = 86_400.0;
    match seconds {
        None => Ok(options.wait_timeout),
        Some(s) if s.is_finite() && (0.0..=ABSURD).contains(&s) => {
            Ok(Duration::from_secs_f64(s.min(options.max_wait_timeout.as_secs_f64())))
        }
        Some(s) => Err(ToolError::new(format!(
            "invalid arguments: timeout_seconds must be between 0 and {} (got {s})",
            options.max_wait_timeout.as_secs()
        ))),
    }
}

fn store_error(err: &StoreError) -> ToolError {
    ToolError::new(err.to_string())
}

impl Agents {
    /// The chat `id` if it descends from the calling chat (another chat is "not found", as
    /// for any chat the caller may not see).
    async fn descendant(&self, ctx: &ToolContext, id: ChatId) -> Result<Chat, ToolError> {
        let not_found = || ToolError::new(format!("no sub-agent {id} belongs to this chat"));
        let chat = match self.store.get_chat(id).await {
            Ok(chat) => chat,
            Err(err) if err.is_not_found() => return Err(not_found()),
            Err(err) => return Err(store_error(&err)),
        };
        let descends =
            chat.parent_chat_id == Some(ctx.chat_id) || chat.root_chat_id == Some(ctx.chat_id);
        if descends && chat.id != ctx.chat_id { Ok(chat) } else { Err(not_found()) }
    }

    async fn spawn(&self, ctx: &ToolContext, args: SpawnAgentArgs) -> Result<Value, ToolError> {
        if args.prompt.trim().is_empty() {
            return Err(ToolError::new("the prompt is empty: say what the sub-agent must do"));
        }
        let parent = self.store.get_chat(ctx.chat_id).await.map_err(|e| store_error(&e))?;
        if !parent.is_root() {
            return Err(ToolError::new(CHILD_CANNOT_SPAWN));
        }
        // The cap is checked by the store as it creates the child: concurrent spawns never
        // pass it.
        let mut new = NewChat::new(parent.owner_id)
            .with_parent(parent.id)
            .with_open_children_limit(self.options.max_children)
            .with_text(args.prompt)
            .with_model_config(parent.last_model_config_id);
        if let Some(title) = args.title.filter(|t| !t.trim().is_empty()) {
            new = new.with_title(title);
        }
        if let Some(workspace) = parent.workspace_id {
            new = new.with_workspace(workspace, parent.workspace_agent_id);
        }
        // The host's instructions for the parent apply to its helpers too.
        let first = self
            .store
            .list_messages(parent.id, MessageQuery::all().with_limit(1))
            .await
            .map_err(|e| store_error(&e))?;
        if let Some(system) = first.iter().find(|m| m.role == Role::System && !m.compressed) {
            new = new.with_system_prompt(system.text());
        }
        let child = self.store.create_chat(new).await.map_err(|e| store_error(&e))?;
        Ok(json!({"chat_id": child.id, "title": child.title, "status": child.status}))
    }

    async fn wait(&self, ctx: &ToolContext, args: WaitAgentArgs) -> Result<Value, ToolError> {
        let timeout = wait_timeout(args.timeout_seconds, &self.options)?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let chat = self.descendant(ctx, args.chat_id).await?;
            match chat.status {
                ChatStatus::Pending | ChatStatus::Running => {}
                ChatStatus::Error => {
                    return Err(ToolError::new(format!(
                        "sub-agent {} failed: {}",
                        chat.id,
                        chat.last_error.as_deref().unwrap_or("unknown error")
                    )));
                }
                status => {
                    return Ok(json!({
                        "chat_id": chat.id,
                        "status": status,
                        "report": self.report(chat.id).await?,
                    }));
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ToolError::new(format!(
                    "sub-agent {} is still {} after {} s; wait again or close it",
                    chat.id,
                    chat.status,
                    timeout.as_secs_f64()
                )));
            }
            tokio::select! {
                () = ctx.cancel.cancelled() => return Err(ToolError::new("the wait was interrupted")),
                () = tokio::time::sleep(self.options.poll.min(deadline - tokio::time::Instant::now())) => {}
            }
        }
    }

    /// The child's latest visible assistant text.
    async fn report(&self, chat: ChatId) -> Result<Value, ToolError> {
        let visible = self
            .store
            .list_messages(chat, MessageQuery::user_visible_after(None))
            .await
            .map_err(|e| store_error(&e))?;
        Ok(visible
            .iter()
            .rev()
            .filter(|m| m.role == Role::Assistant && !m.compressed)
            .map(crate::message::Message::text)
            .find(|text| !text.trim().is_empty())
            .map_or(Value::Null, Value::String))
    }

    async fn message(&self, ctx: &ToolContext, args: MessageAgentArgs) -> Result<Value, ToolError> {
        let chat = self.descendant(ctx, args.chat_id).await?;
        let busy = if args.interrupt { BusyBehavior::Interrupt } else { BusyBehavior::Queue };
        let sent = self
            .store
            .send_message(chat.id, SendMessage::text(args.message).with_busy(busy))
            .await
            .map_err(|e| store_error(&e))?;
        let delivery = match sent.delivery {
            Delivery::Inserted(_) => "delivered",
            Delivery::Queued(_) => "queued",
            Delivery::AfterStop => "delivered after the current step stops",
        };
        Ok(json!({"chat_id": chat.id, "delivery": delivery, "status": sent.chat.status}))
    }

    async fn close(&self, ctx: &ToolContext, args: CloseAgentArgs) -> Result<Value, ToolError> {
        let chat = self.descendant(ctx, args.chat_id).await?;
        // Pausing stops a running turn and keeps pending work from starting; a finished
        // chat cannot be paused, and need not be.
        match self.store.pause(chat.id).await {
            Ok(_) | Err(StoreError::InvalidTransition { .. }) => {}
            Err(err) => return Err(store_error(&err)),
        }
        self.store.set_archived(chat.id, true).await.map_err(|e| store_error(&e))?;
        Ok(json!({"chat_id": chat.id, "closed": true}))
    }
}

/// The `spawn_agent` tool (offered to root chats only).
#[derive(Clone)]
pub(crate) struct SpawnAgent(Agents);

#[async_trait::async_trait]
impl TypedTool for SpawnAgent {
    type Args = SpawnAgentArgs;
    fn name(&self) -> &str {
        "spawn_agent"
    }
    fn description(&self) -> &str {
        "Start a sub-agent on a task; it works in the background in its own chat (and this \
     chat's workspace). Returns its chat id for wait_agent."
    }
    fn root_only(&self) -> bool {
        true
    }
    fn child_refusal(&self) -> &str {
        CHILD_CANNOT_SPAWN
    }
    async fn call(&self, ctx: &ToolContext, args: SpawnAgentArgs) -> Result<Value, ToolError> {
        self.0.spawn(ctx, args).await
    }
}
/// The `wait_agent` tool (offered to root chats only).
#[derive(Clone)]
pub(crate) struct WaitAgent(Agents);

#[async_trait::async_trait]
impl TypedTool for WaitAgent {
    type Args = WaitAgentArgs;
    fn name(&self) -> &str {
        "wait_agent"
    }
    fn description(&self) -> &str {
        "Wait for a sub-agent to finish and return its final report."
    }
    fn root_only(&self) -> bool {
        true
    }
    fn child_refusal(&self) -> &str {
        CHILD_CANNOT_MANAGE
    }
    fn idempotent(&self) -> bool {
        true
    }
    async fn call(&self, ctx: &ToolContext, args: WaitAgentArgs) -> Result<Value, ToolError> {
        self.0.wait(ctx, args).await
    }
}
/// The `message_agent` tool (offered to root chats only).
#[derive(Clone)]
pub(crate) struct MessageAgent(Agents);

#[async_trait::async_trait]
impl TypedTool for MessageAgent {
    type Args = MessageAgentArgs;
    fn name(&self) -> &str {
        "message_agent"
    }
    fn description(&self) -> &str {
        "Send a sub-agent a message: queued behind its current work, or interrupting it."
    }
    fn root_only(&self) -> bool {
        true
    }
    fn child_refusal(&self) -> &str {
        CHILD_CANNOT_MANAGE
    }
    async fn call(&self, ctx: &ToolContext, args: MessageAgentArgs) -> Result<Value, ToolError> {
        self.0.message(ctx, args).await
    }
}
/// The `close_agent` tool (offered to root chats only).
#[derive(Clone)]
pub(crate) struct CloseAgent(Agents);

#[async_trait::async_trait]
impl TypedTool for CloseAgent {
    type Args = CloseAgentArgs;
    fn name(&self) -> &str {
        "close_agent"
    }
    fn description(&self) -> &str {
        "Stop a sub-agent and archive its chat."
    }
    fn root_only(&self) -> bool {
        true
    }
    fn child_refusal(&self) -> &str {
        CHILD_CANNOT_MANAGE
    }
    async fn call(&self, ctx: &ToolContext, args: CloseAgentArgs) -> Result<Value, ToolError> {
        self.0.close(ctx, args).await
    }
}

impl ToolSet {
    /// The four sub-agent tools (`spawn_agent`, `wait_agent`, `message_agent`,
    /// `close_agent`, [BEHAVIOUR §13](crate::behaviour#13-tools)) over `store`,
    /// behaving as `options` says (`AgentOptions::default()` for the documented defaults).
    #[must_use]
    pub fn agents(store: Arc<dyn ChatStore>, options: AgentOptions) -> ToolSet {
        agent_tools(store, options)
    }
}

/// [`ToolSet::agents`].
fn agent_tools(store: Arc<dyn ChatStore>, mut options: AgentOptions) -> ToolSet {
    options.poll = options.poll.max(Duration::from_millis(1));
    let shared = Agents { store, options };
    ToolSet::new()
        .with(Arc::new(Typed(SpawnAgent(shared.clone()))))
        .with(Arc::new(Typed(WaitAgent(shared.clone()))))
        .with(Arc::new(Typed(MessageAgent(shared.clone()))))
        .with(Arc::new(Typed(CloseAgent(shared))))
}
