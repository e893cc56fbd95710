//! Confinement of `execute` ([BEHAVIOUR §13](crate::behaviour#13-tools)): four layers, each reported by
//! [`SandboxStatus`], and what happens where the kernel or the machine lacks one.
//!
//! - **An unprivileged user**: a worker running as root starts commands as
//!   [`SandboxPolicy::user`] (`nobody` by default), with no supplementary groups; any other
//!   worker's commands keep its own (non-root) uid. No capabilities in any case.
//! - **Namespaces** ([`bwrap`]): fresh user, PID, IPC, UTS, cgroup, mount and (unless the
//!   policy allows the network) network namespaces per command, built by bubblewrap; the
//!   command sees only the system's program directories, a few `/etc` files, a private
//!   `/tmp`, `/dev` and `/proc`, and its workspace. Killing the namespace's init ends every
//!   process the command started.
//! - **seccomp** ([`seccomp`]): dangerous system calls refused; with the network off, every
//!   socket but a Unix one.
//! - **Landlock** ([`landlock`](self::landlock)): scopes and TCP under bubblewrap; the whole
//!   filesystem ruleset where bubblewrap is missing.
//!
//! Every command also runs under `RLIMIT_NPROC` ([`SandboxPolicy::max_processes`]), so a
//! fork bomb is bounded.

mod bwrap;
mod landlock;
mod seccomp;

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub(crate) use self::landlock::landlock_abi;

/// What to do where a layer of confinement cannot be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SandboxMode {
    /// Every layer is required: opening the workspace fails with an error naming what is
    /// missing (the default).
    #[default]
    Required,
    /// Commands run with the layers there are; one warning is logged, and
    /// [`LocalWorkspace::sandbox_status`](super::LocalWorkspace::sandbox_status) says which
    /// layers are missing.
    BestEffort,
    /// The host confines commands itself (a container, a VM): no layer at all.
    Disabled,
}

/// The user and group a root worker's commands run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxUser {
    /// The user id.
    pub uid: u32,
    /// The group id.
    pub gid: u32,
}

impl SandboxUser {
    /// `nobody` / `nogroup` (65534), the default.
    pub const NOBODY: SandboxUser = SandboxUser { uid: 65534, gid: 65534 };
}

/// The confinement policy of a [`LocalWorkspace`](super::LocalWorkspace)'s commands.
///
/// By default a command has **no network at all** (no TCP or UDP anywhere, loopback and
/// link-local included; no Unix socket outside its workspace), sees its workspace
/// read-write, the system's program and library directories
/// ([`SandboxPolicy::SYSTEM_READ_ONLY`]) and a few `/etc` files
/// ([`SandboxPolicy::ETC_FILES`]) read-only, a
/// private `/tmp`, `/dev` ([`SandboxPolicy::DEVICES`]) and `/proc`, and nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SandboxPolicy {
    /// What to do where a layer is missing.
    pub mode: SandboxMode,
    /// Directories (or files) readable in addition to the system ones.
    pub extra_read_only: Vec<PathBuf>,
    /// Directories (or files) writable in addition to the workspace.
    pub extra_writable: Vec<PathBuf>,
    /// Whether commands may use the network (default `false`). When `true` they share the
    /// host's network namespace: everything the host can reach, they can.
    pub network: bool,
    /// The user a root worker's commands run as (default [`SandboxUser::NOBODY`]). The
    /// workspace is handed to this user when it is opened, and files the tools write
    /// belong to it.
    pub user: SandboxUser,
    /// The most processes (threads included) one command may have at once
    /// (`RLIMIT_NPROC`; default 1024).
    pub max_processes: u64,
    /// Where bubblewrap is (default: looked up on `PATH`, then `/usr/bin/bwrap`).
    pub bwrap: Option<PathBuf>,
}

impl Default for SandboxPolicy {
    fn default() -> Self {
        SandboxPolicy {
            mode: SandboxMode::Required,
            extra_read_only: Vec::new(),
            extra_writable: Vec::new(),
            network: false,
            user: SandboxUser::NOBODY,
            max_processes: 1024,
            bwrap: None,
        }
    }
}

