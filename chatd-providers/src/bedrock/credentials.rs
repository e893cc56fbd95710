//! Credentials from the standard AWS chain (`aws-config`, feature `bedrock-aws-config`):
//! environment, shared config and credentials files with profiles, `credential_process`,
//! SSO, web identity, ECS and EC2 instance roles. Resolved credentials are cached until five
//! minutes before they expire (fifteen minutes when they carry no expiry), so a turn's
//! requests neither re-read profile files nor call the instance metadata service each time.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use chatd_core::provider::{ProviderError, ProviderErrorKind};
use tokio::sync::{Mutex, OnceCell};

/// Refresh this long before the credentials expire.
const REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);
/// The most of the chain's own error text an error carries: a `credential_process` failure
/// includes the helper's whole stderr, and this text becomes the chat's `last_error`.
const MAX_ERROR_CHARS: usize = 400;
/// How long credentials without an expiry are reused.
const NO_EXPIRY_REUSE: Duration = Duration::from_secs(15 * 60);

/// A source of AWS credentials for SigV4, shared by every provider built from it. Clones
/// share the cache. `Debug` names the source, never a key.
#[derive(Clone)]
pub struct AwsCredentials {
    inner: Arc<Inner>,
}

struct Inner {
    source: Source,
    region: Option<String>,
    cached: Mutex<Option<(Credentials, SystemTime)>>,
}

enum Source {
    /// The default chain, loaded on first use (loading reads files and the environment).
    DefaultChain(OnceCell<Option<SharedCredentialsProvider>>),
    /// A provider the host built (a profile, a role, its own `SdkConfig`'s).
    Provider(SharedCredentialsProvider),
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = match &self.inner.source {
            Source::DefaultChain(_) => "default chain".to_owned(),
            Source::Provider(provider) => format!("{provider:?}"),
        };
        f.debug_struct("AwsCredentials")
            .field("source", &source)
            .field("region", &self.inner.region)
            .finish_non_exhaustive()
    }
}

impl AwsCredentials {
    fn with_source(source: Source, region: Option<String>) -> Self {
        AwsCredentials { inner: Arc::new(Inner { source, region, cached: Mutex::new(None) }) }
    }

    /// The standard chain with its defaults (`aws_config::defaults(BehaviorVersion::latest())`),
    /// loaded on the first request: `AWS_ACCESS_KEY_ID`…, `AWS_PROFILE` and the shared files,
    /// SSO, web identity, container and instance roles.
    #[must_use]
    pub fn default_chain() -> Self {
        Self::with_source(Source::DefaultChain(OnceCell::new()), None)
    }

    /// Any credentials provider, e.g. `aws_config::profile::ProfileFileCredentialsProvider`
    /// or an assumed role.
    #[must_use]
    pub fn from_provider(provider: impl ProvideCredentials + 'static) -> Self {
        Self::with_source(Source::Provider(SharedCredentialsProvider::new(provider)), None)
    }

    /// The credentials provider and region of a loaded `SdkConfig` (the host's own
    /// `aws_config::load_defaults(..)`); `None` when it has no credentials provider.
    #[must_use]
    pub fn from_sdk_config(config: &SdkConfig) -> Option<Self> {
        let region = config.region().map(|r| r.as_ref().to_owned());
        config.credentials_provider().map(|p| Self::with_source(Source::Provider(p), region))
    }

    /// The region this source was configured with, if any.
    #[must_use]
    pub fn region(&self) -> Option<&str> {
        self.inner.region.as_deref()
    }

    /// Current credentials, from the cache or freshly resolved.
    ///
    /// # Errors
    /// `Auth` when the chain finds no credentials or the source fails (the message says why;
    /// it never holds a key).
    pub async fn resolve(&self) -> Result<Credentials, ProviderError> {
        let mut cached = self.inner.cached.lock().await;
        if let Some((credentials, refresh_at)) = cached.as_ref()
            && SystemTime::now() < *refresh_at
        {
            return Ok(credentials.clone());
        }
        let provider = match &self.inner.source {
            Source::Provider(provider) => provider.clone(),
            Source::DefaultChain(cell) => {
                let loaded = cell
                    .get_or_init(|| async {
                        aws_config::defaults(BehaviorVersion::latest())
                            .load()
                            .await
                            .credentials_provider()
                    })
                    .await;
                loaded.clone().ok_or_else(|| auth("the AWS default chain has no provider"))?
            }
        };
        let credentials = provider.provide_credentials().await.map_err(|err| {
            let detail = error_chain(&err);
            tracing::warn!(error = %detail, "the AWS credential chain failed");
            let mut shown: String = detail.chars().take(MAX_ERROR_CHARS).collect();
            if shown.len() < detail.len() {
                shown.push_str("… (the rest is in the log)");
            }
            auth(&format!("no AWS credentials: {shown}"))
        })?;
        let now = SystemTime::now();
        let refresh_at = match credentials.expiry() {
            Some(expiry) => expiry.checked_sub(REFRESH_BEFORE).unwrap_or(now),
            None => now + NO_EXPIRY_REUSE,
        };
        *cached = Some((credentials.clone(), refresh_at));
        Ok(credentials)
    }
}

fn auth(message: &str) -> ProviderError {
    ProviderError::new("bedrock", ProviderErrorKind::Auth, message)
}

/// The error and its sources, one line (the chain's own errors explain which provider
/// failed, e.g. a profile that does not exist).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(next) = source {
        let more = next.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = next.source();
    }
    text
}
