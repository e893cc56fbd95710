//! [`LocalWorkspace`]: a workspace in a directory of this machine (files through cap-std,
//! commands confined by Landlock).

mod exec;
mod files;
mod provisioner;
mod sandbox;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use cap_std::ambient_authority;
use cap_std::fs::Dir;

pub(crate) use exec::TERM_GRACE;
pub use provisioner::LocalProvisioner;
pub(crate) use sandbox::landlock_abi;
pub use sandbox::{Layer, SandboxLayers, SandboxMode, SandboxPolicy, SandboxStatus, SandboxUser};

use super::workspace::{
    ExecOutput, ExecRequest, FileEdit, FileWindow, MAX_OUTPUT_BYTES, READ_WINDOW_BYTES, Workspace,
};
use super::{ToolContext, ToolError};
use files::{Cancelled, io_error};
use sandbox::Confinement;
use std::os::fd::AsRawFd;

/// A workspace in a local directory.
///
/// What holds, and how:
/// - **Files** (`read_file`, `write_file`, `edit_files`): cap-std resolves every path beneath
///   the directory (`..`, absolute paths and symbolic links out are refused); only regular
///   files are opened, without blocking; reads are windowed and capped; writes are atomic.
/// - **Commands** (`execute`): `sh -c` in the directory, in its own process group, with an
///   empty environment plus an allowlist ([`LocalWorkspace::with_env`] adds more), confined
///   by Linux Landlock under a [`SandboxPolicy`] (writes only inside the workspace, reads
///   only there and in the system's read-only directories), output capped while it is
///   read, and the whole group ended on timeout, cancellation or drop.
///
/// What it does not do: limit CPU, memory, process count or disk use, or hide the network
/// (unless [`SandboxPolicy::network`] is off, and then only TCP); connecting to pathname
/// Unix sockets (a local database's socket, say) is refused only on kernels with Landlock
/// ABI 9 or later. Run it where that is acceptable, or inside a
/// container or VM the host provides (then [`SandboxMode::Disabled`] is an option).
#[derive(Clone)]
pub struct LocalWorkspace {
    root: PathBuf,
    dir: Arc<Dir>,
    env: Arc<Vec<(String, String)>>,
    confinement: Option<Arc<Confinement>>,
    status: SandboxStatus,
    owner: Option<SandboxUser>,
    output_cap: usize,
    read_cap: usize,
    skip_cap: u64,
    default_timeout: std::time::Duration,
    max_timeout: std::time::Duration,
}

impl std::fmt::Debug for LocalWorkspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The added environment may hold secrets: only its names are shown.
        let names: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("LocalWorkspace")
            .field("root", &self.root)
            .field("env", &names)
            .field("sandbox", &self.status)
            .finish_non_exhaustive()
    }
}

impl LocalWorkspace {
    /// A workspace rooted at `root` (which must exist) under the default
    /// [`SandboxPolicy`] (Landlock required).
    ///
    /// # Errors
    /// When `root` cannot be opened as a directory, or the kernel cannot confine commands
    /// (see [`LocalWorkspace::open_with`]).
    pub fn open(root: impl AsRef<Path>) -> std::io::Result<Self> {
        Self::open_with(root, &SandboxPolicy::default())
    }

    /// A workspace rooted at `root` whose commands are confined by `policy`.
    ///
    /// # Errors
    /// When `root` cannot be opened as a directory; with [`SandboxMode::Required`] on a
    /// kernel without Landlock (`ErrorKind::Unsupported`, saying which modes remain).
    pub fn open_with(root: impl AsRef<Path>, policy: &SandboxPolicy) -> std::io::Result<Self> {
        let root = root.as_ref().canonicalize()?;
        let dir = Dir::open_ambient_dir(&root, ambient_authority())?;
        let (confinement, status) = sandbox::confine(&root, dir.as_raw_fd(), policy)?;
        let owner = confinement.as_ref().and_then(Confinement::user);
        if let Some(user) = owner {
            files::hand_over(&dir, user)?;
        }
        Ok(LocalWorkspace {
            root,
            dir: Arc::new(dir),
            env: Arc::new(Vec::new()),
            confinement: confinement.map(Arc::new),
            status,
            owner,
            output_cap: MAX_OUTPUT_BYTES,
            read_cap: READ_WINDOW_BYTES,
            skip_cap: files::MAX_SKIP_BYTES,
            default_timeout: super::workspace::EXECUTE_TIMEOUT,
            max_timeout: super::workspace::MAX_EXECUTE_TIMEOUT,
        })
    }

