//! Tools ([BEHAVIOUR §13](crate::behaviour#13-tools)): the [`Tool`] trait, the [`ToolSet`] that runs a step's calls, the
//! [`Workspace`] a chat's tools act on and the built-in workspace tools, the
//! [`Provisioner`] that creates workspaces from templates (with its three tools), and the
//! sub-agent tools.
//!
//! Tool failures never fail a turn: an unknown tool, a tool's own error and a panicking
//! tool all become error results the model sees.

mod agents;
mod builtin;
mod client;
#[cfg(feature = "local-workspace")]
mod local;
#[cfg(feature = "mcp")]
pub mod mcp;
mod policy;
mod provision;
pub mod schema;
mod set;
mod source;
mod typed;
mod workspace;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use agents::AgentOptions;
#[cfg_attr(not(feature = "testing"), allow(unused_imports))] // pinned by `testing::pinned`
pub(crate) use agents::{CHILD_CANNOT_SPAWN, MAX_SUB_AGENTS};
pub use client::ClientTool;
#[cfg(feature = "local-workspace")]
pub use local::{
    Layer, LocalProvisioner, LocalWorkspace, SandboxLayers, SandboxMode, SandboxPolicy,
    SandboxStatus, SandboxUser,
};
#[cfg(feature = "local-workspace")]
#[cfg_attr(not(feature = "testing"), allow(unused_imports))] // pinned by `testing::pinned`
pub(crate) use local::{TERM_GRACE, landlock_abi};
pub use policy::{CallView, PolicyDecision, ToolPolicy, ToolRules};
pub use provision::{
    NewWorkspace, ProvisionedWorkspace, Provisioner, Template, TemplateParameter, TemplateSummary,
};
#[cfg_attr(not(feature = "testing"), allow(unused_imports))] // pinned by `testing::pinned`
pub(crate) use set::MAX_CONCURRENT_CALLS;
pub use set::{Cancelled, ToolSet};
pub use source::{ChatWorkspaces, WorkspaceSource};
pub use typed::{Typed, TypedTool};
#[cfg_attr(not(feature = "testing"), allow(unused_imports))] // pinned by `testing::pinned`
pub(crate) use workspace::{
    EXECUTE_TIMEOUT, MAX_EXECUTE_TIMEOUT, MAX_OUTPUT_BYTES, READ_WINDOW_BYTES,
};
pub use workspace::{ExecOutput, ExecRequest, FileEdit, FileWindow, Workspace};

use crate::chat::Chat;
use crate::ids::{ChatId, UserId};

/// What a tool knows about the call it serves. Tools act as the chat's owner.
#[derive(Debug, Clone)]
pub struct ToolContext {
    /// The chat the call belongs to.
    pub chat_id: ChatId,
    /// The chat's owner.
    pub owner_id: UserId,
    /// Fires when the turn is interrupted, shut down or loses its lease.
    pub cancel: CancellationToken,
    /// Whether the chat is a root chat or a delegated sub-agent (root-only tools refuse a
    /// child).
    pub kind: crate::chat::ChatKind,
    /// Work a call starts that may outlive its future (a process, a blocking thread):
    /// [`ToolSet::run_calls`] waits for all of it before the step goes on, also after a
    /// cancellation, so nothing a cancelled call started acts afterwards.
    pub tasks: TaskTracker,
    /// Where a tool stores the files it attaches to its result ([BEHAVIOUR §19](crate::behaviour#19-attachments)); `None`
    /// when the runtime has no file store.
    pub files: Option<Arc<dyn crate::store::files::FileStore>>,
}

impl ToolContext {
    /// A context for a call in chat `chat_id` owned by `owner_id`.
    #[must_use]
    pub fn new(
        chat_id: ChatId,
        owner_id: UserId,
        kind: crate::chat::ChatKind,
        cancel: CancellationToken,
    ) -> Self {
        ToolContext { chat_id, owner_id, cancel, kind, tasks: TaskTracker::new(), files: None }
    }

