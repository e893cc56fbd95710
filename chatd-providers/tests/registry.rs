//! The registry builds the right adapter from stored configuration and finds its key.

use chatd_core::provider::{ModelRequest, PromptMessage, ProviderErrorKind};
use chatd_core::{
    CallOptions, ModelConfig, ModelConfigId, ProviderConfig, ProviderId, ProviderKind, Secret,
};
use chatd_providers::ProviderRegistry;
use chatd_providers::testing::{FakeResponse, FakeServer};
use serde_json::json;
use tokio_util::sync::CancellationToken;

mod support;

fn provider(kind: ProviderKind, key: &str, base_url: &str) -> ProviderConfig {
    let now = chrono::Utc::now();
    ProviderConfig {
        id: ProviderId::new(),
        provider: kind,
        display_name: String::new(),
        api_key: Secret::new(key),
        api_key_key_id: None,
        created_by: None,
        enabled: true,
        created_at: now,
        updated_at: now,
        base_url: base_url.to_owned(),
    }
}

fn model(kind: ProviderKind, options: serde_json::Value) -> ModelConfig {
    let now = chrono::Utc::now();
    ModelConfig {
        id: ModelConfigId::new(),
        provider: kind,
        model: "m".into(),
        display_name: String::new(),
        created_by: None,
        updated_by: None,
        enabled: true,
        is_default: true,
        deleted: false,
        deleted_at: None,
        created_at: now,
        updated_at: now,
        context_limit: 1000,
        compression_threshold: 70,
        options: CallOptions::from_json(&options).expect("options"),
        prices: None,
    }
}

fn no_env() -> ProviderRegistry {
    ProviderRegistry::new().with_env(|_| None)
}

#[test]
fn each_kind_builds_its_adapter() {
    let registry = no_env();
    let chat = json!({"provider_options": {"openai": {"api_mode": "chat_completions"}}});
    for (kind, base, options) in [
        (ProviderKind::Anthropic, "", json!({})),
        (ProviderKind::Google, "", json!({})),
        (ProviderKind::OpenAi, "", chat.clone()),
        (ProviderKind::OpenAiCompat, "http://127.0.0.1:11434/v1", json!({})),
        (ProviderKind::OpenRouter, "", json!({})),
        (ProviderKind::Vercel, "", json!({})),
        (ProviderKind::Azure, "https://res.openai.azure.com", json!({})),
        (ProviderKind::Bedrock, "", json!({})),
    ] {
        let built =
            registry.build(&provider(kind, "k", base), &model(kind, options)).expect("adapter");
        assert_eq!(built.kind(), kind);
    }
}

#[test]
fn a_missing_key_names_the_environment_variable() {
    let err = no_env().build(
        &provider(ProviderKind::Anthropic, "", ""),
        &model(ProviderKind::Anthropic, json!({})),
    );
    let err = err.err().expect("no key");
    assert_eq!(err.kind, ProviderErrorKind::Auth);
    assert_eq!(err.message, "ANTHROPIC_API_KEY is not set");
    let local = no_env().build(
        &provider(ProviderKind::OpenAiCompat, "", "http://127.0.0.1:8000/v1"),
        &model(ProviderKind::OpenAiCompat, json!({})),
    );
    assert!(local.is_ok(), "local compatible servers need no key");
}

#[test]
fn disabled_mismatched_encrypted_and_keyless_configs_are_refused() {
    let registry = no_env();
    let mut disabled = provider(ProviderKind::Google, "k", "");
    disabled.enabled = false;
    assert!(registry.build(&disabled, &model(ProviderKind::Google, json!({}))).is_err());
    assert!(
        registry
            .build(
                &provider(ProviderKind::Google, "k", ""),
                &model(ProviderKind::Anthropic, json!({}))
            )
            .is_err()
    );
    // Stores decrypt on read: a config whose key is encrypted at rest builds with its key.
    let mut encrypted_at_rest = provider(ProviderKind::Google, "k", "");
    encrypted_at_rest.api_key_key_id = Some("digest".into());
    assert!(registry.build(&encrypted_at_rest, &model(ProviderKind::Google, json!({}))).is_ok());
    let responses = registry
        .build(&provider(ProviderKind::OpenAi, "k", ""), &model(ProviderKind::OpenAi, json!({})));
    assert!(responses.is_ok(), "the Responses API is the default api_mode");
    let bedrock = registry
        .build(&provider(ProviderKind::Bedrock, "", ""), &model(ProviderKind::Bedrock, json!({})));
    if cfg!(feature = "bedrock-aws-config") {
        assert!(bedrock.is_ok(), "the AWS chain is asked at request time (see aws_chain)");
    } else {
        let message = bedrock.err().expect("no bedrock credentials").message;
        assert!(message.starts_with("AWS_BEARER_TOKEN_BEDROCK is not set"), "{message}");
    }
    let sigv4 = ProviderRegistry::new().with_env(|name| match name {
        "AWS_ACCESS_KEY_ID" => Some("AKIDEXAMPLE".into()),
        "AWS_SECRET_ACCESS_KEY" => Some("secret".into()),
        _ => None,
    });
    let built = sigv4
        .build(&provider(ProviderKind::Bedrock, "", ""), &model(ProviderKind::Bedrock, json!({})));
    assert!(built.is_ok(), "access keys are enough for SigV4");
}

