//! The turn runner end to end on the in-memory store with a scripted provider: tool steps,
//! interrupts, shutdown, failures, retries, panics and the lease.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chatd_core::provider::{ModelProvider, ProviderError, ProviderErrorKind, StreamEvent};
use chatd_core::runtime::tools::ToolSet;
use chatd_core::runtime::turn::{
    ProviderSource, RetryNotice, StopReason, TurnEnd, TurnObserver, TurnRunner, TurnSignal,
};
use chatd_core::testing::ScriptedCall;
use chatd_core::testing::pinned::{IN_DOUBT_TOOL_RESULT, INTERRUPTED_TOOL_RESULT};
use chatd_core::{
    ChatId, ChatStatus, Message, ModelConfig, NewModelConfig, Part, ProviderKind, Role, TurnOutcome,
};
use serde_json::json;

use crate::support::*;

struct Panicking;

#[async_trait]
impl ProviderSource for Panicking {
    async fn provider(
        &self,
        _config: &ModelConfig,
    ) -> Result<Arc<dyn ModelProvider>, ProviderError> {
        panic!("provider source exploded")
    }
}

#[derive(Default)]
struct Recorder {
    retries: Mutex<Vec<RetryNotice>>,
    events: Mutex<usize>,
}

impl TurnObserver for Recorder {
    fn on_event(&self, _chat: ChatId, _attempt: u32, _event: &StreamEvent) {
        *self.events.lock().expect("lock") += 1;
    }
    fn on_retry(&self, _chat: ChatId, notice: &RetryNotice) {
        self.retries.lock().expect("lock").push(notice.clone());
    }
}

#[tokio::test]
async fn multi_step_tool_execution_sends_the_call_and_its_result_back() {
    let fx = fixture(vec![
        ScriptedCall::tool_calls(
            &[("c1", "echo", json!({"n": 1})), ("c2", "echo", json!({"n": 2}))],
            None,
        ),
        ScriptedCall::text("all done", None),
    ])
    .await;
    let end = fx.runner().run(fx.lease, TurnSignal::new()).await;
    assert_eq!(end, TurnEnd::Release(TurnOutcome::Finished));
    assert_eq!(
        fx.roles().await,
        vec![Role::System, Role::User, Role::Assistant, Role::Tool, Role::Tool, Role::Assistant]
    );
    let requests = fx.provider.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].system, vec!["sys"]);
    assert_eq!(requests[0].tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), vec!["echo"]);
    let second: Vec<(Role, Vec<Part>)> =
        requests[1].messages.iter().map(|m| (m.role, m.content.clone())).collect();
    assert_eq!(
        second[1].1,
        vec![
            Part::tool_call("c1", "echo", json!({"n": 1})),
            Part::tool_call("c2", "echo", json!({"n": 2}))
        ]
    );
    assert_eq!(second[2].1, vec![Part::tool_result("c1", "echo", json!({"n": 1}), false)]);
    assert_eq!(second[3].1, vec![Part::tool_result("c2", "echo", json!({"n": 2}), false)]);
    let last = fx.messages().await.pop().expect("answer");
    assert_eq!(last.text(), "all done");
    assert_eq!(
        last.context_limit,
        Some(200_000),
        "the config's window when the provider reports none"
    );
}

#[tokio::test]
async fn an_unknown_tool_becomes_an_error_result_and_the_turn_goes_on() {
    let fx = fixture(vec![
        ScriptedCall::tool_calls(&[("c1", "nope", json!({}))], None),
        ScriptedCall::text("ok", None),
    ])
    .await;
    assert_eq!(
        fx.runner().run(fx.lease, TurnSignal::new()).await,
        TurnEnd::Release(TurnOutcome::Finished)
    );
    let messages = fx.messages().await;
    assert_eq!(
        messages[3].content,
        vec![Part::tool_result("c1", "nope", json!("Tool not found: nope"), true)]
    );
}

#[tokio::test]
async fn interrupt_during_streaming_persists_the_partial_answer() {
    let fx = fixture(vec![ScriptedCall::StreamThenHang(vec![
        Ok(StreamEvent::TextStart { id: "t".into() }),
        Ok(StreamEvent::TextDelta { id: "t".into(), delta: "Half an ans".into() }),
    ])])
    .await;
    let signal = TurnSignal::new();
    let stopper = signal.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        stopper.stop(StopReason::Interrupt);
    });
    let end = fx.runner().run(fx.lease, signal).await;
    assert_eq!(end, TurnEnd::Release(TurnOutcome::Interrupted));
    assert_eq!(fx.messages().await.last().map(Message::text).as_deref(), Some("Half an ans"));
}

