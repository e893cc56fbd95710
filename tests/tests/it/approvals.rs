//! Turns that wait (BEHAVIOUR §16) on the in-memory store with a scripted model: a policy that
//! asks, denies or allows; client tools; the re-run after a worker stops mid-call; and what
//! a follower of the chat is told.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chatd_core::events::{ChatEventKind, SubscribeOptions, subscribe};
use chatd_core::runtime::tools::{ClientTool, Tool, ToolContext, ToolError, ToolRules, ToolSet};
use chatd_core::runtime::turn::{TurnEnd, TurnRunner, TurnSignal};
use chatd_core::testing::ScriptedCall;
use chatd_core::testing::pinned::IN_DOUBT_RESULT;
use chatd_core::tool_call::{ActionKind, CallState, Decision, OpenCall};
use chatd_core::{ChatStatus, Part, Role, TurnOutcome, WorkerId};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::support::*;

/// Counts its runs; `{"hang": true}` never ends (a call in flight when its worker stops).
struct Counted {
    name: &'static str,
    idempotent: bool,
    runs: Arc<AtomicUsize>,
    args: Arc<std::sync::Mutex<Vec<Value>>>,
}

impl Counted {
    fn new(name: &'static str, idempotent: bool) -> Self {
        Counted { name, idempotent, runs: Arc::default(), args: Arc::default() }
    }
}

#[async_trait]
impl Tool for Counted {
    fn name(&self) -> &str {
        self.name
    }
    fn description(&self) -> &str {
        "counts its runs"
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object"})
    }
    fn idempotent(&self) -> bool {
        self.idempotent
    }
    async fn run(&self, _ctx: &ToolContext, args: Value) -> Result<Value, ToolError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        self.args.lock().expect("lock").push(args.clone());
        if args["hang"] == true {
            futures::future::pending::<()>().await;
        }
        Ok(json!({"ran": args}))
    }
}

fn runner(fx: &Fixture, tools: ToolSet, rules: ToolRules) -> TurnRunner {
    TurnRunner::new(Arc::clone(&fx.store), Arc::new(Scripted(Arc::clone(&fx.provider))), tools)
        .with_titles(false)
        .with_policy(Arc::new(rules))
}

/// Runs the turn of `lease` to its end and releases it as the worker would.
async fn run_and_release(
    fx: &Fixture,
    runner: &TurnRunner,
    lease: chatd_core::store::Lease,
) -> TurnOutcome {
    let TurnEnd::Release(outcome) = runner.run(lease, TurnSignal::new()).await else {
        panic!("the lease was lost")
    };
    fx.store.release(&lease, outcome.clone()).await.expect("release");
    outcome
}

async fn acquire(fx: &Fixture) -> chatd_core::store::Lease {
    let leases = fx.store.acquire(WorkerId::new(), 1).await.expect("acquire");
    assert_eq!(leases.len(), 1, "the chat is pending");
    leases[0]
}

