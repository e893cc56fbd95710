//! A file store over any object store (`object_store`): the local filesystem, S3-compatible
//! stores, GCS, Azure ([BEHAVIOUR §19](crate::behaviour#19-attachments)).
//!
//! Layout under the store's root: `data/{id}` holds a file's bytes, `meta/{id}.json` its
//! [`FileMeta`], and an empty marker names what it belongs to — `chats/{chat}/{id}` once bound,
//! `unbound/{id}` until then. Chats are checked in the chat store. An object store has no
//! transactions: two uploads racing for a chat's last free place may both land (the cap can
//! be passed by the number of concurrent uploads), and a crash between writes leaves an
//! object no listing finds (the purge of unbound files does not see it either).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt as _;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};

use super::{FileMeta, FileStore, NewFile, StoredFile, chat_full};
use crate::ids::{ChatId, FileId, UserId};
use crate::store::{ChatStore, Entity, Result, StoreError};

/// Files kept in an object store; chats (for ownership and binding) in a chat store.
///
/// ```no_run
/// # use std::sync::Arc;
/// # fn demo(chats: Arc<dyn chatd_core::ChatStore>) -> Result<(), Box<dyn std::error::Error>> {
/// let local = object_store::local::LocalFileSystem::new_with_prefix("/var/lib/chatd/files")?;
/// let files = chatd_core::files::ObjectFileStore::new(Arc::new(local), chats);
/// # Ok(()) }
/// ```
///
/// For S3 (or MinIO, R2, …) enable `object_store`'s `aws` feature in the host and pass an
/// `object_store::aws::AmazonS3Builder::from_env().with_bucket_name("…").build()?`.
#[derive(Clone)]
pub struct ObjectFileStore {
    objects: Arc<dyn ObjectStore>,
    chats: Arc<dyn ChatStore>,
}

impl std::fmt::Debug for ObjectFileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectFileStore").field("objects", &self.objects.to_string()).finish()
    }
}

fn backend(err: &object_store::Error) -> StoreError {
    StoreError::backend(format!("object store: {err}"))
}

fn data(id: FileId) -> Path {
    Path::from(format!("data/{id}"))
}

fn meta(id: FileId) -> Path {
    Path::from(format!("meta/{id}.json"))
}

fn unbound(id: FileId) -> Path {
    Path::from(format!("unbound/{id}"))
}

fn bound(chat: ChatId, id: FileId) -> Path {
    Path::from(format!("chats/{chat}/{id}"))
}

impl ObjectFileStore {
    /// Files in `objects`, chats checked in `chats`.
    #[must_use]
    pub fn new(objects: Arc<dyn ObjectStore>, chats: Arc<dyn ChatStore>) -> Self {
        ObjectFileStore { objects, chats }
    }

    /// `chat`, when it exists and is `owner`'s.
    async fn owned_chat(&self, owner: UserId, chat: ChatId) -> Result<()> {
        let found = self.chats.get_chat(chat).await?;
        if found.owner_id == owner {
            Ok(())
        } else {
            Err(StoreError::not_found(Entity::Chat, chat))
        }
    }

    async fn ids_under(&self, prefix: &Path) -> Result<Vec<(FileId, DateTime<Utc>)>> {
        let listed: Vec<_> =
            self.objects.list(Some(prefix)).try_collect().await.map_err(|e| backend(&e))?;
        Ok(listed
            .into_iter()
            .filter_map(|object| {
                let id = object.location.filename()?.parse::<uuid::Uuid>().ok()?;
                Some((FileId(id), object.last_modified))
            })
            .collect())
    }

    async fn write_meta(&self, file: &FileMeta) -> Result<()> {
        let json = serde_json::to_vec(file).map_err(|e| StoreError::backend(e.to_string()))?;
        self.objects.put(&meta(file.id), PutPayload::from(json)).await.map_err(|e| backend(&e))?;
        Ok(())
    }

    async fn read_meta(&self, id: FileId) -> Result<FileMeta> {
        match self.objects.get(&meta(id)).await {
            Ok(got) => {
                let bytes = got.bytes().await.map_err(|e| backend(&e))?;
                serde_json::from_slice(&bytes).map_err(|e| StoreError::backend(e.to_string()))
            }
            Err(object_store::Error::NotFound { .. }) => {
                Err(StoreError::not_found(Entity::File, id))
            }
            Err(err) => Err(backend(&err)),
        }
    }

