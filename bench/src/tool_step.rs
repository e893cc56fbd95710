//! `tool-step`: what durable tool calls (BEHAVIOUR §16) cost a turn that never waits.
//!
//! One turn: `acquire` → the model calls one tool (`count`, allowed by the policy) → it runs →
//! the model answers with 20 text deltas → `release`, streamed from a local fake Chat
//! Completions server through the real `openai-compat` adapter. The measured turn's tool has
//! side effects (the default for a custom tool), so its step is recorded: the assistant row
//! with the call marked started, then the tool row — two writes. The baseline is the same
//! turn with the tool declared idempotent, which takes the path every tool call took before
//! §16: one write after the call ran. Turns alternate, on the in-memory store and on
//! PostgreSQL; the ratio of the p50s is the cost of at-most-once.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chatd_core::runtime::tools::{Tool, ToolContext, ToolError, ToolSet};
use chatd_core::runtime::turn::{TurnEnd, TurnRunner, TurnSignal};
use chatd_core::store::ChatStore;
use chatd_core::{
    ChatStatus, NewChat, NewModelConfig, NewProvider, ProviderKind, TurnOutcome, UserId, WorkerId,
};
use chatd_providers::testing::{FakeResponse, FakeServer};
use chatd_providers::{ProviderRegistry, StoreProviderSource};
use chatd_store_memory::InMemoryChatStore;
use serde_json::{Value, json};

use crate::report::{Report, Target, percentile};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A tool that does nothing much; whether it says it is idempotent picks the path.
struct Count {
    idempotent: bool,
}

#[async_trait]
impl Tool for Count {
    fn name(&self) -> &str {
        "count"
    }
    fn description(&self) -> &str {
        "Counts."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object"})
    }
    fn idempotent(&self) -> bool {
        self.idempotent
    }
    async fn run(&self, _ctx: &ToolContext, _args: Value) -> Result<Value, ToolError> {
        Ok(json!({"count": 1}))
    }
}

fn chunk(delta: &str, finish: &str) -> String {
    format!(
        "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\
         \"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n"
    )
}

fn calls_count() -> FakeResponse {
    let mut body = chunk(
        r#"{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"count","arguments":"{}"}}]}"#,
        "null",
    );
    body.push_str(&chunk("{}", "\"tool_calls\""));
    body.push_str("data: [DONE]\n\n");
    FakeResponse::sse(body.into_bytes())
}

fn answers() -> FakeResponse {
    let mut body: String =
        (0..20).map(|i| chunk(&format!("{{\"content\":\"word{i} \"}}"), "null")).collect();
    body.push_str(&chunk("{}", "\"stop\""));
    body.push_str("data: [DONE]\n\n");
    FakeResponse::sse(body.into_bytes())
}

/// Alternating turns on `store`; the p50s of the recorded and the one-write turns (ms).
async fn measure(
    store: Arc<dyn ChatStore>,
    turns: usize,
) -> Result<(f64, f64, f64, f64), BoxError> {
    let warmup = 5;
    let mut responses = Vec::new();
    for _ in 0..2 * (turns + warmup) {
        responses.extend([calls_count(), answers()]);
    }
    let server = FakeServer::start(responses).await?;
    store
        .create_provider(NewProvider::new(ProviderKind::OpenAiCompat).with_base_url(server.url()))
        .await?;
    store
        .create_model_config(
            NewModelConfig::new(ProviderKind::OpenAiCompat, "m", 128_000).as_default(),
        )
        .await?;
    let source = Arc::new(StoreProviderSource::new(
        Arc::clone(&store),
        ProviderRegistry::new().with_env(|_| None),
    ));
    let runner = |idempotent| {
        TurnRunner::new(
            Arc::clone(&store),
            Arc::clone(&source) as Arc<dyn chatd_core::runtime::turn::ProviderSource>,
            ToolSet::new().with(Arc::new(Count { idempotent })),
        )
        .with_titles(false)
        .with_live_parts(None)
    };
    let (recorded, plain) = (runner(false), runner(true));
    let worker = WorkerId::new();
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for i in 0..turns + warmup {
        for (runner, samples) in [(&recorded, &mut with), (&plain, &mut without)] {
            let chat = store.create_chat(NewChat::new(UserId::new()).with_text("go")).await?;
            let started = Instant::now();
            let leases = store.acquire(worker, 1).await?;
            let [lease] = leases.as_slice() else { return Err("acquire returned no chat".into()) };
            let end = runner.run(*lease, TurnSignal::new()).await;
            if end != TurnEnd::Release(TurnOutcome::Finished) {
                return Err(format!("turn ended with {end:?}").into());
            }
            store.release(lease, TurnOutcome::Finished).await?;
            let elapsed = started.elapsed();
            let after = store.get_chat(chat.id).await?;
            if after.status != ChatStatus::Waiting || !after.tool_calls.is_empty() {
                return Err("the turn did not finish cleanly".into());
            }
            if i >= warmup {
                samples.push(elapsed.as_secs_f64() * 1e3);
            }
        }
    }
    let (with50, without50) = (percentile(&mut with, 0.5), percentile(&mut without, 0.5));
    let (with99, without99) = (percentile(&mut with, 0.99), percentile(&mut without, 0.99));
    Ok((with50, without50, with99, without99))
}

/// Runs the scenario.
pub(crate) async fn run(quick: bool) -> Result<Vec<Report>, BoxError> {
    let turns = if quick { 40 } else { 300 };
    let memory: Arc<dyn ChatStore> = Arc::new(InMemoryChatStore::new());
    let (m50, b50, m99, b99) = measure(memory, turns).await?;
    let mut reports = vec![
        Report::new("tool-step", "memory_turn_ms_p50", "ms", m50, b50, Target::AtMost(1.2)),
        Report::new("tool-step", "memory_turn_ms_p99", "ms", m99, b99, Target::None),
    ];
    let scratch = crate::pg::Scratch::create(8).await?;
    let pg: Arc<dyn ChatStore> = Arc::new(scratch.store.clone());
    let outcome = measure(pg, turns).await;
    scratch.drop_database().await?;
    let (p50, pb50, p99, pb99) = outcome?;
    reports.push(Report::new("tool-step", "pg_turn_ms_p50", "ms", p50, pb50, Target::None));
    reports.push(Report::new("tool-step", "pg_turn_ms_p99", "ms", p99, pb99, Target::None));
    Ok(reports)
}