impl SandboxPolicy {
    /// The system directories a command may read and run programs from (those that exist).
    pub const SYSTEM_READ_ONLY: &'static [&'static str] =
        &["/bin", "/sbin", "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/opt"];
    /// The `/etc` files a command may read (those that exist): the dynamic linker's cache, user
    /// and group names, name resolution, time zone, TLS roots, and Debian's alternatives
    /// (`/usr/bin/awk` and friends are links through `/etc/alternatives`). Not `/etc/shadow`,
    /// not the rest of `/etc`.
    pub const ETC_FILES: &'static [&'static str] = &[
        "/etc/ld.so.cache",
        "/etc/ld.so.conf",
        "/etc/ld.so.conf.d",
        "/etc/alternatives",
        "/etc/passwd",
        "/etc/group",
        "/etc/nsswitch.conf",
        "/etc/hosts",
        "/etc/host.conf",
        "/etc/localtime",
        "/etc/mime.types",
        "/etc/ssl",
        "/etc/ca-certificates",
        "/etc/gitconfig",
        "/etc/os-release",
    ];
    /// The files of `/proc` a command may read where there is no PID namespace (Landlock
    /// only): global information, nothing about a process.
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
    /// The device files a command may use.
    pub const DEVICES: &'static [&'static str] =
        &["/dev/null", "/dev/zero", "/dev/random", "/dev/urandom", "/dev/full", "/dev/tty"];

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

    /// Allows or refuses the network (refused by default).
    #[must_use]
    pub fn with_network(mut self, network: bool) -> Self {
        self.network = network;
        self
    }

    /// Sets the user a root worker's commands run as.
    #[must_use]
    pub fn with_user(mut self, user: SandboxUser) -> Self {
        self.user = user;
        self
    }

    /// Sets the most processes one command may have at once (at least 16).
    #[must_use]
    pub fn with_max_processes(mut self, processes: u64) -> Self {
        self.max_processes = processes.max(16);
        self
    }

    /// Sets where bubblewrap is.
    #[must_use]
    pub fn with_bwrap(mut self, path: impl Into<PathBuf>) -> Self {
        self.bwrap = Some(path.into());
        self
    }
}

/// One layer of confinement: in force (with what it does here), or missing (and why).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Layer {
    /// The layer is enforced on every command.
    Enforced(String),
    /// The layer is not enforced.
    Missing(String),
}

impl Layer {
    /// Whether the layer is enforced.
    #[must_use]
    pub fn is_enforced(&self) -> bool {
        matches!(self, Layer::Enforced(_))
    }
}

/// What confines a workspace's commands, layer by layer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SandboxLayers {
    /// Commands run as an unprivileged user without capabilities.
    pub user: Layer,
    /// User, PID, IPC, UTS, mount and network namespaces (bubblewrap).
    pub namespaces: Layer,
    /// The seccomp filter.
    pub seccomp: Layer,
    /// Landlock (scopes and network under namespaces; the filesystem too without them).
    pub landlock: Layer,
    /// Whether the policy lets commands use the network.
    pub network: bool,
}

impl SandboxLayers {
    fn all(&self) -> [(&'static str, &Layer); 4] {
        [
            ("user", &self.user),
            ("namespaces", &self.namespaces),
            ("seccomp", &self.seccomp),
            ("landlock", &self.landlock),
        ]
    }

    /// The missing layers, each with why.
    #[must_use]
    pub fn missing(&self) -> Vec<String> {
        self.all()
            .into_iter()
            .filter_map(|(name, layer)| match layer {
                Layer::Missing(why) => Some(format!("{name}: {why}")),
                Layer::Enforced(_) => None,
            })
            .collect()
    }
}

impl std::fmt::Display for SandboxLayers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let network = if self.network { "network allowed" } else { "no network" };
        write!(f, "{network}")?;
        for (name, layer) in self.all() {
            match layer {
                Layer::Enforced(how) => write!(f, "; {name}: {how}")?,
                Layer::Missing(why) => write!(f, "; {name}: MISSING ({why})")?,
            }
        }
        Ok(())
    }
}

/// Whether, and how, a workspace's commands are confined.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SandboxStatus {
    /// Every layer confines every command.
    Confined(SandboxLayers),
    /// Some layers are missing ([`SandboxMode::BestEffort`]); the others are enforced.
    Partial(SandboxLayers),
    /// The host disabled confinement ([`SandboxMode::Disabled`]).
    Disabled,
}

impl SandboxStatus {
    /// The layers, unless confinement is disabled.
    #[must_use]
    pub fn layers(&self) -> Option<&SandboxLayers> {
        match self {
            SandboxStatus::Confined(layers) | SandboxStatus::Partial(layers) => Some(layers),
            SandboxStatus::Disabled => None,
        }
    }

    /// Whether every layer is enforced.
    #[must_use]
    pub fn is_confined(&self) -> bool {
        matches!(self, SandboxStatus::Confined(_))
    }
}

/// The effective user id of this process.
fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// How a workspace's commands are confined: built once per workspace, applied per command.
pub(super) struct Confinement {
    bwrap: Option<bwrap::Bwrap>,
    landlock: Option<::landlock::RulesetCreated>,
    seccomp: Option<seccomp::Filters>,
    user: Option<SandboxUser>,
    max_processes: u64,
}

