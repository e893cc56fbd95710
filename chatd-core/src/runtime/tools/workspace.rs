//! The [`Workspace`] a chat's tools act on: the trait, what its calls take and return, and
//! the bounds every implementation is expected to keep ([BEHAVIOUR §13](crate::behaviour#13-tools), §15).

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{ToolContext, ToolError};

/// The default `execute` timeout ([BEHAVIOUR §15](crate::behaviour#15-defaults)).
#[cfg_attr(not(feature = "local-workspace"), allow(dead_code))]
pub(crate) const EXECUTE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest `execute` timeout a model may ask for; longer requests are clamped to it.
pub(crate) const MAX_EXECUTE_TIMEOUT: Duration = Duration::from_secs(600);
/// The most output `execute` keeps (and returns), cut on a UTF-8 boundary.
#[cfg_attr(not(feature = "local-workspace"), allow(dead_code))]
pub(crate) const MAX_OUTPUT_BYTES: usize = 32 * 1024;
/// The most bytes one `read_file` call returns ([BEHAVIOUR §15](crate::behaviour#15-defaults)).
#[cfg_attr(not(feature = "local-workspace"), allow(dead_code))]
pub(crate) const READ_WINDOW_BYTES: usize = 256 * 1024;
/// The largest file `edit_files` loads.
#[cfg_attr(not(feature = "local-workspace"), allow(dead_code))]
pub(crate) const MAX_EDIT_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// One search-and-replace in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FileEdit {
    /// Text that must occur exactly once in the file.
    pub search: String,
    /// What replaces it.
    pub replace: String,
}

/// A command for [`Workspace::execute`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecRequest {
    /// The shell command (`sh -c`).
    pub command: String,
    /// When to kill it: `None` is the workspace's default (10 s for the local one);
    /// implementations clamp it to their maximum (10 min for the local one).
    pub timeout: Option<Duration>,
    /// The directory to run in, relative to the workspace root.
    pub workdir: Option<String>,
}

impl ExecRequest {
    /// `command` with the workspace's default timeout, in the workspace root.
    #[must_use]
    pub fn new(command: impl Into<String>) -> Self {
        ExecRequest { command: command.into(), timeout: None, workdir: None }
    }

    /// Sets the timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the working directory (relative to the workspace root).
    #[must_use]
    pub fn with_workdir(mut self, workdir: impl Into<String>) -> Self {
        self.workdir = Some(workdir.into());
        self
    }
}

/// What a command produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOutput {
    /// The exit code (`-1` when killed by the timeout or a signal).
    pub exit_code: i32,
    /// Standard output and standard error as they arrived, at most the workspace's output cap
    /// (32 KiB for the local one).
    pub output: String,
    /// Whether the output was cut.
    pub truncated: bool,
    /// How many bytes the command wrote in all (kept or not).
    pub total_bytes: u64,
    /// Whether the timeout ended the command (`output` is what it wrote until then).
    pub timed_out: bool,
}

/// A window of a text file, from [`Workspace::read_file`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileWindow {
    /// The lines read (with their line endings; invalid UTF-8 replaced).
    pub content: String,
    /// Whether the byte cap cut the window short.
    pub truncated: bool,
    /// The line to pass as `offset` to read on, when the window was cut.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<usize>,
}

/// The host application's sandbox for a chat (a container, a VM, a directory).
///
/// # Contract
/// Every method acts as the chat's owner on that owner's workspace only. Calls are
/// cancelled with their turn: `ctx.cancel` fires, the call's future is dropped, and the
/// turn then waits for `ctx.tasks` — an implementation that starts work which outlives its
/// future (a process, a blocking thread) spawns it on `ctx.tasks` and stops it promptly once
/// `ctx.cancel` fires, so that nothing a cancelled call started changes the workspace
/// afterwards. Reads and outputs are bounded (see the constants of this module).
#[async_trait]
pub trait Workspace: Send + Sync + 'static {
    /// Reads a text file: lines `offset..offset + limit` (1-based; all by default), at most
    /// the workspace's read window (256 KiB for the local one). Only regular files are read.
    ///
    /// # Errors
    /// A [`ToolError`] for a missing file, a path outside the workspace or a file that is
    /// not a regular file (a FIFO, socket or device).
    async fn read_file(
        &self,
        ctx: &ToolContext,
        path: &str,
        offset: Option<usize>,
        limit: Option<usize>,
    ) -> Result<FileWindow, ToolError>;

    /// Reads a whole file as bytes, at most `max` of them (an image to attach, BEHAVIOUR
    /// §19). `None` (the default) when the workspace cannot: `read_file` then reads images as
    /// text, as before.
    ///
    /// # Errors
    /// A [`ToolError`] as for `read_file`, or for a file larger than `max`.
    async fn read_bytes(
        &self,
        ctx: &ToolContext,
        path: &str,
        max: usize,
    ) -> Result<Option<Vec<u8>>, ToolError> {
        let _ = (ctx, path, max);
        Ok(None)
    }

    /// Writes a file atomically, creating parent directories.
    ///
    /// # Errors
    /// A [`ToolError`] for a path outside the workspace, a target that is not a regular
    /// file, or an I/O failure.
    async fn write_file(
        &self,
        ctx: &ToolContext,
        path: &str,
        content: &str,
    ) -> Result<(), ToolError>;

    /// Applies `edits` to one file atomically: all of them, or none when any search text is
    /// missing or ambiguous.
    ///
    /// # Errors
    /// A [`ToolError`] naming the failed edit.
    async fn edit_file(
        &self,
        ctx: &ToolContext,
        path: &str,
        edits: &[FileEdit],
    ) -> Result<(), ToolError>;

    /// Runs a shell command non-interactively. A timeout is not an error: the output says
    /// `timed_out` and keeps what the command wrote.
    ///
    /// # Errors
    /// A [`ToolError`] when the command cannot start, `workdir` is outside the workspace,
    /// or the call was cancelled.
    async fn execute(
        &self,
        ctx: &ToolContext,
        request: &ExecRequest,
    ) -> Result<ExecOutput, ToolError>;
}

/// Cuts `text` to at most `max` bytes on a character boundary.
#[cfg(test)]
#[must_use]
pub(crate) fn truncate_utf8(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

/// The length of `bytes` without a trailing, incomplete UTF-8 sequence.
#[cfg_attr(not(feature = "local-workspace"), allow(dead_code))]
pub(crate) fn complete_utf8_len(bytes: &[u8]) -> usize {
    // A sequence is at most 4 bytes: look back at most 3 continuation bytes for its lead.
    for back in 1..=bytes.len().min(4) {
        let byte = bytes[bytes.len() - back];
        if byte & 0b1100_0000 == 0b1000_0000 {
            continue; // a continuation byte
        }
        let needed = match byte {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if needed > back { bytes.len() - back } else { bytes.len() };
    }
    bytes.len()
}