#[tokio::test]
async fn interrupt_during_tools_gives_unanswered_calls_synthetic_results() {
    let fx =
        fixture(vec![ScriptedCall::tool_calls(&[("c1", "echo", json!({"hang": true}))], None)])
            .await;
    let signal = TurnSignal::new();
    let stopper = signal.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        stopper.stop(StopReason::Interrupt);
    });
    assert_eq!(fx.runner().run(fx.lease, signal).await, TurnEnd::Release(TurnOutcome::Interrupted));
    let messages = fx.messages().await;
    assert_eq!(messages[2].content, vec![Part::tool_call("c1", "echo", json!({"hang": true}))]);
    assert_eq!(
        messages[3].content,
        vec![Part::tool_result("c1", "echo", json!(INTERRUPTED_TOOL_RESULT), true)]
    );
    let released = fx.store.release(&fx.lease, TurnOutcome::Interrupted).await.expect("release");
    assert_eq!(released.status, ChatStatus::Waiting);
}

type Calls<'a> = Vec<(&'a str, &'a str, serde_json::Value)>;

/// A step of `calls` (echo calls; `{"hang": true}` never ends) stopped by `reason` after
/// 100 ms; returns the persisted tool row's results.
async fn stop_a_step(reason: StopReason, calls: &[(&str, &str, serde_json::Value)]) -> Vec<Part> {
    let fx = fixture(vec![ScriptedCall::tool_calls(calls, None)]).await;
    let signal = TurnSignal::new();
    let stopper = signal.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stopper.stop(reason);
    });
    let expected = match reason {
        StopReason::Shutdown => TurnOutcome::Shutdown,
        _ => TurnOutcome::Interrupted,
    };
    assert_eq!(fx.runner().run(fx.lease, signal).await, TurnEnd::Release(expected.clone()));
    let released = fx.store.release(&fx.lease, expected).await.expect("release");
    let status =
        if reason == StopReason::Shutdown { ChatStatus::Pending } else { ChatStatus::Waiting };
    assert_eq!((released.status, released.last_error), (status, None));
    if reason == StopReason::Shutdown {
        // The step's records stay (finished results, started marks); the re-run answers
        // the started calls as in doubt without running them, then calls the model.
        assert_eq!(released.tool_calls.len(), calls.len(), "the records outlive the shutdown");
        fx.provider.push(ScriptedCall::text("after", None));
        let lease = fx.store.acquire(chatd_core::WorkerId::new(), 1).await.expect("acquire")[0];
        let end = fx.runner().run(lease, TurnSignal::new()).await;
        assert_eq!(end, TurnEnd::Release(TurnOutcome::Finished));
        let messages = fx.messages().await;
        assert_eq!(messages.last().map(Message::text), Some("after".to_owned()));
        let rows = &messages[3..messages.len() - 1];
        assert!(rows.iter().all(|m| m.role == Role::Tool), "{messages:?}");
        return rows.iter().flat_map(|m| m.content.clone()).collect();
    }
    let messages = fx.messages().await;
    assert_eq!(messages[2].role, Role::Assistant, "the step was persisted");
    assert!(messages[3..].iter().all(|m| m.role == Role::Tool), "{messages:?}");
    messages[3..].iter().flat_map(|m| m.content.clone()).collect()
}

fn result(id: &str, value: serde_json::Value, is_error: bool) -> Part {
    Part::tool_result(id, "echo", value, is_error)
}

#[tokio::test]
async fn a_stop_keeps_finished_results_for_every_mix_of_calls() {
    let (done, hang) = (json!({"n": 1}), json!({"hang": true}));
    let stopped = |text: &str| json!(text);
    for reason in [StopReason::Interrupt, StopReason::Shutdown] {
        let unfinished = if reason == StopReason::Shutdown {
            IN_DOUBT_TOOL_RESULT
        } else {
            INTERRUPTED_TOOL_RESULT
        };
        // Finished then running, running then finished, several of each.
        let cases: Vec<(Calls, Vec<Part>)> = vec![
            (
                vec![("a", "echo", done.clone()), ("b", "echo", hang.clone())],
                vec![result("a", done.clone(), false), result("b", stopped(unfinished), true)],
            ),
            (
                vec![("a", "echo", hang.clone()), ("b", "echo", done.clone())],
                vec![result("a", stopped(unfinished), true), result("b", done.clone(), false)],
            ),
            (
                vec![
                    ("a", "echo", done.clone()),
                    ("b", "echo", hang.clone()),
                    ("c", "echo", done.clone()),
                    ("d", "echo", hang.clone()),
                ],
                vec![
                    result("a", done.clone(), false),
                    result("b", stopped(unfinished), true),
                    result("c", done.clone(), false),
                    result("d", stopped(unfinished), true),
                ],
            ),
            (
                vec![("a", "echo", hang.clone()), ("b", "echo", hang.clone())],
                vec![
                    result("a", stopped(unfinished), true),
                    result("b", stopped(unfinished), true),
                ],
            ),
        ];
        for (calls, expected) in cases {
            let got = stop_a_step(reason, &calls).await;
            assert_eq!(got, expected, "{reason:?} with {calls:?}");
        }
        println!("{reason:?}: every mix kept its finished results");
    }
}