impl std::fmt::Debug for Confinement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Confinement")
            .field("namespaces", &self.bwrap.is_some())
            .field("landlock", &self.landlock.is_some())
            .field("seccomp", &self.seccomp.is_some())
            .field("user", &self.user)
            .finish()
    }
}

/// A command ready to spawn, and the descriptors that must outlive its spawn.
pub(super) struct Prepared {
    /// The process to start (`sh -c`, or bubblewrap running it).
    pub(super) command: std::process::Command,
    /// Where bubblewrap reports the namespace's init (`None` without namespaces).
    pub(super) info: Option<OwnedFd>,
    /// The child's ends of the pipes (seccomp programs, info): closed after the spawn.
    pub(super) handed: Vec<OwnedFd>,
}

impl Confinement {
    /// The user commands run as (`None`: the worker's own, which is not root).
    pub(super) fn user(&self) -> Option<SandboxUser> {
        self.user
    }

    /// `sh -c command` in `cwd`, confined. `root_fd` is the open workspace directory.
    pub(super) fn prepare(
        &self,
        root_fd: RawFd,
        cwd: &Path,
        command: &str,
    ) -> std::io::Result<Prepared> {
        let mut handed = Vec::new();
        let mut info = None;
        let mut inherit: Vec<RawFd> = Vec::new();
        let mut process = match &self.bwrap {
            Some(bwrap) => {
                let mut seccomp_fds = Vec::new();
                for program in self.seccomp.iter().flat_map(seccomp::Filters::as_bytes) {
                    let (reader, mut writer) = std::io::pipe()?;
                    // A few hundred bytes: the pipe holds it all before anyone reads.
                    std::io::Write::write_all(&mut writer, &program)?;
                    drop(writer);
                    seccomp_fds.push(reader.as_raw_fd());
                    handed.push(OwnedFd::from(reader));
                }
                let (info_reader, info_writer) = std::io::pipe()?;
                let info_fd = info_writer.as_raw_fd();
                handed.push(OwnedFd::from(info_writer));
                info = Some(OwnedFd::from(info_reader));
                inherit.extend(&seccomp_fds);
                inherit.push(info_fd);
                inherit.push(root_fd);
                let mut process = std::process::Command::new(&bwrap.program);
                process.args(bwrap.args(root_fd, cwd, &seccomp_fds, info_fd, command));
                process.current_dir("/");
                process
            }
            None => {
                let mut process = std::process::Command::new("sh");
                process.arg("-c").arg(command).current_dir(cwd);
                process
            }
        };
        if let Some(user) = self.user {
            std::os::unix::process::CommandExt::uid(&mut process, user.uid);
            std::os::unix::process::CommandExt::gid(&mut process, user.gid);
        }
        let ruleset =
            self.landlock.as_ref().map(::landlock::RulesetCreated::try_clone).transpose()?;
        // Without namespaces the filters are applied in the child; bubblewrap applies them
        // itself after its set-up otherwise.
        let filters = if self.bwrap.is_none() { self.seccomp.clone() } else { None };
        self.enter_in_child(&mut process, ruleset, filters, inherit);
        Ok(Prepared { command: process, info, handed })
    }

