//! The turn's own bounds hold for every `ModelProvider` (BEHAVIOUR §3 "Timeouts and
//! bounds"): a custom provider that streams for ever is cut at the step cap, and one that
//! goes silent — before its first event or between two — is cut by the timeouts, however
//! the adapter behaves.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chatd_core::provider::{EventStream, ModelProvider, ModelRequest, ProviderError, StreamEvent};
use chatd_core::runtime::retry::RetryPolicy;
use chatd_core::runtime::tools::ToolSet;
use chatd_core::runtime::turn::{ProviderSource, StepLimits, TurnEnd, TurnRunner, TurnSignal};
use chatd_core::{ModelConfig, ProviderKind, Role, TurnOutcome};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::support::*;

/// How a hostile provider behaves.
#[derive(Clone, Copy)]
enum Hostile {
    /// 64 KiB text deltas, for ever.
    Endless,
    /// A stream that never yields.
    SilentFromTheStart,
    /// One delta, then nothing.
    SilentAfterOne,
    /// `stream` itself never returns.
    NeverOpens,
}

struct HostileProvider {
    how: Hostile,
    calls: AtomicUsize,
}

#[async_trait]
impl ModelProvider for HostileProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Anthropic
    }

    async fn stream(
        &self,
        _request: ModelRequest,
        _cancel: CancellationToken,
    ) -> Result<EventStream, ProviderError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let delta = |text: String| Ok(StreamEvent::TextDelta { id: "t".into(), delta: text });
        Ok(match self.how {
            Hostile::Endless => {
                let chunk = "x".repeat(64 * 1024);
                futures::stream::repeat_with(move || delta(chunk.clone())).boxed()
            }
            Hostile::SilentFromTheStart => futures::stream::pending().boxed(),
            Hostile::SilentAfterOne => futures::stream::once(async move { delta("hi".into()) })
                .chain(futures::stream::pending())
                .boxed(),
            Hostile::NeverOpens => {
                futures::future::pending::<()>().await;
                futures::stream::empty().boxed()
            }
        })
    }
}

struct Source(Arc<HostileProvider>);

#[async_trait]
impl ProviderSource for Source {
    async fn provider(
        &self,
        _config: &ModelConfig,
    ) -> Result<Arc<dyn ModelProvider>, ProviderError> {
        Ok(Arc::clone(&self.0) as Arc<dyn ModelProvider>)
    }
}

/// Runs a turn against `how` with small bounds and one retry; returns how it ended and
/// how many calls were made.
async fn run(how: Hostile) -> (TurnEnd, usize) {
    let fx = fixture(vec![]).await;
    let provider = Arc::new(HostileProvider { how, calls: AtomicUsize::new(0) });
    let limits = StepLimits::default()
        .with_max_step_bytes(1024 * 1024)
        .with_timeouts(Duration::from_millis(300), Duration::from_millis(300));
    let mut retry = RetryPolicy::default().with_max_retries(1);
    retry.base = Duration::from_millis(5);
    let runner = TurnRunner::new(
        Arc::clone(&fx.store),
        Arc::new(Source(Arc::clone(&provider))),
        ToolSet::new(),
    )
    .with_titles(false)
    .with_retry(retry)
    .with_step_limits(limits);
    let end =
        tokio::time::timeout(Duration::from_secs(30), runner.run(fx.lease, TurnSignal::new()))
            .await
            .expect("the bounds ended the turn");
    assert_eq!(fx.roles().await, vec![Role::System, Role::User], "nothing half-made was kept");
    (end, provider.calls.load(Ordering::SeqCst))
}

fn failure(end: &TurnEnd) -> &str {
    match end {
        TurnEnd::Release(TurnOutcome::Failed(message)) => message,
        other => panic!("the turn did not fail: {other:?}"),
    }
}

#[tokio::test]
async fn a_provider_that_streams_for_ever_is_cut_at_the_step_cap() {
    let (end, calls) = run(Hostile::Endless).await;
    let message = failure(&end);
    assert!(message.contains("passed 1 MiB in one step"), "{message}");
    assert!(message.contains("too_large"), "{message}");
    assert_eq!(calls, 1, "a step too large is not retried");
}

#[tokio::test]
async fn a_provider_silent_from_the_start_times_out_and_is_retried() {
    let (end, calls) = run(Hostile::SilentFromTheStart).await;
    let message = failure(&end);
    assert!(message.contains("sent nothing for 300ms before the first event"), "{message}");
    assert_eq!(calls, 2, "a time-out is retried (once, by this policy)");
}

#[tokio::test]
async fn a_provider_silent_between_events_times_out() {
    let (end, _) = run(Hostile::SilentAfterOne).await;
    let message = failure(&end);
    assert!(message.contains("sent nothing for 300ms between two events"), "{message}");
}

#[tokio::test]
async fn a_provider_whose_stream_never_opens_times_out() {
    let (end, calls) = run(Hostile::NeverOpens).await;
    let message = failure(&end);
    assert!(message.contains("before the first event"), "{message}");
    assert_eq!(calls, 2);
}
