//! The namespace layer ([BEHAVIOUR §13](crate::behaviour#13-tools)), built by bubblewrap (`bwrap`, the tool Flatpak and
//! OpenAI's Codex CLI use): every command gets fresh user, PID, IPC, UTS and cgroup
//! namespaces, a network namespace of its own unless the policy allows the network, and a
//! mount namespace whose root is an empty tmpfs holding only the system's program and
//! library directories (read-only), the few `/etc` files programs need, a private `/tmp`, a
//! `/dev` with only the harmless devices, a `/proc` of its own PID namespace, and the
//! workspace (read-write, at its own path). All capabilities are dropped.
//!
//! The command's init is bubblewrap's; when it ends — the command exited, or the supervisor
//! killed it — the kernel kills every process of the PID namespace, including those that
//! called `setsid` or forked twice.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::SandboxPolicy;

/// Where bubblewrap is looked for when the policy names no path: `PATH`, then the usual
/// places.
fn find() -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("bwrap")).collect::<Vec<_>>())
        .unwrap_or_default();
    from_path
        .into_iter()
        .chain(["/usr/bin/bwrap", "/usr/local/bin/bwrap", "/bin/bwrap"].map(PathBuf::from))
        .find(|p| p.is_file())
}

/// A workspace's bubblewrap invocation, less what changes per command.
#[derive(Debug, Clone)]
pub(super) struct Bwrap {
    pub(super) program: PathBuf,
    args: Vec<OsString>,
    root: PathBuf,
}

impl Bwrap {
    /// The invocation for a workspace at `root` under `policy`; `Err` says why there is none
    /// (bubblewrap not installed).
    pub(super) fn new(root: &Path, policy: &SandboxPolicy) -> Result<Self, String> {
        let program = match &policy.bwrap {
            Some(path) if path.is_file() => path.clone(),
            Some(path) => return Err(format!("bubblewrap not found at {}", path.display())),
            None => find().ok_or_else(|| {
                "bubblewrap (bwrap) is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
                    .to_owned()
            })?,
        };
        let mut args: Vec<OsString> = [
            "--unshare-user",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--hostname",
            "sandbox",
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        if !policy.network {
            args.push("--unshare-net".into());
        }
        let mut arg = |parts: &[&std::ffi::OsStr]| args.extend(parts.iter().map(OsString::from));
        for dir in SandboxPolicy::SYSTEM_READ_ONLY {
            let path = Path::new(dir);
            match std::fs::symlink_metadata(path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    if let Ok(target) = std::fs::read_link(path) {
                        arg(&["--symlink".as_ref(), target.as_os_str(), path.as_os_str()]);
                    }
                }
                Ok(meta) if meta.is_dir() => {
                    arg(&["--ro-bind".as_ref(), path.as_os_str(), path.as_os_str()]);
                }
                _ => {}
            }
        }
        arg(&["--dir".as_ref(), "/etc".as_ref()]);
        let resolv = policy.network.then_some("/etc/resolv.conf");
        for file in SandboxPolicy::ETC_FILES.iter().copied().chain(resolv) {
            arg(&["--ro-bind-try".as_ref(), file.as_ref(), file.as_ref()]);
        }
        arg(&["--tmpfs".as_ref(), "/tmp".as_ref()]);
        arg(&["--dev".as_ref(), "/dev".as_ref()]);
        arg(&["--proc".as_ref(), "/proc".as_ref()]);
        for path in &policy.extra_read_only {
            arg(&["--ro-bind-try".as_ref(), path.as_os_str(), path.as_os_str()]);
        }
        for path in &policy.extra_writable {
            arg(&["--bind-try".as_ref(), path.as_os_str(), path.as_os_str()]);
        }
        Ok(Bwrap { program, args, root: root.to_path_buf() })
    }

    /// The whole argument list for `command` in `cwd`: the workspace bound from the open
    /// directory `root_fd` (so bubblewrap, running as the sandbox's user, need not reach it
    /// by path), the seccomp programs on `seccomp_fds`, and the namespace's init pid
    /// reported on `info_fd`.
    pub(super) fn args(
        &self,
        root_fd: i32,
        cwd: &Path,
        seccomp_fds: &[i32],
        info_fd: i32,
        command: &str,
    ) -> Vec<OsString> {
        let mut args = self.args.clone();
        // The workspace last, so nothing above hides it (a workspace under /tmp, say).
        args.push("--bind-fd".into());
        args.push(root_fd.to_string().into());
        args.push(self.root.as_os_str().to_owned());
        args.push("--chdir".into());
        args.push(cwd.as_os_str().to_owned());
        for fd in seccomp_fds {
            args.push("--add-seccomp-fd".into());
            args.push(fd.to_string().into());
        }
        args.push("--info-fd".into());
        args.push(info_fd.to_string().into());
        args.extend(["--", "sh", "-c"].map(OsString::from));
        args.push(command.into());
        args
    }
}
