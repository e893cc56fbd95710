//! Durable tool calls ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes)): a step's call records, the `requires_action` status,
//! decisions, deadlines, and every other intent on a chat that waits.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};

use super::{Fixture, StoreRef};
use crate::status::{ChatStatus, TurnEnding};
use crate::store::{Lease, MessageQuery, SendMessage, Step, StoreError};
use crate::tool_call::{
    APPROVAL_EXPIRED, ActionKind, CLIENT_EXPIRED, CallState, Decision, IN_DOUBT_RESULT,
    INTERRUPTED_RESULT, ToolCall,
};
use crate::{Chat, Message, NewMessage, Part, Role, TurnOutcome};

fn open(id: &str, kind: ActionKind, wait: Duration) -> ToolCall {
    let deadline = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
    ToolCall::new(id, "execute", json!({"command": id}), false, CallState::Open { kind, deadline })
}

fn done(id: &str, result: &str) -> ToolCall {
    let state = CallState::Done { result: json!(result), is_error: false };
    ToolCall::new(id, "execute", json!({"command": id}), false, state)
}

const HOUR: Duration = Duration::from_secs(3600);

/// Runs a turn of a new chat that records `calls` (an assistant row calling each of them)
/// and ends waiting.
async fn waiting(fx: &Fixture, calls: Vec<ToolCall>) -> (Chat, Lease) {
    let (_, lease) = fx.running("do things").await;
    record(fx, &lease, calls).await;
    let released = fx.store.release(&lease, TurnOutcome::AwaitingAction).await.expect("release");
    (released, lease)
}

/// Writes the assistant row calling each of `calls`, with the records.
async fn record(fx: &Fixture, lease: &Lease, calls: Vec<ToolCall>) -> Vec<Message> {
    let parts = calls
        .iter()
        .map(|c| Part::tool_call(c.tool_call_id.clone(), c.tool_name.clone(), c.args.clone()))
        .collect();
    let step = Step::recorded(Some(NewMessage::assistant(parts)), calls);
    fx.store.commit_step(lease, step).await.expect("recorded step")
}

/// The tool results in the chat's history, as `(id, result)` in order.
async fn results(fx: &Fixture, chat: &Chat) -> Vec<(String, Value)> {
    let messages = fx.store.list_messages(chat.id, MessageQuery::all()).await.expect("list");
    messages
        .iter()
        .filter(|m| m.role == Role::Tool)
        .flat_map(|m| m.content.clone())
        .filter_map(|part| match part {
            Part::ToolResult { tool_call_id, result, .. } => Some((tool_call_id, result)),
            _ => None,
        })
        .collect()
}

fn approve(id: &str) -> Decision {
    Decision::Approve { tool_call_id: id.into(), args: None }
}

/// A turn that ends waiting leaves the chat `requires_action` with its records and no
/// owner; neither stale recovery nor acquisition touches it.
pub async fn a_waiting_turn_is_requires_action_without_a_lease(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let calls = vec![done("a", "ran"), open("b", ActionKind::Approval, HOUR)];
    let (chat, _) = waiting(&fx, calls.clone()).await;
    assert_eq!(chat.status, ChatStatus::RequiresAction);
    assert_eq!(chat.worker_id, None);
    assert_eq!(chat.last_turn, Some(TurnEnding::AwaitingAction));
    assert_eq!(fx.get(chat.id).await.tool_calls, calls, "the records round-trip");
    assert!(fx.store.recover_stale(Duration::ZERO).await.expect("recover").is_empty());
    assert!(fx.store.acquire(fx.worker, 10).await.expect("acquire").is_empty());
    assert!(results(&fx, &chat).await.is_empty(), "no tool row until the step ends");
}

/// Decisions may come in several requests; the one that decides the last open call makes
/// the chat `pending` and the next worker gets the records.
pub async fn the_last_decision_makes_the_chat_pending(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let calls = vec![open("a", ActionKind::Approval, HOUR), open("b", ActionKind::Client, HOUR)];
    let (chat, _) = waiting(&fx, calls).await;
    let edited = Decision::Approve { tool_call_id: "a".into(), args: Some(json!({"x": 1})) };
    let after = fx.store.resolve_tool_calls(chat.id, vec![edited]).await.expect("first");
    assert_eq!(after.status, ChatStatus::RequiresAction, "one call is still open");
    let result =
        Decision::Result { tool_call_id: "b".into(), output: json!("here"), is_error: false };
    let after = fx.store.resolve_tool_calls(chat.id, vec![result]).await.expect("second");
    assert_eq!(after.status, ChatStatus::Pending);
    assert_eq!(after.tool_calls[0].state, CallState::Ready);
    assert_eq!(after.tool_calls[0].args, json!({"x": 1}), "the edited arguments are kept");
    assert_eq!(
        after.tool_calls[1].state,
        CallState::Done { result: json!("here"), is_error: false }
    );
    let lease = fx.acquire(chat.id).await;
    assert_eq!(fx.get(lease.chat_id).await.tool_calls, after.tool_calls);
}

