//! [`ProviderRegistry`]: a configured provider + model config → `Arc<dyn ModelProvider>`.

use std::sync::Arc;

#[cfg(any(feature = "openai", feature = "chat-completions"))]
use chatd_core::call_options::OpenAiApiMode;
use chatd_core::provider::{ModelProvider, ProviderError, ProviderErrorKind};
use chatd_core::{ModelConfig, ProviderConfig, ProviderKind};

/// Looks up an environment variable (injectable for tests).
type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Builds adapters from stored configuration. Keys come from the provider row (the
/// database wins) or, when it has none, from the kind's environment variable
/// (`ANTHROPIC_API_KEY`, `OPENAI_API_KEY`, ...).
///
/// # Examples
///
/// A host hands the turn runner a [`StoreProviderSource`](crate::StoreProviderSource): each
/// turn gets the adapter of its chat's model config, with the stored key.
///
/// ```
/// use std::sync::Arc;
///
/// use chatd_core::{ChatStore, NewModelConfig, NewProvider, ProviderKind, ProviderSource, Secret};
/// use chatd_providers::{ProviderRegistry, StoreProviderSource};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store: Arc<dyn ChatStore> = Arc::new(chatd_store_memory::InMemoryChatStore::new());
/// let provider = NewProvider::new(ProviderKind::Anthropic).with_api_key(Secret::new("sk-ant-…"));
/// store.create_provider(provider).await?;
/// let config = NewModelConfig::new(ProviderKind::Anthropic, "claude-sonnet-4-5", 200_000);
/// let config = store.create_model_config(config).await?;
///
/// // The row's key wins over the environment (here an empty one).
/// let registry = ProviderRegistry::new().with_env(|_| None);
/// let source = StoreProviderSource::new(Arc::clone(&store), registry);
/// let adapter = source.provider(&config).await?;
/// assert_eq!(adapter.kind(), ProviderKind::Anthropic);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ProviderRegistry {
    /// The host's client; `None`: the shared one for the provider's connect timeout.
    client: Option<reqwest::Client>,
    limits: std::collections::HashMap<ProviderKind, crate::HttpLimits>,
    default_limits: crate::HttpLimits,
    env: EnvLookup,
    /// Bedrock's SigV4 credentials when neither a key nor access keys are configured.
    #[cfg(feature = "bedrock-aws-config")]
    aws: crate::bedrock::AwsCredentials,
}

impl std::fmt::Debug for ProviderRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderRegistry").finish_non_exhaustive()
    }
}

/// The process-wide default HTTP client. Building a client loads the system's root
/// certificates (several milliseconds), so adapters share one instead of building their own;
/// cloning it shares its connection pool.
#[cfg(any(
    feature = "chat-completions",
    feature = "anthropic",
    feature = "google",
    feature = "openai",
    feature = "bedrock",
    feature = "github"
))]
pub(crate) fn default_client() -> reqwest::Client {
    crate::limits::shared_client(crate::limits::HttpLimits::default().connect_timeout)
}

impl Default for ProviderRegistry {
    fn default() -> Self {
        Self::new()
    }
}

/// What a build without `kind`'s adapter (or without the OpenAI `mode`'s) answers.
fn unavailable(kind: ProviderKind, mode: chatd_core::call_options::OpenAiApiMode) -> String {
    match kind {
        ProviderKind::OpenAi => format!("OpenAI api_mode {mode:?} is not available in this build"),
        other => format!("the {other} provider is not available in this build"),
    }
}

/// Why `provider` cannot serve `model` at all, if it cannot: it is disabled, or the config
/// belongs to another provider.
fn refusal(provider: &ProviderConfig, model: &ModelConfig) -> Option<String> {
    let name = provider.provider.as_str();
    if !provider.enabled {
        return Some(format!("the {name} provider is disabled"));
    }
    (provider.provider != model.provider)
        .then(|| format!("model config {} belongs to {}, not {name}", model.id, model.provider))
}

impl ProviderRegistry {
    /// A registry reading the process environment for fallback keys.
    #[must_use]
    pub fn new() -> Self {
        ProviderRegistry {
            client: None,
            limits: std::collections::HashMap::new(),
            default_limits: crate::HttpLimits::default(),
            env: Arc::new(|name| std::env::var(name).ok()),
            #[cfg(feature = "bedrock-aws-config")]
            aws: crate::bedrock::AwsCredentials::default_chain(),
        }
    }

