//! Hostile servers (BEHAVIOUR §3 "Timeouts and bounds", §12): a server that accepts and never
//! answers, sends headers then nothing, goes silent mid-stream, redirects keys to another
//! origin, or asks to be retried after 10^20 seconds. Each ends in a typed error within its
//! configured bound; none panics; no key leaves its origin.

use std::time::{Duration, Instant};

use chatd_core::Secret;
use chatd_core::provider::{
    ModelProvider, ModelRequest, PromptMessage, ProviderError, ProviderErrorKind,
};
use chatd_providers::anthropic::AnthropicProvider;
use chatd_providers::chat_completions::{ChatCompletionsProvider, Dialect};
use chatd_providers::google::GoogleProvider;
use chatd_providers::{HttpLimits, HttpOptions};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

mod hostile;
use hostile::{RawServer, Script, head};

const BOUND: Duration = Duration::from_millis(300);

fn limits() -> HttpLimits {
    HttpLimits::default().with_first_byte_timeout(BOUND).with_idle_timeout(BOUND)
}

fn compat(url: &str) -> ChatCompletionsProvider {
    ChatCompletionsProvider::new(Dialect::OpenAiCompat, url, Secret::new("sk-hostile-key"))
        .expect("provider")
        .with_http(&HttpOptions::new().with_limits(limits()))
}

/// Runs one call to its first error (see [`hostile::run_to_error`]) and times it.
async fn fails(provider: &dyn ModelProvider) -> (ProviderError, Duration) {
    let started = Instant::now();
    let err = hostile::run_to_error(provider).await;
    (err, started.elapsed())
}

const TEXT_EVENT: &str =
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n";

#[tokio::test]
async fn a_server_that_accepts_and_never_answers_is_a_retryable_timeout() {
    let server = RawServer::start(|_| Script::Silence).await;
    let (err, took) = fails(&compat(&server.url)).await;
    assert_eq!(err.kind, ProviderErrorKind::Timeout, "{err}");
    assert!(err.is_retryable());
    assert!(took < BOUND * 4, "took {took:?}");
}

#[tokio::test]
async fn headers_then_silence_is_a_first_byte_timeout() {
    let server =
        RawServer::start(|_| Script::HeadThenSilence(head("200 OK", "text/event-stream"))).await;
    let (err, took) = fails(&compat(&server.url)).await;
    assert_eq!(err.kind, ProviderErrorKind::Timeout, "{err}");
    assert!(err.message.contains("no response data"), "{err}");
    assert!(took < BOUND * 4, "took {took:?}");
}

#[tokio::test]
async fn silence_mid_stream_is_an_idle_timeout_after_the_parts_so_far() {
    let server = RawServer::start(|_| {
        Script::PrefixThenSilence(
            head("200 OK", "text/event-stream"),
            TEXT_EVENT.as_bytes().to_vec(),
        )
    })
    .await;
    let provider = compat(&server.url);
    let request = ModelRequest::new("m", vec![PromptMessage::user("hi")]);
    let started = Instant::now();
    let mut events = provider.stream(request, CancellationToken::new()).await.expect("open");
    let mut seen = 0;
    let err = loop {
        match events.next().await {
            Some(Ok(_)) => seen += 1,
            Some(Err(err)) => break err,
            None => panic!("ended without an error"),
        }
    };
    assert!(seen >= 2, "the text before the silence was delivered");
    assert_eq!(err.kind, ProviderErrorKind::Timeout, "{err}");
    assert!(err.message.contains("silent"), "{err}");
    assert!(err.is_retryable(), "the loop retries (and resets the attempt's preview)");
    assert!(started.elapsed() < BOUND * 4);
}

fn redirect_to(location: &str) -> Script {
    Script::Bytes(
        format!(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        )
        .into_bytes(),
    )
}

#[tokio::test]
async fn keys_never_follow_a_redirect_to_another_origin() {
    let elsewhere = RawServer::start(|_| Script::Bytes(b"HTTP/1.1 200 OK\r\n\r\n".to_vec())).await;
    let target = format!("{}/steal", elsewhere.url);
    let redirecting = {
        let target = target.clone();
        RawServer::start(move |_| redirect_to(&target)).await
    };
    let key = || Secret::new("sk-must-stay-home");
    let url = redirecting.url.clone();
    let providers: Vec<(&str, Box<dyn ModelProvider>)> = vec![
        ("authorization (openai-compat)", Box::new(compat(&url))),
        (
            "api-key (azure)",
            Box::new(ChatCompletionsProvider::new(Dialect::Azure, &url, key()).expect("azure")),
        ),
        ("x-api-key (anthropic)", Box::new(AnthropicProvider::new(&url, key()))),
        ("x-goog-api-key (google)", Box::new(GoogleProvider::new(&url, key()))),
    ];
    for (what, provider) in providers {
        let (err, _) = fails(provider.as_ref()).await;
        assert!(err.message.contains("redirected to another origin"), "{what}: {err}");
        assert!(!err.is_retryable(), "{what}");
    }
    assert_eq!(redirecting.seen().len(), 4, "each provider asked the configured origin once");
    assert!(
        elsewhere.seen().is_empty(),
        "a request reached the other origin: {:?}",
        elsewhere.seen()
    );
}

