//! Files (BEHAVIOUR §19): a map in the store's state, bound files removed with their chat.

use async_trait::async_trait;
use chatd_core::files::{FileMeta, FileStore, NewFile, StoredFile};
use chatd_core::store::{Entity, Result, StoreError};
use chatd_core::{ChatId, FileId, UserId};
use chrono::{DateTime, Utc};

use crate::InMemoryChatStore;
use crate::state::State;

impl State {
    /// Fails unless `chat` exists and is `owner`'s.
    fn chat_of(&self, owner: UserId, chat: ChatId) -> Result<()> {
        match self.chats.get(&chat) {
            Some(entry) if entry.chat.owner_id == owner => Ok(()),
            _ => Err(StoreError::not_found(Entity::Chat, chat)),
        }
    }

    fn files_of(&self, chat: ChatId) -> usize {
        self.files.values().filter(|f| f.meta.chat_id == Some(chat)).count()
    }

    fn file(&self, reader: Option<UserId>, id: FileId) -> Result<&StoredFile> {
        match self.files.get(&id) {
            Some(file) if reader.is_none_or(|user| user == file.meta.owner_id) => Ok(file),
            _ => Err(StoreError::not_found(Entity::File, id)),
        }
    }
}

#[async_trait]
impl FileStore for InMemoryChatStore {
    async fn put_file(&self, file: NewFile) -> Result<FileMeta> {
        self.with(|s| {
            if let Some(chat) = file.chat_id() {
                s.chat_of(file.owner_id(), chat)?;
                if s.files_of(chat) >= file.max_per_chat() {
                    return Err(StoreError::chat_full(file.max_per_chat()));
                }
            }
            let stored = file.into_stored(Utc::now());
            let meta = stored.meta.clone();
            s.files.insert(meta.id, stored);
            Ok(meta)
        })
    }

    async fn file_meta(&self, reader: Option<UserId>, id: FileId) -> Result<FileMeta> {
        self.with(|s| Ok(s.file(reader, id)?.meta.clone()))
    }

    async fn read_file(&self, reader: Option<UserId>, id: FileId) -> Result<StoredFile> {
        self.with(|s| Ok(s.file(reader, id)?.clone()))
    }

    async fn bind_files(
        &self,
        owner: UserId,
        chat: ChatId,
        ids: &[FileId],
        max_per_chat: usize,
    ) -> Result<()> {
        self.with(|s| {
            s.chat_of(owner, chat)?;
            let mut binding: Vec<FileId> = ids
                .iter()
                .copied()
                .filter(|id| {
                    s.files
                        .get(id)
                        .is_some_and(|f| f.meta.owner_id == owner && f.meta.chat_id.is_none())
                })
                .collect();
            binding.sort_unstable();
            binding.dedup();
            if s.files_of(chat) + binding.len() > max_per_chat {
                return Err(StoreError::chat_full(max_per_chat));
            }
            for id in binding {
                if let Some(file) = s.files.get_mut(&id) {
                    file.meta.chat_id = Some(chat);
                }
            }
            Ok(())
        })
    }

    async fn chat_files(&self, chat: ChatId) -> Result<Vec<FileMeta>> {
        self.with(|s| {
            let mut files: Vec<FileMeta> = s
                .files
                .values()
                .filter(|f| f.meta.chat_id == Some(chat))
                .map(|f| f.meta.clone())
                .collect();
            files.sort_by_key(|f| (f.created_at, f.id));
            Ok(files)
        })
    }

    async fn delete_chat_files(&self, chat: ChatId) -> Result<u64> {
        self.with(|s| {
            let before = s.files.len();
            s.files.retain(|_, f| f.meta.chat_id != Some(chat));
            Ok((before - s.files.len()) as u64)
        })
    }

    async fn purge_unbound_files(&self, before: DateTime<Utc>) -> Result<u64> {
        self.with(|s| {
            let count = s.files.len();
            s.files.retain(|_, f| f.meta.chat_id.is_some() || f.meta.created_at >= before);
            Ok((count - s.files.len()) as u64)
        })
    }
}
