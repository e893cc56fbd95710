//! Providers and model configs. Model-config writes take a transaction-scoped advisory lock
//! so concurrent writers cannot both promote a default (the unique index would then reject
//! one of them with a confusing conflict).

use chatd_core::store::{Entity, Result, StoreError};
use chatd_core::{
    ModelConfig, ModelConfigId, ModelConfigUpdate, NewModelConfig, NewProvider, ProviderConfig,
    ProviderKind, ProviderUpdate,
};
use sqlx::PgConnection;
use sqlx::error::ErrorKind;

use crate::error::db;
use crate::rows::{self, model_config_columns, provider_columns};
use crate::{PostgresChatStore, query};

/// The advisory lock key serialising model-config writes ("chatd-mc").
const MODEL_CONFIG_LOCK: i64 = 0x6368_6174_642d_6d63;

async fn lock_model_configs(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MODEL_CONFIG_LOCK)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}

/// Makes sure some non-deleted config is the default, preferring the oldest one other than
/// `avoid`.
async fn ensure_default(conn: &mut PgConnection, avoid: Option<ModelConfigId>) -> Result<()> {
    sqlx::query(
        "UPDATE chat_model_configs SET is_default = TRUE, updated_at = now() \
         WHERE id = (SELECT id FROM chat_model_configs WHERE NOT deleted \
                     ORDER BY (id IS NOT DISTINCT FROM $1), created_at, id LIMIT 1) \
         AND NOT EXISTS (SELECT 1 FROM chat_model_configs WHERE is_default AND NOT deleted)",
    )
    .bind(avoid.map(|id| id.0))
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

async fn make_default(conn: &mut PgConnection, id: ModelConfigId) -> Result<()> {
    sqlx::query("UPDATE chat_model_configs SET is_default = FALSE WHERE is_default AND id <> $1")
        .bind(id.0)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    sqlx::query("UPDATE chat_model_configs SET is_default = TRUE WHERE id = $1")
        .bind(id.0)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}

/// Records an encryption key digest in `dbcrypt_keys` (the provider's foreign key needs it).
///
/// A revoked key never encrypts (BEHAVIOUR §12), also in a process whose cipher was
/// installed before another process revoked it: the digest's advisory lock orders this
/// against `revoke_key`, which takes it too, and a revoked digest is refused.
async fn register_key_digest(conn: &mut PgConnection, digest: Option<&str>) -> Result<()> {
    if let Some(digest) = digest {
        lock_key_digest(conn, digest).await?;
        let revoked: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM dbcrypt_keys WHERE revoked_key_digest = $1)",
        )
        .bind(digest)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
        if revoked {
            return Err(StoreError::validation(
                "api_key_key_id",
                format!("the encryption key {digest} has been revoked: configure a new one"),
            ));
        }
        sqlx::query(
            "INSERT INTO dbcrypt_keys (active_key_digest) VALUES ($1) ON CONFLICT DO NOTHING",
        )
        .bind(digest)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    Ok(())
}

/// The transaction-scoped lock that orders registering and revoking one key digest.
async fn lock_key_digest(conn: &mut PgConnection, digest: &str) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('chatd-key:' || $1, 0))")
        .bind(digest)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}

async fn fetch_model_config(conn: &mut PgConnection, id: ModelConfigId) -> Result<ModelConfig> {
    let row = sqlx::query(concat!(
        "SELECT ",
        model_config_columns!(),
        " FROM chat_model_configs WHERE id = $1"
    ))
    .bind(id.0)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    match row {
        Some(row) => rows::model_config(&row),
        None => Err(StoreError::not_found(Entity::ModelConfig, id)),
    }
}