#[tokio::test]
async fn provider_executed_tool_results_stay_in_the_assistant_row() {
    let fx = fixture(vec![ScriptedCall::Stream(vec![
        Ok(StreamEvent::ToolCall {
            id: "ws".into(),
            tool_name: "web_search".into(),
            args: json!({"q": "rust"}),
            provider_executed: true,
            provider_metadata: None,
        }),
        Ok(StreamEvent::ToolResult {
            id: "ws".into(),
            tool_name: "web_search".into(),
            result: json!(["hit"]),
            is_error: false,
        }),
        Ok(StreamEvent::TextDelta { id: "t".into(), delta: "Found it.".into() }),
        Ok(StreamEvent::Finish {
            reason: chatd_core::provider::FinishReason::Stop,
            usage: None,
            context_window: Some(1_000_000),
            provider_metadata: None,
        }),
    ])])
    .await;
    assert_eq!(
        fx.runner().run(fx.lease, TurnSignal::new()).await,
        TurnEnd::Release(TurnOutcome::Finished)
    );
    let messages = fx.messages().await;
    assert_eq!(
        fx.roles().await,
        vec![Role::System, Role::User, Role::Assistant],
        "no tool row for a provider-executed tool"
    );
    assert!(matches!(messages[2].content[1], Part::ToolResult { provider_executed: true, .. }));
    assert_eq!(messages[2].context_limit, Some(1_000_000), "the provider-reported window wins");
}

#[tokio::test]
async fn a_lost_lease_stops_the_turn_without_writing() {
    let fx = fixture(vec![ScriptedCall::tool_calls(&[("c1", "echo", json!({}))], None)]).await;
    let first = fx.messages().await[1].id;
    fx.store
        .edit_message(fx.chat, first, vec![Part::text("edited")])
        .await
        .expect("edit revokes the lease");
    assert_eq!(fx.runner().run(fx.lease, TurnSignal::new()).await, TurnEnd::LeaseLost);
    assert_eq!(fx.roles().await, vec![Role::System, Role::User]);
}

#[tokio::test]
async fn a_lease_lost_while_one_call_finished_and_another_runs_writes_nothing_and_never_panics() {
    let fx = fixture(vec![ScriptedCall::tool_calls(
        &[("a", "echo", json!({"n": 1})), ("b", "echo", json!({"hang": true}))],
        None,
    )])
    .await;
    let first = fx.messages().await[1].id;
    let signal = TurnSignal::new();
    let (stopper, store, chat) = (signal.clone(), Arc::clone(&fx.store), fx.chat);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        // An edit revokes the lease; the worker then stops the turn as it does on a loss.
        store.edit_message(chat, first, vec![Part::text("edited")]).await.expect("edit");
        stopper.stop(StopReason::Shutdown);
    });
    assert_eq!(fx.runner().run(fx.lease, signal).await, TurnEnd::LeaseLost);
    assert_eq!(fx.roles().await, vec![Role::System, Role::User], "the fenced step wrote nothing");
}

#[tokio::test]
async fn a_stream_error_after_partial_tool_input_runs_no_tool_and_fails() {
    let fx = fixture(vec![ScriptedCall::Stream(vec![
        Ok(StreamEvent::ToolInputStart { id: "c1".into(), tool_name: "echo".into() }),
        Ok(StreamEvent::ToolInputDelta { id: "c1".into(), delta: "{\"n\":".into() }),
        Err(ProviderError::new("anthropic", ProviderErrorKind::InvalidRequest, "stream broke")),
    ])])
    .await;
    let end = fx.runner().run(fx.lease, TurnSignal::new()).await;
    assert_eq!(
        end,
        TurnEnd::Release(TurnOutcome::Failed("anthropic invalid_request: stream broke".into()))
    );
    assert_eq!(fx.roles().await, vec![Role::System, Role::User], "no call persisted, no tool run");
}

