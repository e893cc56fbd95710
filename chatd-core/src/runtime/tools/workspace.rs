//! The [`Workspace`] a chat's tools act on, and [`LocalWorkspace`], a directory on this
//! machine.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use serde::{Deserialize, Serialize};

use super::ToolError;

/// The default `execute` timeout (SPEC §13).
pub const EXECUTE_TIMEOUT: Duration = Duration::from_secs(10);
/// The most output `execute` returns, cut on a UTF-8 boundary.
pub const MAX_OUTPUT_BYTES: usize = 32 * 1024;

/// One search-and-replace in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FileEdit {
    /// Text that must occur exactly once in the file.
    pub search: String,
    /// What replaces it.
    pub replace: String,
}

/// What a command produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOutput {
    /// The exit code (`-1` when killed by the timeout or a signal).
    pub exit_code: i32,
    /// Standard output then standard error, at most [`MAX_OUTPUT_BYTES`].
    pub output: String,
    /// Whether the output was cut.
    pub truncated: bool,
}

/// The host application's sandbox for a chat (a container, a VM, a directory).
#[async_trait]
pub trait Workspace: Send + Sync + 'static {
    /// Reads a text file: lines `offset..offset + limit` (1-based, all by default).
    ///
    /// # Errors
    /// A [`ToolError`] for a missing file or a path outside the workspace.
    async fn read_file(
        &self,
        path: &str,
        offset: Option<usize>,
        limit: Option<usize>,
    ) -> Result<String, ToolError>;

    /// Writes a file, creating parent directories.
    ///
    /// # Errors
    /// A [`ToolError`] for a path outside the workspace or an I/O failure.
    async fn write_file(&self, path: &str, content: &str) -> Result<(), ToolError>;

    /// Applies `edits` to one file atomically: all of them, or none when any search text is
    /// missing or ambiguous.
    ///
    /// # Errors
    /// A [`ToolError`] naming the failed edit.
    async fn edit_file(&self, path: &str, edits: &[FileEdit]) -> Result<(), ToolError>;

    /// Runs a shell command non-interactively.
    ///
    /// # Errors
    /// A [`ToolError`] when the command cannot start or `workdir` is outside the workspace.
    async fn execute(
        &self,
        command: &str,
        timeout: Duration,
        workdir: Option<&str>,
    ) -> Result<ExecOutput, ToolError>;
}

/// A workspace in a local directory. File operations are confined to it by the operating
/// system (cap-std resolves every path beneath the directory: `..`, absolute paths and
/// symlinks pointing outside are refused). `execute` starts its commands in the directory
/// with a non-interactive environment, but a command can of course reach anything the
/// process can: run it where that is acceptable, or provide your own [`Workspace`].
#[derive(Debug, Clone)]
pub struct LocalWorkspace {
    root: PathBuf,
    dir: Arc<Dir>,
}

