//! Confinement of `execute` with Linux Landlock (BEHAVIOUR §13): what a command may read and
//! write, and what happens where the kernel cannot enforce it.
//!
//! The ruleset is built once per workspace in the parent (opening the allowed paths), then
//! duplicated per command and applied in the child between `fork` and `exec`, so the child
//! does no allocation and opens nothing.
//!
//! `/proc` as a whole is **not** readable: measured on Linux 6.18 (Landlock ABI 7), a
//! confined command could still read `/proc/<parent pid>/environ` when `/proc` was
//! granted, so only global, process-independent files of it are
//! ([`SandboxPolicy::PROC_FILES`]). Tools that open `/proc/self/...` (e.g. `ps`) fail.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// What to do where the kernel cannot confine commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SandboxMode {
    /// Opening the workspace fails with a clear error (the default).
    #[default]
    Required,
    /// Commands run unconfined; one warning is logged and
    /// [`LocalWorkspace::sandbox_status`](super::LocalWorkspace::sandbox_status) says so.
    BestEffort,
    /// The host confines commands itself (a container, a VM): no Landlock at all.
    Disabled,
}

/// The confinement policy of a [`LocalWorkspace`](super::LocalWorkspace)'s commands.
///
/// By default a command may read and write its workspace, read (and run programs from) the
/// system's read-only directories ([`SandboxPolicy::SYSTEM_READ_ONLY`]), read a few global
/// `/proc` files ([`SandboxPolicy::PROC_FILES`]), read and write the harmless devices
/// (`/dev/null`, `/dev/zero`, `/dev/random`, `/dev/urandom`, `/dev/full`), and use the
/// network. Everything else — other workspaces, the host's home, `/tmp`, `/run`, the rest of
/// `/proc` — is refused. Adding `/proc` with [`SandboxPolicy::with_read_only`] makes other
/// processes' environments readable again (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SandboxPolicy {
    /// What to do where the kernel lacks Landlock.
    pub mode: SandboxMode,
    /// Directories (or files) readable in addition to the system ones.
    pub extra_read_only: Vec<PathBuf>,
    /// Directories (or files) writable in addition to the workspace.
    pub extra_writable: Vec<PathBuf>,
    /// Whether TCP `bind`/`connect` are allowed (refused where false, on kernels with
    /// Landlock ABI 4 or later; earlier kernels cannot refuse them).
    pub network: bool,
}

impl Default for SandboxPolicy {
    fn default() -> Self {
        SandboxPolicy {
            mode: SandboxMode::Required,
            extra_read_only: Vec::new(),
            extra_writable: Vec::new(),
            network: true,
        }
    }
}

impl SandboxPolicy {
    /// The system directories a command may read and run programs from (those that exist).
    pub const SYSTEM_READ_ONLY: &'static [&'static str] =
        &["/bin", "/sbin", "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt"];
    /// The files of `/proc` a command may read: global information only, nothing about a
    /// process (so no other process's `environ`, `cmdline` or memory).
    pub const PROC_FILES: &'static [&'static str] = &[
        "/proc/cpuinfo",
        "/proc/meminfo",
        "/proc/stat",
        "/proc/loadavg",
        "/proc/uptime",
        "/proc/version",
        "/proc/filesystems",
        "/proc/sys/kernel/random/uuid",
    ];
    /// The device files a command may read and write.
    pub const DEVICES: &'static [&'static str] =
        &["/dev/null", "/dev/zero", "/dev/random", "/dev/urandom", "/dev/full"];

    /// The default policy with `mode`.
    #[must_use]
    pub fn new(mode: SandboxMode) -> Self {
        SandboxPolicy { mode, ..SandboxPolicy::default() }
    }

    /// Adds a readable path.
    #[must_use]
    pub fn with_read_only(mut self, path: impl Into<PathBuf>) -> Self {
        self.extra_read_only.push(path.into());
        self
    }

    /// Adds a writable path.
    #[must_use]
    pub fn with_writable(mut self, path: impl Into<PathBuf>) -> Self {
        self.extra_writable.push(path.into());
        self
    }

    /// Allows or refuses TCP networking.
    #[must_use]
    pub fn with_network(mut self, network: bool) -> Self {
        self.network = network;
        self
    }
}

/// Whether a workspace's commands are confined.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SandboxStatus {
    /// Landlock confines every command; `abi` is the kernel's Landlock ABI version.
    Confined {
        /// The kernel's Landlock ABI version.
        abi: i32,
    },
    /// Commands run unconfined (`SandboxMode::BestEffort` on a kernel without Landlock).
    Unconfined {
        /// Why.
        reason: String,
    },
    /// The host disabled confinement (`SandboxMode::Disabled`).
    Disabled,
}

/// The kernel's Landlock ABI version (0 where unsupported), probed once per process.
///
/// The probe restricts a short-lived thread of its own (a Landlock domain belongs to the
/// thread that enters it), so the process itself is never restricted.
#[must_use]
pub fn landlock_abi() -> i32 {
    static ABI: OnceLock<i32> = OnceLock::new();
    *ABI.get_or_init(probe)
}

#[cfg(target_os = "linux")]
fn probe() -> i32 {
    use landlock::{ABI, Access, AccessFs, LandlockStatus, Ruleset, RulesetAttr};
    let restricted = std::thread::spawn(|| {
        Ruleset::default()
            .handle_access(AccessFs::from_all(ABI::V1))
            .and_then(|ruleset| ruleset.create())
            .and_then(|created| created.restrict_self())
            .map(|status| match status.landlock {
                LandlockStatus::Available { effective_abi, kernel_abi } => {
                    kernel_abi.unwrap_or(effective_abi as i32)
                }
                _ => 0,
            })
            .unwrap_or(0)
    });
    restricted.join().unwrap_or(0)
}