/// An id that is not open (unknown, decided, repeated), a decision of the wrong kind and
/// edited arguments that are not an object are refused, and nothing is applied.
pub async fn bad_decisions_are_refused_and_apply_nothing(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let calls = vec![open("a", ActionKind::Approval, HOUR), open("b", ActionKind::Client, HOUR)];
    let (chat, _) = waiting(&fx, calls.clone()).await;
    let refuse = |decisions: Vec<Decision>| {
        let store = fx.store.clone();
        async move { store.resolve_tool_calls(chat.id, decisions).await.expect_err("refused") }
    };
    let err = refuse(vec![approve("a"), approve("nope")]).await;
    assert!(matches!(err, StoreError::Conflict(ref text) if text.contains("\"nope\"")), "{err}");
    let err = refuse(vec![approve("a"), approve("a")]).await;
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let err = refuse(vec![approve("b")]).await;
    assert!(matches!(err, StoreError::Validation { .. }), "approve on a client call: {err}");
    let bad_args = Decision::Approve { tool_call_id: "a".into(), args: Some(json!([1])) };
    let err = refuse(vec![bad_args]).await;
    assert!(matches!(err, StoreError::Validation { .. }), "{err}");
    assert_eq!(fx.get(chat.id).await.tool_calls, calls, "nothing was applied");
    fx.store.resolve_tool_calls(chat.id, vec![approve("a")]).await.expect("approve");
    let err = refuse(vec![approve("a")]).await;
    assert!(matches!(err, StoreError::Conflict(_)), "a decided call: {err}");
}

/// The sweep answers calls past their deadline with the expiry result of their kind and
/// makes the chat `pending` once none is open; calls not yet due stay open.
pub async fn deadlines_answer_calls_and_pend_the_chat(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let soon = Duration::from_millis(1);
    let (chat, _) = waiting(
        &fx,
        vec![open("a", ActionKind::Approval, soon), open("b", ActionKind::Client, soon)],
    )
    .await;
    let (other, _) = waiting(&fx, vec![open("c", ActionKind::Approval, HOUR)]).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let expired = fx.store.expire_tool_calls(100).await.expect("sweep");
    assert_eq!(expired, vec![chat.id]);
    let after = fx.get(chat.id).await;
    assert_eq!(after.status, ChatStatus::Pending);
    let result = |call: &ToolCall| match &call.state {
        CallState::Done { result, is_error: true } => result.clone(),
        other => panic!("not expired: {other:?}"),
    };
    assert_eq!(result(&after.tool_calls[0]), json!(APPROVAL_EXPIRED));
    assert_eq!(result(&after.tool_calls[1]), json!(CLIENT_EXPIRED));
    assert_eq!(fx.status(other.id).await, ChatStatus::RequiresAction);
    assert!(fx.store.expire_tool_calls(100).await.expect("again").is_empty());
}

/// An interrupt while waiting answers every call (results kept, open ones interrupted) in
/// call order and leaves the chat `waiting` with no records.
pub async fn interrupt_while_waiting_answers_every_call(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, _) =
        waiting(&fx, vec![open("a", ActionKind::Approval, HOUR), done("b", "ran")]).await;
    let after = fx.store.interrupt(chat.id).await.expect("interrupt");
    assert_eq!(after.status, ChatStatus::Waiting);
    assert!(after.tool_calls.is_empty());
    assert_eq!(
        results(&fx, &chat).await,
        vec![("a".to_owned(), json!(INTERRUPTED_RESULT)), ("b".to_owned(), json!("ran")),]
    );
}

