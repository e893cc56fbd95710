//! Compaction in the turn (BEHAVIOUR §5) on the in-memory store with a scripted provider:
//! the threshold, the three rows, publish order, reload-and-continue, re-entries, failures
//! and manual compaction.

use std::sync::{Arc, Mutex};

use chatd_core::provider::{ProviderError, ProviderErrorKind, StreamEvent};
use chatd_core::runtime::turn::{TurnEnd, TurnObserver, TurnSignal};
use chatd_core::store::StoreError;
use chatd_core::testing::pinned::{COMPACTION_TOOL, CONTINUATION_PREAMBLE, SUMMARY_INSTRUCTION};
use chatd_core::testing::{ScriptedCall, ScriptedProvider};
use chatd_core::{Actor, Chatd, ChatdError};
use chatd_core::{ChatId, Message, NewModelConfig, Part, ProviderKind, Role, TurnOutcome, Usage};
use serde_json::json;

use crate::support::*;

fn usage(context_tokens: i64) -> Option<Usage> {
    Some(Usage {
        input_tokens: context_tokens,
        total_tokens: context_tokens + 5,
        ..Usage::default()
    })
}

/// A 100-token window with threshold 70 (BEHAVIOUR §5's example).
fn small_window() -> NewModelConfig {
    NewModelConfig::new(ProviderKind::Anthropic, "claude-test", 100).with_compression_threshold(70)
}

fn compressed(messages: &[Message]) -> Vec<&Message> {
    messages.iter().filter(|m| m.compressed).collect()
}

/// Records what a turn publishes, with how many model requests had been made at the time.
struct Log {
    provider: Arc<ScriptedProvider>,
    entries: Mutex<Vec<String>>,
}

impl Log {
    fn new(provider: &Arc<ScriptedProvider>) -> Arc<Self> {
        Arc::new(Log { provider: Arc::clone(provider), entries: Mutex::new(Vec::new()) })
    }
    fn push(&self, entry: String) {
        let requests = self.provider.requests().len();
        self.entries.lock().expect("lock").push(format!("{entry}@{requests}"));
    }
    fn entries(&self) -> Vec<String> {
        self.entries.lock().expect("lock").clone()
    }
}

fn describe(event: &StreamEvent) -> String {
    match event {
        StreamEvent::ToolCall { tool_name, .. } => format!("call:{tool_name}"),
        StreamEvent::ToolResult { tool_name, is_error, .. } => {
            format!("result:{tool_name}:{}", if *is_error { "error" } else { "ok" })
        }
        other => format!("{other:?}"),
    }
}

impl TurnObserver for Log {
    fn on_step(&self, _chat: ChatId, messages: &[Message]) {
        let compressed = messages.iter().filter(|m| m.compressed).count();
        self.push(format!("persist:{}rows:{compressed}compressed", messages.len()));
    }
    fn on_compaction(&self, _chat: ChatId, event: &StreamEvent) {
        self.push(describe(event));
    }
}

#[tokio::test]
async fn compaction_persists_at_80_of_100_with_threshold_70_and_not_below() {
    // Below: 69/100 writes nothing and makes no summary call.
    let below = fixture_with(small_window(), vec![ScriptedCall::text("answer", usage(69))]).await;
    let end = below.runner().run(below.lease, TurnSignal::new()).await;
    assert_eq!(end, TurnEnd::Release(TurnOutcome::Finished));
    assert!(compressed(&below.messages().await).is_empty());
    assert_eq!(below.provider.requests().len(), 1);

    // At 80/100: the three rows, then one re-entry on the compacted history.
    let at = fixture_with(
        small_window(),
        vec![
            ScriptedCall::text("answer", usage(80)),
            ScriptedCall::text("  the summary  ", None),
            ScriptedCall::text("carrying on", usage(20)),
        ],
    )
    .await;
    let end = at.runner().run(at.lease, TurnSignal::new()).await;
    assert_eq!(end, TurnEnd::Release(TurnOutcome::Finished));
    let messages = at.messages().await;
    let rows = compressed(&messages);
    assert_eq!(rows.len(), 3, "{messages:#?}");
    assert_eq!(
        rows.iter()
            .map(|m| (m.role, m.visibility.is_model_visible(), m.visibility.is_user_visible()))
            .collect::<Vec<_>>(),
        vec![
            (Role::System, true, false),
            (Role::Assistant, false, true),
            (Role::Tool, false, true)
        ]
    );
    assert_eq!(rows[0].text(), format!("{CONTINUATION_PREAMBLE}the summary"));
    let Part::ToolResult { tool_name, result, is_error, .. } = &rows[2].content[0] else {
        panic!("not a result: {:?}", rows[2].content)
    };
    assert_eq!((tool_name.as_str(), *is_error), (COMPACTION_TOOL, false));
    assert_eq!(
        *result,
        json!({
            "summary": "the summary",
            "source": "automatic",
            "threshold_percent": 70,
            "usage_percent": 80,
            "context_tokens": 80,
            "context_limit_tokens": 100,
        })
    );
    let requests = at.provider.requests();
    assert_eq!(requests.len(), 3);
    // The summary call: no tools, the history, then the instruction.
    assert!(requests[1].tools.is_empty());
    let last = requests[1].messages.last().expect("instruction");
    assert_eq!(last.content, vec![Part::text(SUMMARY_INSTRUCTION)]);
    assert!(requests[1].messages.iter().any(|m| m.content == vec![Part::text("answer")]));
    // The re-entry starts from the boundary alone.
    assert_eq!(requests[2].system, vec!["sys".to_owned()]);
    assert_eq!(requests[2].messages.len(), 1);
    assert_eq!(requests[2].messages[0].role, Role::User);
    assert_eq!(requests[2].messages[0].content, vec![Part::text(rows[0].text())]);
    assert_eq!(messages.last().map(Message::text), Some("carrying on".to_owned()));
}

