//! File operations of the local workspace, run on a blocking thread through cap-std (every
//! path resolved beneath the workspace directory). Only regular files are opened, and they
//! are opened without blocking, so a FIFO, socket or device is an error and never a hang.
//! Writes go to a uniquely named temporary file renamed over the target.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};

use super::super::ToolError;
use super::super::workspace::{FileEdit, FileWindow, MAX_EDIT_FILE_BYTES, complete_utf8_len};
use super::SandboxUser;

/// Set when the call that started an operation was cancelled: the operation then changes
/// nothing more.
#[derive(Debug, Clone, Default)]
pub(super) struct Cancelled(Arc<AtomicBool>);

impl Cancelled {
    pub(super) fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn check(&self, path: &str) -> Result<(), ToolError> {
        if self.0.load(Ordering::SeqCst) {
            Err(ToolError::new(format!("{path}: cancelled")))
        } else {
            Ok(())
        }
    }
}

pub(super) fn io_error(path: &str, err: &std::io::Error) -> ToolError {
    match err.kind() {
        std::io::ErrorKind::NotFound => ToolError::new(format!("{path}: no such file")),
        std::io::ErrorKind::PermissionDenied => {
            ToolError::new(format!("{path}: escapes the workspace or is not permitted"))
        }
        _ => ToolError::new(format!("{path}: {err}")),
    }
}

fn not_regular(path: &str) -> ToolError {
    ToolError::new(format!(
        "{path}: not a regular file (a directory, FIFO, socket or device cannot be used)"
    ))
}

/// Opens `path` for reading if it is a regular file, without ever blocking.
fn open_regular(dir: &Dir, path: &str) -> Result<cap_std::fs::File, ToolError> {
    let mut options = OpenOptions::new();
    options.read(true).custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY);
    let file = dir.open_with(path, &options).map_err(|err| io_error(path, &err))?;
    let meta = file.metadata().map_err(|err| io_error(path, &err))?;
    if meta.is_file() { Ok(file) } else { Err(not_regular(path)) }
}

/// The whole of `path`, when it is a regular file of at most `max` bytes.
pub(super) fn read_all(
    dir: &Dir,
    path: &str,
    max: usize,
    cancelled: &Cancelled,
) -> Result<Vec<u8>, ToolError> {
    use std::io::Read as _;
    let file = open_regular(dir, path)?;
    let mut bytes = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let mut reader = file.take(limit);
    let mut chunk = vec![0_u8; 64 * 1024];
    loop {
        cancelled.check(path)?;
        let read = reader.read(&mut chunk).map_err(|err| io_error(path, &err))?;
        if read == 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..read]);
    }
    if bytes.len() > max {
        return Err(ToolError::new(format!("{path}: larger than {max} bytes")));
    }
    Ok(bytes)
}

/// The most bytes `read_file` reads to reach its first line ([BEHAVIOUR §13](crate::behaviour#13-tools)): a line offset
/// cannot be sought to, so what comes before it is scanned — checking cancellation at every
/// chunk — but never more than this (a sparse 16 TiB file would otherwise hold a thread for
/// hours).
pub(crate) const MAX_SKIP_BYTES: u64 = 256 * 1024 * 1024;

