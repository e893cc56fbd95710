//! Providers and model configs, with the single-default invariant.

use chatd_core::store::{Entity, Result, StoreError};
use chatd_core::{
    ModelConfig, ModelConfigId, ModelConfigUpdate, NewModelConfig, NewProvider, ProviderConfig,
    ProviderId, ProviderKind, ProviderUpdate,
};

use crate::state::{State, now};

impl State {
    /// Records an active key digest (`dbcrypt_keys`).
    /// Records the digest of the key a value is being encrypted with; a revoked key never
    /// encrypts (BEHAVIOUR §12), also when the cipher that holds it was installed before
    /// the revocation.
    pub(crate) fn register_digest(&mut self, digest: Option<&str>) -> Result<()> {
        if let Some(digest) = digest {
            if self.key_digests.get(digest) == Some(&true) {
                return Err(revoked_key(digest));
            }
            self.key_digests.entry(digest.to_owned()).or_insert(false);
        }
        Ok(())
    }

    /// The revoked key digests.
    pub(crate) fn revoked_digests(&self) -> Vec<String> {
        self.key_digests.iter().filter(|(_, revoked)| **revoked).map(|(d, _)| d.clone()).collect()
    }

    /// Marks `digest` revoked, unless a stored key still uses it.
    pub(crate) fn revoke_digest(&mut self, digest: &str) -> Result<()> {
        if let Some(user) =
            self.providers.values().find(|p| p.api_key_key_id.as_deref() == Some(digest))
        {
            return Err(StoreError::Conflict(format!(
                "Key {digest} still encrypts the {} provider's key; rotate the keys first.",
                user.provider
            )));
        }
        self.key_digests.insert(digest.to_owned(), true);
        Ok(())
    }

    pub(crate) fn create_provider(&mut self, new: NewProvider) -> Result<ProviderConfig> {
        self.limits.check_base_url(new.provider, &new.base_url)?;
        if self.providers.contains_key(&new.provider) {
            return Err(StoreError::Conflict(format!(
                "A {} provider is already configured.",
                new.provider
            )));
        }
        let at = now();
        let config = ProviderConfig {
            id: ProviderId::new(),
            provider: new.provider,
            display_name: new.display_name,
            api_key: new.api_key,
            api_key_key_id: new.api_key_key_id,
            created_by: new.created_by,
            enabled: new.enabled,
            created_at: at,
            updated_at: at,
            base_url: new.base_url.trim().to_owned(),
        };
        self.providers.insert(config.provider, config.clone());
        Ok(config)
    }

    pub(crate) fn update_provider(
        &mut self,
        kind: ProviderKind,
        update: ProviderUpdate,
    ) -> Result<ProviderConfig> {
        if let Some(url) = &update.base_url {
            self.limits.check_base_url(kind, url)?;
        }
        let config = self
            .providers
            .get_mut(&kind)
            .ok_or_else(|| StoreError::not_found(Entity::Provider, kind))?;
        if let Some(name) = update.display_name {
            config.display_name = name;
        }
        if let Some((key, key_id)) = update.api_key {
            config.api_key = key;
            config.api_key_key_id = key_id;
        }
        if let Some(url) = update.base_url {
            config.base_url = url.trim().to_owned();
        }
        if let Some(enabled) = update.enabled {
            config.enabled = enabled;
        }
        config.updated_at = now();
        Ok(config.clone())
    }

    pub(crate) fn get_provider(&self, kind: ProviderKind) -> Result<ProviderConfig> {
        self.providers
            .get(&kind)
            .cloned()
            .ok_or_else(|| StoreError::not_found(Entity::Provider, kind))
    }

    pub(crate) fn delete_provider(&mut self, kind: ProviderKind) -> Result<()> {
        if !self.providers.contains_key(&kind) {
            return Err(StoreError::not_found(Entity::Provider, kind));
        }
        let doomed: Vec<ModelConfigId> =
            self.model_configs.values().filter(|c| c.provider == kind).map(|c| c.id).collect();
        let in_use = self.chats.values().any(|entry| {
            doomed.contains(&entry.chat.last_model_config_id)
                || entry
                    .messages
                    .iter()
                    .any(|m| m.model_config_id.is_some_and(|id| doomed.contains(&id)))
        });
        if in_use {
            return Err(StoreError::Conflict(format!(
                "The {kind} provider's model configs are still used by chats."
            )));
        }
        self.providers.remove(&kind);
        for id in doomed {
            self.model_configs.remove(&id);
        }
        self.ensure_default(None);
        Ok(())
    }

