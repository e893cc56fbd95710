//! Exhaustive check of the transition table: every (status, trigger) pair.

use super::*;

/// The expected table, written independently of `decide` as one compact string per row:
/// for each status in `ChatStatus::ALL` order, either `-` (refused) or
/// `next[:flags]` with flags i=insert q=queue s=stop-interrupt p=stop-pause
/// P=promote c=claim r=revoke x=close the recorded tool calls.
const EXPECTED: &[(Trigger, [&str; 7])] = &[
    //                      waiting      pending      running      paused       completed    error   requires_action
    (
        Trigger::SendQueue,
        [
            "pending:i",
            "pending:q",
            "running:q",
            "paused:q",
            "pending:i",
            "pending:i",
            "requires_action:q",
        ],
    ),
    (
        Trigger::SendInterrupt,
        [
            "pending:i",
            "pending:i",
            "running:qs",
            "paused:q",
            "pending:i",
            "pending:i",
            "pending:ix",
        ],
    ),
    (
        Trigger::PromoteQueued,
        ["pending:i", "pending:i", "running:s", "paused:i", "pending:i", "pending:i", "pending:ix"],
    ),
    (Trigger::Acquire, ["-", "running:c", "-", "-", "-", "-", "-"]),
    (Trigger::Heartbeat, ["-", "-", "running", "-", "-", "-", "-"]),
    (Trigger::FinishTurn, ["-", "-", "waiting:Px", "-", "-", "-", "-"]),
    (Trigger::EndInterrupted, ["-", "-", "waiting:Px", "-", "-", "-", "-"]),
    (Trigger::EndPaused, ["-", "-", "paused", "-", "-", "-", "-"]),
    (Trigger::FailTurn, ["-", "-", "error", "-", "-", "-", "-"]),
    (Trigger::Shutdown, ["-", "-", "pending", "-", "-", "-", "-"]),
    (Trigger::RecoverStale, ["-", "-", "pending", "-", "-", "-", "-"]),
    (Trigger::AwaitAction, ["-", "-", "requires_action", "-", "-", "-", "-"]),
    (
        Trigger::ActionsResolved,
        ["waiting", "pending", "running", "paused", "completed", "error", "pending"],
    ),
    (
        Trigger::Interrupt,
        ["waiting", "pending", "running:s", "paused", "completed", "error", "waiting:Px"],
    ),
    (Trigger::Pause, ["paused", "paused", "running:p", "paused", "-", "paused", "paused"]),
    (Trigger::ResumeUnanswered, ["-", "-", "-", "pending", "-", "-", "-"]),
    (Trigger::ResumeQueued, ["-", "-", "-", "pending:P", "-", "-", "-"]),
    (Trigger::ResumeIdle, ["-", "-", "-", "waiting", "-", "-", "-"]),
    (Trigger::ResumeAwaiting, ["-", "-", "-", "requires_action", "-", "-", "-"]),
    (Trigger::Complete, ["completed", "-", "-", "completed", "completed", "completed", "-"]),
    (
        Trigger::Edit,
        ["pending", "pending", "pending:r", "pending", "pending", "pending", "pending"],
    ),
    (Trigger::Compact, ["waiting", "-", "-", "paused", "completed", "error", "-"]),
];

fn render(decision: &Decision) -> String {
    let mut flags = String::new();
    match decision.message {
        MessageAction::None => {}
        MessageAction::Insert => flags.push('i'),
        MessageAction::Queue => flags.push('q'),
    }
    match decision.stop {
        None => {}
        Some(StopKind::Interrupt) => flags.push('s'),
        Some(StopKind::Pause) => flags.push('p'),
    }
    if decision.promote_queue_head {
        flags.push('P');
    }
    if decision.claim {
        flags.push('c');
    }
    if decision.revoke_lease {
        flags.push('r');
    }
    if decision.close_calls {
        flags.push('x');
    }
    if flags.is_empty() { decision.next.to_string() } else { format!("{}:{flags}", decision.next) }
}

#[test]
fn every_status_and_trigger_pair_matches_the_table() {
    assert_eq!(EXPECTED.len(), Trigger::ALL.len(), "every trigger has a row");
    let mut checked = 0;
    for (row, trigger) in EXPECTED.iter().zip(Trigger::ALL) {
        assert_eq!(row.0, trigger, "rows are in Trigger::ALL order");
        for (status, expected) in ChatStatus::ALL.into_iter().zip(row.1) {
            let actual = match decide(status, trigger) {
                Ok(decision) => render(&decision),
                Err(err) => {
                    assert_eq!(err, InvalidTransition { from: status, trigger });
                    "-".to_owned()
                }
            };
            assert_eq!(actual, expected, "{trigger:?} on {status}");
            checked += 1;
        }
    }
    assert_eq!(checked, 7 * 22);
}

