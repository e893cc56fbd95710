//! Files (BEHAVIOUR §19) in `chat_files`: bytes as `bytea`, bound files cascading with their
//! chat. Binding and uploads to a chat take a transaction-scoped advisory lock on the chat,
//! so two of them can never pass its cap together.

use async_trait::async_trait;
use chatd_core::files::{FileMeta, FileStore, NewFile, StoredFile};
use chatd_core::store::{Entity, Result, StoreError};
use chatd_core::{ChatId, FileId, UserId};
use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::PostgresChatStore;
use crate::error::db;

type MetaRow = (Uuid, Uuid, Option<Uuid>, String, String, i64, DateTime<Utc>);

/// The columns of a [`FileMeta`], in [`MetaRow`]'s order.
macro_rules! meta_columns {
    () => {
        "id, owner_id, chat_id, name, media_type, size, created_at"
    };
}

fn meta_of(row: MetaRow) -> FileMeta {
    let (id, owner, chat, name, media_type, size, created_at) = row;
    FileMeta {
        id: FileId(id),
        owner_id: UserId(owner),
        chat_id: chat.map(ChatId),
        name,
        media_type,
        size: u64::try_from(size).unwrap_or_default(),
        created_at,
    }
}

/// Locks `chat`'s files for this transaction and checks that the chat is `owner`'s; returns
/// how many files it holds.
async fn lock_chat(
    tx: &mut Transaction<'_, Postgres>,
    owner: UserId,
    chat: ChatId,
) -> Result<usize> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('chat_files:' || $1::text, 0))")
        .bind(chat.0)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    let found: Option<(Uuid, i64)> = sqlx::query_as(
        "SELECT owner_id, (SELECT count(*) FROM chat_files WHERE chat_id = $1) \
         FROM chats WHERE id = $1",
    )
    .bind(chat.0)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db)?;
    match found {
        Some((found_owner, held)) if found_owner == owner.0 => {
            Ok(usize::try_from(held).unwrap_or(usize::MAX))
        }
        _ => Err(StoreError::not_found(Entity::Chat, chat)),
    }
}

#[async_trait]
impl FileStore for PostgresChatStore {
    async fn put_file(&self, file: NewFile) -> Result<FileMeta> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        if let Some(chat) = file.chat_id()
            && lock_chat(&mut tx, file.owner_id(), chat).await? >= file.max_per_chat()
        {
            return Err(StoreError::chat_full(file.max_per_chat()));
        }
        let size = i64::try_from(file.bytes().len()).unwrap_or(i64::MAX);
        let row: MetaRow = sqlx::query_as(concat!(
            "INSERT INTO chat_files (id, owner_id, chat_id, name, media_type, size, data) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
            meta_columns!()
        ))
        .bind(file.id().0)
        .bind(file.owner_id().0)
        .bind(file.chat_id().map(|c| c.0))
        .bind(file.name())
        .bind(file.media_type())
        .bind(size)
        .bind(file.bytes())
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(meta_of(row))
    }

    async fn file_meta(&self, reader: Option<UserId>, id: FileId) -> Result<FileMeta> {
        let row: Option<MetaRow> = sqlx::query_as(concat!(
            "SELECT ",
            meta_columns!(),
            " FROM chat_files WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2)"
        ))
        .bind(id.0)
        .bind(reader.map(|r| r.0))
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.map(meta_of).ok_or_else(|| StoreError::not_found(Entity::File, id))
    }

    async fn read_file(&self, reader: Option<UserId>, id: FileId) -> Result<StoredFile> {
        let row: Option<(Uuid, Uuid, Option<Uuid>, String, String, i64, DateTime<Utc>, Vec<u8>)> =
            sqlx::query_as(concat!(
                "SELECT ",
                meta_columns!(),
                ", data FROM chat_files WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2)"
            ))
            .bind(id.0)
            .bind(reader.map(|r| r.0))
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        let (a, b, c, d, e, f, g, bytes) =
            row.ok_or_else(|| StoreError::not_found(Entity::File, id))?;
        Ok(StoredFile { meta: meta_of((a, b, c, d, e, f, g)), bytes })
    }

    async fn bind_files(
        &self,
        owner: UserId,
        chat: ChatId,
        ids: &[FileId],
        max_per_chat: usize,
    ) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
        let mut tx = self.pool.begin().await.map_err(db)?;
        let held = lock_chat(&mut tx, owner, chat).await?;
        let bound = sqlx::query(
            "UPDATE chat_files SET chat_id = $1 \
             WHERE id = ANY($2) AND owner_id = $3 AND chat_id IS NULL",
        )
        .bind(chat.0)
        .bind(&ids)
        .bind(owner.0)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        if held + usize::try_from(bound).unwrap_or(usize::MAX) > max_per_chat {
            // Dropping the transaction rolls the binding back.
            return Err(StoreError::chat_full(max_per_chat));
        }
        tx.commit().await.map_err(db)
    }

    async fn chat_files(&self, chat: ChatId) -> Result<Vec<FileMeta>> {
        let rows: Vec<MetaRow> = sqlx::query_as(concat!(
            "SELECT ",
            meta_columns!(),
            " FROM chat_files WHERE chat_id = $1 ORDER BY created_at, id"
        ))
        .bind(chat.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows.into_iter().map(meta_of).collect())
    }

    async fn delete_chat_files(&self, chat: ChatId) -> Result<u64> {
        let done = sqlx::query("DELETE FROM chat_files WHERE chat_id = $1")
            .bind(chat.0)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn purge_unbound_files(&self, before: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM chat_files WHERE chat_id IS NULL AND created_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected())
    }
}
