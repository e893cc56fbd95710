//! Where a chat's workspace comes from: one shared workspace, or the one a chat was
//! provisioned (and its sub-agents inherit).

use std::sync::Arc;

use async_trait::async_trait;

use super::provision::Provisioner;
use super::{ToolContext, ToolError, Workspace};
use crate::store::ChatStore;

/// Gives the workspace tools the workspace of the chat a call belongs to.
#[async_trait]
pub trait WorkspaceSource: Send + Sync + 'static {
    /// The workspace of `ctx`'s chat.
    ///
    /// # Errors
    /// A [`ToolError`] the model sees (for example: the chat has no workspace yet).
    async fn workspace(&self, ctx: &ToolContext) -> Result<Arc<dyn Workspace>, ToolError>;
}

/// One workspace for every chat.
#[derive(Clone)]
pub(crate) struct SharedWorkspace(pub Arc<dyn Workspace>);

impl std::fmt::Debug for SharedWorkspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedWorkspace")
    }
}

#[async_trait]
impl WorkspaceSource for SharedWorkspace {
    async fn workspace(&self, _ctx: &ToolContext) -> Result<Arc<dyn Workspace>, ToolError> {
        Ok(Arc::clone(&self.0))
    }
}

/// The workspace bound to the chat (`chats.workspace_id`), opened by the provisioner.
/// Sub-agents are created with their parent's workspace, so they work in the same one.
#[derive(Clone)]
pub struct ChatWorkspaces {
    store: Arc<dyn ChatStore>,
    provisioner: Arc<dyn Provisioner>,
}

impl std::fmt::Debug for ChatWorkspaces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChatWorkspaces")
    }
}

impl ChatWorkspaces {
    /// Workspaces of chats in `store`, opened by `provisioner`.
    #[must_use]
    pub fn new(store: Arc<dyn ChatStore>, provisioner: Arc<dyn Provisioner>) -> Self {
        ChatWorkspaces { store, provisioner }
    }
}

#[async_trait]
impl WorkspaceSource for ChatWorkspaces {
    async fn workspace(&self, ctx: &ToolContext) -> Result<Arc<dyn Workspace>, ToolError> {
        let read = |err| ToolError::new(format!("cannot read the chat: {err}"));
        let mut chat = self.store.get_chat(ctx.chat_id).await.map_err(read)?;
        // Sub-agents work in their root's workspace, also one created after they were.
        if chat.workspace_id.is_none()
            && let Some(root) = chat.root_chat_id.filter(|root| *root != chat.id)
        {
            chat = self.store.get_chat(root).await.map_err(read)?;
        }
        let Some(workspace) = chat.workspace_id else {
            return Err(ToolError::new(
                "this chat has no workspace yet: pick a template with list_templates, then call create_workspace",
            ));
        };
        // A chat acts as its owner: a workspace bound to it that its owner does not own
        // (however the binding came about) is not opened.
        if self.provisioner.workspace_owner(workspace).await? != Some(ctx.owner_id) {
            return Err(ToolError::new(format!(
                "workspace {workspace} does not belong to this chat's owner"
            )));
        }
        self.provisioner.open_workspace(workspace).await
    }
}
