//! Attachments through the service ([BEHAVIOUR §19](crate::behaviour#19-attachments)): uploads, owner-scoped reads, and the
//! file parts of what people send turned into references before the store sees them.

use base64::Engine as _;

use super::{Actor, Chatd, ChatdError, Result, Scope};
use crate::ids::{ChatId, FileId, UserId};
use crate::part::Part;
use crate::store::StoreError;
use crate::store::files::{FileMeta, NewFile, StoredFile};

/// The file store's absence, as the host sees it.
fn no_file_store() -> ChatdError {
    StoreError::validation("file", "Files cannot be attached: there is no file store.").into()
}

/// Decodes base64 `data`, also as a `data:` URL (`data:image/png;base64,...`).
fn decode(data: &str) -> Option<Vec<u8>> {
    let payload = match data.strip_prefix("data:") {
        Some(url) => url.split_once(";base64,")?.1,
        None => data,
    };
    base64::engine::general_purpose::STANDARD.decode(payload.trim()).ok()
}

/// A file's error re-aimed at the part that carried it.
fn at_part(index: usize, err: StoreError) -> StoreError {
    match err {
        StoreError::Validation { reason, .. } => StoreError::validation(
            format!("content[{index}]"),
            format!("content[{index}]: {reason}"),
        ),
        other => other,
    }
}

impl Chatd {
    /// Keeps attachments in `files` instead of the chat store's own file store
    /// ([`ChatStore::file_store`](crate::store::ChatStore::file_store)). Give the workers'
    /// runner the same one ([`TurnRunner::with_files`](crate::runtime::turn::TurnRunner::with_files)).
    #[must_use]
    pub fn with_files(mut self, files: std::sync::Arc<dyn crate::store::files::FileStore>) -> Self {
        self.files = Some(files);
        self
    }

    /// Checks files against `limits` (size, files per message and per chat) instead of the
    /// defaults.
    #[must_use]
    pub fn with_file_limits(mut self, limits: crate::store::Limits) -> Self {
        self.file_limits = limits;
        self
    }

    fn file_store(&self) -> Result<&dyn crate::store::files::FileStore> {
        self.files.as_deref().ok_or_else(no_file_store)
    }