#[tokio::test]
async fn a_panic_in_the_turn_fails_it_with_the_spec_text() {
    let fx = fixture(vec![]).await;
    let runner = TurnRunner::new(Arc::clone(&fx.store), Arc::new(Panicking), ToolSet::new())
        .with_titles(false);
    let end = runner.run(fx.lease, TurnSignal::new()).await;
    assert_eq!(
        end,
        TurnEnd::Release(TurnOutcome::Failed(
            "chat processing panicked: provider source exploded".into()
        ))
    );
}

/// A source that cannot reach its configuration for now.
struct Unreachable(ProviderErrorKind);

#[async_trait]
impl ProviderSource for Unreachable {
    async fn provider(
        &self,
        _config: &ModelConfig,
    ) -> Result<Arc<dyn ModelProvider>, ProviderError> {
        Err(ProviderError::new(
            "openai-compat",
            self.0,
            "the provider configuration could not be read",
        ))
    }
}

#[tokio::test]
async fn a_source_that_cannot_be_read_for_now_re_runs_the_turn_and_a_refusal_fails_it() {
    let fx = fixture(vec![]).await;
    let runner = TurnRunner::new(
        Arc::clone(&fx.store),
        Arc::new(Unreachable(ProviderErrorKind::Transport)),
        ToolSet::new(),
    )
    .with_titles(false);
    let end = runner.run(fx.lease, TurnSignal::new()).await;
    assert_eq!(end, TurnEnd::Release(TurnOutcome::Shutdown), "released to run again");
    let fx = fixture(vec![]).await;
    let runner = TurnRunner::new(
        Arc::clone(&fx.store),
        Arc::new(Unreachable(ProviderErrorKind::InvalidRequest)),
        ToolSet::new(),
    )
    .with_titles(false);
    let end = runner.run(fx.lease, TurnSignal::new()).await;
    assert!(matches!(end, TurnEnd::Release(TurnOutcome::Failed(_))), "{end:?}");
}

#[tokio::test]
async fn a_429_is_retried_after_its_retry_after_then_succeeds() {
    let mut limited = ProviderError::new("anthropic", ProviderErrorKind::RateLimited, "slow down");
    limited.retry_after = Some(Duration::from_millis(40));
    let fx = fixture(vec![ScriptedCall::Fail(limited), ScriptedCall::text("after the wait", None)])
        .await;
    let recorder = Arc::new(Recorder::default());
    let runner = fx.runner().with_observer(Arc::clone(&recorder) as Arc<dyn TurnObserver>);
    assert_eq!(
        runner.run(fx.lease, TurnSignal::new()).await,
        TurnEnd::Release(TurnOutcome::Finished)
    );
    let retries = recorder.retries.lock().expect("lock").clone();
    assert_eq!(retries.len(), 1);
    assert_eq!((retries[0].attempt, retries[0].delay), (1, Duration::from_millis(40)));
    assert!(retries[0].error.contains("rate_limited"));
    assert_eq!(fx.provider.requests().len(), 2);
    assert_eq!(fx.messages().await.last().map(Message::text).as_deref(), Some("after the wait"));
    assert!(*recorder.events.lock().expect("lock") >= 2, "stream events were observed");
}

#[tokio::test]
async fn a_401_fails_at_once_without_retrying() {
    let fx = fixture(vec![ScriptedCall::Fail(ProviderError::new(
        "anthropic",
        ProviderErrorKind::Auth,
        "bad key",
    ))])
    .await;
    let end = fx.runner().run(fx.lease, TurnSignal::new()).await;
    assert_eq!(end, TurnEnd::Release(TurnOutcome::Failed("anthropic auth: bad key".into())));
    assert_eq!(fx.provider.requests().len(), 1);
    let released = fx
        .store
        .release(&fx.lease, TurnOutcome::Failed("anthropic auth: bad key".into()))
        .await
        .expect("release");
    assert_eq!(
        (released.status, released.last_error.as_deref()),
        (ChatStatus::Error, Some("anthropic auth: bad key"))
    );
}

#[tokio::test]
async fn the_step_limit_ends_the_turn() {
    let calls = (0..5)
        .map(|i| ScriptedCall::tool_calls(&[(&format!("c{i}"), "echo", json!({}))], None))
        .collect();
    let fx = fixture(calls).await;
    let end = fx.runner().with_max_steps(3).run(fx.lease, TurnSignal::new()).await;
    assert_eq!(end, TurnEnd::Release(TurnOutcome::Finished));
    assert_eq!(fx.provider.requests().len(), 3);
}

