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

/// Lines `offset..offset + limit` (1-based) of `path`, at most `cap` bytes.
pub(super) fn read_window(
    dir: &Dir,
    path: &str,
    offset: Option<usize>,
    limit: Option<usize>,
    cap: usize,
) -> Result<FileWindow, ToolError> {
    let file = open_regular(dir, path)?;
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let first = offset.unwrap_or(1).max(1);
    let limit = limit.unwrap_or(usize::MAX);
    let mut line = 1;
    while line < first {
        let buf = reader.fill_buf().map_err(|err| io_error(path, &err))?;
        if buf.is_empty() {
            break;
        }
        match memchr::memchr(b'\n', buf) {
            Some(i) => {
                reader.consume(i + 1);
                line += 1;
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
    let mut out: Vec<u8> = Vec::new();
    let mut taken = 0;
    let mut truncated = false;
    while taken < limit {
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
fn replace(dir: &Dir, path: &str, bytes: &[u8], cancelled: &Cancelled) -> Result<(), ToolError> {
    let target = Path::new(path);
    let name = target.file_name().and_then(|n| n.to_str()).ok_or_else(|| not_regular(path))?;
    let temp =
        target.with_file_name(format!(".{name}.{}.chatd-tmp", uuid::Uuid::new_v4().simple()));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    let written = (|| {
        let mut file = dir.open_with(&temp, &options)?;
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
    cancelled: &Cancelled,
) -> Result<(), ToolError> {
    cancelled.check(path)?;
    check_target(dir, path)?;
    if let Some(parent) = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
        dir.create_dir_all(parent).map_err(|err| io_error(path, &err))?;
    }
    replace(dir, path, content.as_bytes(), cancelled)
}

pub(super) fn edit(
    dir: &Dir,
    path: &str,
    edits: &[FileEdit],
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
    replace(dir, path, text.as_bytes(), cancelled)
}
