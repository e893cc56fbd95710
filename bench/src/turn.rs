//! `turn-overhead`: what a whole turn costs on top of reading the model's answer.
//!
//! A turn here is `acquire` → stream 500 text deltas from a local fake Chat Completions
//! server through the real `openai-compat` adapter (with live parts published to the
//! store's part log) → persist the step → `release`, on the in-memory store. The baseline
//! reads the same response from the same server with the same adapter — reqwest, the SSE
//! parser and the chunk decoder — and nothing else. The overhead is the difference of the
//! two, turn by turn (each turn paired with the baseline read just before it), at p50 and
//! p99. The CPU figure is the process's CPU time per streamed token during the turns; the
//! fake server runs in the same process, so its share is in that figure too (and in the
//! baseline's).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chatd_core::provider::ModelRequest;
use chatd_core::runtime::tools::ToolSet;
use chatd_core::runtime::turn::{ProviderSource, TurnEnd, TurnRunner, TurnSignal};
use chatd_core::store::ChatStore;
use chatd_core::{
    NewChat, NewModelConfig, NewProvider, ProviderKind, TurnOutcome, UserId, WorkerId,
};
use chatd_providers::testing::{FakeResponse, FakeServer};
use chatd_providers::{ProviderRegistry, StoreProviderSource};
use chatd_store_memory::InMemoryChatStore;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::report::{Report, Target, percentile};

/// Deltas per streamed answer.
const DELTAS: usize = 500;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A Chat Completions stream of `DELTAS` one-word deltas, a finish and usage.
fn answer() -> Vec<u8> {
    let mut body = String::new();
    let chunk = |delta: &str, finish: &str| {
        format!(
            "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\
             \"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n"
        )
    };
    for i in 0..DELTAS {
        body.push_str(&chunk(&format!("{{\"content\":\"word{i} \"}}"), "null"));
    }
    body.push_str(&chunk("{}", "\"stop\""));
    body.push_str(
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[],\
         \"usage\":{\"prompt_tokens\":100,\"completion_tokens\":500,\"total_tokens\":600}}\n\ndata: [DONE]\n\n",
    );
    body.into_bytes()
}

fn process_cpu() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

/// Runs the scenario.
pub(crate) async fn run(quick: bool) -> Result<Vec<Report>, BoxError> {
    let turns = if quick { 40 } else { 400 };
    let warmup = 5;
    // The answer arrives in 4 KiB HTTP chunks (about 25 events each). Smaller chunks make
    // the in-process fake server's write syscalls dominate both sides of the comparison.
    let response = FakeResponse::sse(answer()).chunked(4096);
    let server = FakeServer::start(vec![response; 2 * (turns + warmup)]).await?;

    let store: Arc<dyn ChatStore> = Arc::new(InMemoryChatStore::new());
    store
        .create_provider(NewProvider::new(ProviderKind::OpenAiCompat).with_base_url(server.url()))
        .await?;
    let config = store
        .create_model_config(
            NewModelConfig::new(ProviderKind::OpenAiCompat, "m", 128_000).as_default(),
        )
        .await?;
    let source = Arc::new(StoreProviderSource::new(
        Arc::clone(&store),
        ProviderRegistry::new().with_env(|_| None),
    ));
    let provider = source.provider(&config).await?;
    let runner = TurnRunner::new(Arc::clone(&store), source, ToolSet::new())
        .with_titles(false)
        .with_live_parts(None);
    let worker = WorkerId::new();

    let mut raw = Vec::with_capacity(turns);
    let mut full = Vec::with_capacity(turns);
    let (mut raw_cpu, mut full_cpu) = (Duration::ZERO, Duration::ZERO);
    for i in 0..turns + warmup {
        // Baseline: the same response through the same adapter, nothing else.
        let request = ModelRequest::new("m", vec![chatd_core::provider::PromptMessage::user("go")]);
        let (cpu, started) = (process_cpu(), Instant::now());
        // On a runtime worker, like the turn (which runs in its own task): `block_on`'s
        // thread would pay a cross-thread wake-up per read.
        let provider = Arc::clone(&provider);
        let count = tokio::spawn(async move {
            let mut events = provider.stream(request, CancellationToken::new()).await?;
            let mut count = 0usize;
            while let Some(event) = events.next().await {
                event?;
                count += 1;
            }
            Ok::<usize, chatd_core::provider::ProviderError>(count)
        })
        .await??;
        let (elapsed, cpu) = (started.elapsed(), process_cpu().saturating_sub(cpu));
        if count < DELTAS {
            return Err(format!("the baseline read {count} events, expected {DELTAS}+").into());
        }
        if i >= warmup {
            raw.push(elapsed.as_secs_f64() * 1e3);
            raw_cpu += cpu;
        }

        // The turn.
        let chat = store.create_chat(NewChat::new(UserId::new()).with_text("go")).await?;
        let (cpu, started) = (process_cpu(), Instant::now());
        let lease = store.acquire(worker, 1).await?;
        let [lease] = lease.as_slice() else { return Err("acquire returned no chat".into()) };
        let end = runner.run(*lease, TurnSignal::new()).await;
        if end != TurnEnd::Release(TurnOutcome::Finished) {
            return Err(format!("turn ended with {end:?}").into());
        }
        store.release(lease, TurnOutcome::Finished).await?;
        let (elapsed, cpu) = (started.elapsed(), process_cpu().saturating_sub(cpu));
        if store.get_chat(chat.id).await?.status != chatd_core::ChatStatus::Waiting {
            return Err("the chat was not released".into());
        }
        if i >= warmup {
            full.push(elapsed.as_secs_f64() * 1e3);
            full_cpu += cpu;
        }
    }

    let tokens = (turns * DELTAS) as f64;
    // Overhead per turn: each turn against the baseline read just before it (pairs cancel
    // most of the machine's noise).
    let mut overhead: Vec<f64> = full.iter().zip(&raw).map(|(f, r)| f - r).collect();
    let (over50, over99) = (percentile(&mut overhead, 0.5), percentile(&mut overhead, 0.99));
    let (raw50, raw99) = (percentile(&mut raw, 0.5), percentile(&mut raw, 0.99));
    let (full50, full99) = (percentile(&mut full, 0.5), percentile(&mut full, 0.99));
    let cpu_turn = full_cpu.as_secs_f64() * 1e6 / tokens;
    let cpu_raw = raw_cpu.as_secs_f64() * 1e6 / tokens;
    Ok(vec![
        Report::new("turn-overhead", "turn_ms_p50", "ms", full50, raw50, Target::None),
        Report::new("turn-overhead", "turn_ms_p99", "ms", full99, raw99, Target::None),
        Report::limit("turn-overhead", "overhead_ms_p50", "ms", over50, raw50, 5.0),
        Report::limit("turn-overhead", "overhead_ms_p99", "ms", over99, raw99, 25.0),
        Report::limit("turn-overhead", "cpu_us_per_token", "µs", cpu_turn, cpu_raw, 20.0),
    ])
}
