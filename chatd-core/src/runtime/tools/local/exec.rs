//! `execute` for the local workspace: a confined `sh -c` with an allowlisted environment,
//! output read incrementally into a bounded buffer, and a supervisor task that ends every
//! process the command started on timeout, on cancellation and when the call's future is
//! dropped. In namespaces, that is killing the PID namespace's init (the kernel then kills
//! everything in it, also what called `setsid` or forked twice); without them, the
//! command's process group (TERM, then KILL after [`TERM_GRACE`]).

use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use super::super::workspace::{ExecOutput, complete_utf8_len};
use super::super::{ToolContext, ToolError};
use super::sandbox::Confinement;

/// How long a terminated command's process group has to exit before it is killed.
pub(crate) const TERM_GRACE: Duration = Duration::from_secs(2);

/// The directory, under the workspace root, that commands get as `TMPDIR`.
pub(crate) const TMP_DIR: &str = ".chatd-tmp";

/// The variables every command gets ([BEHAVIOUR §13](crate::behaviour#13-tools)): non-interactive tools, no colours.
const NON_INTERACTIVE: [(&str, &str); 6] = [
    ("GIT_EDITOR", "true"),
    ("EDITOR", "true"),
    ("GIT_TERMINAL_PROMPT", "0"),
    ("PAGER", "cat"),
    ("TERM", "dumb"),
    ("NO_COLOR", "1"),
];

/// What the command is given, besides its command line.
pub(super) struct Launch<'a> {
    pub(super) root: &'a Path,
    pub(super) root_fd: RawFd,
    pub(super) cwd: PathBuf,
    pub(super) extra_env: &'a [(String, String)],
    pub(super) confinement: Option<&'a Confinement>,
    pub(super) output_cap: usize,
}

/// The environment a command starts from: nothing of the host's but `PATH` and the locale,
/// then the non-interactive variables, `HOME` and `TMPDIR` inside the workspace, then what
/// the host added.
fn environment(root: &Path, extra: &[(String, String)]) -> Vec<(String, String)> {
    let path = std::env::var("PATH")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".to_owned());
    let lang = std::env::var("LANG").ok().filter(|l| !l.is_empty()).unwrap_or("C.UTF-8".into());
    let mut env = vec![
        ("PATH".to_owned(), path),
        ("LANG".to_owned(), lang.clone()),
        (
            "LC_ALL".to_owned(),
            std::env::var("LC_ALL").ok().filter(|l| !l.is_empty()).unwrap_or(lang),
        ),
        ("HOME".to_owned(), root.display().to_string()),
        ("TMPDIR".to_owned(), root.join(TMP_DIR).display().to_string()),
    ];
    env.extend(NON_INTERACTIVE.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    env.extend(extra.iter().cloned());
    env
}

/// Runs `command` to its end, its timeout, or the call's cancellation.
pub(super) async fn run(
    ctx: &ToolContext,
    launch: Launch<'_>,
    command: &str,
    timeout: Duration,
) -> Result<ExecOutput, ToolError> {
    // Best effort: a command that removed it simply has no usable TMPDIR.
    let tmp = launch.root.join(TMP_DIR);
    if std::fs::create_dir_all(&tmp).is_ok()
        && let Some(user) = launch.confinement.and_then(Confinement::user)
    {
        let _ = std::os::unix::fs::chown(&tmp, Some(user.uid), Some(user.gid));
    }
    let start = |err: std::io::Error| ToolError::new(format!("cannot start the command: {err}"));
    let (reader, writer) = std::io::pipe().map_err(start)?;
    let stderr = writer.try_clone().map_err(start)?;
    let (process, info, handed) = match launch.confinement {
        Some(confinement) => {
            let prepared = confinement
                .prepare(launch.root_fd, &launch.cwd, command)
                .map_err(|err| ToolError::new(format!("cannot confine the command: {err}")))?;
            (prepared.command, prepared.info, prepared.handed)
        }
        None => {
            let mut process = std::process::Command::new("sh");
            process.arg("-c").arg(command).current_dir(&launch.cwd);
            (process, None, Vec::new())
        }
    };
    let mut process = tokio::process::Command::from(process);
    process
        .env_clear()
        .envs(environment(launch.root, launch.extra_env))
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::from(stderr))
        .process_group(0)
        .kill_on_drop(true);
    let child = process.spawn().map_err(start)?;
    // Our copies of the pipe's write end went with `process`: drop it so EOF can come; and
    // the descriptors handed to bubblewrap are its alone now.
    drop(process);
    drop(handed);
    let reader = tokio::net::unix::pipe::Receiver::from_owned_fd(reader.into())
        .map_err(|err| ToolError::new(format!("cannot read the command's output: {err}")))?;
    let ending = match info {
        Some(info) => Ending::Namespace(init_pid(info).await),
        None => Ending::Group(child.id().and_then(|pid| i32::try_from(pid).ok())),
    };
    // The supervisor owns the process: it outlives this future if it is dropped, and the
    // turn waits for it (`ctx.tasks`) before it goes on.
    let stop = ctx.cancel.child_token();
    let stop_on_drop = stop.clone().drop_guard();
    let supervisor =
        ctx.tasks.spawn(supervise(child, reader, timeout, stop, launch.output_cap, ending));
    let outcome = supervisor.await;
    stop_on_drop.disarm();
    match outcome {
        Ok(Some(output)) => Ok(output),
        Ok(None) => Err(ToolError::new("the command was cancelled")),
        Err(err) => Err(ToolError::new(format!("the command's supervisor failed: {err}"))),
    }
}