    /// Makes the child, between `fork` and `exec`: bound its process count, keep the
    /// descriptors bubblewrap reads, enter Landlock, and (without namespaces) the seccomp
    /// filters.
    fn enter_in_child(
        &self,
        process: &mut std::process::Command,
        ruleset: Option<::landlock::RulesetCreated>,
        filters: Option<seccomp::Filters>,
        inherit: Vec<RawFd>,
    ) {
        use nix::libc;
        let mut ruleset = ruleset;
        // Never above the hard limit the worker has: the child may not raise it.
        let hard = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NPROC)
            .map_or(libc::RLIM_INFINITY, |(_, hard)| hard);
        let processes = self.max_processes.min(hard);
        // SAFETY: the closure runs in the forked child before `exec`. It allocates nothing
        // and takes no lock — everything it uses was built in the parent — and makes only
        // system calls: `setrlimit`, `fcntl` on descriptors the parent opened for this
        // child, `prctl(PR_SET_NO_NEW_PRIVS)`, `landlock_restrict_self` and `seccomp`. So it
        // is async-signal-safe. Errors are raw OS errors (no allocation) and the command
        // does not run.
        #[allow(unsafe_code)]
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(process, move || {
                let limit = libc::rlimit { rlim_cur: processes, rlim_max: processes };
                if libc::setrlimit(libc::RLIMIT_NPROC, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                for fd in &inherit {
                    if libc::fcntl(*fd, libc::F_SETFD, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if let Some(ruleset) = ruleset.take()
                    && ruleset.restrict_self().is_err()
                {
                    return Err(std::io::Error::from_raw_os_error(libc::EPERM));
                }
                if let Some(filters) = &filters {
                    for program in &filters.0 {
                        if seccompiler::apply_filter(program).is_err() {
                            return Err(std::io::Error::from_raw_os_error(libc::EPERM));
                        }
                    }
                }
                Ok(())
            });
        }
    }
}

/// Builds the confinement of a workspace at `root` (open as `root_fd`) under `policy`:
/// `Ok(None)` when confinement is disabled.
///
/// # Errors
/// [`SandboxMode::Required`] where a layer is missing (`ErrorKind::Unsupported`, naming
/// each missing layer and why); a ruleset the kernel refuses.
pub(super) fn confine(
    root: &Path,
    root_fd: RawFd,
    policy: &SandboxPolicy,
) -> std::io::Result<(Option<Confinement>, SandboxStatus)> {
    if policy.mode == SandboxMode::Disabled {
        return Ok((None, SandboxStatus::Disabled));
    }
    let (user, user_layer) = if euid() == 0 {
        let u = policy.user;
        if u.uid == 0 || u.gid == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "SandboxPolicy::user must not be root",
            ));
        }
        (Some(u), Layer::Enforced(format!("uid {}, gid {}, no capabilities", u.uid, u.gid)))
    } else {
        (None, Layer::Enforced(format!("the worker's own uid {}, no capabilities", euid())))
    };
    let (seccomp, seccomp_layer) = match seccomp::filters(policy.network) {
        Ok(filters) => {
            let what = if policy.network {
                "dangerous calls refused"
            } else {
                "dangerous calls and non-Unix sockets refused"
            };
            (Some(filters), Layer::Enforced(what.to_owned()))
        }
        Err(why) => (None, Layer::Missing(why)),
    };
    let abi = landlock_abi();
    let mut confinement = Confinement {
        bwrap: None,
        landlock: None,
        seccomp,
        user,
        max_processes: policy.max_processes,
    };
    let namespaces_layer = match bwrap::Bwrap::new(root, policy) {
        Ok(bwrap) => {
            confinement.bwrap = Some(bwrap);
            if abi > 0 {
                confinement.landlock = Some(self::landlock::scoped(policy)?);
            }
            match probe(&confinement, root_fd, root) {
                Ok(()) => Layer::Enforced(if policy.network {
                    "user, PID, IPC, UTS, mount (bubblewrap); the host's network".to_owned()
                } else {
                    "user, PID, IPC, UTS, mount, network (bubblewrap)".to_owned()
                }),
                Err(why) => {
                    confinement.bwrap = None;
                    confinement.landlock = None;
                    Layer::Missing(why)
                }
            }
        }
        Err(why) => Layer::Missing(why),
    };
    let landlock_layer = if abi <= 0 {
        Layer::Missing("this kernel does not support Landlock (or it is disabled)".to_owned())
    } else if confinement.bwrap.is_some() {
        Layer::Enforced(format!("ABI {abi}: scopes{}", if policy.network { "" } else { ", TCP" }))
    } else {
        confinement.landlock = Some(self::landlock::full(root, policy)?);
        Layer::Enforced(format!(
            "ABI {abi}: filesystem, scopes{}",
            if policy.network { "" } else { ", TCP" }
        ))
    };
    let layers = SandboxLayers {
        user: user_layer,
        namespaces: namespaces_layer,
        seccomp: seccomp_layer,
        landlock: landlock_layer,
        network: policy.network,
    };
    let missing = layers.missing();
    if missing.is_empty() {
        return Ok((Some(confinement), SandboxStatus::Confined(layers)));
    }
    if policy.mode == SandboxMode::Required {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!(
                "cannot confine commands: {}; use SandboxMode::BestEffort to run them with \
                 the layers there are, or SandboxMode::Disabled if the host confines them",
                missing.join("; ")
            ),
        ));
    }
    warn_partial(&missing.join("; "));
    Ok((Some(confinement), SandboxStatus::Partial(layers)))
}

/// Runs `true` through the namespaces once: bubblewrap can be installed and still fail here
/// (user namespaces disabled, an old version without `--bind-fd`).
fn probe(confinement: &Confinement, root_fd: RawFd, root: &Path) -> Result<(), String> {
    let mut prepared = confinement.prepare(root_fd, root, "true").map_err(|e| e.to_string())?;
    let output = prepared
        .command
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output();
    drop(prepared.handed);
    match output {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stderr);
            let first = text.lines().next().unwrap_or("").chars().take(200).collect::<String>();
            Err(format!("bubblewrap cannot create the namespaces here: {first}"))
        }
        Err(err) => Err(format!("bubblewrap cannot be started: {err}")),
    }
}

fn warn_partial(missing: &str) {
    static WARNED: OnceLock<()> = OnceLock::new();
    WARNED.get_or_init(|| {
        tracing::warn!(missing, "workspace commands run partly confined (SandboxMode::BestEffort)");
    });
}
