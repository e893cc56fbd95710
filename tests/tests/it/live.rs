//! The turn publishes the step in flight to the store's durable part log (BEHAVIOUR §7): parts
//! arrive there while the model streams, a retry is announced and starts a new episode,
//! and committing the step clears the log.

use std::time::Duration;

use chatd_core::provider::{ProviderError, ProviderErrorKind, StreamEvent};
use chatd_core::runtime::retry::RetryPolicy;
use chatd_core::runtime::turn::{StopReason, TurnEnd, TurnSignal};
use chatd_core::store::{PartPosition, PartRecord};
use chatd_core::testing::ScriptedCall;
use chatd_core::testing::internals::LivePart;
use chatd_core::{Message, TurnOutcome};

use crate::support::*;

fn text_events(deltas: &[&str]) -> Vec<Result<StreamEvent, ProviderError>> {
    let mut events = vec![Ok(StreamEvent::TextStart { id: "t".into() })];
    events.extend(
        deltas
            .iter()
            .map(|d| Ok(StreamEvent::TextDelta { id: "t".into(), delta: (*d).to_owned() })),
    );
    events
}

fn decode(records: &[PartRecord]) -> Vec<(PartPosition, LivePart)> {
    records
        .iter()
        .map(|r| (r.position, serde_json::from_value(r.payload.clone()).expect("a live part")))
        .collect()
}

/// Polls the part log until `done` holds for it (or fails after 5 s).
async fn wait_for_log(
    fx: &Fixture,
    done: impl Fn(&[(PartPosition, LivePart)]) -> bool,
) -> Vec<(PartPosition, LivePart)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let parts = decode(&fx.store.read_parts(fx.chat, None).await.expect("read parts"));
        if done(&parts) {
            return parts;
        }
        assert!(tokio::time::Instant::now() < deadline, "the log never got there: {parts:#?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn streamed_parts_reach_the_durable_log_and_the_commit_clears_it() {
    let fx = fixture(vec![ScriptedCall::StreamThenHang(text_events(&["hel", "lo"]))]).await;
    let signal = TurnSignal::new();
    let turn = tokio::spawn({
        let runner = fx.runner();
        let (lease, signal) = (fx.lease, signal.clone());
        async move { runner.run(lease, signal).await }
    });
    // The model has gone quiet: the buffered parts are written when their interval is up.
    let parts = wait_for_log(&fx, |p| p.len() == 3).await;
    let episode = fx.lease.episode_base() + 1;
    assert_eq!(
        parts.iter().map(|(p, _)| (p.episode, p.seq)).collect::<Vec<_>>(),
        vec![(episode, 1), (episode, 2), (episode, 3)]
    );
    assert_eq!(
        parts[2].1,
        LivePart::Stream { event: StreamEvent::TextDelta { id: "t".into(), delta: "lo".into() } }
    );
    signal.stop(StopReason::Interrupt);
    assert_eq!(turn.await.expect("turn"), TurnEnd::Release(TurnOutcome::Interrupted));
    assert!(
        fx.store.read_parts(fx.chat, None).await.expect("parts").is_empty(),
        "the commit cleared the log"
    );
    assert_eq!(fx.messages().await.last().map(Message::text), Some("hello".to_owned()));
}

#[tokio::test]
async fn a_retry_is_announced_in_the_log_and_the_next_attempt_is_a_new_episode() {
    let mut failing = text_events(&["par"]);
    failing.push(Err(ProviderError::new("anthropic", ProviderErrorKind::Server, "upstream 500")));
    let fx = fixture(vec![
        ScriptedCall::Stream(failing),
        ScriptedCall::StreamThenHang(text_events(&["whole"])),
    ])
    .await;
    let mut retry = RetryPolicy::default();
    retry.base = Duration::from_millis(300);
    let signal = TurnSignal::new();
    let turn = tokio::spawn({
        let runner = fx.runner().with_retry(retry);
        let (lease, signal) = (fx.lease, signal.clone());
        async move { runner.run(lease, signal).await }
    });
    let first = fx.lease.episode_base() + 1;
    let parts =
        wait_for_log(&fx, |p| p.iter().filter(|(at, _)| at.episode == first + 1).count() == 2)
            .await;
    let episodes: Vec<i64> = parts.iter().map(|(at, _)| at.episode).collect();
    assert_eq!(episodes, vec![first, first, first, first + 1, first + 1], "{parts:#?}");
    let LivePart::Retry { attempt, delay_ms, error, .. } = &parts[2].1 else {
        panic!("not a retry: {:?}", parts[2].1)
    };
    assert_eq!(*attempt, 1);
    assert!((150..=300).contains(delay_ms), "equal jitter on a 300 ms backoff: {delay_ms}");
    assert!(error.contains("upstream 500"), "{error}");
    signal.stop(StopReason::Interrupt);
    assert_eq!(turn.await.expect("turn"), TurnEnd::Release(TurnOutcome::Interrupted));
    assert_eq!(fx.messages().await.last().map(Message::text), Some("whole".to_owned()));
}

#[tokio::test]
async fn without_live_parts_nothing_is_published() {
    let fx = fixture(vec![ScriptedCall::StreamThenHang(text_events(&["quiet"]))]).await;
    let signal = TurnSignal::new();
    let turn = tokio::spawn({
        let runner = fx.runner().with_live_parts(None);
        let (lease, signal) = (fx.lease, signal.clone());
        async move { runner.run(lease, signal).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(fx.store.read_parts(fx.chat, None).await.expect("parts").is_empty());
    signal.stop(StopReason::Interrupt);
    assert_eq!(turn.await.expect("turn"), TurnEnd::Release(TurnOutcome::Interrupted));
    assert_eq!(fx.messages().await.last().map(Message::text), Some("quiet".to_owned()));
}