#[tokio::test]
async fn same_origin_redirects_are_followed_with_the_key() {
    let done = format!(
        "{TEXT_EVENT}data: {{\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"stop\"}}]}}\n\ndata: [DONE]\n\n"
    );
    let server = RawServer::start(move |n| {
        if n == 0 {
            redirect_to("/moved/chat/completions")
        } else {
            Script::Bytes(format!("{}{done}", head("200 OK", "text/event-stream")).into_bytes())
        }
    })
    .await;
    let provider = compat(&server.url);
    let generation = provider
        .generate(ModelRequest::new("m", vec![PromptMessage::user("hi")]), CancellationToken::new())
        .await
        .expect("followed");
    assert_eq!(generation.text(), "Hi");
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen[1].head.starts_with("POST /moved/chat/completions"), "{}", seen[1].head);
    assert!(
        seen.iter().all(|s| s.has_header("authorization")),
        "the key went along within the origin"
    );
}

#[tokio::test]
async fn absurd_retry_after_values_are_typed_errors_and_never_panic() {
    for value in ["1e20", "inf", "-3", "NaN", "soon", "18446744073709551616"] {
        let server = RawServer::start(move |_| {
            Script::Bytes(
                format!(
                    "HTTP/1.1 429 Too Many Requests\r\nretry-after: {value}\r\nretry-after-ms: {value}\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
                )
                .into_bytes(),
            )
        })
        .await;
        let (err, _) = fails(&compat(&server.url)).await;
        assert_eq!(err.kind, ProviderErrorKind::RateLimited, "{value}: {err}");
        assert!(err.retry_after().is_none_or(|d| d <= Duration::from_secs(24 * 3600)), "{value}");
        // The loop's policy clamps nothing below its own maximum: it gives up above it.
        let policy = chatd_core::runtime::retry::RetryPolicy::default();
        let delay = policy.delay(0, &err);
        assert!(delay.is_none_or(|d| d <= Duration::from_secs(300)), "{value}: {delay:?}");
    }
}

/// BEHAVIOUR §15: connecting is bounded by 30 s by default. The listener's accept queue is
/// full, so the kernel drops the connection's SYNs and the connect hangs; the bound fires on
/// tokio's paused clock.
#[tokio::test]
async fn a_connect_that_never_completes_is_bounded_by_30_seconds() {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let listener = socket.listen(1).expect("listen");
    let addr = listener.local_addr().expect("addr");
    // Fill the accept queue (never accepted) until a connect no longer completes.
    let mut held = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_millis(200), tokio::net::TcpStream::connect(addr))
            .await
        {
            Ok(Ok(stream)) => held.push(stream),
            Ok(Err(err)) => panic!("connect: {err}"),
            Err(_) => break,
        }
        assert!(held.len() < 64, "the accept queue never filled");
    }
    println!("accept queue full after {} connections", held.len());
    let provider = AnthropicProvider::new(&format!("http://{addr}"), Secret::new("sk-test"));
    tokio::time::pause();
    let started = tokio::time::Instant::now();
    let request = ModelRequest::new("m", vec![PromptMessage::user("hi")]);
    let err = match provider.stream(request, CancellationToken::new()).await {
        Err(err) => err,
        Ok(mut events) => loop {
            match events.next().await {
                Some(Err(err)) => break err,
                Some(Ok(_)) => {}
                None => panic!("the stream ended without an error"),
            }
        },
    };
    let waited = started.elapsed();
    println!("the connect bound fired after {waited:?} of tokio's paused clock: {err}");
    assert!(err.is_retryable(), "{err:?}");
    assert!(
        waited >= Duration::from_secs(30) && waited < Duration::from_secs(31),
        "fired after {waited:?}: {err:?}"
    );
    drop((held, listener));
}

/// A transport failure keeps its cause chain for the host (`source()`), while the message
/// stays what it was (issue 24, item 3).
#[tokio::test]
async fn a_refused_connection_keeps_its_cause_chain() {
    // A port nothing listens on: bind, note it, close.
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let provider = AnthropicProvider::new(&format!("http://{port}"), Secret::new("sk-test"));
    let (err, _) = fails(&provider).await;
    assert_eq!(err.kind, ProviderErrorKind::Transport, "{err:?}");
    let mut chain = Vec::new();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        chain.push(cause.to_string());
        source = cause.source();
    }
    println!("{err}\n  caused by: {chain:?}");
    assert!(
        chain.iter().any(|c| c.to_ascii_lowercase().contains("refused")),
        "the OS's reason is in the chain: {chain:?}"
    );
    assert!(chain.iter().all(|c| !c.contains("sk-test")), "{chain:?}");
}