#[cfg(not(target_os = "linux"))]
fn probe() -> i32 {
    0
}

/// A ruleset ready to be applied in a child process.
#[cfg(target_os = "linux")]
pub(super) struct Confinement(landlock::RulesetCreated);

#[cfg(not(target_os = "linux"))]
pub(super) struct Confinement;

impl std::fmt::Debug for Confinement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Confinement")
    }
}

/// Builds the confinement of a workspace at `root` under `policy`: `Ok(None)` when commands
/// run unconfined (with the status saying why).
///
/// # Errors
/// `SandboxMode::Required` on a kernel without Landlock, or a ruleset the kernel refuses.
pub(super) fn confine(
    root: &Path,
    policy: &SandboxPolicy,
) -> std::io::Result<(Option<Confinement>, SandboxStatus)> {
    if policy.mode == SandboxMode::Disabled {
        return Ok((None, SandboxStatus::Disabled));
    }
    let abi = landlock_abi();
    if abi <= 0 {
        let reason = "this kernel does not support Landlock (or it is disabled)".to_owned();
        if policy.mode == SandboxMode::Required {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                format!(
                    "cannot confine commands: {reason}; use SandboxMode::BestEffort to run \
                     them unconfined, or SandboxMode::Disabled if the host confines them"
                ),
            ));
        }
        warn_unconfined(&reason);
        return Ok((None, SandboxStatus::Unconfined { reason }));
    }
    build(root, policy).map(|c| (Some(c), SandboxStatus::Confined { abi }))
}

fn warn_unconfined(reason: &str) {
    static WARNED: OnceLock<()> = OnceLock::new();
    WARNED.get_or_init(|| {
        tracing::warn!(reason, "workspace commands run unconfined (SandboxMode::BestEffort)");
    });
}

#[cfg(target_os = "linux")]
fn build(root: &Path, policy: &SandboxPolicy) -> std::io::Result<Confinement> {
    use landlock::{
        ABI, Access, AccessFs, AccessNet, Ruleset, RulesetAttr, RulesetCreatedAttr, Scope,
        path_beneath_rules,
    };
    // The newest ABI whose rights are requested (V9 adds connecting to pathname Unix
    // sockets); older kernels get what they can enforce (the crate's best-effort
    // compatibility), and `landlock_abi` reports which that is.
    let abi = ABI::V9;
    let refused = |err: landlock::RulesetError| {
        std::io::Error::other(format!("cannot build the Landlock ruleset: {err}"))
    };
    let existing =
        |paths: Vec<PathBuf>| paths.into_iter().filter(|p| p.exists()).collect::<Vec<_>>();
    let read_only = existing(
        SandboxPolicy::SYSTEM_READ_ONLY
            .iter()
            .map(PathBuf::from)
            .chain(policy.extra_read_only.iter().cloned())
            .collect(),
    );
    let devices = existing(SandboxPolicy::DEVICES.iter().map(PathBuf::from).collect());
    let proc_files = existing(SandboxPolicy::PROC_FILES.iter().map(PathBuf::from).collect());
    let writable = existing(
        std::iter::once(root.to_path_buf()).chain(policy.extra_writable.iter().cloned()).collect(),
    );
    let mut ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))
        .and_then(|r| r.scope(Scope::AbstractUnixSocket | Scope::Signal))
        .map_err(refused)?;
    if !policy.network {
        ruleset = ruleset.handle_access(AccessNet::from_all(abi)).map_err(refused)?;
    }
    let created = ruleset
        .create()
        .and_then(|r| r.add_rules(path_beneath_rules(&read_only, AccessFs::from_read(abi))))
        .and_then(|r| r.add_rules(path_beneath_rules(&devices, AccessFs::from_file(abi))))
        .and_then(|r| {
            r.add_rules(path_beneath_rules(&proc_files, AccessFs::ReadFile | AccessFs::ReadDir))
        })
        .and_then(|r| r.add_rules(path_beneath_rules(&writable, AccessFs::from_all(abi))))
        .map_err(refused)?;
    Ok(Confinement(created))
}

#[cfg(not(target_os = "linux"))]
fn build(_root: &Path, _policy: &SandboxPolicy) -> std::io::Result<Confinement> {
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "Landlock exists on Linux only"))
}

#[cfg(target_os = "linux")]
impl Confinement {
    /// Makes `command` enter this confinement between `fork` and `exec`.
    pub(super) fn apply(&self, command: &mut tokio::process::Command) -> std::io::Result<()> {
        let mut ruleset = Some(self.0.try_clone()?);
        // SAFETY: the closure runs in the forked child before `exec`. It only moves an
        // already-built ruleset out of an `Option` and makes two system calls through it
        // (`prctl(PR_SET_NO_NEW_PRIVS)` and `landlock_restrict_self`); it allocates nothing
        // on success and takes no lock, so it is async-signal-safe. On failure the error is
        // a raw OS error (no allocation) and the command does not run.
        #[allow(unsafe_code)]
        unsafe {
            command.pre_exec(move || {
                match ruleset.take().map(landlock::RulesetCreated::restrict_self) {
                    Some(Ok(_)) => Ok(()),
                    _ => Err(std::io::Error::from_raw_os_error(nix::libc::EPERM)),
                }
            });
        }
        Ok(())
    }
}

#[cfg(not(target_os = "linux"))]
impl Confinement {
    pub(super) fn apply(&self, _command: &mut tokio::process::Command) -> std::io::Result<()> {
        Ok(())
    }
}