#[test]
fn only_acquire_enters_running_and_only_from_pending() {
    for status in ChatStatus::ALL {
        for trigger in Trigger::ALL {
            if let Ok(decision) = decide(status, trigger)
                && decision.next == ChatStatus::Running
                && status != ChatStatus::Running
            {
                assert_eq!((status, trigger), (ChatStatus::Pending, Trigger::Acquire));
            }
        }
    }
}

#[test]
fn invalid_transition_names_both_sides() {
    let err = decide(ChatStatus::Waiting, Trigger::Acquire).expect_err("refused");
    assert_eq!(err.to_string(), "cannot acquire a chat that is waiting");
    let err = decide(ChatStatus::Running, Trigger::Complete).expect_err("refused");
    assert_eq!(err.to_string(), "cannot complete a chat that is running");
}

#[test]
fn release_trigger_prefers_failure_then_pause_then_interrupt() {
    let failed = TurnOutcome::Failed("boom".into());
    assert_eq!(release_trigger(&failed, Some(StopKind::Pause)), Trigger::FailTurn);
    assert_eq!(release_trigger(&TurnOutcome::Finished, Some(StopKind::Pause)), Trigger::EndPaused);
    assert_eq!(release_trigger(&TurnOutcome::Shutdown, Some(StopKind::Pause)), Trigger::EndPaused);
    assert_eq!(
        release_trigger(&TurnOutcome::Shutdown, Some(StopKind::Interrupt)),
        Trigger::EndInterrupted
    );
    assert_eq!(release_trigger(&TurnOutcome::Shutdown, None), Trigger::Shutdown);
    assert_eq!(release_trigger(&TurnOutcome::Finished, None), Trigger::FinishTurn);
    assert_eq!(
        release_trigger(&TurnOutcome::Finished, Some(StopKind::Interrupt)),
        Trigger::FinishTurn
    );
    assert_eq!(release_trigger(&TurnOutcome::Interrupted, None), Trigger::EndInterrupted);
    let awaiting = TurnOutcome::AwaitingAction;
    assert_eq!(release_trigger(&awaiting, None), Trigger::AwaitAction);
    assert_eq!(release_trigger(&awaiting, Some(StopKind::Pause)), Trigger::EndPaused);
    assert_eq!(release_trigger(&awaiting, Some(StopKind::Interrupt)), Trigger::EndInterrupted);
    assert_eq!(TurnEnding::of_release(Trigger::AwaitAction, &awaiting), TurnEnding::AwaitingAction);
}

#[test]
fn resume_prefers_open_calls_then_a_recorded_step() {
    use crate::tool_call::{ActionKind, CallState, ToolCall};
    let open = CallState::Open { kind: ActionKind::Approval, deadline: chrono::Utc::now() };
    let call = |state| ToolCall::new("c1", "execute", serde_json::json!({}), false, state);
    assert_eq!(resume_trigger_for(&[call(open)], false, 2), Trigger::ResumeAwaiting);
    assert_eq!(resume_trigger_for(&[call(CallState::Ready)], false, 2), Trigger::ResumeUnanswered);
    assert_eq!(resume_trigger_for(&[], false, 2), Trigger::ResumeQueued);
}

#[test]
fn resume_trigger_prefers_unanswered_then_queue() {
    assert_eq!(resume_trigger(true, 3), Trigger::ResumeUnanswered);
    assert_eq!(resume_trigger(false, 1), Trigger::ResumeQueued);
    assert_eq!(resume_trigger(false, 0), Trigger::ResumeIdle);
}

#[test]
fn statuses_parse_from_their_database_spelling() {
    for status in ChatStatus::ALL {
        assert_eq!(status.as_str().parse::<ChatStatus>(), Ok(status));
        let json = serde_json::to_string(&status).expect("json");
        assert_eq!(json, format!("\"{}\"", status.as_str()));
    }
    assert!("runnin".parse::<ChatStatus>().is_err());
    assert_eq!(ChatStatus::initial(true), ChatStatus::Pending);
    assert_eq!(ChatStatus::initial(false), ChatStatus::Waiting);
}
