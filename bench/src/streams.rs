//! The runtime's streaming scenarios: `resume` (catch-up from the durable part log),
//! `fanout` (one turn to many subscribers), `pickup` (pending → running through the feed)
//! and `recovery` (a dead worker's chat finished by another).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chatd_core::events::{ChatEvent, ChatEventKind, Streams, SubscribeOptions};

use chatd_core::provider::{
    EventStream, FinishReason, ModelProvider, ModelRequest, ProviderError, StreamEvent,
};
use chatd_core::runtime::tools::ToolSet;
use chatd_core::runtime::turn::{ProviderSource, TurnRunner};
use chatd_core::runtime::worker::Worker;
use chatd_core::store::{ChatStore, Lease, NewPart, PartPosition};
use chatd_core::{
    ChatStatus, ModelConfig, NewChat, NewModelConfig, NewProvider, ProviderKind, UserId, WorkerId,
};
use chatd_store_memory::InMemoryChatStore;
use chatd_store_postgres::PostgresChatStore;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::pg::Scratch;
use crate::report::{Report, Target, percentile};

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn part(lease: &Lease, seq: i64) -> NewPart {
    NewPart {
        position: PartPosition { episode: lease.episode_base() + 1, seq },
        payload: serde_json::json!({"type": "stream", "event": {"type": "text-delta", "id": "t", "delta": format!("token{seq} ")}}),
    }
}

async fn chat_with_lease(
    store: &Arc<dyn ChatStore>,
    config: Option<chatd_core::ModelConfigId>,
) -> BenchResult<Lease> {
    let mut new = NewChat::new(UserId::new()).with_text("question");
    if let Some(config) = config {
        new = new.with_model_config(config);
    }
    let chat = store.create_chat(new).await?;
    let leases = store.acquire(WorkerId::new(), 1).await?;
    leases.into_iter().find(|l| l.chat_id == chat.id).ok_or_else(|| "acquired another chat".into())
}

async fn next(events: &mut BoxStream<'static, ChatEvent>) -> BenchResult<ChatEvent> {
    tokio::time::timeout(Duration::from_secs(30), events.next())
        .await?
        .ok_or_else(|| "the stream ended".into())
}

// ----- resume --------------------------------------------------------------------------

/// Catch-up of 1 000 parts on PostgreSQL through `Streams::subscribe`: time to the first
/// event and to the last part, vs reading the same rows (messages and parts) with two raw
/// queries.
pub(crate) async fn resume(quick: bool) -> BenchResult<Vec<Report>> {
    const PARTS: i64 = 1_000;
    let samples = if quick { 20 } else { 200 };
    let scratch = Scratch::create(8).await?;
    let store: Arc<dyn ChatStore> = Arc::new(scratch.store.clone());
    let lease = chat_with_lease(&store, Some(scratch.config)).await?;
    for batch in (1..=PARTS).collect::<Vec<_>>().chunks(100) {
        store.append_parts(&lease, batch.iter().map(|s| part(&lease, *s)).collect()).await?;
    }
    let streams = Streams::new(Arc::clone(&store), SubscribeOptions::default());
    let (mut first, mut live, mut raw) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..=samples {
        let started = Instant::now();
        let mut events = streams.subscribe(lease.chat_id, None).await?;
        next(&mut events).await?;
        let to_first = started.elapsed();
        let mut parts = 0;
        while parts < PARTS {
            if matches!(next(&mut events).await?.kind, ChatEventKind::MessagePart { .. }) {
                parts += 1;
            }
        }
        let to_live = started.elapsed();

        let started = Instant::now();
        let messages = sqlx::query("SELECT * FROM chat_messages WHERE chat_id = $1 AND visibility IN ('user', 'both') ORDER BY id")
            .bind(lease.chat_id.0)
            .fetch_all(&scratch.pool)
            .await?;
        let rows =
            sqlx::query("SELECT p.* FROM chat_stream_parts b, UNNEST(b.episodes, b.seqs, b.payloads) AS p(episode, seq, payload) WHERE b.chat_id = $1 ORDER BY p.episode, p.seq")
                .bind(lease.chat_id.0)
                .fetch_all(&scratch.pool)
                .await?;
        let raw_time = started.elapsed();
        if messages.len() != 1 || rows.len() != PARTS as usize {
            return Err(
                format!("raw read {} messages and {} parts", messages.len(), rows.len()).into()
            );
        }
        if i > 0 {
            // The first round starts the feed's listener: warm-up.
            first.push(to_first.as_secs_f64() * 1e3);
            live.push(to_live.as_secs_f64() * 1e3);
            raw.push(raw_time.as_secs_f64() * 1e3);
        }
    }
    scratch.drop_database().await?;
    let raw50 = percentile(&mut raw, 0.5);
    let raw99 = percentile(&mut raw, 0.99);
    Ok(vec![
        Report::new(
            "resume",
            "first_event_ms_p99",
            "ms",
            percentile(&mut first, 0.99),
            raw99,
            Target::AtMost(2.0),
        ),
        Report::new(
            "resume",
            "first_event_ms_p50",
            "ms",
            percentile(&mut first, 0.5),
            raw50,
            Target::None,
        ),
        Report::new(
            "resume",
            "to_live_ms_p50",
            "ms",
            percentile(&mut live, 0.5),
            raw50,
            Target::None,
        ),
        Report::new(
            "resume",
            "to_live_ms_p99",
            "ms",
            percentile(&mut live, 0.99),
            raw99,
            Target::None,
        ),
    ])
}

