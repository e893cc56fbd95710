//! [`StoreProviderSource`]: the turn runner's [`ProviderSource`] over a store's provider
//! configuration and a [`ProviderRegistry`].

use std::sync::Arc;

use async_trait::async_trait;
use chatd_core::ModelConfig;
use chatd_core::provider::{ModelProvider, ProviderError, ProviderErrorKind};
use chatd_core::runtime::turn::ProviderSource;
use chatd_core::store::{ChatStore, StoreError};

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
        let name = config.provider.as_str();
        let provider = self.store.get_provider(config.provider).await.map_err(|err| {
            // The store's text stays in the log: it may name hosts and SQL, and this error
            // becomes the chat's `last_error`.
            match err {
                StoreError::NotFound { .. } => ProviderError::new(
                    name,
                    ProviderErrorKind::InvalidRequest,
                    format!("the {name} provider is not configured"),
                ),
                err => {
                    tracing::warn!(provider = name, error = %err, "cannot read the provider configuration");
                    // Unreachable stores come back: retry like a dropped connection.
                    let kind = if err.is_unavailable() {
                        ProviderErrorKind::Transport
                    } else {
                        ProviderErrorKind::Server
                    };
                    ProviderError::new(name, kind, "the provider configuration could not be read")
                }
            }
        })?;
        self.registry.build(&provider, config)
    }
}