/// A message while waiting is queued; sent with `interrupt` (or promoted) it first ends the
/// step — every call answered — then enters the history, and the chat is `pending`.
pub async fn a_message_while_waiting_queues_or_ends_the_step(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, _) = waiting(&fx, vec![open("a", ActionKind::Approval, HOUR)]).await;
    let queued = fx.send(chat.id, "later").await;
    assert!(matches!(queued.delivery, crate::store::Delivery::Queued(_)));
    assert_eq!(queued.chat.status, ChatStatus::RequiresAction);
    let now = fx
        .store
        .send_message(
            chat.id,
            SendMessage::text("now").with_busy(crate::store::BusyBehavior::Interrupt),
        )
        .await
        .expect("send now");
    assert_eq!(now.chat.status, ChatStatus::Pending);
    assert!(now.chat.tool_calls.is_empty());
    let texts = fx.texts(chat.id).await;
    assert_eq!(texts.last().map(String::as_str), Some("now"));
    assert_eq!(results(&fx, &chat).await, vec![("a".to_owned(), json!(INTERRUPTED_RESULT))]);
    let messages = fx.store.list_messages(chat.id, MessageQuery::all()).await.expect("list");
    let roles: Vec<Role> = messages.iter().map(|m| m.role).collect();
    assert_eq!(roles, [Role::User, Role::Assistant, Role::Tool, Role::User]);
}

/// An edit while waiting removes the step's rows and its records.
pub async fn edit_while_waiting_drops_the_calls(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, _) = waiting(&fx, vec![open("a", ActionKind::Approval, HOUR)]).await;
    let first = fx.store.list_messages(chat.id, MessageQuery::all()).await.expect("list")[0].id;
    let edited = fx.store.edit_message(chat.id, first, vec![Part::text("again")]).await;
    let edited = edited.expect("edit");
    assert_eq!(edited.chat.status, ChatStatus::Pending);
    assert!(edited.chat.tool_calls.is_empty());
    assert_eq!(edited.deleted_messages, 1);
    let err = fx.store.resolve_tool_calls(chat.id, vec![approve("a")]).await.expect_err("gone");
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
}

/// Pause keeps the calls open; resume goes back to waiting for them. Decisions made while
/// paused are kept and the chat stays paused; resuming then continues the step.
pub async fn pause_keeps_calls_open_and_resume_returns_to_them(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, _) = waiting(&fx, vec![open("a", ActionKind::Approval, HOUR)]).await;
    assert_eq!(fx.store.pause(chat.id).await.expect("pause").status, ChatStatus::Paused);
    let resumed = fx.store.resume(chat.id).await.expect("resume");
    assert_eq!(resumed.status, ChatStatus::RequiresAction);
    fx.store.pause(chat.id).await.expect("pause again");
    let decided = fx.store.resolve_tool_calls(chat.id, vec![approve("a")]).await.expect("ok");
    assert_eq!(decided.status, ChatStatus::Paused, "a paused chat stays paused");
    assert_eq!(fx.store.resume(chat.id).await.expect("resume").status, ChatStatus::Pending);
    let err = fx.store.complete(chat.id).await;
    assert!(err.is_err(), "a chat with work pending cannot be completed");
}

/// Records outlive a shutdown and a failure (the re-run continues from them); a message
/// inserted into the history first closes the step, a started call answered as in doubt.
pub async fn records_survive_a_stop_and_close_before_a_new_message(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("go").await;
    let started = ToolCall::new("s", "execute", json!({}), false, CallState::Started);
    record(&fx, &lease, vec![started.clone(), done("d", "ok")]).await;
    let shut = fx.store.release(&lease, TurnOutcome::Shutdown).await.expect("shutdown");
    assert_eq!(shut.status, ChatStatus::Pending);
    assert_eq!(shut.tool_calls.len(), 2, "the records stay for the re-run");
    let lease = fx.acquire(chat.id).await;
    assert_eq!(fx.get(chat.id).await.tool_calls[0], started);
    let failed = fx.store.release(&lease, TurnOutcome::Failed("boom".into())).await.expect("fail");
    assert_eq!(failed.status, ChatStatus::Error);
    fx.send(chat.id, "again").await;
    assert!(fx.get(chat.id).await.tool_calls.is_empty());
    assert_eq!(
        results(&fx, &chat).await,
        vec![("s".to_owned(), json!(IN_DOUBT_RESULT)), ("d".to_owned(), json!("ok")),]
    );
}