impl PostgresChatStore {
    pub(crate) async fn create_provider_tx(&self, mut new: NewProvider) -> Result<ProviderConfig> {
        self.limits.check_base_url(new.provider, &new.base_url)?;
        let (key, digest) = self.keys.seal(
            new.provider,
            new.base_url.trim(),
            &new.api_key,
            new.api_key_key_id.as_deref(),
        )?;
        (new.api_key, new.api_key_key_id) = (key, digest);
        let mut tx = self.pool.begin().await.map_err(db)?;
        register_key_digest(&mut tx, new.api_key_key_id.as_deref()).await?;
        let row = sqlx::query(concat!(
            "INSERT INTO chat_providers (provider, display_name, api_key, api_key_key_id, created_by, \
             enabled, base_url) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
            provider_columns!()
        ))
        .bind(new.provider.as_str())
        .bind(&new.display_name)
        .bind(new.api_key.expose())
        .bind(new.api_key_key_id.as_deref())
        .bind(new.created_by.map(|u| u.0))
        .bind(new.enabled)
        .bind(new.base_url.trim())
        .fetch_one(&mut *tx)
        .await
        .map_err(|err| match db(err) {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("A {} provider is already configured.", new.provider))
            }
            other => other,
        })?;
        let provider = rows::provider(&row)?;
        tx.commit().await.map_err(db)?;
        self.keys.open(provider)
    }

    pub(crate) async fn update_provider_tx(
        &self,
        kind: ProviderKind,
        mut update: ProviderUpdate,
    ) -> Result<ProviderConfig> {
        if let Some(url) = &update.base_url {
            self.limits.check_base_url(kind, url)?;
        }
        let mut tx = self.pool.begin().await.map_err(db)?;
        // The row the update changes, locked: the endpoint rule sees what it replaces.
        let current = sqlx::query(concat!(
            "SELECT ",
            provider_columns!(),
            " FROM chat_providers WHERE provider = $1 FOR UPDATE"
        ))
        .bind(kind.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let current = match current {
            Some(row) => rows::provider(&row)?,
            None => return Err(StoreError::not_found(Entity::Provider, kind)),
        };
        self.keys.seal_update(&current, &mut update)?;
        if let Some((_, digest)) = &update.api_key {
            register_key_digest(&mut tx, digest.as_deref()).await?;
        }
        let (sql, values) = query::update_provider(kind, &update);
        let row = sqlx::query_with(sqlx::AssertSqlSafe(sql), values)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        let provider = match row {
            Some(row) => rows::provider(&row)?,
            None => return Err(StoreError::not_found(Entity::Provider, kind)),
        };
        tx.commit().await.map_err(db)?;
        self.keys.open(provider)
    }

    /// The revoked key digests.
    async fn revoked_digests(conn: &mut PgConnection) -> Result<Vec<String>> {
        sqlx::query_scalar::<_, String>(
            "SELECT revoked_key_digest FROM dbcrypt_keys WHERE revoked_key_digest IS NOT NULL",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(db)
    }

    /// Checks the stored keys against `cipher` (share-locking the provider rows so none
    /// changes meanwhile), then uses it.
    pub(crate) async fn use_cipher_tx(
        &self,
        cipher: std::sync::Arc<chatd_core::SecretCipher>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            provider_columns!(),
            " FROM chat_providers ORDER BY provider FOR SHARE"
        ))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let stored = rows::all(&rows, rows::provider)?;
        let revoked = Self::revoked_digests(&mut tx).await?;
        self.keys.install(cipher, &stored, &revoked)?;
        tx.commit().await.map_err(db)
    }

    /// Re-encrypts every stored key under the active key in one transaction.
    pub(crate) async fn rotate_provider_keys_tx(&self) -> Result<usize> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            provider_columns!(),
            " FROM chat_providers ORDER BY provider FOR UPDATE"
        ))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let stored = rows::all(&rows, rows::provider)?;
        let mut changed = 0;
        for config in &stored {
            let Some((key, digest)) = self.keys.reseal(config)? else { continue };
            register_key_digest(&mut tx, Some(&digest)).await?;
            sqlx::query(
                "UPDATE chat_providers SET api_key = $1, api_key_key_id = $2, updated_at = NOW() \
                 WHERE provider = $3",
            )
            .bind(key.expose())
            .bind(&digest)
            .bind(config.provider.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            changed += 1;
        }
        tx.commit().await.map_err(db)?;
        Ok(changed)
    }

    /// Marks `digest` revoked unless a stored key still uses it.
    pub(crate) async fn revoke_key_tx(&self, digest: &str) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Ordered against any write registering this digest (see `register_key_digest`).
        lock_key_digest(&mut tx, digest).await?;
        let user: Option<String> = sqlx::query_scalar(
            "SELECT provider::text FROM chat_providers WHERE api_key_key_id = $1 LIMIT 1 FOR SHARE",
        )
        .bind(digest)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        if let Some(provider) = user {
            return Err(StoreError::Conflict(format!(
                "Key {digest} still encrypts the {provider} provider's key; rotate the keys first."
            )));
        }
        let moved = sqlx::query(
            "UPDATE dbcrypt_keys SET revoked_key_digest = active_key_digest, \
             active_key_digest = NULL, revoked_at = NOW() WHERE active_key_digest = $1",
        )
        .bind(digest)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if moved.rows_affected() == 0 {
            sqlx::query(
                "INSERT INTO dbcrypt_keys (revoked_key_digest, revoked_at) VALUES ($1, NOW()) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(digest)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    pub(crate) async fn get_provider_query(&self, kind: ProviderKind) -> Result<ProviderConfig> {
        let row = sqlx::query(concat!(
            "SELECT ",
            provider_columns!(),
            " FROM chat_providers WHERE provider = $1"
        ))
        .bind(kind.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        match row {
            Some(row) => rows::provider(&row),
            None => Err(StoreError::not_found(Entity::Provider, kind)),
        }
    }

    pub(crate) async fn list_providers_query(&self) -> Result<Vec<ProviderConfig>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            provider_columns!(),
            " FROM chat_providers ORDER BY provider"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows::all(&rows, rows::provider)
    }

    /// The cascade to model configs is the seed's `ON DELETE CASCADE`; a config still used by
    /// a chat or message makes the cascade fail on their foreign keys, reported as a conflict.
    pub(crate) async fn delete_provider_tx(&self, kind: ProviderKind) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        lock_model_configs(&mut tx).await?;
        let deleted = sqlx::query("DELETE FROM chat_providers WHERE provider = $1")
            .bind(kind.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|err| match &err {
                sqlx::Error::Database(e) if e.kind() == ErrorKind::ForeignKeyViolation => {
                    StoreError::Conflict(format!(
                        "The {kind} provider's model configs are still used by chats."
                    ))
                }
                _ => db(err),
            })?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::not_found(Entity::Provider, kind));
        }
        ensure_default(&mut tx, None).await?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    pub(crate) async fn create_model_config_tx(&self, new: NewModelConfig) -> Result<ModelConfig> {
        self.limits.check_new_model_config(&new)?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        lock_model_configs(&mut tx).await?;
        let configured: Option<String> =
            sqlx::query_scalar("SELECT provider FROM chat_providers WHERE provider = $1")
                .bind(new.provider.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        if configured.is_none() {
            return Err(StoreError::validation(
                "provider",
                format!("The {} provider is not configured.", new.provider),
            ));
        }
        let id = ModelConfigId::new();
        sqlx::query(
            "INSERT INTO chat_model_configs (id, provider, model, display_name, created_by, updated_by, \
             enabled, is_default, context_limit, compression_threshold, options, prices) \
             VALUES ($1, $2, $3, $4, $5, $5, $6, FALSE, $7, $8, $9, $10)",
        )
        .bind(id.0)
        .bind(new.provider.as_str())
        .bind(new.model.trim())
        .bind(&new.display_name)
        .bind(new.created_by.map(|u| u.0))
        .bind(new.enabled)
        .bind(new.context_limit)
        .bind(new.compression_threshold)
        .bind(new.options.to_json())
        .bind(new.prices.map(|p| serde_json::json!(p)))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if new.is_default {
            make_default(&mut tx, id).await?;
        } else {
            ensure_default(&mut tx, None).await?;
        }
        let config = fetch_model_config(&mut tx, id).await?;
        tx.commit().await.map_err(db)?;
        Ok(config)
    }

    pub(crate) async fn update_model_config_tx(
        &self,
        id: ModelConfigId,
        update: ModelConfigUpdate,
    ) -> Result<ModelConfig> {
        self.limits.check_model_config_update(&update)?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        lock_model_configs(&mut tx).await?;
        let (sql, values) = query::update_model_config(id, &update);
        let row = sqlx::query_with(sqlx::AssertSqlSafe(sql), values)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        let current = match row {
            Some(row) => rows::model_config(&row)?,
            None => return Err(StoreError::not_found(Entity::ModelConfig, id)),
        };
        // Dropping the transaction rolls the update back.
        self.limits.check_options(current.provider, &current.options)?;
        match update.is_default {
            Some(true) => make_default(&mut tx, id).await?,
            Some(false) if current.is_default => {
                sqlx::query("UPDATE chat_model_configs SET is_default = FALSE WHERE id = $1")
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                ensure_default(&mut tx, Some(id)).await?;
            }
            _ => {}
        }
        let config = fetch_model_config(&mut tx, id).await?;
        tx.commit().await.map_err(db)?;
        Ok(config)
    }

    pub(crate) async fn delete_model_config_tx(&self, id: ModelConfigId) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        lock_model_configs(&mut tx).await?;
        let deleted = sqlx::query(
            "UPDATE chat_model_configs SET deleted = TRUE, deleted_at = now(), is_default = FALSE, \
             updated_at = now() WHERE id = $1 AND NOT deleted",
        )
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::not_found(Entity::ModelConfig, id));
        }
        ensure_default(&mut tx, None).await?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    pub(crate) async fn get_model_config_query(&self, id: ModelConfigId) -> Result<ModelConfig> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        fetch_model_config(&mut conn, id).await
    }

    pub(crate) async fn list_model_configs_query(
        &self,
        include_disabled: bool,
    ) -> Result<Vec<ModelConfig>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            model_config_columns!(),
            " FROM chat_model_configs WHERE NOT deleted AND (enabled OR $1) ORDER BY created_at, id"
        ))
        .bind(include_disabled)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows::all(&rows, rows::model_config)
    }

    pub(crate) async fn default_model_config_query(&self) -> Result<Option<ModelConfig>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            model_config_columns!(),
            " FROM chat_model_configs WHERE is_default AND NOT deleted"
        ))
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.as_ref().map(rows::model_config).transpose()
    }
}