// ----- fanout --------------------------------------------------------------------------

/// One turn's parts to 1 / 100 / 1 000 subscribers of one `Streams` (one shared reader for
/// the chat) on the in-memory store, vs the same events through a bare
/// `tokio::sync::broadcast`; and the memory an idle subscriber holds. One round delivers
/// in tens of milliseconds, so each size runs several rounds, the two sides taking turns,
/// and reports the median rate of each.
pub(crate) async fn fanout(quick: bool) -> BenchResult<Vec<Report>> {
    const PARTS: i64 = 500;
    let counts: &[usize] = if quick { &[1, 100] } else { &[1, 100, 1_000] };
    let rounds = if quick { 3 } else { 7 };
    // Memory first, before the throughput runs leave freed memory for the allocator to
    // reuse (which would hide what the subscriptions take).
    let mut reports = vec![idle_memory().await?];
    for &count in counts {
        let (mut chatd, mut bare) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            chatd.push(fanout_rate(count, PARTS).await?);
            bare.push(broadcast_rate(count, PARTS).await?);
        }
        let metric: &'static str = match count {
            1 => "parts_per_sec_1_subscriber",
            100 => "parts_per_sec_100_subscribers",
            _ => "parts_per_sec_1000_subscribers",
        };
        let target = if count >= 100 { Target::AtLeast(0.5) } else { Target::None };
        let (chatd, bare) = (percentile(&mut chatd, 0.5), percentile(&mut bare, 0.5));
        reports.push(Report::new("fanout", metric, "parts/s", chatd, bare, target));
    }
    Ok(reports)
}

/// Parts per second delivered by one round through `Streams`: `parts` parts, appended in
/// batches of 10, each to `count` subscribers.
async fn fanout_rate(count: usize, parts: i64) -> BenchResult<f64> {
    let store: Arc<dyn ChatStore> = Arc::new(InMemoryChatStore::new());
    configure(&store).await?;
    let lease = chat_with_lease(&store, None).await?;
    let streams = Streams::new(Arc::clone(&store), SubscribeOptions::default());
    let (done_tx, mut done_rx) = mpsc::channel(count);
    for _ in 0..count {
        let mut events = streams.subscribe(lease.chat_id, None).await?;
        let done = done_tx.clone();
        tokio::spawn(async move {
            let mut got = 0;
            while got < parts {
                match events.next().await {
                    Some(event) if matches!(event.kind, ChatEventKind::MessagePart { .. }) => {
                        got += 1
                    }
                    Some(_) => {}
                    None => break,
                }
            }
            let _ = done.send(got).await;
        });
    }
    let started = Instant::now();
    for batch in (1..=parts).collect::<Vec<_>>().chunks(10) {
        store.append_parts(&lease, batch.iter().map(|s| part(&lease, *s)).collect()).await?;
        tokio::task::yield_now().await;
    }
    for _ in 0..count {
        let got = done_rx.recv().await.ok_or("a subscriber vanished")?;
        if got < parts {
            return Err(format!("a subscriber got {got} of {parts} parts").into());
        }
    }
    Ok((count as f64 * parts as f64) / started.elapsed().as_secs_f64())
}

async fn configure(store: &Arc<dyn ChatStore>) -> BenchResult<ModelConfig> {
    store.create_provider(NewProvider::new(ProviderKind::OpenAi)).await?;
    Ok(store
        .create_model_config(
            NewModelConfig::new(ProviderKind::OpenAi, "bench", 200_000).as_default(),
        )
        .await?)
}

