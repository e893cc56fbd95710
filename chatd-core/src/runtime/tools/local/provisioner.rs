//! [`LocalProvisioner`]: workspaces as directories of this machine, copied from template
//! directories.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use uuid::Uuid;

use super::super::provision::{
    NewWorkspace, ProvisionedWorkspace, Provisioner, Template, TemplateParameter, TemplateSummary,
};
use super::super::{ToolError, Workspace};
use super::{LocalWorkspace, SandboxPolicy};
use crate::ids::{ChatId, UserId, WorkspaceId};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Templates are the directories of `templates` (an optional `template.json` inside gives
/// `name`, `description` and `parameters`); a workspace is a copy of one in
/// `workspaces/<workspace id>`. Workspace ids are random. Each workspace's record (owner,
/// chat, template, parameters) and the chat → workspace index live in
/// `workspaces/.chatd/`, outside every workspace, where neither the file tools nor a
/// confined command can change them. The copy is made in a staging directory and renamed
/// into place, and the chat's index entry is created exclusively, so creation is
/// idempotent per chat even across crashes and processes. Symbolic links in a template
/// are never followed (not copied, and a template that is itself a link is refused).
#[derive(Debug, Clone)]
pub struct LocalProvisioner {
    templates: PathBuf,
    workspaces: PathBuf,
    sandbox: SandboxPolicy,
}

/// The metadata file of a template directory (not copied into workspaces).
const TEMPLATE_FILE: &str = "template.json";
/// The directory, beside the workspaces, holding their records and the chat index.
const REGISTRY_DIR: &str = ".chatd";

/// What the local provisioner records about a workspace (outside it).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct WorkspaceRecord {
    owner_id: UserId,
    chat_id: ChatId,
    #[serde(flatten)]
    workspace: ProvisionedWorkspace,
}

#[derive(Debug, Default, Deserialize)]
struct TemplateFile {
    name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    parameters: Vec<TemplateParameter>,
}

fn io(context: &str, err: &std::io::Error) -> ToolError {
    ToolError::new(format!("{context}: {err}"))
}

fn valid_template_id(id: &str) -> Result<(), ToolError> {
    let ok = !id.is_empty()
        && !id.starts_with('.')
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok { Ok(()) } else { Err(ToolError::new(format!("unknown template: {id}"))) }
}

impl LocalProvisioner {
    /// The most files `read_template` lists.
    pub const MAX_LISTED_FILES: usize = 200;