#[tokio::test]
async fn a_deleted_model_config_falls_back_to_the_default() {
    let fx = fixture(vec![ScriptedCall::text("hi", None)]).await;
    let other = fx
        .store
        .create_model_config(
            NewModelConfig::new(ProviderKind::Anthropic, "claude-other", 100).as_default(),
        )
        .await
        .expect("other");
    let first = fx.store.get_chat(fx.chat).await.expect("chat").last_model_config_id;
    fx.store.delete_model_config(first).await.expect("delete");
    assert_eq!(
        fx.runner().run(fx.lease, TurnSignal::new()).await,
        TurnEnd::Release(TurnOutcome::Finished)
    );
    assert_eq!(fx.provider.requests()[0].model, "claude-other");
    assert_eq!(fx.messages().await.last().and_then(|m| m.model_config_id), Some(other.id));
}

#[tokio::test]
async fn the_first_turn_generates_a_title_once() {
    use chatd_core::runtime::title::{TitleOptions, TitleOutcome, generate_title};
    let fx =
        fixture(vec![ScriptedCall::text("\"Deploying the `service`\" today please now ok", None)])
            .await;
    let config = fx.store.default_model_config().await.expect("config").expect("default");
    let before = fx.store.get_chat(fx.chat).await.expect("chat").title;
    assert_eq!(before, "do it", "the automatic title");
    let outcome = generate_title(
        fx.store.as_ref(),
        fx.provider.as_ref(),
        &config,
        fx.chat,
        &TitleOptions::default(),
    )
    .await;
    assert_eq!(outcome, TitleOutcome::Saved("Deploying the service today please now ok".into()));
    assert_eq!(
        fx.store.get_chat(fx.chat).await.expect("chat").title,
        "Deploying the service today please now ok"
    );
    let request = &fx.provider.requests()[0];
    assert_eq!(request.system, vec![chatd_core::testing::pinned::TITLE_INSTRUCTION]);
    assert!(request.tools.is_empty(), "no tools for the title call");
    // A second attempt sees that the title is no longer automatic and does nothing.
    assert_eq!(
        generate_title(
            fx.store.as_ref(),
            fx.provider.as_ref(),
            &config,
            fx.chat,
            &TitleOptions::default()
        )
        .await,
        TitleOutcome::Skipped
    );
    assert_eq!(fx.provider.requests().len(), 1, "no second model call");
}

#[tokio::test]
async fn a_title_never_overwrites_a_persons_title_or_blocks_on_failure() {
    use chatd_core::ChatUpdate;
    use chatd_core::runtime::title::{TitleOptions, TitleOutcome, generate_title};
    let fx = fixture(vec![ScriptedCall::text("Model title", None)]).await;
    let config = fx.store.default_model_config().await.expect("config").expect("default");
    fx.store.update_chat(fx.chat, ChatUpdate::title("My own title")).await.expect("rename");
    assert_eq!(
        generate_title(
            fx.store.as_ref(),
            fx.provider.as_ref(),
            &config,
            fx.chat,
            &TitleOptions::default()
        )
        .await,
        TitleOutcome::Skipped
    );
    assert_eq!(fx.store.get_chat(fx.chat).await.expect("chat").title, "My own title");
    assert!(fx.provider.requests().is_empty(), "no model call when the title is not automatic");

    let failing = fixture(vec![ScriptedCall::Fail(ProviderError::new(
        "anthropic",
        ProviderErrorKind::Overloaded,
        "busy",
    ))])
    .await;
    let outcome = generate_title(
        failing.store.as_ref(),
        failing.provider.as_ref(),
        &config,
        failing.chat,
        &TitleOptions::default(),
    )
    .await;
    assert!(
        matches!(outcome, TitleOutcome::Failed(ref e) if e.contains("overloaded")),
        "{outcome:?}"
    );
    assert_eq!(
        failing.store.get_chat(failing.chat).await.expect("chat").title,
        "do it",
        "the automatic title stays"
    );
}