/// The tool results the model was sent in its last request, as `(id, result)`.
fn results_sent(fx: &Fixture) -> Vec<(String, Value)> {
    let requests = fx.provider.requests();
    let last = requests.last().expect("a request");
    last.messages
        .iter()
        .flat_map(|m| m.content.clone())
        .filter_map(|part| match part {
            Part::ToolResult { tool_call_id, result, .. } => Some((tool_call_id, result)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn an_ask_call_waits_and_runs_once_approved_with_edited_arguments() {
    let fx = fixture(vec![
        ScriptedCall::tool_calls(
            &[("c1", "echo", json!({"n": 1})), ("c2", "pay", json!({"amount": 100}))],
            None,
        ),
        ScriptedCall::text("paid", None),
    ])
    .await;
    let pay = Counted::new("pay", false);
    let (runs, args) = (Arc::clone(&pay.runs), Arc::clone(&pay.args));
    let tools = ToolSet::new().with(Arc::new(Echo)).with(Arc::new(pay));
    let runner = runner(&fx, tools, ToolRules::new().ask("pay"));

    assert_eq!(run_and_release(&fx, &runner, fx.lease).await, TurnOutcome::AwaitingAction);
    let chat = fx.store.get_chat(fx.chat).await.expect("chat");
    assert_eq!(chat.status, ChatStatus::RequiresAction);
    assert_eq!(runs.load(Ordering::SeqCst), 0, "nothing asked for runs before approval");
    // The call that needed no decision ran first, and its result is kept.
    assert_eq!(
        chat.tool_calls[0].state,
        CallState::Done { result: json!({"n": 1}), is_error: false }
    );
    assert_eq!(chat.tool_calls[1].open_kind(), Some(ActionKind::Approval));
    assert_eq!(fx.roles().await, [Role::System, Role::User, Role::Assistant], "no tool row yet");

    let approve = Decision::Approve { tool_call_id: "c2".into(), args: Some(json!({"amount": 5})) };
    let chat = fx.store.resolve_tool_calls(fx.chat, vec![approve]).await.expect("approve");
    assert_eq!(chat.status, ChatStatus::Pending);
    let lease = acquire(&fx).await;
    assert_eq!(run_and_release(&fx, &runner, lease).await, TurnOutcome::Finished);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(args.lock().expect("lock").as_slice(), [json!({"amount": 5})]);
    assert_eq!(
        fx.roles().await,
        [Role::System, Role::User, Role::Assistant, Role::Tool, Role::Tool, Role::Assistant]
    );
    assert_eq!(
        results_sent(&fx),
        [("c1".to_owned(), json!({"n": 1})), ("c2".to_owned(), json!({"ran": {"amount": 5}})),]
    );
    assert_eq!(fx.provider.requests().len(), 2, "the waiting step was not streamed again");
}

#[tokio::test]
async fn a_denied_call_never_runs_and_the_model_hears_why() {
    let fx = fixture(vec![
        ScriptedCall::tool_calls(&[("c1", "pay", json!({"amount": 100}))], None),
        ScriptedCall::text("understood", None),
    ])
    .await;
    let pay = Counted::new("pay", false);
    let runs = Arc::clone(&pay.runs);
    let runner = runner(&fx, ToolSet::new().with(Arc::new(pay)), ToolRules::new().ask("pay"));
    assert_eq!(run_and_release(&fx, &runner, fx.lease).await, TurnOutcome::AwaitingAction);
    let deny = Decision::Deny { tool_call_id: "c1".into(), reason: Some("too much".into()) };
    fx.store.resolve_tool_calls(fx.chat, vec![deny]).await.expect("deny");
    let lease = acquire(&fx).await;
    assert_eq!(run_and_release(&fx, &runner, lease).await, TurnOutcome::Finished);
    assert_eq!(runs.load(Ordering::SeqCst), 0, "a denied call never runs");
    assert_eq!(
        results_sent(&fx),
        [("c1".to_owned(), json!("tool call denied by the user: too much"))]
    );
}

#[tokio::test]
async fn a_policy_denial_is_answered_at_once_and_the_turn_goes_on() {
    let fx = fixture(vec![
        ScriptedCall::tool_calls(&[("c1", "pay", json!({}))], None),
        ScriptedCall::text("ok then", None),
    ])
    .await;
    let pay = Counted::new("pay", false);
    let runs = Arc::clone(&pay.runs);
    let rules = ToolRules::new().deny("pay", "payments are off");
    let runner = runner(&fx, ToolSet::new().with(Arc::new(pay)), rules);
    assert_eq!(run_and_release(&fx, &runner, fx.lease).await, TurnOutcome::Finished);
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_eq!(results_sent(&fx), [("c1".to_owned(), json!("tool call denied: payments are off"))]);
}

#[tokio::test]
async fn a_client_tool_waits_for_the_clients_result() {
    let fx = fixture(vec![
        ScriptedCall::tool_calls(&[("loc", "location", json!({}))], None),
        ScriptedCall::text("you are home", None),
    ])
    .await;
    let location = ClientTool::new("location", "Where the user is.", json!({"type": "object"}));
    let runner = runner(&fx, ToolSet::new().with(Arc::new(location)), ToolRules::new());
    assert_eq!(run_and_release(&fx, &runner, fx.lease).await, TurnOutcome::AwaitingAction);
    let chat = fx.store.get_chat(fx.chat).await.expect("chat");
    assert_eq!(chat.tool_calls[0].open_kind(), Some(ActionKind::Client));
    let approve = Decision::Approve { tool_call_id: "loc".into(), args: None };
    assert!(fx.store.resolve_tool_calls(fx.chat, vec![approve]).await.is_err(), "wrong kind");
    let result = Decision::Result {
        tool_call_id: "loc".into(),
        output: json!({"city": "Oslo"}),
        is_error: false,
    };
    fx.store.resolve_tool_calls(fx.chat, vec![result]).await.expect("result");
    let lease = acquire(&fx).await;
    assert_eq!(run_and_release(&fx, &runner, lease).await, TurnOutcome::Finished);
    assert_eq!(results_sent(&fx), [("loc".to_owned(), json!({"city": "Oslo"}))]);
}

/// A worker that stops answering while its calls run (killed, partitioned) loses the chat to
/// stale recovery. The re-run never runs the side-effecting call again — the model gets the
/// in-doubt result — while the idempotent one simply runs again.
#[tokio::test]
async fn after_a_worker_stops_mid_call_only_idempotent_calls_run_again() {
    let fx = fixture(vec![
        ScriptedCall::tool_calls(
            &[("w", "write", json!({"hang": true})), ("r", "read", json!({"hang": true}))],
            None,
        ),
        ScriptedCall::text("checked", None),
    ])
    .await;
    let (write, read) = (Counted::new("write", false), Counted::new("read", true));
    let (writes, reads) = (Arc::clone(&write.runs), Arc::clone(&read.runs));
    let tools = ToolSet::new().with(Arc::new(write)).with(Arc::new(read));
    let runner = runner(&fx, tools, ToolRules::new());
    let first = {
        let (runner, lease) = (runner.clone(), fx.lease);
        tokio::spawn(async move { runner.run(lease, TurnSignal::new()).await })
    };
    for _ in 0..200 {
        if writes.load(Ordering::SeqCst) == 1 && reads.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let records = fx.store.get_chat(fx.chat).await.expect("chat").tool_calls;
    assert_eq!(records[0].state, CallState::Started, "marked started before it ran");
    assert_eq!(records[1].state, CallState::Ready, "an idempotent call is never marked");
    // The worker is gone as far as the store knows.
    assert_eq!(fx.store.recover_stale(Duration::ZERO).await.expect("recover"), [fx.chat]);

    // The re-run's tools answer at once (the recorded arguments say `hang`): were the write
    // run again, it would be counted rather than hang.
    let (write, read) = (Counted::new("write", false), Counted::new("read", true));
    let (rewrites, rereads) = (Arc::clone(&write.runs), Arc::clone(&read.runs));
    let tools = ToolSet::new().with(Arc::new(Answering(write))).with(Arc::new(Answering(read)));
    let rerun = self::runner(&fx, tools, ToolRules::new());
    let lease = acquire(&fx).await;
    assert_eq!(run_and_release(&fx, &rerun, lease).await, TurnOutcome::Finished);
    assert_eq!(rewrites.load(Ordering::SeqCst), 0, "the started write never runs again");
    assert_eq!(rereads.load(Ordering::SeqCst), 1, "the idempotent read runs again");
    assert_eq!(
        results_sent(&fx),
        [("w".to_owned(), json!(IN_DOUBT_RESULT)), ("r".to_owned(), json!({"ran": {}})),]
    );
    assert_eq!(fx.provider.requests().len(), 2, "the recorded step was not streamed again");
    // The first worker's late writes are fenced.
    first.abort();
}

/// Runs the wrapped tool with empty arguments (so a recorded `hang` does not hang again).
struct Answering(Counted);

#[async_trait]
impl Tool for Answering {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn description(&self) -> &str {
        self.0.description()
    }
    fn input_schema(&self) -> Value {
        self.0.input_schema()
    }
    fn idempotent(&self) -> bool {
        self.0.idempotent()
    }
    async fn run(&self, ctx: &ToolContext, _args: Value) -> Result<Value, ToolError> {
        self.0.run(ctx, json!({})).await
    }
}

/// A follower is told the chat waits, with the open calls, and is told again when a
/// decision leaves fewer open; a follower that arrives later gets the same state first.
#[tokio::test]
async fn followers_are_told_which_calls_wait() {
    let fx = fixture(vec![ScriptedCall::tool_calls(
        &[("a", "pay", json!({"amount": 1})), ("b", "pay", json!({"amount": 2}))],
        None,
    )])
    .await;
    let runner = runner(
        &fx,
        ToolSet::new().with(Arc::new(Counted::new("pay", false))),
        ToolRules::new().ask("pay"),
    );
    let options = SubscribeOptions::default();
    let mut events = subscribe(Arc::clone(&fx.store), fx.chat, None, options).await.expect("sub");
    assert_eq!(run_and_release(&fx, &runner, fx.lease).await, TurnOutcome::AwaitingAction);
    let open = |events: &[ChatEventKind]| -> Vec<Vec<String>> {
        events
            .iter()
            .filter_map(|e| match e {
                ChatEventKind::ActionRequired { calls } => {
                    Some(calls.iter().map(|c: &OpenCall| c.tool_call_id.clone()).collect())
                }
                _ => None,
            })
            .collect()
    };
    let ended = |seen: &[ChatEventKind]| {
        seen.iter().any(|e| {
            matches!(e, ChatEventKind::TurnEnded { ending, .. }
                if *ending == chatd_core::status::TurnEnding::AwaitingAction)
        })
    };
    let mut seen = Vec::new();
    while open(&seen).is_empty() || !ended(&seen) {
        let event = tokio::time::timeout(Duration::from_secs(5), events.next()).await;
        seen.push(event.expect("in time").expect("event").kind);
    }
    assert_eq!(open(&seen), [vec!["a".to_owned(), "b".to_owned()]]);
    fx.store
        .resolve_tool_calls(
            fx.chat,
            vec![Decision::Deny { tool_call_id: "a".into(), reason: None }],
        )
        .await
        .expect("deny");
    let mut later = Vec::new();
    while open(&later).is_empty() {
        let event = tokio::time::timeout(Duration::from_secs(5), events.next()).await;
        later.push(event.expect("in time").expect("event").kind);
    }
    assert_eq!(open(&later), [vec!["b".to_owned()]]);
    // A late follower starts with the status and the open calls.
    let mut late = subscribe(Arc::clone(&fx.store), fx.chat, None, options).await.expect("sub");
    let first = late.next().await.expect("status").kind;
    assert_eq!(
        first,
        ChatEventKind::Status { status: ChatStatus::RequiresAction, last_error: None }
    );
    let second = late.next().await.expect("calls").kind;
    assert_eq!(open(&[second]), [vec!["b".to_owned()]]);
}

/// A call whose arguments the runner would refuse anyway (over the size limit) is answered
/// at once, never put before a person for approval.
#[tokio::test]
async fn a_call_too_large_to_run_is_answered_without_asking() {
    let fx = fixture(vec![
        ScriptedCall::tool_calls(&[("c1", "pay", json!({"memo": "x".repeat(300 * 1024)}))], None),
        ScriptedCall::text("too big", None),
    ])
    .await;
    let pay = Counted::new("pay", false);
    let runs = Arc::clone(&pay.runs);
    let runner = runner(&fx, ToolSet::new().with(Arc::new(pay)), ToolRules::new().ask("pay"));
    assert_eq!(run_and_release(&fx, &runner, fx.lease).await, TurnOutcome::Finished);
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    let sent = results_sent(&fx);
    assert!(
        sent[0].1.as_str().is_some_and(|t| t.starts_with("invalid tool arguments")),
        "{sent:?}"
    );
}