/// Lines `offset..offset + limit` (1-based) of `path`, at most `cap` bytes; reaching
/// `offset` reads at most `skip_cap` bytes.
pub(super) fn read_window(
    dir: &Dir,
    path: &str,
    window: (Option<usize>, Option<usize>),
    caps: (usize, u64),
    cancelled: &Cancelled,
) -> Result<FileWindow, ToolError> {
    let ((offset, limit), (cap, skip_cap)) = (window, caps);
    let file = open_regular(dir, path)?;
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let first = offset.unwrap_or(1).max(1);
    let limit = limit.unwrap_or(usize::MAX);
    let mut line = 1;
    let mut skipped: u64 = 0;
    while line < first {
        cancelled.check(path)?;
        let buf = reader.fill_buf().map_err(|err| io_error(path, &err))?;
        if buf.is_empty() {
            break;
        }
        if skipped >= skip_cap {
            return Err(ToolError::new(format!(
                "{path}: line {first} is not within the first {} MiB of the file; read that \
                 part with execute (e.g. `sed -n '{first},+50p'` or `tail -c`)",
                skip_cap / (1024 * 1024)
            )));
        }
        let taken = match memchr::memchr(b'\n', buf) {
            Some(i) => {
                line += 1;
                i + 1
            }
            None => buf.len(),
        };
        reader.consume(taken);
        skipped += taken as u64;
    }
    let mut out: Vec<u8> = Vec::new();
    let mut taken = 0;
    let mut truncated = false;
    while taken < limit {
        cancelled.check(path)?;
        let buf = reader.fill_buf().map_err(|err| io_error(path, &err))?;
        if buf.is_empty() {
            break;
        }
        let (end, newline) = match memchr::memchr(b'\n', buf) {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        let room = cap - out.len();
        if end > room {
            out.extend_from_slice(&buf[..room]);
            truncated = true;
            break;
        }
        out.extend_from_slice(&buf[..end]);
        reader.consume(end);
        if newline {
            taken += 1;
        }
    }
    out.truncate(complete_utf8_len(&out));
    Ok(FileWindow {
        content: String::from_utf8_lossy(&out).into_owned(),
        truncated,
        next_offset: truncated.then_some(first + taken),
    })
}

/// Refuses a target that exists and is not a regular file.
fn check_target(dir: &Dir, path: &str) -> Result<(), ToolError> {
    match dir.metadata(path) {
        Ok(meta) if !meta.is_file() => Err(not_regular(path)),
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(io_error(path, &err)),
    }
}

/// Writes `bytes` to a uniquely named sibling of `path`, then renames it over `path`:
/// readers see the old or the new file, never half of one, and concurrent writers never
/// share a temporary file.
fn replace(
    dir: &Dir,
    path: &str,
    bytes: &[u8],
    owner: Option<SandboxUser>,
    cancelled: &Cancelled,
) -> Result<(), ToolError> {
    let target = Path::new(path);
    let name = target.file_name().and_then(|n| n.to_str()).ok_or_else(|| not_regular(path))?;
    let temp =
        target.with_file_name(format!(".{name}.{}.chatd-tmp", uuid::Uuid::new_v4().simple()));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    let written = (|| {
        let mut file = dir.open_with(&temp, &options)?;
        if let Some(user) = owner {
            std::os::unix::fs::fchown(&file, Some(user.uid), Some(user.gid))?;
        }
        file.write_all(bytes)?;
        file.sync_data()
    })();
    let renamed = written.map_err(|err| io_error(path, &err)).and_then(|()| {
        cancelled.check(path)?;
        dir.rename(&temp, dir, target).map_err(|err| io_error(path, &err))
    });
    if renamed.is_err() {
        let _ = dir.remove_file(&temp);
    }
    renamed
}

pub(super) fn write(
    dir: &Dir,
    path: &str,
    content: &str,
    owner: Option<SandboxUser>,
    cancelled: &Cancelled,
) -> Result<(), ToolError> {
    cancelled.check(path)?;
    check_target(dir, path)?;
    if let Some(parent) = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
        dir.create_dir_all(parent).map_err(|err| io_error(path, &err))?;
        if let Some(user) = owner {
            hand_over_dirs(dir, parent, user).map_err(|err| io_error(path, &err))?;
        }
    }
    replace(dir, path, content.as_bytes(), owner, cancelled)
}