#[tokio::test]
async fn the_turn_starts_the_title_in_the_background() {
    // Two scripted answers; the title call and the turn's call race for them, so the script
    // gives the same text to both and the test checks that both calls happened.
    let fx = fixture(vec![
        ScriptedCall::text("Short title", None),
        ScriptedCall::text("Short title", None),
    ])
    .await;
    let runner = TurnRunner::new(
        Arc::clone(&fx.store),
        Arc::new(Scripted(Arc::clone(&fx.provider))),
        ToolSet::new(),
    );
    assert_eq!(
        runner.run(fx.lease, TurnSignal::new()).await,
        TurnEnd::Release(TurnOutcome::Finished)
    );
    for _ in 0..100 {
        if fx.store.get_chat(fx.chat).await.expect("chat").title == "Short title" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(fx.store.get_chat(fx.chat).await.expect("chat").title, "Short title");
    assert_eq!(fx.provider.requests().len(), 2, "the turn's call and the title call");
}

#[tokio::test]
async fn an_execute_timeout_becomes_an_error_result_and_the_turn_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let workspace =
        chatd_core::runtime::tools::LocalWorkspace::open(dir.path()).expect("workspace");
    let fx = fixture(vec![
        ScriptedCall::tool_calls(
            &[("x", "execute", json!({"command": "sleep 30", "timeout": 1}))],
            None,
        ),
        ScriptedCall::text("that took too long", None),
    ])
    .await;
    let tools = chatd_core::runtime::tools::ToolSet::workspace(Arc::new(workspace));
    let runner =
        TurnRunner::new(Arc::clone(&fx.store), Arc::new(Scripted(Arc::clone(&fx.provider))), tools)
            .with_titles(false);
    let started = std::time::Instant::now();
    assert_eq!(
        runner.run(fx.lease, TurnSignal::new()).await,
        TurnEnd::Release(TurnOutcome::Finished)
    );
    assert!(started.elapsed() < Duration::from_secs(10), "the command was killed at its timeout");
    let messages = fx.messages().await;
    let Part::ToolResult { is_error, result, .. } = &messages[3].content[0] else {
        panic!("not a result: {:?}", messages[3])
    };
    assert!(*is_error, "{result}");
    assert!(result.to_string().contains("timed out"), "{result}");
    assert_eq!(messages.last().map(Message::text), Some("that took too long".to_owned()));
    // The model saw the error result in its next request.
    let second = &fx.provider.requests()[1];
    assert!(
        second.messages.iter().any(|m| m
            .content
            .iter()
            .any(|p| matches!(p, Part::ToolResult { is_error: true, .. })))
    );
}

/// A runner over a mock store in front of `fx`'s real chat, whose step commit fails with a
/// backend error saying `why`.
async fn runner_whose_commit_fails(fx: &Fixture, why: &'static str) -> TurnRunner {
    let chat = fx.store.get_chat(fx.chat).await.expect("chat");
    let config = fx.store.default_model_config().await.expect("config").expect("default");
    let history = fx.store.prompt_messages(fx.chat).await.expect("history");
    let mut store = chatd_core::store::MockChatStore::new();
    store.expect_get_chat().returning(move |_| Ok(chat.clone()));
    store.expect_get_model_config().returning(move |_| Ok(config.clone()));
    store.expect_prompt_messages().returning(move |_| Ok(history.clone()));
    store.expect_append_parts().returning(|_, _| Ok(()));
    store.expect_file_store().returning(|| None);
    store.expect_commit_step().times(1).returning(move |_, _| {
        Err(chatd_core::store::StoreError::backend(std::io::Error::other(why)))
    });
    TurnRunner::new(
        Arc::new(store),
        Arc::new(Scripted(Arc::clone(&fx.provider))),
        chatd_core::runtime::tools::ToolSet::new(),
    )
    .with_titles(false)
}

#[tokio::test]
async fn a_persist_error_aborts_the_turn_with_that_error() {
    // A real chat read from a real store; a mock in front of it whose commit fails.
    let fx = fixture(vec![ScriptedCall::text("an answer that cannot be saved", None)]).await;
    let runner = runner_whose_commit_fails(&fx, "disk full").await;
    let end = runner.run(fx.lease, TurnSignal::new()).await;
    // The backend's own text goes to the logs, never to `last_error` (BEHAVIOUR §12).
    assert_eq!(
        end,
        TurnEnd::Release(TurnOutcome::Failed(format!(
            "failed to persist the step: {}",
            chatd_core::testing::pinned::STORE_FAILURE
        )))
    );
    assert_eq!(fx.provider.requests().len(), 1, "no further model call after the failed write");
}