/// How a command's processes are ended.
enum Ending {
    /// Kill the PID namespace's init (its pid outside, when bubblewrap reported it).
    Namespace(Option<i32>),
    /// End the process group.
    Group(Option<i32>),
}

/// The outside pid of the namespace's init, from bubblewrap's `--info-fd` report
/// (`{"child-pid": N, ...}`); `None` if it does not come within 5 s.
async fn init_pid(info: OwnedFd) -> Option<i32> {
    let mut reader = tokio::net::unix::pipe::Receiver::from_owned_fd(info).ok()?;
    let mut report = Vec::new();
    let mut chunk = [0_u8; 512];
    let read = async {
        while report.len() < 4096 {
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => report.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
    let value: serde_json::Value = serde_json::from_slice(&report).ok()?;
    value.get("child-pid")?.as_i64().and_then(|pid| i32::try_from(pid).ok())
}

/// Reads the output (keeping at most `cap` bytes) until the shell exits, the deadline
/// passes or `stop` fires; then ends whatever is left of the command's processes. `None`
/// when stopped.
async fn supervise(
    mut child: tokio::process::Child,
    mut reader: tokio::net::unix::pipe::Receiver,
    timeout: Duration,
    stop: CancellationToken,
    cap: usize,
    ending: Ending,
) -> Option<ExecOutput> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut kept: Vec<u8> = Vec::with_capacity(cap.min(8 * 1024));
    let mut total: u64 = 0;
    let mut chunk = vec![0_u8; 16 * 1024];
    let mut status = None;
    let mut eof = false;
    let mut timed_out = false;
    let mut stopped = false;
    while !(eof && status.is_some()) {
        tokio::select! {
            read = reader.read(&mut chunk), if !eof => match read {
                Ok(0) | Err(_) => eof = true,
                Ok(n) => {
                    total += n as u64;
                    let room = cap.saturating_sub(kept.len());
                    kept.extend_from_slice(&chunk[..n.min(room)]);
                }
            },
            exited = child.wait(), if status.is_none() => {
                status = Some(exited.ok().and_then(|s| s.code()).unwrap_or(-1));
                // What the shell wrote before it exited is in the pipe; background jobs
                // that keep it open do not hold the call.
                drain(&mut reader, &mut chunk, &mut kept, &mut total, cap).await;
                eof = true;
            }
            () = tokio::time::sleep_until(deadline) => { timed_out = true; break; }
            () = stop.cancelled() => { stopped = true; break; }
        }
    }
    match ending {
        Ending::Group(Some(pgid)) => terminate_group(pgid, &mut child).await,
        Ending::Group(None) => {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(1), child.wait()).await;
        }
        Ending::Namespace(init) => end_namespace(init, status.is_some(), &mut child).await,
    }
    if stopped {
        return None;
    }
    let truncated = total > kept.len() as u64;
    kept.truncate(complete_utf8_len(&kept));
    Some(ExecOutput {
        exit_code: if timed_out { -1 } else { status.unwrap_or(-1) },
        output: String::from_utf8_lossy(&kept).into_owned(),
        truncated,
        total_bytes: total,
        timed_out,
    })
}

/// Reads what the shell left in the pipe: until EOF, a quiet 50 ms, or 500 ms in all (a
/// background job that keeps the pipe open and writing does not hold the call).
async fn drain(
    reader: &mut tokio::net::unix::pipe::Receiver,
    chunk: &mut [u8],
    kept: &mut Vec<u8>,
    total: &mut u64,
    cap: usize,
) {
    let until = tokio::time::Instant::now() + Duration::from_millis(500);
    loop {
        let quiet = tokio::time::Instant::now() + Duration::from_millis(50);
        match tokio::time::timeout_at(quiet.min(until), reader.read(chunk)).await {
            Ok(Ok(n)) if n > 0 => {
                *total += n as u64;
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..n.min(room)]);
            }
            _ => return,
        }
    }
}

