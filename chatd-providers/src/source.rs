//! [`StoreProviderSource`]: the turn runner's [`ProviderSource`] over a store's provider
//! configuration and a [`ProviderRegistry`].

use std::sync::Arc;

use async_trait::async_trait;
use chatd_core::ModelConfig;
use chatd_core::provider::{ModelProvider, ProviderError, ProviderErrorKind};
use chatd_core::runtime::turn::ProviderSource;
use chatd_core::store::ChatStore;

use crate::ProviderRegistry;

/// Builds each turn's adapter from the provider row stored for the model config's kind.
#[derive(Clone)]
pub struct StoreProviderSource {
    store: Arc<dyn ChatStore>,
    registry: ProviderRegistry,
}

impl std::fmt::Debug for StoreProviderSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreProviderSource").finish_non_exhaustive()
    }
}

impl StoreProviderSource {
    /// A source reading provider rows from `store`.
    #[must_use]
    pub fn new(store: Arc<dyn ChatStore>, registry: ProviderRegistry) -> Self {
        StoreProviderSource { store, registry }
    }
}

#[async_trait]
impl ProviderSource for StoreProviderSource {
    async fn provider(
        &self,
        config: &ModelConfig,
    ) -> Result<Arc<dyn ModelProvider>, ProviderError> {
        let provider = self.store.get_provider(config.provider).await.map_err(|err| {
            ProviderError::new(
                config.provider.as_str(),
                ProviderErrorKind::InvalidRequest,
                err.to_string(),
            )
        })?;
        self.registry.build(&provider, config)
    }
}