    /// Adds a variable to every command's environment (after the allowlist, so it can
    /// override one). Nothing of the host's environment reaches a command otherwise.
    #[must_use]
    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.env).push((key.into(), value.into()));
        self
    }

    /// Sets the most output `execute` keeps (default 32 KiB, [BEHAVIOUR §15](crate::behaviour#15-defaults)).
    #[must_use]
    pub fn with_output_cap(mut self, bytes: usize) -> Self {
        self.output_cap = bytes.max(1);
        self
    }

    /// Sets the `execute` timeout used when a call names none (default
    /// 10 s) and the most any call may ask for (default 10 min).
    #[must_use]
    pub fn with_timeouts(mut self, default: std::time::Duration, max: std::time::Duration) -> Self {
        self.max_timeout = max;
        self.default_timeout = default.min(max);
        self
    }

    /// Sets the most bytes one `read_file` returns (default 256 KiB).
    #[must_use]
    pub fn with_read_cap(mut self, bytes: usize) -> Self {
        self.read_cap = bytes.max(1);
        self
    }

    /// Sets the most bytes `read_file` scans to reach its `offset` line (default
    /// `MAX_SKIP_BYTES`, 256 MiB); beyond it the call is answered with an error that
    /// points to `execute`.
    #[must_use]
    pub fn with_skip_cap(mut self, bytes: u64) -> Self {
        self.skip_cap = bytes.max(1);
        self
    }

    /// The root directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How commands are confined, layer by layer.
    #[must_use]
    pub fn sandbox_status(&self) -> &SandboxStatus {
        &self.status
    }

    /// Runs `work` on a blocking thread the turn waits for (`ctx.tasks`); if the call is
    /// cancelled meanwhile, `work` sees it before each change it would make.
    async fn blocking<T: Send + 'static>(
        &self,
        ctx: &ToolContext,
        work: impl FnOnce(&Dir, &Cancelled) -> Result<T, ToolError> + Send + 'static,
    ) -> Result<T, ToolError> {
        let dir = Arc::clone(&self.dir);
        let cancelled = Cancelled::default();
        let flag = cancelled.clone();
        // Dropping the call (cancellation) sets the flag; finishing disarms it.
        let guard = scopeguard(move || flag.set());
        let result = ctx
            .tasks
            .spawn_blocking(move || work(&dir, &cancelled))
            .await
            .map_err(|err| ToolError::new(format!("file operation failed: {err}")));
        guard.disarm();
        result?
    }
}

/// Runs a closure when dropped, unless disarmed.
struct ScopeGuard<F: FnOnce()>(Option<F>);

fn scopeguard<F: FnOnce()>(f: F) -> ScopeGuard<F> {
    ScopeGuard(Some(f))
}

impl<F: FnOnce()> ScopeGuard<F> {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl<F: FnOnce()> Drop for ScopeGuard<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

#[async_trait]
impl Workspace for LocalWorkspace {
    async fn read_file(
        &self,
        ctx: &ToolContext,
        path: &str,
        offset: Option<usize>,
        limit: Option<usize>,
    ) -> Result<FileWindow, ToolError> {
        let (path, caps) = (path.to_owned(), (self.read_cap, self.skip_cap));
        self.blocking(ctx, move |dir, cancelled| {
            files::read_window(dir, &path, (offset, limit), caps, cancelled)
        })
        .await
    }

    async fn read_bytes(
        &self,
        ctx: &ToolContext,
        path: &str,
        max: usize,
    ) -> Result<Option<Vec<u8>>, ToolError> {
        let path = path.to_owned();
        self.blocking(ctx, move |dir, cancelled| files::read_all(dir, &path, max, cancelled))
            .await
            .map(Some)
    }

    async fn write_file(
        &self,
        ctx: &ToolContext,
        path: &str,
        content: &str,
    ) -> Result<(), ToolError> {
        let (path, content, owner) = (path.to_owned(), content.to_owned(), self.owner);
        self.blocking(ctx, move |dir, cancelled| {
            files::write(dir, &path, &content, owner, cancelled)
        })
        .await
    }

    async fn edit_file(
        &self,
        ctx: &ToolContext,
        path: &str,
        edits: &[FileEdit],
    ) -> Result<(), ToolError> {
        let (path, edits, owner) = (path.to_owned(), edits.to_vec(), self.owner);
        self.blocking(ctx, move |dir, cancelled| files::edit(dir, &path, &edits, owner, cancelled))
            .await
    }

    async fn execute(
        &self,
        ctx: &ToolContext,
        request: &ExecRequest,
    ) -> Result<ExecOutput, ToolError> {
        let cwd = match request.workdir.as_deref().filter(|w| !w.trim().is_empty()) {
            Some(workdir) => {
                let check = workdir.to_owned();
                self.blocking(ctx, move |dir, _| {
                    dir.open_dir(&check).map(|_| ()).map_err(|err| io_error(&check, &err))
                })
                .await?;
                self.root.join(workdir)
            }
            None => self.root.clone(),
        };
        let launch = exec::Launch {
            root: &self.root,
            root_fd: self.dir.as_raw_fd(),
            cwd,
            extra_env: &self.env,
            confinement: self.confinement.as_deref(),
            output_cap: self.output_cap,
        };
        let timeout = request.timeout.unwrap_or(self.default_timeout).min(self.max_timeout);
        exec::run(ctx, launch, &request.command, timeout).await
    }
}