    /// The context with `files` as its file store.
    #[must_use]
    pub fn with_files(mut self, files: Option<Arc<dyn crate::store::files::FileStore>>) -> Self {
        self.files = files;
        self
    }

    /// Stores `bytes` as a file of this chat (its type sniffed, [BEHAVIOUR §19](crate::behaviour#19-attachments)) and returns
    /// what to list in the result's `attachments` ([`FileRef::attach`](crate::store::files::FileRef::attach)).
    ///
    /// # Errors
    /// A [`ToolError`] when there is no file store, the bytes are not a file chatd accepts,
    /// the chat is full, or the store fails.
    pub async fn attach(
        &self,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<crate::store::files::FileMeta, ToolError> {
        let Some(files) = &self.files else {
            return Err(ToolError::new("files cannot be attached here: there is no file store"));
        };
        let limits = crate::store::Limits::default();
        let file = crate::store::files::NewFile::new(
            self.owner_id,
            Some(self.chat_id),
            name,
            bytes,
            &limits,
        )
        .map_err(|err| ToolError::new(err.to_string()))?;
        files.put_file(file).await.map_err(|err| match err {
            crate::store::StoreError::Validation { .. } => ToolError::new(err.to_string()),
            _ => ToolError::new("the file could not be stored"),
        })
    }

    /// The context of a call made in `chat`.
    #[must_use]
    pub fn for_chat(chat: &Chat, cancel: CancellationToken) -> Self {
        Self::new(chat.id, chat.owner_id, chat.kind(), cancel)
    }
}

/// A tool's failure, shown to the model as an error result: `{"error": message}` plus the
/// fields of `details` when it is an object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ToolError {
    message: String,
    details: Option<Value>,
}

impl ToolError {
    /// An error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        ToolError { message: message.into(), details: None }
    }

    /// Adds structured details (an object whose fields join the error result).
    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// The message.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error result the model sees.
    #[must_use]
    pub fn to_result(&self) -> Value {
        let mut result = serde_json::Map::new();
        if let Some(Value::Object(details)) = &self.details {
            result.extend(details.clone());
        }
        result.insert("error".to_owned(), Value::String(self.message.clone()));
        Value::Object(result)
    }
}

/// A tool the model can call.
#[async_trait]
pub trait Tool: Send + Sync + 'static {
    /// Its name (unique in a set).
    fn name(&self) -> &str;

    /// What it does, for the model.
    fn description(&self) -> &str;

    /// The JSON schema of its arguments (an object schema).
    fn input_schema(&self) -> Value;

    /// Whether only root chats are offered the tool (provisioning and sub-agent tools:
    /// [BEHAVIOUR §13](crate::behaviour#13-tools)). Such a tool must still refuse a child's call itself, since a model can
    /// name a tool it was not offered.
    fn root_only(&self) -> bool {
        false
    }

    /// Whether providers that can should enforce the schema (OpenAI strict mode). The
    /// schema is converted to strict form when sent; one that cannot be (an open map) is
    /// sent as it is, not strict.
    fn strict(&self) -> bool {
        false
    }

    /// Whether running a call twice is harmless ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes)), so that a call whose worker
    /// died may simply run again. Default `false`: the call is durably marked started before
    /// it runs, and a call whose worker stopped before its result was persisted gets the
    /// in-doubt result instead of running again.
    fn idempotent(&self) -> bool {
        false
    }

    /// Whether the client runs the tool ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes)): its calls never run here, they wait
    /// for the client's result ([`ClientTool`]).
    fn runs_on_client(&self) -> bool {
        false
    }

    /// Runs one call.
    ///
    /// # Errors
    /// A [`ToolError`] the model will see as an error result.
    async fn run(&self, ctx: &ToolContext, args: Value) -> Result<Value, ToolError>;
}

#[cfg(all(test, feature = "local-workspace"))]
mod tests;