/// The same events through a bare broadcast channel to `count` receivers.
async fn broadcast_rate(count: usize, parts: i64) -> BenchResult<f64> {
    let chat_id = chatd_core::ChatId::new();
    let (tx, _) = tokio::sync::broadcast::channel::<ChatEvent>(parts as usize + 1);
    let (done_tx, mut done_rx) = mpsc::channel(count);
    for _ in 0..count {
        let mut rx = tx.subscribe();
        let done = done_tx.clone();
        tokio::spawn(async move {
            let mut got = 0;
            while got < parts {
                if rx.recv().await.is_err() {
                    break;
                }
                got += 1;
            }
            let _ = done.send(got).await;
        });
    }
    let started = Instant::now();
    for seq in 1..=parts {
        let event = ChatEvent {
            chat_id,
            cursor: chatd_core::events::Cursor::new(1, (1 << 24) + 1, seq),
            kind: ChatEventKind::MessagePart {
                part: StreamEvent::TextDelta { id: "t".into(), delta: format!("token{seq} ") },
            },
        };
        tx.send(event).map_err(|_| "no receivers")?;
        if seq % 10 == 0 {
            tokio::task::yield_now().await;
        }
    }
    for _ in 0..count {
        done_rx.recv().await.ok_or("a receiver vanished")?;
    }
    Ok((count as f64 * parts as f64) / started.elapsed().as_secs_f64())
}

fn resident_bytes() -> f64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<f64>().ok()))
        .map_or(0.0, |pages| pages * 4096.0)
}

/// Resident memory added by 5 000 idle subscriptions (initial events consumed).
async fn idle_memory() -> BenchResult<Report> {
    const SUBSCRIBERS: usize = 5_000;
    let store: Arc<dyn ChatStore> = Arc::new(InMemoryChatStore::new());
    configure(&store).await?;
    let lease = chat_with_lease(&store, None).await?;
    let streams = Streams::new(Arc::clone(&store), SubscribeOptions::default());
    // Warm the allocator and the feed with a first batch, then measure a second one.
    let mut warm = Vec::new();
    for _ in 0..100 {
        let mut events = streams.subscribe(lease.chat_id, None).await?;
        for _ in 0..3 {
            next(&mut events).await?;
        }
        warm.push(events);
    }
    let before = resident_bytes();
    let mut held = Vec::with_capacity(SUBSCRIBERS);
    for _ in 0..SUBSCRIBERS {
        let mut events = streams.subscribe(lease.chat_id, None).await?;
        for _ in 0..3 {
            next(&mut events).await?; // status, the message, the turn's start
        }
        held.push(events);
    }
    let per = (resident_bytes() - before) / SUBSCRIBERS as f64 / 1024.0;
    drop(held);
    drop(warm);
    Ok(Report::limit("fanout", "idle_subscriber_kib", "KiB", per, 8.0, 8.0))
}

// ----- pickup and recovery -------------------------------------------------------------

/// A model that answers at once, and says when it was called.
struct Answering {
    called: mpsc::UnboundedSender<Instant>,
    hang: bool,
}

#[async_trait]
impl ModelProvider for Answering {
    fn kind(&self) -> ProviderKind {
        ProviderKind::OpenAi
    }
    async fn stream(
        &self,
        _request: ModelRequest,
        _cancel: CancellationToken,
    ) -> Result<EventStream, ProviderError> {
        let _ = self.called.send(Instant::now());
        let events = vec![
            Ok(StreamEvent::TextDelta { id: "t".into(), delta: "done".into() }),
            Ok(StreamEvent::Finish {
                reason: FinishReason::Stop,
                usage: None,
                context_window: None,
                provider_metadata: None,
            }),
        ];
        if self.hang {
            return Ok(Box::pin(
                futures::stream::iter(events.into_iter().take(1)).chain(futures::stream::pending()),
            ));
        }
        Ok(Box::pin(futures::stream::iter(events)))
    }
}

struct Source(Arc<Answering>);

#[async_trait]
impl ProviderSource for Source {
    async fn provider(
        &self,
        _config: &ModelConfig,
    ) -> Result<Arc<dyn ModelProvider>, ProviderError> {
        Ok(Arc::clone(&self.0) as Arc<dyn ModelProvider>)
    }
}