    /// Non-deleted configs, oldest first.
    fn live_configs(&self) -> Vec<&ModelConfig> {
        let mut configs: Vec<&ModelConfig> =
            self.model_configs.values().filter(|c| !c.deleted).collect();
        configs.sort_by_key(|c| (c.created_at, c.id));
        configs
    }

    /// Makes `id` the only default.
    fn make_default(&mut self, id: ModelConfigId) {
        for config in self.model_configs.values_mut() {
            config.is_default = config.id == id && !config.deleted;
        }
    }

    /// Restores "exactly one non-deleted default when any config exists", preferring the
    /// oldest config other than `avoid`.
    fn ensure_default(&mut self, avoid: Option<ModelConfigId>) {
        let live = self.live_configs();
        if live.iter().any(|c| c.is_default) {
            return;
        }
        let pick = live.iter().find(|c| Some(c.id) != avoid).or(live.first()).map(|c| c.id);
        if let Some(id) = pick {
            self.make_default(id);
        }
    }

    pub(crate) fn create_model_config(&mut self, new: NewModelConfig) -> Result<ModelConfig> {
        self.limits.check_new_model_config(&new)?;
        if !self.providers.contains_key(&new.provider) {
            return Err(StoreError::validation(
                "provider",
                format!("The {} provider is not configured.", new.provider),
            ));
        }
        let at = now();
        let config = ModelConfig {
            id: ModelConfigId::new(),
            provider: new.provider,
            model: new.model.trim().to_owned(),
            display_name: new.display_name,
            created_by: new.created_by,
            updated_by: new.created_by,
            enabled: new.enabled,
            is_default: false,
            deleted: false,
            deleted_at: None,
            created_at: at,
            updated_at: at,
            context_limit: new.context_limit,
            compression_threshold: new.compression_threshold,
            options: new.options,
            prices: new.prices,
        };
        let id = config.id;
        self.model_configs.insert(id, config);
        if new.is_default {
            self.make_default(id);
        } else {
            self.ensure_default(None);
        }
        self.get_model_config(id)
    }

    pub(crate) fn update_model_config(
        &mut self,
        id: ModelConfigId,
        update: ModelConfigUpdate,
    ) -> Result<ModelConfig> {
        self.limits.check_model_config_update(&update)?;
        let config = self
            .model_configs
            .get_mut(&id)
            .filter(|c| !c.deleted)
            .ok_or_else(|| StoreError::not_found(Entity::ModelConfig, id))?;
        if let Some(options) = &update.options {
            self.limits.check_options(config.provider, options)?;
        }
        if let Some(model) = update.model {
            config.model = model.trim().to_owned();
        }
        if let Some(name) = update.display_name {
            config.display_name = name;
        }
        if let Some(enabled) = update.enabled {
            config.enabled = enabled;
        }
        if let Some(limit) = update.context_limit {
            config.context_limit = limit;
        }
        if let Some(threshold) = update.compression_threshold {
            config.compression_threshold = threshold;
        }
        if let Some(options) = update.options {
            config.options = options;
        }
        if let Some(prices) = update.prices {
            config.prices = prices;
        }
        config.updated_by = update.updated_by.or(config.updated_by);
        config.updated_at = now();
        match update.is_default {
            Some(true) => self.make_default(id),
            Some(false) if config.is_default => {
                config.is_default = false;
                self.ensure_default(Some(id));
            }
            _ => {}
        }
        self.get_model_config(id)
    }

    pub(crate) fn delete_model_config(&mut self, id: ModelConfigId) -> Result<()> {
        let config = self
            .model_configs
            .get_mut(&id)
            .filter(|c| !c.deleted)
            .ok_or_else(|| StoreError::not_found(Entity::ModelConfig, id))?;
        let at = now();
        config.deleted = true;
        config.deleted_at = Some(at);
        config.is_default = false;
        config.updated_at = at;
        self.ensure_default(None);
        Ok(())
    }

    pub(crate) fn get_model_config(&self, id: ModelConfigId) -> Result<ModelConfig> {
        self.model_configs
            .get(&id)
            .cloned()
            .ok_or_else(|| StoreError::not_found(Entity::ModelConfig, id))
    }

    pub(crate) fn list_model_configs(&self, include_disabled: bool) -> Vec<ModelConfig> {
        self.live_configs().into_iter().filter(|c| include_disabled || c.enabled).cloned().collect()
    }

    pub(crate) fn default_model_config(&self) -> Option<ModelConfig> {
        self.model_configs.values().find(|c| c.is_default && !c.deleted).cloned()
    }
}

/// The refusal to encrypt with a revoked key.
pub(crate) fn revoked_key(digest: &str) -> StoreError {
    StoreError::validation(
        "api_key_key_id",
        format!("the encryption key {digest} has been revoked: configure a new one"),
    )
}
