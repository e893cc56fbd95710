//! The built-in workspace tools: `read_file`, `write_file`, `edit_files`, `execute`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::source::{SharedWorkspace, WorkspaceSource};
use super::workspace::{ExecRequest, MAX_EXECUTE_TIMEOUT};
use super::{FileEdit, ToolContext, ToolError, Typed, TypedTool, Workspace};

/// Arguments of `read_file`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReadFileArgs {
    /// The file, relative to the workspace.
    path: String,
    /// The first line to return (1-based).
    offset: Option<usize>,
    /// How many lines to return.
    limit: Option<usize>,
}

/// Arguments of `write_file`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WriteFileArgs {
    /// The file, relative to the workspace.
    path: String,
    /// Its new content.
    content: String,
}

/// One file's edits.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileEdits {
    /// The file, relative to the workspace.
    path: String,
    /// Search-and-replace edits, applied in order, all or none.
    edits: Vec<FileEdit>,
}

/// Arguments of `edit_files`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EditFilesArgs {
    /// The files to edit.
    files: Vec<FileEdits>,
}

/// Arguments of `execute`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExecuteArgs {
    /// A shell command.
    command: String,
    /// Seconds before the command is killed (default 10, at most 600).
    timeout: Option<f64>,
    /// The directory to run in, relative to the workspace.
    workdir: Option<String>,
}

/// The `read_file` tool, on the workspace its source gives the chat.
pub(crate) struct ReadFile(pub(crate) Arc<dyn WorkspaceSource>);

#[async_trait]
impl TypedTool for ReadFile {
    type Args = ReadFileArgs;
    fn name(&self) -> &str {
        "read_file"
    }
    fn description(&self) -> &str {
        "Read a text file of the workspace, optionally a range of lines (at most 256 KiB per call). \
     An image (PNG, JPEG, GIF, WebP) or PDF is attached for you to see instead."
    }
    fn idempotent(&self) -> bool {
        true
    }
    async fn call(&self, ctx: &ToolContext, args: ReadFileArgs) -> Result<Value, ToolError> {
        let workspace = self.0.workspace(ctx).await?;
        Self::on(ctx, workspace.as_ref(), args).await
    }
}

/// The `write_file` tool, on the workspace its source gives the chat.
pub(crate) struct WriteFile(pub(crate) Arc<dyn WorkspaceSource>);

#[async_trait]
impl TypedTool for WriteFile {
    type Args = WriteFileArgs;
    fn name(&self) -> &str {
        "write_file"
    }
    fn description(&self) -> &str {
        "Write a file of the workspace, creating parent directories."
    }
    async fn call(&self, ctx: &ToolContext, args: WriteFileArgs) -> Result<Value, ToolError> {
        let workspace = self.0.workspace(ctx).await?;
        Self::on(ctx, workspace.as_ref(), args).await
    }
}

/// The `edit_files` tool, on the workspace its source gives the chat.
pub(crate) struct EditFiles(pub(crate) Arc<dyn WorkspaceSource>);

#[async_trait]
impl TypedTool for EditFiles {
    type Args = EditFilesArgs;
    fn name(&self) -> &str {
        "edit_files"
    }
    fn description(&self) -> &str {
        "Apply search-and-replace edits to files; each file's edits apply all or none."
    }
    async fn call(&self, ctx: &ToolContext, args: EditFilesArgs) -> Result<Value, ToolError> {
        let workspace = self.0.workspace(ctx).await?;
        Self::on(ctx, workspace.as_ref(), args).await
    }
}

/// The `execute` tool, on the workspace its source gives the chat.
pub(crate) struct Execute(pub(crate) Arc<dyn WorkspaceSource>);

#[async_trait]
impl TypedTool for Execute {
    type Args = ExecuteArgs;
    fn name(&self) -> &str {
        "execute"
    }
    fn description(&self) -> &str {
        "Run a non-interactive shell command in the workspace."
    }
    async fn call(&self, ctx: &ToolContext, args: ExecuteArgs) -> Result<Value, ToolError> {
        let workspace = self.0.workspace(ctx).await?;
        Self::on(ctx, workspace.as_ref(), args).await
    }
}

impl ReadFile {
    async fn on(
        ctx: &ToolContext,
        ws: &dyn Workspace,
        args: ReadFileArgs,
    ) -> Result<Value, ToolError> {
        if let Some(attached) = Self::attach_image(ctx, ws, &args.path).await? {
            return Ok(attached);
        }
        let window = ws.read_file(ctx, &args.path, args.offset, args.limit).await?;
        let mut result = json!({"content": window.content});
        if window.truncated {
            result["truncated"] = Value::Bool(true);
            result["note"] = Value::String(match window.next_offset {
                Some(line) => {
                    format!("the window was cut at its size cap; read on with offset {line}")
                }
                None => "the window was cut at its size cap".to_owned(),
            });
        }
        Ok(result)
    }
}