    async fn delete(&self, path: &Path) -> Result<()> {
        match self.objects.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(backend(&err)),
        }
    }

    async fn delete_file(&self, file: &FileMeta) -> Result<()> {
        self.delete(&meta(file.id)).await?;
        self.delete(&data(file.id)).await?;
        match file.chat_id {
            Some(chat) => self.delete(&bound(chat, file.id)).await,
            None => self.delete(&unbound(file.id)).await,
        }
    }
}

#[async_trait]
impl FileStore for ObjectFileStore {
    async fn put_file(&self, file: NewFile) -> Result<FileMeta> {
        if let Some(chat) = file.chat_id() {
            self.owned_chat(file.owner_id(), chat).await?;
            let held = self.ids_under(&Path::from(format!("chats/{chat}"))).await?.len();
            if held >= file.max_per_chat() {
                return Err(chat_full(file.max_per_chat()));
            }
        }
        let stored = file.into_stored(Utc::now());
        let id = stored.meta.id;
        self.objects
            .put(&data(id), PutPayload::from(stored.bytes))
            .await
            .map_err(|e| backend(&e))?;
        self.write_meta(&stored.meta).await?;
        let marker = match stored.meta.chat_id {
            Some(chat) => bound(chat, id),
            None => unbound(id),
        };
        self.objects.put(&marker, PutPayload::default()).await.map_err(|e| backend(&e))?;
        Ok(stored.meta)
    }

    async fn file_meta(&self, reader: Option<UserId>, id: FileId) -> Result<FileMeta> {
        let found = self.read_meta(id).await?;
        match reader {
            Some(user) if user != found.owner_id => Err(StoreError::not_found(Entity::File, id)),
            _ => Ok(found),
        }
    }

    async fn read_file(&self, reader: Option<UserId>, id: FileId) -> Result<StoredFile> {
        let meta = self.file_meta(reader, id).await?;
        let bytes = match self.objects.get(&data(id)).await {
            Ok(got) => got.bytes().await.map_err(|e| backend(&e))?.to_vec(),
            Err(object_store::Error::NotFound { .. }) => {
                return Err(StoreError::not_found(Entity::File, id));
            }
            Err(err) => return Err(backend(&err)),
        };
        Ok(StoredFile { meta, bytes })
    }

    async fn bind_files(
        &self,
        owner: UserId,
        chat: ChatId,
        ids: &[FileId],
        max_per_chat: usize,
    ) -> Result<()> {
        self.owned_chat(owner, chat).await?;
        let mut binding = Vec::new();
        for id in ids {
            match self.read_meta(*id).await {
                Ok(found) if found.owner_id == owner && found.chat_id.is_none() => {
                    if !binding.iter().any(|f: &FileMeta| f.id == found.id) {
                        binding.push(found);
                    }
                }
                Ok(_) | Err(StoreError::NotFound { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        if binding.is_empty() {
            return Ok(());
        }
        let held = self.ids_under(&Path::from(format!("chats/{chat}"))).await?.len();
        if held + binding.len() > max_per_chat {
            return Err(chat_full(max_per_chat));
        }
        for mut file in binding {
            file.chat_id = Some(chat);
            self.objects
                .put(&bound(chat, file.id), PutPayload::default())
                .await
                .map_err(|e| backend(&e))?;
            self.write_meta(&file).await?;
            self.delete(&unbound(file.id)).await?;
        }
        Ok(())
    }

    async fn chat_files(&self, chat: ChatId) -> Result<Vec<FileMeta>> {
        let mut files = Vec::new();
        for (id, _) in self.ids_under(&Path::from(format!("chats/{chat}"))).await? {
            match self.read_meta(id).await {
                Ok(found) => files.push(found),
                Err(StoreError::NotFound { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        files.sort_by_key(|f| (f.created_at, f.id));
        Ok(files)
    }

    async fn delete_chat_files(&self, chat: ChatId) -> Result<u64> {
        let files = self.chat_files(chat).await?;
        for file in &files {
            self.delete_file(file).await?;
        }
        for (id, _) in self.ids_under(&Path::from(format!("chats/{chat}"))).await? {
            self.delete(&bound(chat, id)).await?;
        }
        Ok(files.len() as u64)
    }

    async fn purge_unbound_files(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut purged = 0;
        for (id, stored_at) in self.ids_under(&Path::from("unbound")).await? {
            if stored_at >= before {
                continue;
            }
            match self.read_meta(id).await {
                Ok(found) if found.chat_id.is_none() => {
                    self.delete_file(&found).await?;
                    purged += 1;
                }
                Ok(_) => self.delete(&unbound(id)).await?,
                Err(StoreError::NotFound { .. }) => self.delete(&unbound(id)).await?,
                Err(err) => return Err(err),
            }
        }
        Ok(purged)
    }
}