/// Ends a namespaced command and returns once nothing of it runs. If bubblewrap already
/// exited — it does as soon as its init reports the command's status, *before* the
/// namespace has died — its init is being killed (`--die-with-parent`), and this waits for
/// that. Otherwise every process of the namespace but its init gets TERM and up to
/// [`TERM_GRACE`] to exit; then it kills the namespace's init — the kernel kills every
/// process in the namespace with it — then bubblewrap itself if it lingers, reaps it, and
/// waits the same.
async fn end_namespace(init: Option<i32>, exited: bool, child: &mut tokio::process::Child) {
    use nix::sys::signal::{Signal, kill};
    if exited {
        // The init is an orphan now: its pid stays its own until it is reaped, so it is
        // only watched, never signalled.
        wait_gone(init).await;
        return;
    }
    if let Some(init) = init {
        terminate_namespace_members(init, child).await;
        if matches!(child.try_wait(), Ok(Some(_))) {
            // The command ended on TERM and bubblewrap exited with it, before the namespace
            // died: its init is dying now (and is an orphan, so only watched).
            wait_gone(Some(init)).await;
            return;
        }
        let _ = kill(nix::unistd::Pid::from_raw(init), Signal::SIGKILL);
        if tokio::time::timeout(Duration::from_secs(1), child.wait()).await.is_ok() {
            return;
        }
    }
    // No init known, or bubblewrap did not follow it: killing bubblewrap makes the kernel
    // kill its init (`--die-with-parent`), and that the namespace.
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(1), child.wait()).await;
    wait_gone(init).await;
}

/// Sends TERM to every process of `init`'s PID namespace but `init` and waits up to
/// [`TERM_GRACE`] while any of them runs (the namespace dies early when the command's shell
/// exits: its init then reports the status and exits, and bubblewrap with it).
async fn terminate_namespace_members(init: i32, child: &mut tokio::process::Child) {
    use nix::sys::signal::{Signal, kill};
    let Some(namespace) = pid_namespace(init) else { return };
    for pid in namespace_members(init, &namespace) {
        let _ = kill(nix::unistd::Pid::from_raw(pid), Signal::SIGTERM);
    }
    let grace = tokio::time::Instant::now() + TERM_GRACE;
    while tokio::time::Instant::now() < grace
        && !matches!(child.try_wait(), Ok(Some(_)))
        && !namespace_members(init, &namespace).is_empty()
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The PID namespace `pid` lives in (the link's target names it).
fn pid_namespace(pid: i32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()
}

/// The running processes (zombies aside) of `namespace` other than its `init`.
fn namespace_members(init: i32, namespace: &std::path::Path) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != init && pid_namespace(pid).as_deref() == Some(namespace))
        .filter(|&pid| process_running(pid))
        .collect()
}

/// Waits (at most 2 s) until the namespace's init no longer runs: it dies last, after the
/// kernel killed and reaped everything else in its namespace.
async fn wait_gone(init: Option<i32>) {
    let Some(init) = init else { return };
    let settle = tokio::time::Instant::now() + Duration::from_secs(2);
    while process_running(init) && tokio::time::Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Whether process `pid` exists and is not a zombie.
fn process_running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next());
            state != Some("Z") && state != Some("X")
        }
        Err(_) => false,
    }
}

/// Ends every process of group `pgid`: TERM, up to [`TERM_GRACE`] to exit, then KILL; and
/// reaps the shell.
pub(super) async fn terminate_group(pgid: i32, child: &mut tokio::process::Child) {
    use nix::sys::signal::{Signal, killpg};
    let group = nix::unistd::Pid::from_raw(pgid);
    if group_alive(pgid) {
        let _ = killpg(group, Signal::SIGTERM);
        let grace = tokio::time::Instant::now() + TERM_GRACE;
        while group_alive(pgid) && tokio::time::Instant::now() < grace {
            let _ = child.try_wait();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if group_alive(pgid) {
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
    // SIGKILL cannot be ignored: the shell is reaped at once.
    let _ = tokio::time::timeout(Duration::from_secs(1), child.wait()).await;
    let settle = tokio::time::Instant::now() + Duration::from_secs(1);
    while group_alive(pgid) && tokio::time::Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Whether any process of group `pgid` is still running (zombies, which can do nothing
/// more, do not count).
#[must_use]
pub(crate) fn group_alive(pgid: i32) -> bool {
    // Cheap first: an empty group (not even a zombie) is gone.
    if nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), None).is_err() {
        return false;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true; // no /proc: the kernel's answer (zombies included) stands
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else {
            return false;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else { return false };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1).and_then(|p| p.parse::<i32>().ok());
        pgrp == Some(pgid) && state != Some("Z") && state != Some("X")
    })
}
