//! Tools (SPEC §13): the [`Tool`] trait, the [`ToolSet`] that runs a step's calls, the
//! [`Workspace`] a chat's tools act on, and the built-in workspace tools.
//!
//! Tool failures never fail a turn: an unknown tool, a tool's own error and a panicking
//! tool all become error results the model sees.

mod builtin;
mod set;
mod workspace;

use async_trait::async_trait;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use builtin::{EditFiles, Execute, ReadFile, WriteFile, workspace_tools};
pub use set::ToolSet;
pub use workspace::{
    EXECUTE_TIMEOUT, ExecOutput, FileEdit, LocalWorkspace, MAX_OUTPUT_BYTES, Workspace,
    truncate_utf8,
};

use crate::ids::{ChatId, UserId};

/// What a tool knows about the call it serves. Tools act as the chat's owner.
#[derive(Debug, Clone)]
pub struct ToolContext {
    /// The chat the call belongs to.
    pub chat_id: ChatId,
    /// The chat's owner.
    pub owner_id: UserId,
    /// Fires when the turn is interrupted or shut down.
    pub cancel: CancellationToken,
}

/// A tool's failure, shown to the model as an error result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ToolError(pub String);

impl ToolError {
    /// An error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        ToolError(message.into())
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

    /// Runs one call.
    ///
    /// # Errors
    /// A [`ToolError`] the model will see as an error result.
    async fn run(&self, ctx: &ToolContext, args: Value) -> Result<Value, ToolError>;
}

#[cfg(test)]
mod tests;
