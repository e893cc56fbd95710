//! Provisioning ([BEHAVIOUR §13](crate::behaviour#13-tools)): the [`Provisioner`] trait, a local implementation where
//! templates are directories, and the `list_templates`, `read_template` and
//! `create_workspace` tools (root chats only).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ToolContext, ToolError, ToolSet, Typed, TypedTool, Workspace};
use crate::chat::ChatUpdate;
use crate::ids::{ChatId, UserId, WorkspaceId};
use crate::store::ChatStore;

/// What a child chat's provisioning call gets.
pub(crate) const CHILD_CANNOT_PROVISION: &str = "delegated chats cannot create workspaces";

/// A template in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateSummary {
    /// Its id (what `read_template` and `create_workspace` take).
    pub id: String,
    /// Its display name.
    pub name: String,
    /// What it is for.
    pub description: String,
}

/// A parameter a template accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TemplateParameter {
    /// The parameter's name.
    pub name: String,
    /// What it means.
    #[serde(default)]
    pub description: String,
    /// Its value when none is given.
    #[serde(default)]
    pub default: Option<String>,
    /// Whether a value (or a default) is required.
    #[serde(default)]
    pub required: bool,
}

/// A template's details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    /// Its id, name and description.
    #[serde(flatten)]
    pub summary: TemplateSummary,
    /// The parameters it accepts.
    pub parameters: Vec<TemplateParameter>,
    /// Its files (relative paths, at most `LocalProvisioner::MAX_LISTED_FILES` for the
    /// local provisioner).
    pub files: Vec<String>,
}

/// A request to create a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct NewWorkspace {
    /// The template.
    pub template_id: String,
    /// A display name.
    pub name: Option<String>,
    /// Parameter values.
    pub parameters: BTreeMap<String, String>,
}

impl NewWorkspace {
    /// A workspace from `template_id`.
    #[must_use]
    pub fn new(template_id: impl Into<String>) -> Self {
        NewWorkspace { template_id: template_id.into(), ..NewWorkspace::default() }
    }
}

/// A workspace that exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisionedWorkspace {
    /// Its id (bound to the chat as `workspace_id`).
    pub workspace_id: WorkspaceId,
    /// Its display name.
    pub name: String,
    /// The template it came from.
    pub template_id: String,
    /// The parameter values it was created with (defaults applied).
    pub parameters: BTreeMap<String, String>,
}

/// Creates workspaces for chats (the host application's infrastructure).
#[async_trait]
pub trait Provisioner: Send + Sync + 'static {
    /// The templates `owner` may use, filtered by `query` (case-insensitive, on id, name
    /// and description) when given.
    ///
    /// # Errors
    /// A [`ToolError`] the model sees.
    async fn list_templates(
        &self,
        owner: UserId,
        query: Option<&str>,
    ) -> Result<Vec<TemplateSummary>, ToolError>;

    /// One template's details.
    ///
    /// # Errors
    /// An unknown template.
    async fn read_template(&self, owner: UserId, id: &str) -> Result<Template, ToolError>;

    /// Creates the workspace of `chat`. Idempotent per chat: a second call for the same chat
    /// returns the workspace the first one created.
    ///
    /// # Errors
    /// An unknown template, bad parameters, or a failure to create it.
    async fn create_workspace(
        &self,
        chat: ChatId,
        owner: UserId,
        request: &NewWorkspace,
    ) -> Result<ProvisionedWorkspace, ToolError>;

    /// Opens a workspace for the file and command tools.
    ///
    /// # Errors
    /// An unknown workspace.
    async fn open_workspace(&self, id: WorkspaceId) -> Result<Arc<dyn Workspace>, ToolError>;

    /// Who owns workspace `id`: `None` when the provisioner does not know it. Chats are
    /// bound only to workspaces their owner owns ([BEHAVIOUR §11](crate::behaviour#11-authorization)): `Chatd::create_chat` refuses a
    /// user's `workspace_id` unless this confirms the user, and [`ChatWorkspaces`] opens a
    /// chat's workspace only if this names the chat's owner. The default knows no
    /// workspace, so only the system actor can bind one.
    ///
    /// # Errors
    /// A failure to look the workspace up.
    ///
    /// [`ChatWorkspaces`]: super::ChatWorkspaces
    async fn workspace_owner(&self, id: WorkspaceId) -> Result<Option<UserId>, ToolError> {
        let _ = id;
        Ok(None)
    }

    /// Which workspace agent `agent` runs in: `None` when the provisioner does not know
    /// it. A user's chat names an agent only if this is the chat's workspace, which the user
    /// owns (`Chatd::create_chat`, [BEHAVIOUR §11](crate::behaviour#11-authorization)). The default knows no agent, so only the
    /// system actor can name one.
    ///
    /// # Errors
    /// A failure to look the agent up.
    async fn agent_workspace(
        &self,
        agent: crate::WorkspaceAgentId,
    ) -> Result<Option<WorkspaceId>, ToolError> {
        let _ = agent;
        Ok(None)
    }
}

/// Arguments of `list_templates`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListTemplatesArgs {
    /// Only templates whose id, name or description contains this text.
    query: Option<String>,
}

/// Arguments of `read_template`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReadTemplateArgs {
    /// The template's id.
    template_id: String,
}

/// Arguments of `create_workspace`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateWorkspaceArgs {
    /// The template's id.
    template_id: String,
    /// A display name for the workspace.
    name: Option<String>,
    /// Values of the template's parameters.
    #[serde(default)]
    parameters: BTreeMap<String, String>,
}