    /// Templates in `templates`, workspaces created in `workspaces` (created if missing),
    /// opened under the default [`SandboxPolicy`].
    ///
    /// # Errors
    /// When `templates` is not a directory or `workspaces` cannot be created.
    pub fn new(
        templates: impl Into<PathBuf>,
        workspaces: impl Into<PathBuf>,
    ) -> std::io::Result<Self> {
        let templates = templates.into();
        if !templates.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("template directory {} does not exist", templates.display()),
            ));
        }
        let workspaces = workspaces.into();
        std::fs::create_dir_all(workspaces.join(REGISTRY_DIR).join("records"))?;
        std::fs::create_dir_all(workspaces.join(REGISTRY_DIR).join("chats"))?;
        Ok(LocalProvisioner { templates, workspaces, sandbox: SandboxPolicy::default() })
    }

    /// Opens workspaces with `policy` (how their commands are confined).
    #[must_use]
    pub fn with_sandbox(mut self, policy: SandboxPolicy) -> Self {
        self.sandbox = policy;
        self
    }

    /// The directory of a workspace.
    #[must_use]
    pub fn workspace_dir(&self, id: WorkspaceId) -> PathBuf {
        self.workspaces.join(id.0.to_string())
    }

    fn record_path(&self, id: WorkspaceId) -> PathBuf {
        self.workspaces.join(REGISTRY_DIR).join("records").join(format!("{}.json", id.0))
    }

    fn chat_index(&self, chat: ChatId) -> PathBuf {
        self.workspaces.join(REGISTRY_DIR).join("chats").join(chat.0.to_string())
    }

    fn record(&self, id: WorkspaceId) -> Result<Option<WorkspaceRecord>, ToolError> {
        match std::fs::read(self.record_path(id)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| ToolError::new(format!("bad workspace record: {e}"))),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(io("cannot read the workspace record", &err)),
        }
    }

    /// The workspace already created for `chat`, if any.
    fn existing(&self, chat: ChatId) -> Result<Option<WorkspaceRecord>, ToolError> {
        let raw = match std::fs::read_to_string(self.chat_index(chat)) {
            Ok(raw) => raw,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(io("cannot read the workspace index", &err)),
        };
        let id = Uuid::parse_str(raw.trim())
            .map_err(|e| ToolError::new(format!("bad workspace index entry: {e}")))?;
        self.record(WorkspaceId(id))
    }

    fn load(&self, id: &str) -> Result<Template, ToolError> {
        valid_template_id(id)?;
        let dir = self.templates.join(id);
        // A template that is a link could point anywhere: only real directories count.
        if !std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
            return Err(ToolError::new(format!("unknown template: {id}")));
        }
        let meta_path = dir.join(TEMPLATE_FILE);
        let meta_is_file = std::fs::symlink_metadata(&meta_path).map(|m| m.is_file());
        let meta = match meta_is_file.and_then(|is_file| {
            if is_file {
                std::fs::read(&meta_path)
            } else {
                Err(std::io::Error::new(std::io::ErrorKind::NotFound, "not a regular file"))
            }
        }) {
            Ok(bytes) => serde_json::from_slice::<TemplateFile>(&bytes).map_err(|err| {
                ToolError::new(format!("template {id}: bad {TEMPLATE_FILE}: {err}"))
            })?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => TemplateFile::default(),
            Err(err) => return Err(io(&format!("template {id}"), &err)),
        };
        let mut files = Vec::new();
        list_files(&dir, Path::new(""), &mut files)?;
        files.retain(|f| f != TEMPLATE_FILE);
        files.sort();
        files.truncate(Self::MAX_LISTED_FILES);
        Ok(Template {
            summary: TemplateSummary {
                id: id.to_owned(),
                name: meta.name.unwrap_or_else(|| id.to_owned()),
                description: meta.description,
            },
            parameters: meta.parameters,
            files,
        })
    }

    fn create_blocking(
        &self,
        chat: ChatId,
        owner: UserId,
        request: &NewWorkspace,
    ) -> Result<ProvisionedWorkspace, ToolError> {
        if let Some(existing) = self.existing(chat)? {
            return Ok(existing.workspace);
        }
        let template = self.load(&request.template_id)?;
        let parameters = resolve_parameters(&template.parameters, &request.parameters)?;
        let id = WorkspaceId(Uuid::new_v4());
        let record = WorkspaceRecord {
            owner_id: owner,
            chat_id: chat,
            workspace: ProvisionedWorkspace {
                workspace_id: id,
                name: request.name.clone().unwrap_or_else(|| template.summary.name.clone()),
                template_id: template.summary.id.clone(),
                parameters,
            },
        };
        let target = self.workspace_dir(id);
        let staging = self.workspaces.join(REGISTRY_DIR).join(format!("staging-{}", id.0));
        let built = (|| {
            std::fs::create_dir(&staging).map_err(|e| io("cannot create the workspace", &e))?;
            copy_tree(&self.templates.join(&record.workspace.template_id), &staging)?;
            let bytes =
                serde_json::to_vec_pretty(&record).map_err(|e| ToolError::new(e.to_string()))?;
            std::fs::write(self.record_path(id), bytes)
                .map_err(|e| io("cannot write the workspace record", &e))?;
            std::fs::rename(&staging, &target).map_err(|e| io("cannot create the workspace", &e))
        })();
        let discard = || {
            let _ = std::fs::remove_dir_all(&staging);
            let _ = std::fs::remove_dir_all(&target);
            let _ = std::fs::remove_file(self.record_path(id));
        };
        if let Err(err) = built {
            discard();
            return Err(err);
        }
        // The chat's index entry is created exclusively: of two concurrent creations for one
        // chat, the first to write it wins and the other discards its copy.
        let claimed = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.chat_index(chat))
            .and_then(|mut file| std::io::Write::write_all(&mut file, id.0.to_string().as_bytes()));
        match claimed {
            Ok(()) => Ok(record.workspace),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                discard();
                // The winner may still be writing its id: read it back a few times.
                for _ in 0..50 {
                    if let Ok(Some(existing)) = self.existing(chat) {
                        return Ok(existing.workspace);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(ToolError::new("the chat's workspace is being created elsewhere; try again"))
            }
            Err(err) => {
                discard();
                Err(io("cannot record the workspace", &err))
            }
        }
    }
}