#[tokio::test]
async fn compaction_publishes_the_call_then_generates_then_persists_then_the_result() {
    let fx = fixture_with(
        small_window(),
        vec![
            ScriptedCall::text("answer", usage(90)),
            ScriptedCall::text("summary", None),
            ScriptedCall::text("more", None),
        ],
    )
    .await;
    let log = Log::new(&fx.provider);
    let end = fx
        .runner()
        .with_observer(Arc::clone(&log) as Arc<dyn TurnObserver>)
        .run(fx.lease, TurnSignal::new())
        .await;
    assert_eq!(end, TurnEnd::Release(TurnOutcome::Finished));
    // `@n` is how many model requests had been made: the summary call is request 2.
    assert_eq!(
        log.entries(),
        vec![
            "persist:1rows:0compressed@1",
            "call:chat_summarized@1",
            "persist:3rows:3compressed@2",
            "result:chat_summarized:ok@2",
            "persist:1rows:0compressed@3",
        ]
    );
}

#[tokio::test]
async fn mid_loop_compaction_reloads_the_history_and_continues() {
    let fx = fixture_with(
        small_window(),
        vec![
            ScriptedCall::tool_calls(&[("c1", "echo", json!({"n": 1}))], usage(75)),
            ScriptedCall::text("what happened so far", None),
            ScriptedCall::text("finished", usage(10)),
        ],
    )
    .await;
    let end = fx.runner().run(fx.lease, TurnSignal::new()).await;
    assert_eq!(end, TurnEnd::Release(TurnOutcome::Finished));
    let requests = fx.provider.requests();
    assert_eq!(requests.len(), 3);
    // The summary saw the tool call and its result.
    assert!(requests[1].messages.iter().any(|m| m.role == Role::Tool));
    // The next step's prompt was reloaded: the boundary only, no user text, no tool rows.
    let next = &requests[2];
    assert_eq!(next.messages.len(), 1);
    assert_eq!(
        next.messages[0].content,
        vec![Part::text(format!("{CONTINUATION_PREAMBLE}what happened so far"))]
    );
    assert!(!next.tools.is_empty(), "tools are back for the turn's own steps");
    assert_eq!(
        fx.roles().await,
        vec![
            Role::System,
            Role::User,
            Role::Assistant,
            Role::Tool,
            Role::System,
            Role::Assistant,
            Role::Tool,
            Role::Assistant
        ]
    );
}

#[tokio::test]
async fn a_final_step_compaction_reenters_at_most_three_times() {
    let mut calls = Vec::new();
    for _ in 0..4 {
        calls.push(ScriptedCall::text("still big", usage(95)));
        calls.push(ScriptedCall::text("summary", None));
    }
    let fx = fixture_with(small_window(), calls).await;
    let end = fx.runner().run(fx.lease, TurnSignal::new()).await;
    assert_eq!(end, TurnEnd::Release(TurnOutcome::Finished));
    // 4 answers (1 + 3 re-entries), each followed by a compaction; no fifth answer.
    assert_eq!(fx.provider.requests().len(), 8);
    assert_eq!(fx.provider.remaining(), 0);
    assert_eq!(compressed(&fx.messages().await).len(), 12);
}

