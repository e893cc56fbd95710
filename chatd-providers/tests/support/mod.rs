//! Helpers shared by the wire tests.

// Each test binary compiles this module and uses a different subset of it.
#![allow(dead_code)]

use chatd_core::provider::{Generation, ModelProvider, ModelRequest, ProviderError};
use chatd_providers::testing::{FakeResponse, FakeServer, RecordedRequest};
use tokio_util::sync::CancellationToken;

/// A recorded fixture: `tests/fixtures/<provider>/<name>`.
pub(crate) fn fixture(provider: &str, name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{provider}/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// Serves `response` once, runs one accumulated call through the provider `make` builds
/// for the server's URL, and returns the result and the request the server received.
pub(crate) async fn call<P: ModelProvider>(
    make: impl FnOnce(&str) -> P,
    response: FakeResponse,
    request: ModelRequest,
) -> (Result<Generation, ProviderError>, RecordedRequest) {
    let server = FakeServer::start(vec![response]).await.expect("server");
    let provider = make(server.url());
    let result = provider.generate(request, CancellationToken::new()).await;
    let sent = server.requests().pop().expect("one request");
    (result, sent)
}