fn worker(store: &Arc<dyn ChatStore>, hang: bool) -> (Worker, mpsc::UnboundedReceiver<Instant>) {
    let (called, rx) = mpsc::unbounded_channel();
    let source = Source(Arc::new(Answering { called, hang }));
    let runner =
        TurnRunner::new(Arc::clone(store), Arc::new(source), ToolSet::new()).with_titles(false);
    (Worker::new(Arc::clone(store), runner), rx)
}

/// Pending → the turn's model call, on PostgreSQL with the feed (the poll is a minute, so
/// only the hint can wake the worker), vs a bare `NOTIFY` → `LISTEN` round trip.
pub(crate) async fn pickup(quick: bool) -> BenchResult<Vec<Report>> {
    let samples = if quick { 30 } else { 300 };
    let scratch = Scratch::create(8).await?;
    let store: Arc<dyn ChatStore> = Arc::new(scratch.store.clone());
    let (worker, mut called) = worker(&store, false);
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.with_poll(Duration::from_secs(60)).run(shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut latency = Vec::new();
    for i in 0..=samples {
        store
            .create_chat(
                NewChat::new(UserId::new()).with_text("go").with_model_config(scratch.config),
            )
            .await?;
        let created = Instant::now();
        let at = tokio::time::timeout(Duration::from_secs(10), called.recv())
            .await?
            .ok_or("the worker stopped")?;
        if i > 0 {
            latency.push(at.saturating_duration_since(created).as_secs_f64() * 1e3);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    shutdown.cancel();
    running.await?;
    let mut listener = sqlx::postgres::PgListener::connect_with(&scratch.pool).await?;
    listener.listen("chatd_bench_ping").await?;
    let mut raw = Vec::new();
    for _ in 0..samples {
        let started = Instant::now();
        sqlx::query("SELECT pg_notify('chatd_bench_ping', 'x')").execute(&scratch.pool).await?;
        listener.recv().await?;
        raw.push(started.elapsed().as_secs_f64() * 1e3);
    }
    drop(listener);
    scratch.drop_database().await?;
    let raw50 = percentile(&mut raw, 0.5);
    let raw99 = percentile(&mut raw, 0.99);
    Ok(vec![
        Report::limit(
            "pickup",
            "pending_to_running_ms_p50",
            "ms",
            percentile(&mut latency, 0.5),
            raw50,
            10.0,
        ),
        Report::limit(
            "pickup",
            "pending_to_running_ms_p99",
            "ms",
            percentile(&mut latency, 0.99),
            raw99,
            50.0,
        ),
    ])
}

/// A worker dies mid-turn (its task is aborted: no release, no more heartbeats); another
/// finishes the chat. Heartbeat 1 s, stale 3 s, sweep 0.6 s: the bound is their sum.
pub(crate) async fn recovery(quick: bool) -> BenchResult<Vec<Report>> {
    let samples = if quick { 1 } else { 3 };
    let (heartbeat, stale) = (Duration::from_secs(1), Duration::from_secs(3));
    let bound = heartbeat + stale + stale / 5;
    let scratch = Scratch::create(8).await?;
    let store: Arc<dyn ChatStore> = Arc::new(PostgresChatStore::new(scratch.pool.clone()));
    let mut took = Vec::new();
    for _ in 0..samples {
        let chat = store
            .create_chat(
                NewChat::new(UserId::new()).with_text("go").with_model_config(scratch.config),
            )
            .await?;
        let (dying, mut called) = worker(&store, true);
        let dying = tokio::spawn(
            dying.with_heartbeat(heartbeat).with_stale_after(stale).run(CancellationToken::new()),
        );
        tokio::time::timeout(Duration::from_secs(10), called.recv()).await?.ok_or("no turn")?;
        dying.abort();
        let died = Instant::now();
        let (rescuer, _called) = worker(&store, false);
        let shutdown = CancellationToken::new();
        let rescuing = tokio::spawn(
            rescuer.with_heartbeat(heartbeat).with_stale_after(stale).run(shutdown.clone()),
        );
        loop {
            if store.get_chat(chat.id).await?.status == ChatStatus::Waiting {
                break;
            }
            if died.elapsed() > Duration::from_secs(30) {
                return Err("the chat was never recovered".into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        took.push(died.elapsed().as_secs_f64());
        shutdown.cancel();
        rescuing.await?;
    }
    scratch.drop_database().await?;
    let worst = took.iter().copied().fold(0.0, f64::max);
    Ok(vec![Report::limit(
        "recovery",
        "death_to_completion_s_max",
        "s",
        worst,
        bound.as_secs_f64(),
        (bound + Duration::from_secs(1)).as_secs_f64(),
    )])
}