    /// Signs Bedrock requests with `credentials` when a provider has neither a stored key,
    /// nor `AWS_BEARER_TOKEN_BEDROCK`, nor `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` (default:
    /// [`AwsCredentials::default_chain`](crate::bedrock::AwsCredentials::default_chain), which
    /// reads the process environment and the shared AWS files itself, whatever
    /// [`with_env`](Self::with_env) says). Its region, if any, is used when the base URL names
    /// none.
    #[cfg(feature = "bedrock-aws-config")]
    #[must_use]
    pub fn with_aws_credentials(mut self, credentials: crate::bedrock::AwsCredentials) -> Self {
        self.aws = credentials;
        self
    }

    /// Reads fallback keys from `env` instead of the process environment.
    #[must_use]
    pub fn with_env(
        mut self,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.env = Arc::new(env);
        self
    }

    /// Shares `client` (proxies, connection pool) among all adapters. Build it from
    /// [`crate::client_builder`] to keep the same-origin redirect policy; its connect
    /// timeout then replaces [`HttpLimits::connect_timeout`](crate::HttpLimits).
    #[must_use]
    pub fn with_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Sets the timeouts and size bounds of every provider without its own (default:
    /// BEHAVIOUR §15's).
    #[must_use]
    pub fn with_default_limits(mut self, limits: crate::HttpLimits) -> Self {
        self.default_limits = limits;
        self
    }

    /// Sets the timeouts and size bounds of `kind`'s calls.
    #[must_use]
    pub fn with_limits(mut self, kind: ProviderKind, limits: crate::HttpLimits) -> Self {
        self.limits.insert(kind, limits);
        self
    }

    /// The limits of `kind`'s calls.
    #[must_use]
    pub fn limits(&self, kind: ProviderKind) -> crate::HttpLimits {
        self.limits.get(&kind).copied().unwrap_or(self.default_limits)
    }

    #[cfg(any(
        feature = "chat-completions",
        feature = "anthropic",
        feature = "google",
        feature = "openai"
    ))]
    /// The client and limits of `kind`'s adapters.
    fn http(&self, kind: ProviderKind) -> crate::HttpOptions {
        let http = crate::HttpOptions::new().with_limits(self.limits(kind));
        match &self.client {
            Some(client) => http.with_client(client.clone()),
            None => http,
        }
    }

    fn key(&self, provider: &ProviderConfig) -> Result<chatd_core::Secret, ProviderError> {
        let name = provider.provider.as_str();
        // A store decrypts keys on read with its cipher (`ChatStore::use_cipher`):
        // `api_key` is the key itself whatever `api_key_key_id` says about its storage.
        if provider.has_api_key() {
            return Ok(provider.api_key.clone());
        }
        let variable = provider.provider.api_key_env();
        match (self.env)(variable).filter(|v| !v.trim().is_empty()) {
            Some(key) => Ok(chatd_core::Secret::new(key)),
            // Local OpenAI-compatible servers usually need no key.
            None if provider.provider == ProviderKind::OpenAiCompat => {
                Ok(chatd_core::Secret::default())
            }
            None => Err(ProviderError::new(
                name,
                ProviderErrorKind::Auth,
                format!("{variable} is not set"),
            )),
        }
    }

    /// The AWS region: from a `bedrock-runtime.{region}.amazonaws.com` base URL, else the
    /// configured AWS credentials' region (feature `bedrock-aws-config`), else `AWS_REGION` /
    /// `AWS_DEFAULT_REGION`, else `us-east-1`.
    #[cfg(feature = "bedrock")]
    fn aws_region(&self, base_url: &str) -> String {
        let from_url = base_url
            .split("bedrock-runtime.")
            .nth(1)
            .and_then(|rest| rest.split('.').next())
            .filter(|region| !region.is_empty())
            .map(str::to_owned);
        #[cfg(feature = "bedrock-aws-config")]
        let from_url = from_url.or_else(|| self.aws.region().map(str::to_owned));
        from_url
            .or_else(|| (self.env)("AWS_REGION"))
            .or_else(|| (self.env)("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".to_owned())
    }

    /// Bedrock authentication: a stored key or `AWS_BEARER_TOKEN_BEDROCK` as a bearer API
    /// key, else SigV4 with `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
    /// `AWS_SESSION_TOKEN`, else (feature `bedrock-aws-config`) SigV4 with the AWS chain's
    /// credentials, resolved per request.
    #[cfg(feature = "bedrock")]
    fn bedrock_auth(
        &self,
        provider: &ProviderConfig,
    ) -> Result<crate::bedrock::BedrockAuth, ProviderError> {
        use crate::bedrock::BedrockAuth;
        if provider.has_api_key() {
            return Ok(BedrockAuth::Bearer(provider.api_key.clone()));
        }
        let env = |name: &str| (self.env)(name).filter(|v| !v.trim().is_empty());
        if let Some(token) = env("AWS_BEARER_TOKEN_BEDROCK") {
            return Ok(BedrockAuth::Bearer(chatd_core::Secret::new(token)));
        }
        match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            (Some(access_key_id), Some(secret)) => Ok(BedrockAuth::SigV4 {
                access_key_id,
                secret_access_key: chatd_core::Secret::new(secret),
                session_token: env("AWS_SESSION_TOKEN").map(chatd_core::Secret::new),
            }),
            #[cfg(feature = "bedrock-aws-config")]
            _ => Ok(BedrockAuth::Chain(self.aws.clone())),
            #[cfg(not(feature = "bedrock-aws-config"))]
            _ => Err(ProviderError::new(
                "bedrock",
                ProviderErrorKind::Auth,
                "AWS_BEARER_TOKEN_BEDROCK is not set (nor AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY; feature `bedrock-aws-config` adds the AWS chain)",
            )),
        }
    }

    /// The adapter for `model` on `provider`.
    ///
    /// # Errors
    /// `InvalidRequest` for a disabled provider, a provider/config mismatch, or a kind this
    /// build does not include; `Auth` when no key is available (`ANTHROPIC_API_KEY is not
    /// set`).
    // A build without any provider feature can only refuse.
    #[cfg_attr(
        not(any(
            feature = "chat-completions",
            feature = "anthropic",
            feature = "google",
            feature = "openai",
            feature = "bedrock"
        )),
        allow(unreachable_code, unused_variables, unused_assignments)
    )]
    pub fn build(
        &self,
        provider: &ProviderConfig,
        model: &ModelConfig,
    ) -> Result<Arc<dyn ModelProvider>, ProviderError> {
        let name = provider.provider.as_str();
        let invalid = |message: String| {
            Err(ProviderError::new(name, ProviderErrorKind::InvalidRequest, message))
        };
        if let Some(refusal) = refusal(provider, model) {
            return invalid(refusal);
        }
        let (base, http) = (provider.base_url.as_str(), self.http(provider.provider));
        let mode = model.options.provider_options.openai.as_ref().and_then(|o| o.api_mode);
        let built: Arc<dyn ModelProvider> = match (provider.provider, mode.unwrap_or_default()) {
            #[cfg(feature = "bedrock")]
            (ProviderKind::Bedrock, _) => {
                let (region, auth) = (self.aws_region(base), self.bedrock_auth(provider)?);
                Arc::new(crate::bedrock::BedrockProvider::new(base, &region, auth).with_http(&http))
            }
            #[cfg(feature = "anthropic")]
            (ProviderKind::Anthropic, _) => Arc::new(
                crate::anthropic::AnthropicProvider::new(base, self.key(provider)?)
                    .with_http(&http),
            ),
            #[cfg(feature = "google")]
            (ProviderKind::Google, _) => Arc::new(
                crate::google::GoogleProvider::new(base, self.key(provider)?).with_http(&http),
            ),
            #[cfg(feature = "openai")]
            (ProviderKind::OpenAi, OpenAiApiMode::Responses) => Arc::new(
                crate::openai_responses::ResponsesProvider::new(base, self.key(provider)?)
                    .with_http(&http),
            ),
            #[cfg(feature = "chat-completions")]
            (kind @ ProviderKind::OpenAi, OpenAiApiMode::ChatCompletions)
            | (
                kind @ (ProviderKind::OpenAiCompat
                | ProviderKind::OpenRouter
                | ProviderKind::Vercel
                | ProviderKind::Azure),
                _,
            ) => {
                use crate::chat_completions::{ChatCompletionsProvider as Provider, Dialect};
                let key = self.key(provider)?;
                Arc::new(Provider::new(Dialect::of(kind), base, key)?.with_http(&http))
            }
            #[allow(unreachable_patterns)]
            (kind, mode) => return invalid(unavailable(kind, mode)),
        };
        Ok(built)
    }
}

#[cfg(test)]
mod tests {
    use chatd_core::ProviderKind;
    use chatd_core::call_options::OpenAiApiMode;

    #[test]
    fn a_missing_adapter_is_named_by_its_kind_or_its_openai_mode() {
        assert_eq!(
            super::unavailable(ProviderKind::Google, OpenAiApiMode::default()),
            "the google provider is not available in this build"
        );
        assert_eq!(
            super::unavailable(ProviderKind::OpenAi, OpenAiApiMode::ChatCompletions),
            "OpenAI api_mode ChatCompletions is not available in this build"
        );
    }
}