#[tokio::test]
async fn a_generated_title_equal_to_the_current_one_is_not_written() {
    use chatd_core::runtime::title::{TitleOptions, TitleOutcome, generate_title};
    let fx = fixture(vec![ScriptedCall::text("do it", None)]).await;
    let config = fx.store.default_model_config().await.expect("config").expect("default");
    let before = fx.store.get_chat(fx.chat).await.expect("chat");
    let outcome = generate_title(
        fx.store.as_ref(),
        fx.provider.as_ref(),
        &config,
        fx.chat,
        &TitleOptions::default(),
    )
    .await;
    assert_eq!(outcome, TitleOutcome::Skipped);
    let after = fx.store.get_chat(fx.chat).await.expect("chat");
    assert_eq!(
        (after.title.as_str(), after.updated_at),
        (before.title.as_str(), before.updated_at),
        "nothing written"
    );
}

#[tokio::test]
async fn title_options_bound_the_generated_title() {
    use chatd_core::runtime::title::{TitleOptions, TitleOutcome, generate_title};
    let fx = fixture(vec![ScriptedCall::text("Deploying the service today", None)]).await;
    let config = fx.store.default_model_config().await.expect("config").expect("default");
    let options = TitleOptions::default().with_max_chars(9);
    let outcome =
        generate_title(fx.store.as_ref(), fx.provider.as_ref(), &config, fx.chat, &options).await;
    assert_eq!(outcome, TitleOutcome::Saved("Deploying".into()));
}

#[tokio::test]
async fn a_disabled_model_config_serves_no_new_turn_and_says_which() {
    let fx = fixture(vec![ScriptedCall::text("never sent", None)]).await;
    let chat = fx.store.get_chat(fx.chat).await.expect("chat");
    let mut update = chatd_core::ModelConfigUpdate::default();
    update.display_name = Some("Claude (team)".into());
    update.enabled = Some(false);
    fx.store.update_model_config(chat.last_model_config_id, update).await.expect("disable");
    let end = fx.runner().run(fx.lease, TurnSignal::new()).await;
    let TurnEnd::Release(TurnOutcome::Failed(message)) = end else {
        panic!("the turn ran on a disabled config: {end:?}");
    };
    assert!(message.contains("\"Claude (team)\" (claude-test) is disabled"), "{message}");
    assert_eq!(fx.roles().await, vec![Role::System, Role::User], "no model call was made");
}

/// A worker that committed a turn's final answer and died before releasing the chat: the
/// chat is recovered and its turn re-runs elsewhere. The answer is already there, so the
/// re-run ends the turn without asking the model again (found by `chatd-bench soak`: a
/// worker frozen between its last commit and its release made a message answered twice).
#[tokio::test]
async fn a_turn_whose_answer_was_committed_before_its_worker_died_is_not_answered_again() {
    let fx = fixture(vec![ScriptedCall::text("a second answer", None)]).await;
    let step = chatd_core::store::Step::new(
        Some(chatd_core::NewMessage::assistant(vec![chatd_core::Part::text("the answer")])),
        vec![],
    );
    fx.store.commit_step(&fx.lease, step).await.expect("the dying worker's last commit");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let recovered = fx.store.recover_stale(Duration::from_millis(1)).await.expect("recover");
    assert_eq!(recovered, vec![fx.chat], "the silent worker's chat is recovered");
    let lease = fx.store.acquire(chatd_core::WorkerId::new(), 1).await.expect("acquire")[0];
    let end = fx.runner().run(lease, TurnSignal::new()).await;
    assert_eq!(end, TurnEnd::Release(TurnOutcome::Finished));
    assert!(fx.provider.requests().is_empty(), "the model was asked again");
    assert_eq!(fx.roles().await, vec![Role::System, Role::User, Role::Assistant]);
}

