//! From references to what a provider receives ([BEHAVIOUR §19](crate::behaviour#19-attachments)): each step loads the files
//! its prompt refers to, once each, and never stores what it loaded.

use std::collections::HashMap;

use base64::Engine as _;

use crate::ids::{FileId, UserId};
use crate::part::Part;
use crate::provider::PromptMessage;
use crate::provider_config::ProviderKind;
use crate::store::files::{FileStore, StoredFile};
use crate::store::{Result, StoreError};

/// The most bytes of a plain-text file put into a prompt (the rest is cut with a note).
const MAX_TEXT_BYTES: usize = 256 * 1024;

/// The most bytes of files one step loads (32 MiB, the largest request Anthropic takes): the
/// newest files come first; older ones past it are named in a note.
pub(crate) const MAX_STEP_FILE_BYTES: usize = 32 * 1024 * 1024;

/// Whether a provider of `kind` takes a file of `media_type` in its own shape: images
/// (PNG, JPEG, GIF, WebP) everywhere; PDF where the API defines a document input (Anthropic,
/// Bedrock, Gemini, OpenAI and Azure, OpenRouter, Vercel's gateway) but not on a generic
/// OpenAI-compatible server (Ollama, vLLM, … have no `file` part). Plain text never reaches a
/// provider as a file: it is sent as text.
#[must_use]
pub(crate) fn accepts(kind: ProviderKind, media_type: &str) -> bool {
    match media_type {
        "image/png" | "image/jpeg" | "image/gif" | "image/webp" => true,
        "application/pdf" => kind != ProviderKind::OpenAiCompat,
        _ => false,
    }
}

/// The text a model receives instead of a file it cannot see: why, and the file's name.
#[must_use]
pub(crate) fn unavailable_note(name: &str, media_type: &str, why: &str) -> String {
    format!("[attached file {name} ({media_type}): {why}]")
}

/// Loads the files `messages` refer to (file parts with an `attachment_id` and no data) from
/// `files` as `owner` reads them, each file once: an image or PDF that `kind` accepts gets
/// its base64 `data`; a plain-text file becomes a text part holding its content; a file of a
/// type `kind` does not take, a file that is gone (or another owner's), or any file when
/// there is no file store, becomes a text part naming it. Inline file parts of a type `kind`
/// does not take become such notes too. At most `MAX_STEP_FILE_BYTES` of files are
/// loaded, newest first; older files past that are notes. Returns how many files were read.
///
/// # Errors
/// The file store's failures other than `NotFound`.
pub(crate) async fn load_attachments(
    files: Option<&dyn FileStore>,
    owner: UserId,
    kind: ProviderKind,
    messages: &mut [PromptMessage],
) -> Result<usize> {
    load_attachments_within(files, owner, kind, messages, MAX_STEP_FILE_BYTES).await
}

/// [`load_attachments`] with at most `budget` bytes of files.
///
/// # Errors
/// The file store's failures other than `NotFound`.
pub(crate) async fn load_attachments_within(
    files: Option<&dyn FileStore>,
    owner: UserId,
    kind: ProviderKind,
    messages: &mut [PromptMessage],
    budget: usize,
) -> Result<usize> {
    let mut loaded: HashMap<FileId, Option<(StoredFile, String)>> = HashMap::new();
    let mut spent = 0_usize;
    let mut over_budget: std::collections::HashSet<FileId> = std::collections::HashSet::new();
    // Newest message first, so that a budget keeps the files the conversation is about now.
    for message in messages.iter_mut().rev() {
        for part in &mut message.content {
            let Part::File { media_type, data, attachment_id, name, .. } = part else {
                continue;
            };
            let shown = name.clone().unwrap_or_else(|| "file".to_owned());
            let Some(id) = *attachment_id else {
                if data.is_some() && !accepts(kind, media_type) {
                    let why = "this model cannot read files of this type";
                    *part = Part::text(unavailable_note(&shown, media_type, why));
                }
                continue;
            };
            if data.is_some() {
                continue;
            }
            if let std::collections::hash_map::Entry::Vacant(slot) = loaded.entry(id) {
                let read = match files {
                    Some(store) => match store.read_file(Some(owner), id).await {
                        Ok(file) if spent + file.bytes.len() > budget => {
                            over_budget.insert(id);
                            None
                        }
                        Ok(file) => {
                            spent += file.bytes.len();
                            let encoded = if file.meta.media_type == "text/plain" {
                                String::new()
                            } else {
                                base64::engine::general_purpose::STANDARD.encode(&file.bytes)
                            };
                            Some((file, encoded))
                        }
                        Err(StoreError::NotFound { .. }) => None,
                        Err(other) => return Err(other),
                    },
                    None => None,
                };
                slot.insert(read);
            }
            let replacement = match loaded.get(&id) {
                Some(Some((file, _))) if file.meta.media_type == "text/plain" => {
                    Part::text(text_of(&shown, &file.bytes))
                }
                Some(Some((file, _))) if !accepts(kind, &file.meta.media_type) => {
                    let why = "this model cannot read files of this type";
                    Part::text(unavailable_note(&shown, &file.meta.media_type, why))
                }
                Some(Some((file, encoded))) => Part::File {
                    media_type: file.meta.media_type.clone(),
                    data: Some(encoded.clone()),
                    attachment_id: Some(id),
                    file_id: None,
                    name: Some(shown),
                },
                _ if over_budget.contains(&id) => {
                    let why = "not sent: this request's files reached their size limit";
                    Part::text(unavailable_note(&shown, media_type, why))
                }
                _ => Part::text(unavailable_note(&shown, media_type, "it is no longer available")),
            };
            *part = replacement;
        }
    }
    Ok(loaded.values().filter(|read| read.is_some()).count())
}

/// Replaces every file part of `messages` that refers to a stored file (and holds no data)
/// with a text part naming it: `[attached file NAME (TYPE)]`. For requests that do not send
/// files, such as a compaction's summary, so that the model still knows they were there.
pub(crate) fn name_attachments(messages: &mut [PromptMessage]) {
    for part in messages.iter_mut().flat_map(|m| m.content.iter_mut()) {
        if let Part::File { media_type, data: None, attachment_id: Some(_), name, .. } = part {
            let shown = name.as_deref().unwrap_or("file");
            *part = Part::text(format!("[attached file {shown} ({media_type})]"));
        }
    }
}

/// A plain-text file as the text a model reads, cut at [`MAX_TEXT_BYTES`].
fn text_of(name: &str, bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.len() <= MAX_TEXT_BYTES {
        return format!("[attached file {name}]\n{text}");
    }
    let mut cut = MAX_TEXT_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("[attached file {name}, first {cut} of {} bytes]\n{}", text.len(), &text[..cut])
}

#[cfg(test)]
mod tests;