/// Gives the directories of `parent` (beneath `dir`) that are not yet `user`'s to it: each
/// one changed through its own parent's descriptor, without following a link, so a
/// component a command swapped for a link never sends the change outside.
fn hand_over_dirs(dir: &Dir, parent: &Path, user: SandboxUser) -> std::io::Result<()> {
    use nix::fcntl::AtFlags;
    use nix::unistd::{Gid, Uid, fchownat};
    use std::path::Component;
    // Every directory the path names (`create_dir_all` made them all); `..` goes back up by
    // re-opening from the root, since each cap-std handle is a sandbox of its own that `..`
    // cannot leave. cap-std already resolved the path beneath the root.
    let reopen = |names: &[&std::ffi::OsStr]| -> std::io::Result<Dir> {
        names.iter().try_fold(dir.try_clone()?, |at, name| at.open_dir(name))
    };
    let mut names: Vec<&std::ffi::OsStr> = Vec::new();
    let mut at = dir.try_clone()?;
    for part in parent.components() {
        let name = match part {
            Component::Normal(name) => name,
            Component::ParentDir => {
                names.pop();
                at = reopen(&names)?;
                continue;
            }
            Component::CurDir => continue,
            Component::RootDir | Component::Prefix(_) => {
                return Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
            }
        };
        let meta = at.symlink_metadata(name)?;
        if cap_std::fs::MetadataExt::uid(&meta) != user.uid {
            fchownat(
                &at,
                name,
                Some(Uid::from_raw(user.uid)),
                Some(Gid::from_raw(user.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(std::io::Error::from)?;
        }
        at = at.open_dir(name)?;
        names.push(name);
    }
    Ok(())
}

/// Gives the workspace `dir`, and everything beneath it, to `user`: a root worker's commands
/// run as that user and must be able to change what they find.
///
/// It walks by descriptors, never by path, and never follows a link: the tree may hold what
/// an earlier command left, and a directory swapped for a link to `/etc` while the walk runs
/// must not make root give `/etc` away. Each entry is changed through its parent's
/// descriptor (`fchownat`, no follow) and each directory opened `O_NOFOLLOW`; an entry that
/// vanished or turned into a link meanwhile is skipped.
pub(super) fn hand_over(dir: &Dir, user: SandboxUser) -> std::io::Result<()> {
    use nix::fcntl::AtFlags;
    use nix::unistd::{Gid, Uid, fchownat};
    let (uid, gid) = (Some(Uid::from_raw(user.uid)), Some(Gid::from_raw(user.gid)));
    let mine = |meta: &cap_std::fs::Metadata| {
        cap_std::fs::MetadataExt::uid(meta) == user.uid
            && cap_std::fs::MetadataExt::gid(meta) == user.gid
    };
    let skip = |err: &std::io::Error| {
        matches!(
            err.raw_os_error(),
            Some(nix::libc::ENOENT | nix::libc::ELOOP | nix::libc::ENOTDIR)
        )
    };
    if !mine(&dir.dir_metadata()?) {
        // The root itself, by its descriptor (AT_EMPTY_PATH works on `O_PATH` ones too).
        fchownat(dir, "", uid, gid, AtFlags::AT_EMPTY_PATH).map_err(std::io::Error::from)?;
    }
    let mut pending = vec![dir.try_clone()?];
    while let Some(current) = pending.pop() {
        for entry in current.entries()? {
            let entry = entry?;
            let name = entry.file_name();
            // `metadata` and `file_type` of an entry never follow a link.
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                Err(err) if skip(&err) => continue,
                Err(err) => return Err(err),
            };
            if !mine(&meta) {
                match fchownat(&current, name.as_os_str(), uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW) {
                    Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
                    Err(err) => return Err(err.into()),
                }
            }
            if meta.is_dir() {
                let mut options = OpenOptions::new();
                options.read(true).custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW);
                match current.open_with(&name, &options) {
                    Ok(file) => pending.push(Dir::from_std_file(file.into_std())),
                    Err(err) if skip(&err) => {}
                    Err(err) => return Err(err),
                }
            }
        }
    }
    Ok(())
}

pub(super) fn edit(
    dir: &Dir,
    path: &str,
    edits: &[FileEdit],
    owner: Option<SandboxUser>,
    cancelled: &Cancelled,
) -> Result<(), ToolError> {
    let file = open_regular(dir, path)?;
    let mut bytes = Vec::new();
    file.take(MAX_EDIT_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| io_error(path, &e))?;
    if bytes.len() as u64 > MAX_EDIT_FILE_BYTES {
        return Err(ToolError::new(format!(
            "{path}: larger than {MAX_EDIT_FILE_BYTES} bytes; edit it with execute"
        )));
    }
    let mut text = String::from_utf8(bytes)
        .map_err(|_| ToolError::new(format!("{path}: not a UTF-8 text file")))?;
    for (index, edit) in edits.iter().enumerate() {
        if edit.search.is_empty() {
            return Err(ToolError::new(format!("{path}: edit {index}: the search text is empty")));
        }
        match text.matches(&edit.search).count() {
            1 => text = text.replacen(&edit.search, &edit.replace, 1),
            0 => {
                return Err(ToolError::new(format!("{path}: edit {index}: search text not found")));
            }
            n => {
                return Err(ToolError::new(format!(
                    "{path}: edit {index}: search text found {n} times; make it unique"
                )));
            }
        }
    }
    replace(dir, path, text.as_bytes(), owner, cancelled)
}