/// Checks `given` against the template's parameters and applies defaults.
fn resolve_parameters(
    declared: &[TemplateParameter],
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ToolError> {
    if let Some(unknown) = given.keys().find(|k| !declared.iter().any(|p| &p.name == *k)) {
        let known: Vec<&str> = declared.iter().map(|p| p.name.as_str()).collect();
        return Err(ToolError::new(format!(
            "unknown parameter {unknown:?} (the template takes: {})",
            if known.is_empty() { "none".to_owned() } else { known.join(", ") }
        )));
    }
    let mut values = BTreeMap::new();
    for parameter in declared {
        match given.get(&parameter.name).or(parameter.default.as_ref()) {
            Some(value) => {
                values.insert(parameter.name.clone(), value.clone());
            }
            None if parameter.required => {
                return Err(ToolError::new(format!("parameter {:?} is required", parameter.name)));
            }
            None => {}
        }
    }
    Ok(values)
}

fn list_files(root: &Path, relative: &Path, out: &mut Vec<String>) -> Result<(), ToolError> {
    let entries =
        std::fs::read_dir(root.join(relative)).map_err(|e| io("cannot list the template", &e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io("cannot list the template", &e))?;
        let kind = entry.file_type().map_err(|e| io("cannot list the template", &e))?;
        let path = relative.join(entry.file_name());
        if kind.is_dir() {
            list_files(root, &path, out)?;
        } else if kind.is_file() {
            out.push(path.to_string_lossy().into_owned());
        }
        if out.len() > LocalProvisioner::MAX_LISTED_FILES {
            return Ok(());
        }
    }
    Ok(())
}

/// Copies regular files and directories (symbolic links are skipped).
fn copy_tree(from: &Path, to: &Path) -> Result<(), ToolError> {
    let entries = std::fs::read_dir(from).map_err(|e| io("cannot read the template", &e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io("cannot read the template", &e))?;
        let kind = entry.file_type().map_err(|e| io("cannot read the template", &e))?;
        let name = entry.file_name();
        if from.join(&name) == from.join(TEMPLATE_FILE) {
            continue;
        }
        if kind.is_dir() {
            std::fs::create_dir(to.join(&name)).map_err(|e| io("cannot copy the template", &e))?;
            copy_tree(&entry.path(), &to.join(&name))?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), to.join(&name))
                .map_err(|e| io("cannot copy the template", &e))?;
        }
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ToolError> + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| ToolError::new(format!("provisioning failed: {err}")))?
}

#[async_trait]
impl Provisioner for LocalProvisioner {
    async fn list_templates(
        &self,
        _owner: UserId,
        query: Option<&str>,
    ) -> Result<Vec<TemplateSummary>, ToolError> {
        let this = self.clone();
        let query = query.map(str::to_lowercase).filter(|q| !q.trim().is_empty());
        blocking(move || {
            let entries =
                std::fs::read_dir(&this.templates).map_err(|e| io("cannot list templates", &e))?;
            let mut found = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| io("cannot list templates", &e))?;
                let Some(id) = entry.file_name().to_str().map(str::to_owned) else { continue };
                if valid_template_id(&id).is_err() || !entry.path().is_dir() {
                    continue;
                }
                // A template that cannot be loaded (a link, a bad template.json) is skipped.
                let Ok(template) = this.load(&id) else { continue };
                let summary = template.summary;
                let matches = query.as_ref().is_none_or(|q| {
                    [&summary.id, &summary.name, &summary.description]
                        .iter()
                        .any(|field| field.to_lowercase().contains(q.as_str()))
                });
                if matches {
                    found.push(summary);
                }
            }
            found.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(found)
        })
        .await
    }

    async fn read_template(&self, _owner: UserId, id: &str) -> Result<Template, ToolError> {
        let (this, id) = (self.clone(), id.to_owned());
        blocking(move || this.load(&id)).await
    }

    async fn create_workspace(
        &self,
        chat: ChatId,
        owner: UserId,
        request: &NewWorkspace,
    ) -> Result<ProvisionedWorkspace, ToolError> {
        let (this, request) = (self.clone(), request.clone());
        blocking(move || this.create_blocking(chat, owner, &request)).await
    }

    async fn open_workspace(&self, id: WorkspaceId) -> Result<Arc<dyn Workspace>, ToolError> {
        let this = self.clone();
        blocking(move || {
            if this.record(id)?.is_none() {
                return Err(ToolError::new(format!("unknown workspace {id}")));
            }
            let workspace = LocalWorkspace::open_with(this.workspace_dir(id), &this.sandbox)
                .map_err(|err| ToolError::new(format!("workspace {id} cannot be opened: {err}")))?;
            Ok(Arc::new(workspace) as Arc<dyn Workspace>)
        })
        .await
    }

    async fn workspace_owner(&self, id: WorkspaceId) -> Result<Option<UserId>, ToolError> {
        let this = self.clone();
        blocking(move || Ok(this.record(id)?.map(|record| record.owner_id))).await
    }
}

// ----- the tools ----------------------------------------------------------------------
