//! The rules of decisions, deadlines and closing, on records alone.

use chrono::{Duration, Utc};
use serde_json::json;

use super::*;
use crate::store::StoreError;
use crate::store::decisions::apply_decisions as resolve;

fn open(id: &str, kind: ActionKind) -> ToolCall {
    let deadline = Utc::now() + Duration::hours(1);
    ToolCall::new(
        id,
        "execute",
        json!({"command": "ls"}),
        false,
        CallState::Open { kind, deadline },
    )
}

fn approve(id: &str) -> Decision {
    Decision::Approve { tool_call_id: id.into(), args: None }
}

#[test]
fn approving_makes_a_call_ready_with_edited_arguments() {
    let mut calls = vec![open("a", ActionKind::Approval), open("b", ActionKind::Approval)];
    let edit =
        Decision::Approve { tool_call_id: "b".into(), args: Some(json!({"command": "pwd"})) };
    resolve(&mut calls, &[approve("a"), edit]).expect("resolved");
    assert_eq!(calls[0].state, CallState::Ready);
    assert_eq!(calls[0].args, json!({"command": "ls"}));
    assert_eq!(calls[1].args, json!({"command": "pwd"}));
    assert!(!any_open(&calls));
}

#[test]
fn a_denial_answers_the_call_with_the_reason() {
    let mut calls = vec![open("a", ActionKind::Approval), open("b", ActionKind::Client)];
    let deny = |id: &str, reason: Option<&str>| Decision::Deny {
        tool_call_id: id.into(),
        reason: reason.map(str::to_owned),
    };
    resolve(&mut calls, &[deny("a", Some("not today")), deny("b", Some("  "))]).expect("ok");
    let text = |call: &ToolCall| match &call.state {
        CallState::Done { result, is_error: true } => result.clone(),
        other => panic!("not denied: {other:?}"),
    };
    assert_eq!(text(&calls[0]), json!("tool call denied by the user: not today"));
    assert_eq!(text(&calls[1]), json!("tool call denied by the user"));
}

#[test]
fn decisions_are_all_or_nothing() {
    let before = vec![open("a", ActionKind::Approval), open("b", ActionKind::Client)];
    let cases: Vec<(Vec<Decision>, &str)> = vec![
        (vec![approve("a"), approve("zzz")], "conflict"),
        (vec![approve("a"), approve("a")], "conflict"),
        (vec![approve("a"), approve("b")], "validation"),
        (
            vec![Decision::Result { tool_call_id: "a".into(), output: json!(1), is_error: false }],
            "validation",
        ),
        (vec![], "validation"),
    ];
    for (decisions, kind) in cases {
        let mut calls = before.clone();
        let err = resolve(&mut calls, &decisions).expect_err("refused");
        let got = match err {
            StoreError::Conflict(_) => "conflict",
            StoreError::Validation { .. } => "validation",
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(got, kind, "{decisions:?}");
        assert_eq!(calls, before, "nothing applied for {decisions:?}");
    }
}

#[test]
fn a_decided_call_cannot_be_decided_again() {
    let mut calls = vec![open("a", ActionKind::Approval), open("b", ActionKind::Approval)];
    resolve(&mut calls, &[approve("a")]).expect("first");
    let err = resolve(&mut calls, &[approve("a")]).expect_err("second");
    assert!(err.to_string().contains("\"a\" is not open"), "{err}");
    assert_eq!(calls[1].open_kind(), Some(ActionKind::Approval));
}

#[test]
fn a_client_result_is_stored_as_given() {
    let mut calls = vec![open("c", ActionKind::Client)];
    let result =
        Decision::Result { tool_call_id: "c".into(), output: json!({"lat": 1}), is_error: false };
    resolve(&mut calls, &[result]).expect("ok");
    assert_eq!(calls[0].state, CallState::Done { result: json!({"lat": 1}), is_error: false });
}

#[test]
fn deadlines_answer_only_the_calls_past_them() {
    let now = Utc::now();
    let mut calls = vec![
        ToolCall::new(
            "a",
            "t",
            json!({}),
            false,
            CallState::Open { kind: ActionKind::Approval, deadline: now - Duration::seconds(1) },
        ),
        ToolCall::new(
            "b",
            "t",
            json!({}),
            false,
            CallState::Open { kind: ActionKind::Client, deadline: now },
        ),
        ToolCall::new(
            "c",
            "t",
            json!({}),
            false,
            CallState::Open { kind: ActionKind::Client, deadline: now + Duration::seconds(5) },
        ),
    ];
    assert_eq!(earliest_deadline(&calls), Some(now - Duration::seconds(1)));
    assert!(expire(&mut calls, now));
    assert_eq!(
        calls[0].result_part("x"),
        Part::tool_result("a", "t", json!(APPROVAL_EXPIRED), true)
    );
    assert_eq!(calls[1].result_part("x"), Part::tool_result("b", "t", json!(CLIENT_EXPIRED), true));
    assert!(calls[2].open_kind().is_some());
    assert!(!expire(&mut calls, now), "nothing more is due");
}

#[test]
fn closing_keeps_results_and_marks_started_calls_in_doubt() {
    let mut done = open("a", ActionKind::Approval);
    done.answer(json!("ran"), false);
    let started = ToolCall::new("b", "execute", json!({}), false, CallState::Started);
    let rows = closing_rows(&[done, started, open("c", ActionKind::Client)], INTERRUPTED_RESULT);
    let parts: Vec<Part> = rows.into_iter().flat_map(|row| row.content).collect();
    assert_eq!(
        parts,
        vec![
            Part::tool_result("a", "execute", json!("ran"), false),
            Part::tool_result("b", "execute", json!(IN_DOUBT_RESULT), true),
            Part::tool_result("c", "execute", json!(INTERRUPTED_RESULT), true),
        ]
    );
}