    /// Stores a file for the actor ([BEHAVIOUR §19](crate::behaviour#19-attachments)), bound to `chat` when given (the actor's
    /// chat), else unbound until a message refers to it. The type is sniffed from `bytes`.
    /// The system actor must name a chat (the file is its owner's).
    ///
    /// # Errors
    /// `Forbidden` without `chat:update` (with a chat) or `chat:create`; `NotFound` for
    /// another user's chat; a validation error on `file` for an empty, oversized or refused
    /// file, a full chat, or when there is no file store.
    pub async fn upload_file(
        &self,
        actor: &Actor,
        chat: Option<ChatId>,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<FileMeta> {
        let owner = match (chat, actor.user_id()) {
            (Some(chat), _) => self.owned(actor, chat, Scope::Update).await?.owner_id,
            (None, Some(user)) => {
                Self::require(actor, Scope::Create)?;
                user
            }
            (None, None) => {
                return Err(StoreError::validation(
                    "chat_id",
                    "The system must name the chat a file belongs to.",
                )
                .into());
            }
        };
        let file = NewFile::new(owner, chat, name, bytes, &self.file_limits)?;
        Ok(self.file_store()?.put_file(file).await?)
    }

    /// A file with its bytes, if the actor owns it (the system reads any).
    ///
    /// # Errors
    /// `NotFound` for a missing file or another user's; `Forbidden` without `chat:read`.
    pub async fn read_file(&self, actor: &Actor, id: FileId) -> Result<StoredFile> {
        Self::require(actor, Scope::Read)?;
        Ok(self.file_store()?.read_file(actor.user_id(), id).await?)
    }

    /// What a file is, if the actor owns it.
    ///
    /// # Errors
    /// As [`Chatd::read_file`].
    pub async fn file_meta(&self, actor: &Actor, id: FileId) -> Result<FileMeta> {
        Self::require(actor, Scope::Read)?;
        Ok(self.file_store()?.file_meta(actor.user_id(), id).await?)
    }

    /// The files bound to the actor's chat, oldest first.
    ///
    /// # Errors
    /// `NotFound`; `Forbidden` without `chat:read`.
    pub async fn chat_files(&self, actor: &Actor, chat: ChatId) -> Result<Vec<FileMeta>> {
        self.owned(actor, chat, Scope::Read).await?;
        Ok(self.file_store()?.chat_files(chat).await?)
    }

    /// Turns the file parts of `content` into references ([BEHAVIOUR §19](crate::behaviour#19-attachments)): inline data is
    /// decoded, checked and stored (bound to `chat` when given); a reference must be to one
    /// of `owner`'s files and takes that file's sniffed type and name. Returns the files
    /// still unbound (to bind once the chat exists). Without a file store, content is left
    /// as it is (the store's checks bound inline data).
    pub(super) async fn prepare_content(
        &self,
        owner: UserId,
        chat: Option<ChatId>,
        content: &mut [Part],
    ) -> Result<Vec<FileId>> {
        let Some(files) = self.files.as_deref() else { return Ok(Vec::new()) };
        let limits = &self.file_limits;
        let count = content.iter().filter(|p| matches!(p, Part::File { .. })).count();
        if count > limits.max_files_per_message {
            let message =
                format!("A message may have at most {} files.", limits.max_files_per_message);
            return Err(StoreError::validation("content", message).into());
        }
        // Every inline file is checked before any is stored: a refusal stores nothing.
        let mut checked: Vec<(usize, NewFile)> = Vec::new();
        for (index, part) in content.iter().enumerate() {
            let Part::File { data: Some(data), attachment_id: None, name, .. } = part else {
                continue;
            };
            let Some(bytes) = decode(data) else {
                let field = format!("content[{index}].data");
                let message = format!("{field} is not valid base64.");
                return Err(StoreError::validation(field, message).into());
            };
            let name = name.as_deref().unwrap_or("file");
            let file =
                NewFile::new(owner, chat, name, bytes, limits).map_err(|e| at_part(index, e))?;
            checked.push((index, file));
        }
        let mut unbound = Vec::new();
        for (index, part) in content.iter_mut().enumerate() {
            let Part::File { attachment_id: Some(id), .. } = part else { continue };
            let meta = files.file_meta(Some(owner), *id).await.map_err(|err| match err {
                StoreError::NotFound { .. } => {
                    let field = format!("content[{index}].attachment_id");
                    StoreError::validation(
                        field.clone(),
                        format!("{field} refers to a file that does not exist."),
                    )
                }
                other => other,
            })?;
            if meta.chat_id.is_none() {
                unbound.push(meta.id);
            }
            *part = meta.part();
        }
        for (index, file) in checked {
            let meta = files.put_file(file).await.map_err(|e| at_part(index, e))?;
            if meta.chat_id.is_none() {
                unbound.push(meta.id);
            }
            content[index] = meta.part();
        }
        if let Some(chat) = chat
            && !unbound.is_empty()
        {
            files.bind_files(owner, chat, &unbound, limits.max_files_per_chat).await?;
            unbound.clear();
        }
        Ok(unbound)
    }

    /// Binds files a new chat's first message refers to. The chat exists already: a failure
    /// is logged, and the files stay unbound (the model is told they are unavailable once
    /// they are purged).
    pub(super) async fn bind_new_chat_files(&self, owner: UserId, chat: ChatId, ids: &[FileId]) {
        let Some(files) = self.files.as_deref() else { return };
        if ids.is_empty() {
            return;
        }
        let max = self.file_limits.max_files_per_chat;
        if let Err(err) = files.bind_files(owner, chat, ids, max).await {
            tracing::warn!(chat_id = %chat, error = %err, "could not bind a new chat's files");
        }
    }

    /// Deletes a deleted chat's files from a file store that does not delete them with it.
    pub(super) async fn forget_chat_files(&self, chat: ChatId) {
        if let Some(files) = self.files.as_deref()
            && let Err(err) = files.delete_chat_files(chat).await
        {
            tracing::warn!(chat_id = %chat, error = %err, "could not delete a deleted chat's files");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn data_is_base64_or_a_data_url() {
        assert_eq!(decode("aGk=").as_deref(), Some(&b"hi"[..]));
        assert_eq!(decode("data:text/plain;base64,aGk=").as_deref(), Some(&b"hi"[..]));
        assert_eq!(decode("data:text/plain,hi"), None);
        assert_eq!(decode("not base64!"), None);
    }
}