fn io_error(path: &str, err: &std::io::Error) -> ToolError {
    match err.kind() {
        std::io::ErrorKind::NotFound => ToolError::new(format!("{path}: no such file")),
        std::io::ErrorKind::PermissionDenied => {
            ToolError::new(format!("{path}: escapes the workspace or is not permitted"))
        }
        _ => ToolError::new(format!("{path}: {err}")),
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary.
#[must_use]
pub fn truncate_utf8(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

impl LocalWorkspace {
    /// A workspace rooted at `root` (which must exist).
    ///
    /// # Errors
    /// When `root` cannot be opened as a directory.
    pub fn open(root: impl AsRef<Path>) -> std::io::Result<Self> {
        let root = root.as_ref().canonicalize()?;
        let dir = Dir::open_ambient_dir(&root, ambient_authority())?;
        Ok(LocalWorkspace { root, dir: Arc::new(dir) })
    }

    /// The root directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Dir) -> Result<T, ToolError> + Send + 'static,
    ) -> Result<T, ToolError> {
        let dir = Arc::clone(&self.dir);
        tokio::task::spawn_blocking(move || work(&dir))
            .await
            .map_err(|err| ToolError::new(format!("file operation failed: {err}")))?
    }
}

#[async_trait]
impl Workspace for LocalWorkspace {
    async fn read_file(
        &self,
        path: &str,
        offset: Option<usize>,
        limit: Option<usize>,
    ) -> Result<String, ToolError> {
        let path = path.to_owned();
        self.blocking(move |dir| {
            let text = dir.read_to_string(&path).map_err(|err| io_error(&path, &err))?;
            if offset.is_none() && limit.is_none() {
                return Ok(text);
            }
            let skip = offset.unwrap_or(1).saturating_sub(1);
            let lines: Vec<&str> =
                text.lines().skip(skip).take(limit.unwrap_or(usize::MAX)).collect();
            Ok(lines.join("\n"))
        })
        .await
    }

    async fn write_file(&self, path: &str, content: &str) -> Result<(), ToolError> {
        let (path, content) = (path.to_owned(), content.to_owned());
        self.blocking(move |dir| {
            if let Some(parent) = Path::new(&path).parent().filter(|p| !p.as_os_str().is_empty()) {
                dir.create_dir_all(parent).map_err(|err| io_error(&path, &err))?;
            }
            dir.write(&path, content).map_err(|err| io_error(&path, &err))
        })
        .await
    }

    async fn edit_file(&self, path: &str, edits: &[FileEdit]) -> Result<(), ToolError> {
        let (path, edits) = (path.to_owned(), edits.to_vec());
        self.blocking(move |dir| {
            let mut text = dir.read_to_string(&path).map_err(|err| io_error(&path, &err))?;
            for (index, edit) in edits.iter().enumerate() {
                if edit.search.is_empty() {
                    return Err(ToolError::new(format!(
                        "{path}: edit {index}: the search text is empty"
                    )));
                }
                match text.matches(&edit.search).count() {
                    1 => text = text.replacen(&edit.search, &edit.replace, 1),
                    0 => {
                        return Err(ToolError::new(format!(
                            "{path}: edit {index}: search text not found"
                        )));
                    }
                    n => {
                        return Err(ToolError::new(format!(
                            "{path}: edit {index}: search text found {n} times; make it unique"
                        )));
                    }
                }
            }
            // Write a sibling temporary file and rename it over the original: readers see
            // the old or the new file, never half of one.
            let temp = format!("{path}.chatd-edit.tmp");
            dir.write(&temp, &text).map_err(|err| io_error(&path, &err))?;
            dir.rename(&temp, dir, &path).map_err(|err| io_error(&path, &err))
        })
        .await
    }

    async fn execute(
        &self,
        command: &str,
        timeout: Duration,
        workdir: Option<&str>,
    ) -> Result<ExecOutput, ToolError> {
        let cwd = match workdir.filter(|w| !w.trim().is_empty()) {
            Some(workdir) => {
                let check = workdir.to_owned();
                self.blocking(move |dir| {
                    dir.open_dir(&check).map(|_| ()).map_err(|err| io_error(&check, &err))
                })
                .await?;
                self.root.join(workdir)
            }
            None => self.root.clone(),
        };
        let mut process = tokio::process::Command::new("sh");
        process
            .arg("-c")
            .arg(command)
            .current_dir(&cwd)
            .env("GIT_EDITOR", "true")
            .env("EDITOR", "true")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("PAGER", "cat")
            .env("TERM", "dumb")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        process.process_group(0);
        let child = process
            .spawn()
            .map_err(|err| ToolError::new(format!("cannot start the command: {err}")))?;
        let pid = child.id();
        match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Ok(Ok(done)) => {
                let mut text = String::from_utf8_lossy(&done.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&done.stderr));
                let cut = truncate_utf8(&text, MAX_OUTPUT_BYTES);
                Ok(ExecOutput {
                    exit_code: done.status.code().unwrap_or(-1),
                    output: cut.to_owned(),
                    truncated: cut.len() < text.len(),
                })
            }
            Ok(Err(err)) => Err(ToolError::new(format!("the command failed: {err}"))),
            Err(_) => {
                // Kill the whole process group: the shell and everything it started.
                #[cfg(unix)]
                if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                Err(ToolError::new(format!(
                    "command timed out after {}s (exit_code: -1)",
                    timeout.as_secs_f64()
                )))
            }
        }
    }
}