/// Whether `path` names an image or PDF by its extension (the bytes decide what it is).
fn looks_attachable(path: &str) -> bool {
    let extension = path.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase());
    matches!(extension.as_deref(), Some("png" | "jpg" | "jpeg" | "gif" | "webp" | "pdf"))
}

impl ReadFile {
    /// An image or PDF of the workspace attached for the model to see ([BEHAVIOUR §19](crate::behaviour#19-attachments)): the
    /// result names it and lists it in `attachments`. `None` when the path does not name one,
    /// its bytes are not one, or nothing can be attached here (then it is read as text).
    async fn attach_image(
        ctx: &ToolContext,
        ws: &dyn Workspace,
        path: &str,
    ) -> Result<Option<Value>, ToolError> {
        if ctx.files.is_none() || !looks_attachable(path) {
            return Ok(None);
        }
        let max = crate::store::Limits::default().max_file_bytes;
        let Some(bytes) = ws.read_bytes(ctx, path, max).await? else { return Ok(None) };
        if crate::store::files::sniff(&bytes).is_none_or(|media| media == "text/plain") {
            return Ok(None);
        }
        let dimensions = crate::store::files::image_dimensions(&bytes);
        let meta = ctx.attach(path, bytes).await?;
        let mut result = json!({"path": path, "media_type": meta.media_type, "size": meta.size});
        if let (Some((width, height)), true) = (dimensions, meta.media_type.starts_with("image/")) {
            result["width"] = json!(width);
            result["height"] = json!(height);
        }
        result["note"] = json!("the file is attached below for you to see");
        Ok(Some(crate::store::files::with_attachments(result, &[meta])))
    }
}

impl WriteFile {
    async fn on(
        ctx: &ToolContext,
        ws: &dyn Workspace,
        args: WriteFileArgs,
    ) -> Result<Value, ToolError> {
        ws.write_file(ctx, &args.path, &args.content).await?;
        Ok(json!({"written": args.path, "bytes": args.content.len()}))
    }
}

impl EditFiles {
    async fn on(
        ctx: &ToolContext,
        ws: &dyn Workspace,
        args: EditFilesArgs,
    ) -> Result<Value, ToolError> {
        let mut edited = Vec::new();
        for file in &args.files {
            ws.edit_file(ctx, &file.path, &file.edits).await?;
            edited.push(file.path.clone());
        }
        Ok(json!({"edited": edited}))
    }
}

/// The timeout a model asked for (`None`: the workspace's default), at most
/// [`MAX_EXECUTE_TIMEOUT`] before the workspace clamps it to its own maximum; a negative or
/// non-finite number is an error.
fn execute_timeout(seconds: Option<f64>) -> Result<Option<Duration>, ToolError> {
    match seconds {
        None => Ok(None),
        Some(s) if s.is_finite() && s > 0.0 => {
            Ok(Some(Duration::from_secs_f64(s.min(MAX_EXECUTE_TIMEOUT.as_secs_f64()))))
        }
        Some(s) => Err(ToolError::new(format!(
            "invalid arguments: timeout must be a positive number of seconds (at most {}), not {s}",
            MAX_EXECUTE_TIMEOUT.as_secs()
        ))),
    }
}

impl Execute {
    async fn on(
        ctx: &ToolContext,
        ws: &dyn Workspace,
        args: ExecuteArgs,
    ) -> Result<Value, ToolError> {
        let mut request = ExecRequest::new(args.command);
        request.timeout = execute_timeout(args.timeout)?;
        request.workdir = args.workdir;
        let output = ws.execute(ctx, &request).await?;
        let value = serde_json::to_value(&output).map_err(|err| ToolError::new(err.to_string()))?;
        if output.timed_out {
            // BEHAVIOUR §13: a timeout is an error result with `exit_code: -1` that keeps the
            // partial output.
            let after = request.timeout.map_or_else(
                || "the workspace's default timeout".to_owned(),
                |t| format!("{}s", t.as_secs_f64()),
            );
            return Err(ToolError::new(format!("command timed out after {after} (exit_code: -1)"))
                .with_details(value));
        }
        Ok(value)
    }
}

impl super::ToolSet {
    /// The four workspace tools (`read_file`, `write_file`, `edit_files`, `execute`,
    /// [BEHAVIOUR §13](crate::behaviour#13-tools)) over one `workspace` shared by every chat.
    #[must_use]
    pub fn workspace(workspace: Arc<dyn Workspace>) -> Self {
        Self::workspace_from(Arc::new(SharedWorkspace(workspace)))
    }

    /// The four workspace tools, each call on the workspace `source` gives its chat (for
    /// example [`ChatWorkspaces`](super::ChatWorkspaces): the one the chat was provisioned).
    #[must_use]
    pub fn workspace_from(source: Arc<dyn WorkspaceSource>) -> Self {
        Self::new()
            .with(Arc::new(Typed(ReadFile(Arc::clone(&source)))))
            .with(Arc::new(Typed(WriteFile(Arc::clone(&source)))))
            .with(Arc::new(Typed(EditFiles(Arc::clone(&source)))))
            .with(Arc::new(Typed(Execute(source))))
    }
}
