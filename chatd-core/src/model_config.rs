//! Model configurations (`chat_model_configs`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::call_options::CallOptions;
use crate::ids::{ModelConfigId, UserId};
use crate::provider_config::ProviderKind;

/// The compaction threshold used when a configuration's value is out of range ([BEHAVIOUR §5](crate::behaviour#5-compaction)).
pub(crate) const DEFAULT_COMPRESSION_THRESHOLD: i32 = 70;

/// A model configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Assigned by the store; chats refer to the config by it.
    pub id: ModelConfigId,
    /// The provider serving it.
    pub provider: ProviderKind,
    /// The provider's model name.
    pub model: String,
    /// The name shown to people; empty when none was given.
    pub display_name: String,
    /// The user who created it (`None` for one created by the system).
    pub created_by: Option<UserId>,
    /// Who last changed it.
    pub updated_by: Option<UserId>,
    /// Whether non-admins can pick it.
    pub enabled: bool,
    /// The default for new chats (exactly one non-deleted config is).
    pub is_default: bool,
    /// Soft-deleted: a new chat cannot name it; it is kept so that the chats and usage
    /// records that name it still resolve.
    pub deleted: bool,
    /// When it was soft-deleted.
    pub deleted_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// The model's context window in tokens (> 0).
    pub context_limit: i64,
    /// Compact when the prompt fills this percentage of the window (0–100; 100 disables).
    pub compression_threshold: i32,
    /// Per-call options (temperature, output tokens, provider-specific settings).
    pub options: CallOptions,
    /// What its calls cost ([BEHAVIOUR §17](crate::behaviour#17-usage-cost-limits-and-fairness)); `None`: unpriced (calls are recorded without a
    /// cost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prices: Option<crate::usage::Prices>,
}

impl ModelConfig {
    /// The threshold in effect: the stored one, or 70 when it is outside 0..=100.
    #[must_use]
    pub fn effective_compression_threshold(&self) -> i32 {
        if (0..=100).contains(&self.compression_threshold) {
            self.compression_threshold
        } else {
            DEFAULT_COMPRESSION_THRESHOLD
        }
    }
}

/// Input of [`ChatStore::create_model_config`](crate::store::ChatStore::create_model_config).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NewModelConfig {
    /// The provider (must be configured).
    pub provider: ProviderKind,
    /// The provider's model name.
    pub model: String,
    /// The name shown to people (may be empty).
    pub display_name: String,
    /// Whether non-admins can pick it.
    pub enabled: bool,
    /// Make it the default (the first config always becomes the default).
    pub is_default: bool,
    /// The context window (> 0).
    pub context_limit: i64,
    /// The percentage of the context window at which a chat is compacted, 0 to 100 (100
    /// disables compaction).
    pub compression_threshold: i32,
    /// Per-call options, checked against the provider on write.
    pub options: CallOptions,
    /// The user creating it (`None`: the system).
    pub created_by: Option<UserId>,
    /// What its calls cost (none: unpriced).
    pub prices: Option<crate::usage::Prices>,
}

impl NewModelConfig {
    /// A configuration for a model named as people write it ([BEHAVIOUR §9.4](crate::behaviour#9-providers)):
    /// `provider:model`, `provider/model`, or a name whose prefix tells the provider
    /// (`claude-…`, `gpt-…`, `o3…`, `gemini-…`).
    ///
    /// # Errors
    /// [`UnresolvedModel`](crate::model_spec::UnresolvedModel) when nothing names the provider.
    pub fn from_spec(
        spec: &str,
        context_limit: i64,
    ) -> Result<Self, crate::model_spec::UnresolvedModel> {
        let (provider, model) = crate::model_spec::resolve_model(spec, None)?;
        Ok(Self::new(provider, model, context_limit))
    }

    /// An enabled configuration with threshold 70 and default options.
    #[must_use]
    pub fn new(provider: ProviderKind, model: impl Into<String>, context_limit: i64) -> Self {
        NewModelConfig {
            provider,
            model: model.into(),
            display_name: String::new(),
            enabled: true,
            is_default: false,
            context_limit,
            compression_threshold: DEFAULT_COMPRESSION_THRESHOLD,
            options: CallOptions::default(),
            created_by: None,
            prices: None,
        }
    }

    /// Requests the default flag.
    #[must_use]
    pub fn as_default(mut self) -> Self {
        self.is_default = true;
        self
    }

    /// Sets the compaction threshold.
    #[must_use]
    pub fn with_compression_threshold(mut self, threshold: i32) -> Self {
        self.compression_threshold = threshold;
        self
    }

    /// Sets the call options.
    #[must_use]
    pub fn with_options(mut self, options: CallOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets the prices.
    #[must_use]
    pub fn with_prices(mut self, prices: crate::usage::Prices) -> Self {
        self.prices = Some(prices);
        self
    }
}

/// Input of [`ChatStore::update_model_config`](crate::store::ChatStore::update_model_config):
/// each `Some` field is written.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ModelConfigUpdate {
    /// A new model name.
    pub model: Option<String>,
    /// A new display name.
    pub display_name: Option<String>,
    /// `Some(false)` disables it: it is refused for new calls.
    pub enabled: Option<bool>,
    /// Make it the default (`true`) or hand the default to the oldest other config (`false`).
    pub is_default: Option<bool>,
    /// A new context window.
    pub context_limit: Option<i64>,
    /// A new compaction threshold, 0 to 100 percent.
    pub compression_threshold: Option<i32>,
    /// New per-call options, replacing the old ones whole.
    pub options: Option<CallOptions>,
    /// New prices (`Some(None)` removes them); records already written keep theirs.
    pub prices: Option<Option<crate::usage::Prices>>,
    /// Who makes the change.
    pub updated_by: Option<UserId>,
}