#[tokio::test]
async fn the_database_key_wins_over_the_environment() {
    let body = support::fixture("anthropic", "text.sse");
    let server = FakeServer::start(vec![FakeResponse::sse(body.clone()), FakeResponse::sse(body)])
        .await
        .expect("server");
    let registry = ProviderRegistry::new()
        .with_env(|name| (name == "ANTHROPIC_API_KEY").then(|| "env-key".to_owned()));
    let request = || ModelRequest::new("claude-test", vec![PromptMessage::user("hi")]);
    let stored = registry
        .build(
            &provider(ProviderKind::Anthropic, "db-key", server.url()),
            &model(ProviderKind::Anthropic, json!({})),
        )
        .expect("adapter");
    stored.generate(request(), CancellationToken::new()).await.expect("call");
    let fallback = registry
        .build(
            &provider(ProviderKind::Anthropic, "", server.url()),
            &model(ProviderKind::Anthropic, json!({})),
        )
        .expect("adapter");
    fallback.generate(request(), CancellationToken::new()).await.expect("call");
    let keys: Vec<_> = server
        .requests()
        .iter()
        .map(|r| r.header("x-api-key").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(keys, vec!["db-key", "env-key"]);
}

/// A store that cannot be read makes a retryable error without the store's text (it would
/// become the chat's `last_error`); a missing provider row says so.
#[tokio::test]
async fn the_source_hides_store_failures_and_retries_an_unreachable_store() {
    use chatd_core::runtime::turn::ProviderSource;
    use chatd_core::store::{Entity, MockChatStore, StoreError};
    use chatd_providers::StoreProviderSource;

    let mut store = MockChatStore::new();
    let mut answers = vec![
        StoreError::NotFound { entity: Entity::Provider, id: "anthropic".into() },
        StoreError::unavailable("connection to 10.0.0.7 reset: terminating connection"),
    ];
    store.expect_get_provider().times(2).returning(move |_| Err(answers.pop().expect("answer")));
    let source = StoreProviderSource::new(std::sync::Arc::new(store), ProviderRegistry::new());
    let config = model(ProviderKind::Anthropic, json!({}));
    let unreachable = source.provider(&config).await.err().expect("unavailable");
    assert_eq!(unreachable.kind, ProviderErrorKind::Transport);
    assert!(unreachable.is_retryable());
    assert!(!unreachable.to_string().contains("10.0.0.7"), "{unreachable}");
    let missing = source.provider(&config).await.err().expect("not found");
    assert_eq!(missing.kind, ProviderErrorKind::InvalidRequest);
    assert!(missing.message.contains("the anthropic provider is not configured"), "{missing}");
}

/// Bedrock credentials from the standard AWS chain's providers, configured from profile files
/// the test writes (no process environment is read or changed).
#[cfg(feature = "bedrock-aws-config")]
mod aws_chain {
    use super::*;
    use aws_config::profile::ProfileFileCredentialsProvider;
    use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
    use chatd_providers::bedrock::AwsCredentials;

    const CREDENTIALS: &str = "[chatd-static]\n\
        aws_access_key_id = AKIDPROFILE\n\
        aws_secret_access_key = profile-secret-key\n\
        aws_session_token = profile-session-token\n";

    fn profile(name: &str, config: &str) -> AwsCredentials {
        let files = EnvConfigFiles::builder()
            .include_default_config_file(false)
            .include_default_credentials_file(false)
            .with_contents(EnvConfigFileKind::Credentials, CREDENTIALS)
            .with_contents(EnvConfigFileKind::Config, config)
            .build();
        AwsCredentials::from_provider(
            ProfileFileCredentialsProvider::builder()
                .profile_files(files)
                .profile_name(name)
                .build(),
        )
    }

    fn frames() -> FakeResponse {
        FakeResponse::sse(support::bedrock_frames("text.jsonl"))
            .with_header("content-type", "application/vnd.amazon.eventstream")
    }

    /// Makes `calls` Bedrock requests through a registry that has no keys in its environment
    /// and the chain `credentials`; returns their `Authorization` and security-token headers.
    async fn sign_with(
        credentials: AwsCredentials,
        calls: usize,
    ) -> Vec<Result<(String, Option<String>), String>> {
        let server = FakeServer::start((0..calls).map(|_| frames()).collect()).await.expect("fake");
        let registry = ProviderRegistry::new().with_env(|_| None).with_aws_credentials(credentials);
        let built = registry
            .build(
                &provider(ProviderKind::Bedrock, "", server.url()),
                &model(ProviderKind::Bedrock, json!({})),
            )
            .expect("bedrock builds without keys");
        let mut results = Vec::new();
        for _ in 0..calls {
            let request = ModelRequest::new("m", vec![PromptMessage::user("hi")]);
            match built.generate(request, CancellationToken::new()).await {
                Err(err) => results.push(Err(format!("{:?}: {}", err.kind, err.message))),
                Ok(_) => {
                    let sent = server.requests().pop().expect("a request");
                    let header = |name: &str| sent.header(name).map(str::to_owned);
                    let authorization = header("authorization").expect("signed");
                    results.push(Ok((authorization, header("x-amz-security-token"))));
                }
            }
        }
        results
    }

    #[tokio::test]
    async fn a_named_profile_signs_requests() {
        let signed = sign_with(profile("chatd-static", ""), 1).await;
        let (authorization, token) = signed[0].clone().expect("signed");
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDPROFILE/"),
            "{authorization}"
        );
        assert!(authorization.contains("/us-east-1/bedrock/aws4_request"), "{authorization}");
        assert_eq!(token.as_deref(), Some("profile-session-token"));
    }

    #[tokio::test]
    async fn an_sdk_config_brings_its_credentials_and_region() {
        let config = aws_config::SdkConfig::builder()
            .region(aws_config::Region::new("eu-west-3"))
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::for_tests(),
            ))
            .build();
        let credentials = AwsCredentials::from_sdk_config(&config).expect("has a provider");
        assert_eq!(credentials.region(), Some("eu-west-3"));
        let (authorization, _) = sign_with(credentials, 1).await[0].clone().expect("signed");
        assert!(authorization.contains("/eu-west-3/bedrock/aws4_request"), "{authorization}");
        assert!(
            AwsCredentials::from_sdk_config(&aws_config::SdkConfig::builder().build()).is_none()
        );
    }

    /// `credential_process` (a command printing temporary credentials): credentials that
    /// expire within five minutes are fetched again for the next request; longer-lived ones
    /// are reused.
    #[tokio::test]
    async fn temporary_credentials_are_cached_until_shortly_before_they_expire() {
        for (lifetime_minutes, expected_runs) in [(120, 1), (2, 2)] {
            let dir = std::env::temp_dir().join(format!("chatd-aws-{}", uuid_like()));
            std::fs::create_dir_all(&dir).expect("dir");
            let expiry = chrono::Utc::now() + chrono::Duration::minutes(lifetime_minutes);
            let json = json!({
                "Version": 1,
                "AccessKeyId": "AKIDPROCESS",
                "SecretAccessKey": "process-secret",
                "SessionToken": "process-token",
                "Expiration": expiry.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            });
            std::fs::write(dir.join("creds.json"), json.to_string()).expect("write");
            let command = format!(
                "echo run >> {runs}; cat {creds}",
                runs = dir.join("runs").display(),
                creds = dir.join("creds.json").display()
            );
            let config = format!("[profile chatd-process]\ncredential_process = {command}\n");
            let signed = sign_with(profile("chatd-process", &config), 2).await;
            for result in &signed {
                let (authorization, token) = result.clone().expect("signed");
                assert!(authorization.contains("Credential=AKIDPROCESS/"), "{authorization}");
                assert_eq!(token.as_deref(), Some("process-token"));
            }
            let runs = std::fs::read_to_string(dir.join("runs")).expect("runs").lines().count();
            println!("credentials valid for {lifetime_minutes} min: the process ran {runs}×");
            assert_eq!(runs, expected_runs, "lifetime {lifetime_minutes} min");
            std::fs::remove_dir_all(&dir).ok();
        }
    }

    #[tokio::test]
    async fn a_chain_without_credentials_is_an_auth_error_at_request_time() {
        let signed = sign_with(profile("no-such-profile", ""), 1).await;
        let message = signed[0].clone().expect_err("no credentials");
        assert!(message.starts_with("Auth: no AWS credentials"), "{message}");
        assert!(message.contains("no-such-profile"), "says which profile: {message}");
        // A helper that fails with a flood on stderr: the error stays short.
        let flood = "[profile chatd-flood]\ncredential_process = sh -c 'head -c 20000 /dev/zero | tr \"\\\\0\" x >&2; exit 3'\n";
        let signed = sign_with(profile("chatd-flood", flood), 1).await;
        let message = signed[0].clone().expect_err("the helper failed");
        println!("{} characters: {}", message.chars().count(), &message[..120.min(message.len())]);
        assert!(message.contains("exit"), "{message}");
        assert!(message.chars().count() < 600, "bounded: {} characters", message.chars().count());
        let debug = format!("{:?}", profile("chatd-static", ""));
        assert!(
            !debug.contains("profile-secret-key") && debug.contains("AwsCredentials"),
            "{debug}"
        );
    }

    fn uuid_like() -> String {
        format!("{}-{}", std::process::id(), chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0))
    }
}