/// What the provisioning tools share.
#[derive(Clone)]
pub(super) struct Provisioning {
    store: Arc<dyn ChatStore>,
    provisioner: Arc<dyn Provisioner>,
}

/// The `list_templates` tool (offered to root chats only).
#[derive(Clone)]
pub(crate) struct ListTemplates(Provisioning);

#[async_trait::async_trait]
impl TypedTool for ListTemplates {
    type Args = ListTemplatesArgs;
    fn name(&self) -> &str {
        "list_templates"
    }
    fn description(&self) -> &str {
        "List the workspace templates available, optionally filtered by a search text."
    }
    fn root_only(&self) -> bool {
        true
    }
    fn child_refusal(&self) -> &str {
        CHILD_CANNOT_PROVISION
    }
    fn idempotent(&self) -> bool {
        true
    }
    async fn call(&self, ctx: &ToolContext, args: ListTemplatesArgs) -> Result<Value, ToolError> {
        self.0.list(ctx, args).await
    }
}
/// The `read_template` tool (offered to root chats only).
#[derive(Clone)]
pub(crate) struct ReadTemplate(Provisioning);

#[async_trait::async_trait]
impl TypedTool for ReadTemplate {
    type Args = ReadTemplateArgs;
    fn name(&self) -> &str {
        "read_template"
    }
    fn description(&self) -> &str {
        "Show a workspace template's details: its parameters and files."
    }
    fn root_only(&self) -> bool {
        true
    }
    fn child_refusal(&self) -> &str {
        CHILD_CANNOT_PROVISION
    }
    fn idempotent(&self) -> bool {
        true
    }
    async fn call(&self, ctx: &ToolContext, args: ReadTemplateArgs) -> Result<Value, ToolError> {
        self.0.read(ctx, args).await
    }
}
/// The `create_workspace` tool (offered to root chats only).
#[derive(Clone)]
pub(crate) struct CreateWorkspace(Provisioning);

#[async_trait::async_trait]
impl TypedTool for CreateWorkspace {
    type Args = CreateWorkspaceArgs;
    fn name(&self) -> &str {
        "create_workspace"
    }
    fn description(&self) -> &str {
        "Create this chat's workspace from a template and bind it to the chat (a chat has one \
     workspace: calling again returns it)."
    }
    fn root_only(&self) -> bool {
        true
    }
    fn child_refusal(&self) -> &str {
        CHILD_CANNOT_PROVISION
    }
    fn idempotent(&self) -> bool {
        true
    }
    async fn call(&self, ctx: &ToolContext, args: CreateWorkspaceArgs) -> Result<Value, ToolError> {
        self.0.create(ctx, args).await
    }
}

fn to_value<T: Serialize>(value: &T) -> Result<Value, ToolError> {
    serde_json::to_value(value).map_err(|err| ToolError::new(err.to_string()))
}

impl Provisioning {
    async fn list(&self, ctx: &ToolContext, args: ListTemplatesArgs) -> Result<Value, ToolError> {
        let templates =
            self.provisioner.list_templates(ctx.owner_id, args.query.as_deref()).await?;
        Ok(json!({ "templates": to_value(&templates)? }))
    }

    async fn read(&self, ctx: &ToolContext, args: ReadTemplateArgs) -> Result<Value, ToolError> {
        to_value(&self.provisioner.read_template(ctx.owner_id, &args.template_id).await?)
    }

    async fn create(
        &self,
        ctx: &ToolContext,
        args: CreateWorkspaceArgs,
    ) -> Result<Value, ToolError> {
        let chat = self
            .store
            .get_chat(ctx.chat_id)
            .await
            .map_err(|err| ToolError::new(format!("cannot read the chat: {err}")))?;
        if let Some(existing) = chat.workspace_id {
            return Ok(json!({
                "workspace_id": existing,
                "created": false,
                "note": "this chat already has a workspace; it was kept",
            }));
        }
        let request = NewWorkspace {
            template_id: args.template_id,
            name: args.name,
            parameters: args.parameters,
        };
        let workspace =
            self.provisioner.create_workspace(ctx.chat_id, ctx.owner_id, &request).await?;
        self.store
            .update_chat(ctx.chat_id, ChatUpdate::workspace(Some(workspace.workspace_id), None))
            .await
            .map_err(|err| {
                ToolError::new(format!("cannot bind the workspace to the chat: {err}"))
            })?;
        let mut result = to_value(&workspace)?;
        result["created"] = Value::Bool(true);
        Ok(result)
    }
}

impl ToolSet {
    /// The three provisioning tools (`list_templates`, `read_template`,
    /// `create_workspace`), which create workspaces with `provisioner` and bind them to
    /// chats in `store`.
    #[must_use]
    pub fn provisioning(store: Arc<dyn ChatStore>, provisioner: Arc<dyn Provisioner>) -> ToolSet {
        provisioning_tools(store, provisioner)
    }
}

/// [`ToolSet::provisioning`].
fn provisioning_tools(store: Arc<dyn ChatStore>, provisioner: Arc<dyn Provisioner>) -> ToolSet {
    let shared = Provisioning { store, provisioner };
    ToolSet::new()
        .with(Arc::new(Typed(ListTemplates(shared.clone()))))
        .with(Arc::new(Typed(ReadTemplate(shared.clone()))))
        .with(Arc::new(Typed(CreateWorkspace(shared))))
}
