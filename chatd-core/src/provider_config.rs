//! Provider configurations (`chat_providers`).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ProviderId, UserId};
use crate::secret::Secret;

/// The eight provider kinds of the seed's `chat_providers_provider_check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ProviderKind {
    /// Anthropic Messages API.
    #[serde(rename = "anthropic")]
    Anthropic,
    /// Azure OpenAI.
    #[serde(rename = "azure")]
    Azure,
    /// Amazon Bedrock Converse.
    #[serde(rename = "bedrock")]
    Bedrock,
    /// Google Gemini.
    #[serde(rename = "google")]
    Google,
    /// OpenAI (Responses or Chat Completions).
    #[serde(rename = "openai")]
    OpenAi,
    /// Any Chat-Completions-compatible server (Ollama, vLLM, llama.cpp, LiteLLM).
    #[serde(rename = "openai-compat")]
    OpenAiCompat,
    /// OpenRouter.
    #[serde(rename = "openrouter")]
    OpenRouter,
    /// Vercel AI Gateway.
    #[serde(rename = "vercel")]
    Vercel,
}

impl ProviderKind {
    /// Every kind, in the seed's order.
    pub const ALL: [ProviderKind; 8] = [
        ProviderKind::Anthropic,
        ProviderKind::Azure,
        ProviderKind::Bedrock,
        ProviderKind::Google,
        ProviderKind::OpenAi,
        ProviderKind::OpenAiCompat,
        ProviderKind::OpenRouter,
        ProviderKind::Vercel,
    ];

    /// The database spelling.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Azure => "azure",
            ProviderKind::Bedrock => "bedrock",
            ProviderKind::Google => "google",
            ProviderKind::OpenAi => "openai",
            ProviderKind::OpenAiCompat => "openai-compat",
            ProviderKind::OpenRouter => "openrouter",
            ProviderKind::Vercel => "vercel",
        }
    }

    /// The environment variable consulted when no key is stored for the provider.
    #[must_use]
    pub const fn api_key_env(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "ANTHROPIC_API_KEY",
            ProviderKind::Azure => "AZURE_OPENAI_API_KEY",
            ProviderKind::Bedrock => "AWS_BEARER_TOKEN_BEDROCK",
            ProviderKind::Google => "GOOGLE_API_KEY",
            ProviderKind::OpenAi => "OPENAI_API_KEY",
            ProviderKind::OpenAiCompat => "OPENAI_COMPAT_API_KEY",
            ProviderKind::OpenRouter => "OPENROUTER_API_KEY",
            ProviderKind::Vercel => "AI_GATEWAY_API_KEY",
        }
    }

    /// Whether a configuration of this kind must name a base URL.
    #[must_use]
    pub const fn requires_base_url(self) -> bool {
        matches!(self, ProviderKind::Azure)
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown provider kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown provider `{0}`: expected one of anthropic, azure, bedrock, google, openai, openai-compat, openrouter, vercel"
)]
pub struct UnknownProvider(pub String);

impl FromStr for ProviderKind {
    type Err = UnknownProvider;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProviderKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| UnknownProvider(s.to_owned()))
    }
}

/// A configured provider. `Debug` never shows the key.
#[derive(Clone, PartialEq)]
pub struct ProviderConfig {
    /// Assigned by the store; the provider kind, not this id, is the row's unique key.
    pub id: ProviderId,
    /// Its kind (unique: one row per kind).
    pub provider: ProviderKind,
    /// The name shown to people; empty when none was given.
    pub display_name: String,
    /// The API key (empty: none stored). A store returns it decrypted: with a cipher
    /// (`ChatStore::use_cipher`) it is encrypted only at rest.
    pub api_key: Secret,
    /// The digest of the key that encrypts `api_key` at rest; `None` = stored as
    /// plaintext.
    pub api_key_key_id: Option<String>,
    /// The user who created it (`None` for one created by the system).
    pub created_by: Option<UserId>,
    /// Whether chats may use it.
    pub enabled: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Empty, or an absolute http(s) URL overriding the provider's default endpoint.
    pub base_url: String,
}

impl ProviderConfig {
    /// Whether a key is stored (the API shows this instead of the key).
    #[must_use]
    pub fn has_api_key(&self) -> bool {
        !self.api_key.is_empty()
    }
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("id", &self.id)
            .field("provider", &self.provider)
            .field("display_name", &self.display_name)
            .field("api_key", &self.api_key)
            .field("api_key_key_id", &self.api_key_key_id)
            .field("enabled", &self.enabled)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Input of [`ChatStore::create_provider`](crate::store::ChatStore::create_provider).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NewProvider {
    /// Which provider: at most one config per kind.
    pub provider: ProviderKind,
    /// A display name.
    pub display_name: String,
    /// The key (possibly ciphertext).
    pub api_key: Secret,
    /// The digest of the encrypting key, if `api_key` is ciphertext.
    pub api_key_key_id: Option<String>,
    /// Empty or an absolute http(s) URL.
    pub base_url: String,
    /// Whether chats may use it.
    pub enabled: bool,
    /// The user creating it (`None`: the system).
    pub created_by: Option<UserId>,
}

impl NewProvider {
    /// An enabled provider of `kind` with no key and the default endpoint.
    #[must_use]
    pub fn new(provider: ProviderKind) -> Self {
        NewProvider {
            provider,
            display_name: String::new(),
            api_key: Secret::default(),
            api_key_key_id: None,
            base_url: String::new(),
            enabled: true,
            created_by: None,
        }
    }

    /// Sets the key.
    #[must_use]
    pub fn with_api_key(mut self, key: impl Into<Secret>) -> Self {
        self.api_key = key.into();
        self
    }

    /// Sets the base URL.
    #[must_use]
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }
}

/// Input of [`ChatStore::update_provider`](crate::store::ChatStore::update_provider): each
/// `Some` field is written.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ProviderUpdate {
    /// A new display name.
    pub display_name: Option<String>,
    /// A new key and the digest of its encrypting key (`None` = plaintext).
    pub api_key: Option<(Secret, Option<String>)>,
    /// A new base URL.
    pub base_url: Option<String>,
    /// `Some(false)` disables it: its model configs are refused for new calls.
    pub enabled: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_their_seed_spellings() {
        for kind in ProviderKind::ALL {
            assert_eq!(kind.as_str().parse::<ProviderKind>(), Ok(kind));
            assert_eq!(serde_json::to_value(kind).expect("json"), kind.as_str());
        }
        let err = "openai_compat".parse::<ProviderKind>().expect_err("unknown");
        assert!(err.to_string().contains("openai-compat"));
    }

    #[test]
    fn provider_debug_hides_the_key() {
        let now = Utc::now();
        let config = ProviderConfig {
            id: ProviderId::new(),
            provider: ProviderKind::OpenAi,
            display_name: String::new(),
            api_key: Secret::new("sk-very-secret"),
            api_key_key_id: None,
            created_by: None,
            enabled: true,
            created_at: now,
            updated_at: now,
            base_url: String::new(),
        };
        let debug = format!("{config:?}");
        assert!(!debug.contains("sk-very-secret"), "{debug}");
        assert!(config.has_api_key());
    }
}
