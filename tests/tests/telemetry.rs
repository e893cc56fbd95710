//! One tool-using turn, observed: the span tree follows the OpenTelemetry GenAI conventions
//! (a turn, its model calls and its tool call, with their attributes) and the metrics
//! facade receives turns, tokens and durations. One test per process: it installs the
//! global metrics recorder.

#[path = "it/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chatd_core::Usage;
use chatd_core::runtime::turn::{TurnEnd, TurnSignal};
use chatd_core::testing::ScriptedCall;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use serde_json::json;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span as the test saw it.
#[derive(Debug, Clone, Default)]
struct Seen {
    name: String,
    parent: Option<String>,
    fields: BTreeMap<String, String>,
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<(u64, Seen)>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}").trim_matches('"').to_owned());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut seen = Seen { name: attrs.metadata().name().to_owned(), ..Seen::default() };
        seen.parent = ctx.span(id).and_then(|s| s.parent()).map(|p| p.name().to_owned());
        attrs.record(&mut Fields(&mut seen.fields));
        self.0.lock().expect("capture").push((id.into_u64(), seen));
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut spans = self.0.lock().expect("capture");
        if let Some((_, seen)) = spans.iter_mut().rev().find(|(i, _)| *i == id.into_u64()) {
            values.record(&mut Fields(&mut seen.fields));
        }
    }
}

#[tokio::test]
async fn a_tool_using_turn_is_one_span_tree_with_genai_attributes_and_metrics() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("the only recorder of this test process");
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let usage =
        Usage { input_tokens: 100, output_tokens: 20, total_tokens: 120, ..Usage::default() };
    let fx = support::fixture(vec![
        ScriptedCall::tool_calls(&[("call_1", "echo", json!({"say": "hi"}))], Some(usage)),
        ScriptedCall::text("done", Some(usage)),
    ])
    .await;
    let end = fx.runner().run(fx.lease, TurnSignal::new()).await;
    assert!(matches!(end, TurnEnd::Release(chatd_core::TurnOutcome::Finished)), "{end:?}");

    let spans: Vec<Seen> =
        capture.0.lock().expect("capture").iter().map(|(_, s)| s.clone()).collect();
    for span in &spans {
        println!("{} (in {:?}) {:?}", span.name, span.parent, span.fields);
    }
    let turn: Vec<&Seen> = spans.iter().filter(|s| s.name == "invoke_agent").collect();
    assert_eq!(turn.len(), 1, "one turn span");
    let turn = turn[0];
    assert_eq!(turn.fields["gen_ai.operation.name"], "invoke_agent");
    assert_eq!(turn.fields["gen_ai.conversation.id"], fx.chat.to_string());
    assert_eq!(turn.fields["chatd.turn"], fx.lease.epoch.to_string());
    assert_eq!(turn.fields["chatd.outcome"], "finished");

    let calls: Vec<&Seen> = spans.iter().filter(|s| s.name == "chat").collect();
    assert_eq!(calls.len(), 2, "two model calls");
    for call in &calls {
        assert_eq!(call.parent.as_deref(), Some("invoke_agent"), "{call:?}");
        assert_eq!(call.fields["gen_ai.operation.name"], "chat");
        assert_eq!(call.fields["gen_ai.provider.name"], "anthropic");
        assert_eq!(call.fields["gen_ai.request.model"], "claude-test");
        assert_eq!(call.fields["otel.name"], "chat claude-test");
        assert_eq!(call.fields["gen_ai.usage.input_tokens"], "100");
        assert_eq!(call.fields["gen_ai.usage.output_tokens"], "20");
    }
    assert_eq!(calls[0].fields["gen_ai.response.finish_reasons"], r#"["tool_calls"]"#);
    assert_eq!(calls[1].fields["gen_ai.response.finish_reasons"], r#"["stop"]"#);

    let tools: Vec<&Seen> = spans.iter().filter(|s| s.name == "execute_tool").collect();
    assert_eq!(tools.len(), 1, "one tool call");
    assert_eq!(tools[0].parent.as_deref(), Some("invoke_agent"));
    assert_eq!(tools[0].fields["gen_ai.operation.name"], "execute_tool");
    assert_eq!(tools[0].fields["gen_ai.tool.name"], "echo");
    assert_eq!(tools[0].fields["gen_ai.tool.call.id"], "call_1");
    assert!(!tools[0].fields.contains_key("error.type"), "the echo succeeded");

    let metrics: BTreeMap<String, DebugValue> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels: Vec<String> =
                key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
            (format!("{}{{{}}}", key.name(), labels.join(",")), value)
        })
        .collect();
    println!("{metrics:#?}");
    assert_eq!(metrics.get("chatd_turns_total{outcome=finished}"), Some(&DebugValue::Counter(1)));
    assert_eq!(metrics.get("chatd_tokens_total{kind=input}"), Some(&DebugValue::Counter(200)));
    assert_eq!(metrics.get("chatd_tokens_total{kind=output}"), Some(&DebugValue::Counter(40)));
    let histogram = |name: &str| match metrics.get(name) {
        Some(DebugValue::Histogram(values)) => values.len(),
        _ => 0,
    };
    assert_eq!(histogram("chatd_model_call_seconds{provider=anthropic}"), 2);
    assert_eq!(histogram("chatd_tool_call_seconds{tool=echo,error=false}"), 1);
}
