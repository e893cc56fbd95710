//! The provider: endpoint, authentication (SigV4 or bearer), plumbing.

use std::time::SystemTime;

use async_trait::async_trait;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use chatd_core::provider::{
    EventStream, ModelProvider, ModelRequest, ProviderError, ProviderErrorKind, with_cancellation,
};
use chatd_core::{ProviderKind, Secret};
use tokio_util::sync::CancellationToken;

use super::{convert, stream};
use crate::http;

const NAME: &str = "bedrock";

/// How requests are authenticated. `Debug` never shows secrets.
#[derive(Clone)]
pub enum BedrockAuth {
    /// A Bedrock API key, sent as `Authorization: Bearer`.
    Bearer(Secret),
    /// AWS access keys, used to sign every request with SigV4.
    SigV4 {
        /// `AWS_ACCESS_KEY_ID`.
        access_key_id: String,
        /// `AWS_SECRET_ACCESS_KEY`.
        secret_access_key: Secret,
        /// `AWS_SESSION_TOKEN`, for temporary credentials.
        session_token: Option<Secret>,
    },
    /// Credentials from the standard AWS chain or a provider the host built, resolved (and
    /// cached) per request and used for SigV4 (feature `bedrock-aws-config`).
    #[cfg(feature = "bedrock-aws-config")]
    Chain(super::AwsCredentials),
}

impl std::fmt::Debug for BedrockAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BedrockAuth::Bearer(_) => f.write_str("Bearer(***)"),
            BedrockAuth::SigV4 { access_key_id, .. } => f
                .debug_struct("SigV4")
                .field("access_key_id", access_key_id)
                .finish_non_exhaustive(),
            #[cfg(feature = "bedrock-aws-config")]
            BedrockAuth::Chain(credentials) => f.debug_tuple("Chain").field(credentials).finish(),
        }
    }
}

/// A Bedrock Converse provider.
#[derive(Debug, Clone)]
pub struct BedrockProvider {
    base_url: String,
    region: String,
    auth: BedrockAuth,
    client: reqwest::Client,
    limits: crate::HttpLimits,
}

impl BedrockProvider {
    /// A provider for `region`; an empty `base_url` uses
    /// `https://bedrock-runtime.{region}.amazonaws.com`.
    #[must_use]
    pub fn new(base_url: &str, region: &str, auth: BedrockAuth) -> Self {
        let base_url = match base_url.trim() {
            "" => format!("https://bedrock-runtime.{region}.amazonaws.com"),
            url => url.trim_end_matches('/').to_owned(),
        };
        BedrockProvider {
            base_url,
            region: region.to_owned(),
            auth,
            client: crate::registry::default_client(),
            limits: crate::HttpLimits::default(),
        }
    }

    /// Sets how calls reach the server: the client (proxies, pool) and the timeouts and
    /// size bounds (default: the shared client, BEHAVIOUR §15's [`HttpLimits`](crate::HttpLimits);
    /// `max_event_bytes` bounds one event-stream frame).
    #[must_use]
    pub fn with_http(mut self, http: &crate::HttpOptions) -> Self {
        self.client = http.client();
        self.limits = http.limits();
        self
    }

    /// The headers that authenticate a `POST` of `body` to `url`, and the secret that must
    /// never appear in an error.
    async fn auth_headers(
        &self,
        url: &str,
        body: &[u8],
    ) -> Result<(Vec<(String, String)>, Secret), ProviderError> {
        let credentials = match &self.auth {
            BedrockAuth::Bearer(key) => {
                let header = ("authorization".into(), format!("Bearer {}", key.expose()));
                return Ok((vec![header], key.clone()));
            }
            BedrockAuth::SigV4 { access_key_id, secret_access_key, session_token } => {
                Credentials::new(
                    access_key_id.clone(),
                    secret_access_key.expose().to_owned(),
                    session_token.as_ref().map(|t| t.expose().to_owned()),
                    None,
                    "chatd",
                )
            }
            #[cfg(feature = "bedrock-aws-config")]
            BedrockAuth::Chain(chain) => chain.resolve().await?,
        };
        let secret = Secret::new(credentials.secret_access_key());
        Ok((self.sign(url, body, credentials)?, secret))
    }

    /// SigV4 headers for a `POST` of `body` to `url`.
    fn sign(
        &self,
        url: &str,
        body: &[u8],
        credentials: Credentials,
    ) -> Result<Vec<(String, String)>, ProviderError> {
        let fail = |err: &dyn std::fmt::Display| {
            ProviderError::new(
                NAME,
                ProviderErrorKind::InvalidRequest,
                format!("cannot sign the request: {err}"),
            )
        };
        let identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("bedrock")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|err| fail(&err))?
            .into();
        let headers = [
            ("content-type", "application/json"),
            ("accept", "application/vnd.amazon.eventstream"),
        ];
        let signable =
            SignableRequest::new("POST", url, headers.into_iter(), SignableBody::Bytes(body))
                .map_err(|err| fail(&err))?;
        let (instructions, _signature) =
            sign(signable, &params).map_err(|err| fail(&err))?.into_parts();
        Ok(instructions
            .headers()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect())
    }
}

#[async_trait]
impl ModelProvider for BedrockProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Bedrock
    }

    async fn stream(
        &self,
        request: ModelRequest,
        cancel: CancellationToken,
    ) -> Result<EventStream, ProviderError> {
        if let Some(reason) = convert::unsupported(&request.options) {
            return Err(ProviderError::new(NAME, ProviderErrorKind::InvalidRequest, reason));
        }
        let body = serde_json::to_vec(&convert::request_body(&request)).map_err(|err| {
            ProviderError::new(NAME, ProviderErrorKind::InvalidRequest, err.to_string())
        })?;
        let model: String = request
            .model
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect();
        let url = format!("{}/model/{model}/converse-stream", self.base_url);
        let mut builder = self
            .client
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/vnd.amazon.eventstream");
        let (headers, secret) = self.auth_headers(&url, &body).await?;
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let builder = builder.body(body);
        let secret = secret.expose();
        let (response, first_byte) =
            http::open(NAME, builder, secret, stream::classify, &cancel, &self.limits).await?;
        let body = http::body(NAME, response, &self.limits, first_byte, secret);
        let events = stream::events(NAME, body, self.limits.max_event_bytes);
        Ok(with_cancellation(events, cancel, NAME))
    }
}