/// The closing write of a recorded step writes the tool rows and clears the records; a
/// zombie's record write is fenced.
pub async fn the_closing_write_clears_the_records_and_is_fenced(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("go").await;
    let calls = vec![ToolCall::new("a", "execute", json!({}), false, CallState::Started)];
    record(&fx, &lease, calls.clone()).await;
    let mut finished = calls.clone();
    finished[0].answer(json!("done"), false);
    let rows = crate::tool_call::closing_rows(&finished, INTERRUPTED_RESULT);
    let written = fx.store.commit_step(&lease, Step::closing(rows)).await.expect("close");
    assert_eq!(written.len(), 1);
    assert!(fx.get(chat.id).await.tool_calls.is_empty());
    assert_eq!(results(&fx, &chat).await, vec![("a".to_owned(), json!("done"))]);
    fx.finish(&lease).await;
    let err = fx.store.commit_step(&lease, Step::records(calls)).await.expect_err("fenced");
    assert!(matches!(err, StoreError::LeaseLost { .. }), "{err}");
    assert!(fx.get(chat.id).await.tool_calls.is_empty());
}

/// A decision and the deadline sweep racing for the same calls decide each call once: the
/// decision either lands (and the sweep finds nothing due) or is refused as not open.
pub async fn a_decision_racing_the_sweep_decides_each_call_once(store: StoreRef) {
    let fx = Fixture::new(store).await;
    for round in 0..10 {
        let (chat, _) =
            waiting(&fx, vec![open("a", ActionKind::Approval, Duration::from_millis(5))]).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        let (store, sweeper) = (fx.store.clone(), fx.store.clone());
        let decide =
            tokio::spawn(
                async move { store.resolve_tool_calls(chat.id, vec![approve("a")]).await },
            );
        let sweep = tokio::spawn(async move { sweeper.expire_tool_calls(100).await });
        let decided = decide.await.expect("join");
        let swept = sweep.await.expect("join").expect("sweep");
        let after = fx.get(chat.id).await;
        assert_eq!(after.status, ChatStatus::Pending, "round {round}");
        match (decided, &after.tool_calls[0].state) {
            (Ok(_), CallState::Ready) => assert!(!swept.contains(&chat.id), "round {round}"),
            (Err(StoreError::Conflict(_)), CallState::Done { result, .. }) => {
                assert_eq!(result, &json!(APPROVAL_EXPIRED), "round {round}");
                assert!(swept.contains(&chat.id), "round {round}");
            }
            (decided, state) => panic!("round {round}: {decided:?} with {state:?}"),
        }
        // Out of the way of the next round's acquisition.
        fx.store.pause(chat.id).await.expect("tidy");
    }
}

/// A person's interrupt that arrives while a turn with records is stopping wins at release:
/// the records are closed (a started call in doubt, the rest interrupted) and the chat
/// waits, whatever the worker reported.
pub async fn an_interrupt_at_release_closes_the_records(store: StoreRef) {
    let fx = Fixture::new(store).await;
    for outcome in [TurnOutcome::Shutdown, TurnOutcome::AwaitingAction] {
        let (chat, lease) = fx.running("go").await;
        let started = ToolCall::new("s", "execute", json!({}), false, CallState::Started);
        record(&fx, &lease, vec![started, open("o", ActionKind::Approval, HOUR)]).await;
        fx.store.interrupt(chat.id).await.expect("interrupt");
        let released = fx.store.release(&lease, outcome.clone()).await.expect("release");
        assert_eq!(released.status, ChatStatus::Waiting, "{outcome:?}");
        assert!(released.tool_calls.is_empty(), "{outcome:?}");
        assert_eq!(
            results(&fx, &chat).await,
            vec![
                ("s".to_owned(), json!(IN_DOUBT_RESULT)),
                ("o".to_owned(), json!(INTERRUPTED_RESULT)),
            ],
            "{outcome:?}"
        );
    }
}

/// A decision that lands between the worker's write of the records and its release (the
/// chat is still `running`) is kept, and the release that would wait for nothing makes the
/// chat `pending` instead, so the step goes on.
pub async fn a_decision_before_the_release_leaves_the_chat_pending(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("go").await;
    record(&fx, &lease, vec![open("a", ActionKind::Approval, HOUR)]).await;
    let decided = fx.store.resolve_tool_calls(chat.id, vec![approve("a")]).await.expect("ok");
    assert_eq!(decided.status, ChatStatus::Running, "the running turn keeps its lease");
    let released = fx.store.release(&lease, TurnOutcome::AwaitingAction).await.expect("release");
    assert_eq!(released.status, ChatStatus::Pending);
    assert_eq!(released.tool_calls[0].state, CallState::Ready);
    fx.acquire(chat.id).await;
}