#[tokio::test]
async fn a_failed_compaction_is_reported_and_the_turn_continues() {
    let fx = fixture_with(
        small_window(),
        vec![
            ScriptedCall::tool_calls(&[("c1", "echo", json!({"n": 1}))], usage(80)),
            ScriptedCall::Fail(ProviderError::new(
                "anthropic",
                ProviderErrorKind::InvalidRequest,
                "bad summary request",
            )),
            ScriptedCall::text("done anyway", usage(85)),
            ScriptedCall::text("   ", None),
        ],
    )
    .await;
    let log = Log::new(&fx.provider);
    let end = fx
        .runner()
        .with_observer(Arc::clone(&log) as Arc<dyn TurnObserver>)
        .run(fx.lease, TurnSignal::new())
        .await;
    assert_eq!(end, TurnEnd::Release(TurnOutcome::Finished));
    assert!(compressed(&fx.messages().await).is_empty());
    assert_eq!(
        fx.roles().await,
        vec![Role::System, Role::User, Role::Assistant, Role::Tool, Role::Assistant]
    );
    let entries = log.entries();
    // The refused call and the empty summary are both reported as error results. (`echo` has
    // side effects as far as the runner knows, so its step is recorded: the assistant row,
    // then the tool row.)
    assert_eq!(
        entries,
        vec![
            "persist:1rows:0compressed@1",
            "persist:1rows:0compressed@1",
            "call:chat_summarized@1",
            "result:chat_summarized:error@2",
            "persist:1rows:0compressed@3",
            "call:chat_summarized@3",
            "result:chat_summarized:error@4",
        ]
    );
    // A failed compaction on the final step does not re-enter.
    assert_eq!(fx.provider.remaining(), 0);
}

/// Manual compaction the way a host asks for it: `Chatd::compact` as the chat's owner.
fn chatd_of(fx: &Fixture) -> Chatd {
    Chatd::new(Arc::clone(&fx.store)).with_providers(Arc::new(Scripted(Arc::clone(&fx.provider))))
}

#[tokio::test]
async fn manual_compaction_forces_a_summary_and_refuses_when_there_is_nothing_new() {
    let fx = fixture(vec![
        ScriptedCall::text("answer", usage(1_000)),
        ScriptedCall::text("by hand", None),
    ])
    .await;
    let end = fx.runner().run(fx.lease, TurnSignal::new()).await;
    assert_eq!(end, TurnEnd::Release(TurnOutcome::Finished));
    fx.store.release(&fx.lease, TurnOutcome::Finished).await.expect("release");
    let chat = fx.store.get_chat(fx.chat).await.expect("chat");
    let owner = Actor::user(chat.owner_id);
    let chatd = chatd_of(&fx);
    let rows = chatd.compact(&owner, fx.chat).await.expect("manual compaction");
    assert_eq!(rows.len(), 3);
    let Part::ToolResult { result, .. } = &rows[2].content[0] else { panic!("{:?}", rows[2]) };
    assert_eq!(result["source"], "manual");
    assert_eq!(result["context_tokens"], 1_000);
    assert_eq!(result["context_limit_tokens"], 200_000);
    assert_eq!(result["usage_percent"], 0);

    // The boundary is the latest model-visible row: nothing left to compact.
    let again = chatd.compact(&owner, fx.chat).await;
    assert!(matches!(again, Err(ChatdError::Store(StoreError::Conflict(_)))), "{again:?}");
    assert_eq!(fx.provider.requests().len(), 2, "no summary call for nothing");
}

/// BEHAVIOUR §15: the summary call is bounded by 90 s (on tokio's paused clock).
#[tokio::test(start_paused = true)]
async fn the_summary_call_times_out_after_90_seconds() {
    let fx = fixture(vec![ScriptedCall::StreamThenHang(Vec::new())]).await;
    fx.store.release(&fx.lease, TurnOutcome::Finished).await.expect("release");
    let chat = fx.store.get_chat(fx.chat).await.expect("chat");
    let started = tokio::time::Instant::now();
    let err = chatd_of(&fx)
        .compact(&Actor::user(chat.owner_id), fx.chat)
        .await
        .expect_err("the model never answers");
    let waited = started.elapsed();
    assert!(
        matches!(&err, ChatdError::Compaction(reason) if reason == "compaction failed: the summary call timed out after 90 s"),
        "{err:?}"
    );
    assert!(
        waited >= std::time::Duration::from_secs(90) && waited < std::time::Duration::from_secs(91),
        "fired after {waited:?}"
    );
    println!("the summary timeout fired after {waited:?} of tokio's paused clock");
}