/// BEHAVIOUR §14, §15: a store's configured title limit holds for the automatic title, a
/// given title, a rename and a generated title — on both stores.
#[tokio::test]
async fn titles_follow_the_configured_limit_on_both_stores() {
    use chatd_core::runtime::title::{TitleOptions, TitleOutcome, generate_title};
    use chatd_core::store::ChatStore;
    use chatd_core::store::Limits;
    use chatd_core::testing::ScriptedProvider;
    use chatd_core::{ChatUpdate, NewChat, UserId};
    let limits = Limits::default().with_max_title_chars(12);
    let db = chatd_tests::pg::FreshDb::create().await;
    let stores: Vec<(&str, Arc<dyn ChatStore>)> = vec![
        ("memory", Arc::new(chatd_store_memory::InMemoryChatStore::new().with_limits(limits))),
        ("postgres", Arc::new(db.store().await.with_limits(limits))),
    ];
    for (name, store) in stores {
        chatd_tests::configure(store.as_ref()).await;
        let owner = UserId::new();
        let chat = store
            .create_chat(NewChat::new(owner).with_text("alpha beta gamma delta epsilon zeta eta"))
            .await
            .expect("chat");
        assert_eq!(chat.title, "alpha beta …", "{name}: the automatic title");
        let config = store.default_model_config().await.expect("config").expect("default");
        let provider = ScriptedProvider::new(
            ProviderKind::OpenAi,
            vec![ScriptedCall::text("Greek letters in order", None)],
        );
        let outcome =
            generate_title(store.as_ref(), &provider, &config, chat.id, &TitleOptions::default())
                .await;
        assert_eq!(outcome, TitleOutcome::Saved("Greek letter".into()), "{name}");
        assert_eq!(store.get_chat(chat.id).await.expect("chat").title, "Greek letter", "{name}");
        let given = store
            .create_chat(NewChat::new(owner).with_title("A title given by a person"))
            .await
            .expect("chat");
        assert_eq!(given.title, "A title give", "{name}: a given title");
        let renamed = store
            .update_chat(given.id, ChatUpdate::title("Renamed to something long"))
            .await
            .expect("rename");
        assert_eq!(renamed.title, "Renamed to s", "{name}: a rename");
    }
    db.drop().await;
}

/// BEHAVIOUR §14, §15: the title call is bounded by 10 s (on tokio's paused clock) and its
/// failure leaves the automatic title.
#[tokio::test(start_paused = true)]
async fn the_title_call_times_out_after_10_seconds() {
    use chatd_core::runtime::title::{TitleOptions, TitleOutcome, generate_title};
    let fx = fixture(vec![ScriptedCall::StreamThenHang(Vec::new())]).await;
    let config = fx.store.default_model_config().await.expect("config").expect("default");
    let started = tokio::time::Instant::now();
    let outcome = generate_title(
        fx.store.as_ref(),
        fx.provider.as_ref(),
        &config,
        fx.chat,
        &TitleOptions::default(),
    )
    .await;
    let waited = started.elapsed();
    assert_eq!(outcome, TitleOutcome::Failed("the title call timed out".into()));
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(11),
        "fired after {waited:?}"
    );
    assert_eq!(fx.store.get_chat(fx.chat).await.expect("chat").title, "do it");
    println!("the title timeout fired after {waited:?} of tokio's paused clock");
}

/// The host in-process gets a failed turn's whole cause chain, while what people see stays
/// redacted (issue 24, item 3).
#[tokio::test]
async fn the_host_gets_the_cause_chain_behind_a_redacted_failure() {
    use chatd_core::runtime::turn::TurnError;
    let fx = fixture(vec![ScriptedCall::text("an answer that cannot be saved", None)]).await;
    let runner = runner_whose_commit_fails(&fx, "disk full on /var/db").await;
    let (end, cause) = runner.run_with_cause(fx.lease, TurnSignal::new()).await;
    let TurnEnd::Release(TurnOutcome::Failed(shown)) = &end else { panic!("{end:?}") };
    assert!(!shown.contains("disk full"), "people see no backend text: {shown}");
    let cause = cause.expect("a cause for the host");
    assert!(matches!(cause, TurnError::Store { .. }), "{cause:?}");
    let mut chain = vec![cause.to_string()];
    let mut source = std::error::Error::source(&cause);
    while let Some(err) = source {
        chain.push(err.to_string());
        source = err.source();
    }
    println!("cause chain: {chain:?}");
    assert_eq!(
        chain.first().map(String::as_str),
        Some("failed to persist the step: the chat store failed")
    );
    assert_eq!(chain.last().map(String::as_str), Some("disk full on /var/db"), "{chain:?}");

    // A provider's failure: the typed provider error, kind and all.
    let fx = fixture(vec![ScriptedCall::Fail(ProviderError::new(
        "anthropic",
        ProviderErrorKind::Auth,
        "the key was refused",
    ))])
    .await;
    let (end, cause) = fx.runner().run_with_cause(fx.lease, TurnSignal::new()).await;
    assert!(matches!(end, TurnEnd::Release(TurnOutcome::Failed(_))), "{end:?}");
    let Some(TurnError::Provider(err)) = cause else { panic!("{cause:?}") };
    assert_eq!(err.kind, ProviderErrorKind::Auth);

    // A turn that ends well has no cause.
    let fx = fixture(vec![ScriptedCall::text("fine", None)]).await;
    let (end, cause) = fx.runner().run_with_cause(fx.lease, TurnSignal::new()).await;
    assert_eq!(end, TurnEnd::Release(TurnOutcome::Finished));
    assert!(cause.is_none(), "{cause:?}");
}
