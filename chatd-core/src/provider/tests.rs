use std::time::Duration;

use serde_json::json;

use super::*;
use crate::message::Usage;
use crate::part::Part;

fn text(id: &str, delta: &str) -> StreamEvent {
    StreamEvent::TextDelta { id: id.into(), delta: delta.into() }
}

#[test]
fn accumulator_keeps_block_order_and_only_complete_tool_calls() {
    let mut acc = Accumulator::default();
    acc.push(StreamEvent::ReasoningStart { id: "r".into() });
    acc.push(StreamEvent::ReasoningDelta { id: "r".into(), delta: "think".into() });
    let mut meta = crate::part::ProviderMetadata::new();
    meta.insert("anthropic".into(), json!({"signature": "sig"}));
    acc.push(StreamEvent::ReasoningEnd { id: "r".into(), provider_metadata: Some(meta.clone()) });
    acc.push(StreamEvent::TextStart { id: "t".into() });
    acc.push(text("t", "Hel"));
    acc.push(text("t", "lo"));
    acc.push(StreamEvent::ToolInputStart { id: "c1".into(), tool_name: "read_file".into() });
    acc.push(StreamEvent::ToolInputDelta { id: "c1".into(), delta: "{\"path\":".into() });
    acc.push(StreamEvent::ToolInputDelta { id: "c1".into(), delta: "\"a.rs\"}".into() });
    acc.push(StreamEvent::ToolInputEnd { id: "c1".into() });
    acc.push(StreamEvent::ToolCall {
        id: "c1".into(),
        tool_name: "read_file".into(),
        args: json!({"path": "a.rs"}),
        provider_executed: false,
        provider_metadata: None,
    });
    acc.push(StreamEvent::ToolInputStart { id: "c2".into(), tool_name: "execute".into() });
    acc.push(StreamEvent::ToolCall {
        id: "c2".into(),
        tool_name: "execute".into(),
        args: json!({"command": "ls"}),
        provider_executed: false,
        provider_metadata: None,
    });
    let usage = Usage { input_tokens: 5, output_tokens: 7, total_tokens: 12, ..Usage::default() };
    acc.push(StreamEvent::Finish {
        reason: FinishReason::ToolCalls,
        usage: Some(usage),
        context_window: None,
        provider_metadata: None,
    });
    let generation = acc.finish();
    assert_eq!(
        generation.parts,
        vec![
            Part::Reasoning { text: "think".into(), provider_metadata: Some(meta) },
            Part::text("Hello"),
            Part::tool_call("c1", "read_file", json!({"path": "a.rs"})),
            Part::tool_call("c2", "execute", json!({"command": "ls"})),
        ]
    );
    assert_eq!(generation.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(generation.usage, Some(usage));
    assert_eq!(generation.local_tool_calls().len(), 2);
    assert_eq!(generation.text(), "Hello");
}

#[test]
fn text_keeps_provider_data_from_its_end_and_an_empty_block_only_with_it() {
    let mut meta = crate::part::ProviderMetadata::new();
    meta.insert("google".into(), json!({"thought_signature": "s"}));
    let mut acc = Accumulator::default();
    acc.push(text("a", "hi"));
    acc.push(StreamEvent::TextEnd { id: "a".into(), provider_metadata: Some(meta.clone()) });
    acc.push(StreamEvent::TextStart { id: "b".into() });
    acc.push(StreamEvent::TextEnd { id: "b".into(), provider_metadata: None });
    acc.push(StreamEvent::TextStart { id: "c".into() });
    acc.push(StreamEvent::TextEnd { id: "c".into(), provider_metadata: Some(meta.clone()) });
    let parts = acc.finish().parts;
    assert_eq!(
        parts,
        vec![
            Part::Text { text: "hi".into(), provider_metadata: Some(meta.clone()) },
            Part::Text { text: String::new(), provider_metadata: Some(meta) },
        ],
        "an empty block without provider data is dropped; one with it is kept to be replayed"
    );
}

#[test]
fn tool_inputs_that_never_completed_are_not_calls_and_arguments_are_never_invented() {
    let unfinished = || {
        let mut acc = Accumulator::default();
        acc.push(StreamEvent::ToolInputStart { id: "a".into(), tool_name: "write".into() });
        acc.push(StreamEvent::ToolInputDelta { id: "a".into(), delta: "{\"path\": \"x".into() });
        acc.push(StreamEvent::TextStart { id: "t".into() });
        acc.push(text("t", "partial"));
        acc
    };
    // A stream that ended normally: the cut call is dropped, not completed as `{}`.
    assert_eq!(unfinished().finish().parts, vec![Part::text("partial")]);
    // An interrupted stream: kept with its raw text (gets the interrupted result).
    assert_eq!(
        unfinished().finish_interrupted().parts,
        vec![Part::tool_call("a", "write", json!("{\"path\": \"x")), Part::text("partial")]
    );
    // A complete call whose arguments are not an object is kept as sent.
    let mut acc = Accumulator::default();
    acc.push(StreamEvent::ToolCall {
        id: "b".into(),
        tool_name: "t".into(),
        args: parse_tool_args("[1,2]"),
        provider_executed: false,
        provider_metadata: None,
    });
    assert_eq!(acc.finish().parts, vec![Part::tool_call("b", "t", json!("[1,2]"))]);
    assert_eq!(crate::tool_args::args_object("[1,2]"), json!({}), "what a prompt sends for it");
}

#[test]
fn tool_arguments_parse_without_invention_and_invalid_ones_say_why() {
    assert_eq!(parse_tool_args(""), json!({}), "no parameters");
    assert_eq!(parse_tool_args("  "), json!({}));
    assert_eq!(parse_tool_args("{\"a\":1}"), json!({"a": 1}));
    assert_eq!(parse_tool_args("{\"a\":"), json!("{\"a\":"));
    assert_eq!(invalid_args(&json!({"a": 1})), None);
    let cut = invalid_args(&json!("{\"a\":")).expect("invalid");
    assert!(cut.starts_with("not valid JSON"), "{cut}");
    assert_eq!(
        invalid_args(&json!("[1]")).as_deref(),
        Some("expected a JSON object, got an array")
    );
    assert_eq!(invalid_args(&json!(null)).as_deref(), Some("expected a JSON object, got null"));
}

#[test]
fn the_step_rule_runs_calls_after_tool_use_stop_and_unknown_finishes_only() {
    let step = |reason: FinishReason| Generation {
        parts: vec![Part::tool_call("c", "t", json!({}))],
        finish_reason: Some(reason),
        ..Generation::default()
    };
    for reason in [FinishReason::ToolCalls, FinishReason::Stop, FinishReason::Other("eos".into())] {
        assert_eq!(step(reason.clone()).calls_to_run().len(), 1, "{reason:?}");
    }
    for reason in [FinishReason::Length, FinishReason::ContentFilter, FinishReason::Error] {
        assert!(step(reason.clone()).calls_to_run().is_empty(), "{reason:?}");
    }
}

#[test]
fn provider_executed_results_stay_in_the_step() {
    let mut acc = Accumulator::default();
    acc.push(StreamEvent::ToolCall {
        id: "ws".into(),
        tool_name: "web_search".into(),
        args: json!({"query": "rust"}),
        provider_executed: true,
        provider_metadata: None,
    });
    acc.push(StreamEvent::ToolResult {
        id: "ws".into(),
        tool_name: "web_search".into(),
        result: json!([1]),
        is_error: false,
    });
    let generation = acc.finish();
    assert!(generation.local_tool_calls().is_empty());
    assert!(matches!(generation.parts[1], Part::ToolResult { provider_executed: true, .. }));
}

#[test]
fn errors_are_classified_for_retries() {
    for (status, kind, retryable) in [
        (401, ProviderErrorKind::Auth, false),
        (403, ProviderErrorKind::Auth, false),
        (400, ProviderErrorKind::InvalidRequest, false),
        (404, ProviderErrorKind::InvalidRequest, false),
        (429, ProviderErrorKind::RateLimited, true),
        (500, ProviderErrorKind::Server, true),
        (503, ProviderErrorKind::Server, true),
        (529, ProviderErrorKind::Overloaded, true),
    ] {
        assert_eq!(ProviderErrorKind::from_status(status), kind, "{status}");
        let err = ProviderError::new("openai", kind, "x");
        assert_eq!(err.is_retryable(), retryable, "{status}");
    }
    for kind in [
        ProviderErrorKind::ContextLength,
        ProviderErrorKind::Quota,
        ProviderErrorKind::ContentFilter,
        ProviderErrorKind::Cancelled,
    ] {
        assert!(!ProviderError::new("p", kind, "x").is_retryable());
    }
    let mut err = ProviderError::new("anthropic", ProviderErrorKind::RateLimited, "slow down");
    err.retry_after = Some(Duration::from_secs(3));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
    assert_eq!(err.to_string(), "anthropic rate_limited: slow down");
}

#[tokio::test]
async fn cancellation_ends_the_stream_promptly() {
    use futures::StreamExt;
    let cancel = tokio_util::sync::CancellationToken::new();
    let endless: EventStream = Box::pin(futures::stream::pending());
    let mut stream = with_cancellation(endless, cancel.clone(), "openai");
    let waiter = tokio::spawn(async move { stream.next().await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    cancel.cancel();
    let first =
        tokio::time::timeout(Duration::from_secs(1), waiter).await.expect("prompt").expect("task");
    let err = first.expect("an item").expect_err("cancelled");
    assert_eq!(err.kind, ProviderErrorKind::Cancelled);
}
