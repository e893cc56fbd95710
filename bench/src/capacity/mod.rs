//! `capacity`: how many streaming chats W worker processes on one PostgreSQL serve. A local
//! Chat Completions server paces its answers like a model (a wait before the first token,
//! then a token every few milliseconds); C chats each send several messages in sequence
//! while a subscriber follows every chat; worker processes are this binary started again
//! in worker mode (`CHATD_BENCH_WORKER`).
//!
//! Per grid point it prints turns per second, the time to first token and the inter-token
//! delay seen by subscribers as overhead over what the fake server itself paces, worker CPU
//! per turn, resident memory per running turn, and the database's transactions, rows and
//! WAL bytes per turn (`pg_stat_database`, `pg_stat_wal`) and its connections.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chatd_core::events::{ChatEventKind, SubscribeOptions, subscribe};
use chatd_core::runtime::tools::ToolSet;
use chatd_core::runtime::turn::TurnRunner;
use chatd_core::runtime::worker::Worker;
use chatd_core::store::{ChatStore, SendMessage};
use chatd_core::{ChatId, NewChat, NewModelConfig, NewProvider, ProviderKind, UserId};
use chatd_providers::{ProviderRegistry, StoreProviderSource};
use chatd_store_postgres::PostgresChatStore;
use futures::StreamExt;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::pg::{BenchResult, Scratch};

mod baseline;
mod counters;
pub(crate) mod model;

pub(crate) use model::{Mix, Pace};

/// How often a turn's preview is flushed to the part log (the runtime's default).
/// The part flush interval (BEHAVIOUR §15: 50 ms).
const FLUSH: Duration = Duration::from_millis(50);
use crate::report::{Report, Target, percentile};

/// The environment variable that turns this binary into a worker process for the database
/// URL it holds.
pub(crate) const WORKER_ENV: &str = "CHATD_BENCH_WORKER";

/// Worker mode: the heartbeat interval in milliseconds (default 5 000).
pub(crate) const HEARTBEAT_ENV: &str = "CHATD_BENCH_HEARTBEAT_MS";
/// Worker mode: after how many milliseconds without a heartbeat a turn is taken over
/// (default 30 000).
pub(crate) const STALE_ENV: &str = "CHATD_BENCH_STALE_MS";

/// One grid point.
#[derive(Debug, Clone, Copy)]
struct Point {
    chats: usize,
    workers: usize,
    messages: usize,
}

/// Runs a worker for `url` until SIGTERM (the worker mode of this binary).
pub(crate) async fn worker_process(url: String) -> BenchResult<()> {
    let store: Arc<dyn ChatStore> = Arc::new(PostgresChatStore::connect(&url).await?);
    let source =
        StoreProviderSource::new(Arc::clone(&store), ProviderRegistry::new().with_env(|_| None));
    let tools = ToolSet::new().with(Arc::new(chatd_core::runtime::tools::Typed(model::Clock)));
    let runner = TurnRunner::new(Arc::clone(&store), Arc::new(source), tools).with_titles(false);
    let millis = |name: &str, default: u64| {
        Duration::from_millis(
            std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default),
        )
    };
    let worker = Worker::new(Arc::clone(&store), runner)
        .with_max_turns(5_000)
        .with_poll(Duration::from_millis(200))
        .with_heartbeat(millis(HEARTBEAT_ENV, 5_000))
        .with_stale_after(millis(STALE_ENV, 30_000));
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::spawn(async move {
        term.recv().await;
        trigger.cancel();
    });
    // Listening before saying ready: a send made before `LISTEN` would wait for a poll.
    let _feed = store.change_feed().await?;
    println!("ready");
    worker.run(shutdown).await;
    Ok(())
}

/// CPU ticks (user + system) and resident KiB of a process, from `/proc`.
pub(crate) fn usage_of(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ") ".
    let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the whole line, 11 and 12 after the name.
    let ticks = tick(11) + tick(12);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (ticks, rss)
}

/// What one chat's client saw: time to first part and the gaps between parts, per turn.
#[derive(Debug, Default)]
struct Seen {
    started: Vec<f64>,
    first: Vec<f64>,
    gaps: Vec<f64>,
    /// Per streamed token: how much later than the fake server's pacing it was seen
    /// (seen − (send + first-token wait + index × token interval)).
    lags: Vec<f64>,
    turns: usize,
}

/// Sends `messages` messages to `chat` one after another, each once the last turn ended,
/// following the chat throughout.
async fn client(
    store: Arc<dyn ChatStore>,
    chat: ChatId,
    messages: usize,
    pace: Pace,
) -> BenchResult<Seen> {
    let options = SubscribeOptions::default();
    let mut events = subscribe(Arc::clone(&store), chat, None, options).await?;
    let mut seen = Seen::default();
    for n in 0..messages {
        let sent = Instant::now();
        store.send_message(chat, SendMessage::text(format!("question {n}"))).await?;
        let mut last: Option<Instant> = None;
        let mut index = 0u32;
        // Lag is measured against the pacing of the turn's first call only: a later
        // step's call starts at a time the client does not see.
        let mut first_step = true;
        loop {
            let event = tokio::time::timeout(Duration::from_secs(120), events.next())
                .await?
                .ok_or("the subscription ended")?;
            match event.kind {
                ChatEventKind::MessagePart { part } => {
                    let now = Instant::now();
                    use chatd_core::provider::StreamEvent;
                    match part {
                        StreamEvent::TextDelta { .. } if first_step => {
                            let due = pace.first_token + pace.per_token * index;
                            let late = (now - sent).as_secs_f64() - due.as_secs_f64();
                            seen.lags.push(late * 1000.0);
                            index += 1;
                        }
                        StreamEvent::ToolInputStart { .. } | StreamEvent::ToolCall { .. } => {
                            first_step = false;
                        }
                        _ => {}
                    }
                    match last {
                        None => seen.first.push((now - sent).as_secs_f64() * 1000.0),
                        Some(before) => seen.gaps.push((now - before).as_secs_f64() * 1000.0),
                    }
                    last = Some(now);
                }
                ChatEventKind::TurnStarted { .. } => {
                    seen.started.push(sent.elapsed().as_secs_f64() * 1000.0);
                }
                ChatEventKind::PreviewReset => index = 0,
                ChatEventKind::TurnEnded { .. } => break,
                _ => {}
            }
        }
        seen.turns += 1;
    }
    Ok(seen)
}

/// Starts `n` worker processes on `url` and waits until each says it is ready.
pub(crate) async fn start_workers(
    url: &str,
    n: usize,
    env: &[(&str, String)],
) -> BenchResult<Vec<Child>> {
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for _ in 0..n {
        let mut child = Command::new(&exe)
            .env(WORKER_ENV, url)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await??;
        if ready.as_deref() != Some("ready") {
            return Err(format!("a worker did not start: {ready:?}").into());
        }
        children.push(child);
    }
    Ok(children)
}

/// Runs one grid point and returns its report lines.
async fn point(pace: Pace, mix: Mix, at: Point) -> BenchResult<Vec<Report>> {
    let server = model::serve(pace, mix).await?;
    let scratch = Scratch::create(32).await?;
    let worker_url = counters::prepare(&scratch).await;
    let provider = NewProvider::new(ProviderKind::OpenAiCompat).with_base_url(server.url());
    scratch.store.create_provider(provider).await?;
    let config = NewModelConfig::new(ProviderKind::OpenAiCompat, "m", 32_000);
    let config = scratch.store.create_model_config(config).await?.id;
    let store: Arc<dyn ChatStore> = Arc::new(scratch.store.clone());
    let mut chats = Vec::new();
    for _ in 0..at.chats {
        let new = NewChat::new(UserId::new()).with_model_config(config);
        chats.push(store.create_chat(new).await?.id);
    }
    let mut workers = start_workers(&worker_url, at.workers, &[]).await?;
    // One turn first, unmeasured: the processes' first notification, connections and
    // provider lookups are start-up costs, not per-turn ones.
    let warm = store.create_chat(NewChat::new(UserId::new()).with_model_config(config)).await?;
    client(Arc::clone(&store), warm.id, 1, pace).await?;
    let warm_requests = server.requests().len();
    let pids: Vec<u32> = workers.iter().filter_map(Child::id).collect();
    // Settled too: the set-up's statistics (the migrations' catalog rows among them) must
    // be published before the load starts, or they land in the load's window.
    let before = counters::settled(&scratch.pool).await?;
    let idle: Vec<(u64, u64)> = pids.iter().map(|pid| usage_of(*pid)).collect();
    let started = Instant::now();
    let clients: Vec<_> = chats
        .iter()
        .map(|chat| tokio::spawn(client(Arc::clone(&store), *chat, at.messages, pace)))
        .collect();
    // Sample memory and connections while the load runs.
    let done = CancellationToken::new();
    let sampling = {
        let pool = scratch.pool.clone();
        let pids = pids.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let (mut peak_rss, mut peak_connections) = (vec![0u64; pids.len()], 0i64);
            while !done.is_cancelled() {
                for (at, pid) in pids.iter().enumerate() {
                    peak_rss[at] = peak_rss[at].max(usage_of(*pid).1);
                }
                let connections: Option<(i64,)> = sqlx::query_as(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()",
                )
                .fetch_optional(&pool)
                .await
                .ok()
                .flatten();
                peak_connections = peak_connections.max(connections.map_or(0, |c| c.0));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            (peak_rss, peak_connections)
        })
    };
    let mut seen = Seen::default();
    for client in clients {
        let one = client.await??;
        seen.started.extend(one.started);
        seen.first.extend(one.first);
        seen.gaps.extend(one.gaps);
        seen.lags.extend(one.lags);
        seen.turns += one.turns;
    }
    let elapsed = started.elapsed().as_secs_f64();
    // The warm-up turn's requests were served before the load: left out.
    let requests = server.requests().len().saturating_sub(warm_requests);
    done.cancel();
    let (peak_rss, peak_connections) = sampling.await?;
    let busy: Vec<(u64, u64)> = pids.iter().map(|pid| usage_of(*pid)).collect();
    for worker in &mut workers {
        let _ = worker.start_kill();
    }
    let after = counters::settled(&scratch.pool).await?;

    // Baseline 1: the same text streams, as many at once, read by bare clients (from a
    // server that only answers with text: what the fake model itself paces).
    let plain = chatd_providers::testing::FakeServer::repeating(model::answer(pace)).await?;
    let bare: Vec<_> = (0..at.chats)
        .map(|_| {
            let url = plain.url().to_owned();
            tokio::spawn(async move {
                let mut seen = Seen::default();
                for _ in 0..at.messages {
                    let (first, gaps) = baseline::bare_stream(&url).await?;
                    seen.first.push(first);
                    seen.gaps.extend(gaps);
                }
                BenchResult::Ok(seen)
            })
        })
        .collect();
    let mut raw = Seen::default();
    for client in bare {
        let one = client.await??;
        raw.first.extend(one.first);
        raw.gaps.extend(one.gaps);
    }
    // Baseline 2: the minimal durable turn's SQL, replayed for a sample of turns.
    let sample = (at.chats * at.messages).min(200);
    let flush_every = (FLUSH.as_secs_f64() / pace.per_token.as_secs_f64()).ceil() as usize;
    let minimal_before = counters::read(&scratch.pool).await?;
    let replays: Vec<_> = (0..4)
        .map(|_| {
            let pool = scratch.pool.clone();
            tokio::spawn(async move {
                baseline::minimal_turns(&pool, config.0, sample / 4, pace.tokens, flush_every).await
            })
        })
        .collect();
    for replay in replays {
        replay.await??;
    }
    let minimal_after = counters::settled(&scratch.pool).await?;
    scratch.drop_database().await?;

    let turns = seen.turns.max(1) as f64;
    let minimal_turns = (sample / 4 * 4).max(1) as f64;
    let load = before.per_turn(after, turns);
    let minimal = minimal_before.per_turn(minimal_after, minimal_turns);
    // `/proc` counts CPU in USER_HZ ticks, 100 per second on Linux.
    let tick_ms = 10.0;
    let cpu_ms: f64 =
        idle.iter().zip(&busy).map(|(i, b)| b.0.saturating_sub(i.0) as f64 * tick_ms).sum();
    let grown: u64 = idle.iter().zip(&peak_rss).map(|(i, p)| p.saturating_sub(i.1)).sum();
    // A mixed load (tool calls, failures, slow calls) is named apart from the plain grid.
    let mixed = if mix.is_plain() { "" } else { "_mix" };
    let name = |what: &str| format!("{what}_c{}_w{}{mixed}", at.chats, at.workers);
    let (first50, raw_first50) =
        (percentile(&mut seen.first, 0.5), percentile(&mut raw.first, 0.5));
    let (first99, raw_first99) =
        (percentile(&mut seen.first, 0.99), percentile(&mut raw.first, 0.99));
    let (gap99, raw_gap99) = (percentile(&mut seen.gaps, 0.99), percentile(&mut raw.gaps, 0.99));
    let (lag50, lag99) = (percentile(&mut seen.lags, 0.5), percentile(&mut seen.lags, 0.99));
    let mut reports = vec![
        Report::new(
            "capacity",
            name("turns_per_sec"),
            "turns/s",
            turns / elapsed,
            0.0,
            Target::None,
        ),
        Report::new(
            "capacity",
            name("model_requests_per_turn"),
            "requests",
            requests as f64 / turns,
            0.0,
            Target::None,
        ),
        Report::new(
            "capacity",
            name("turn_started_ms_p50"),
            "ms",
            percentile(&mut seen.started, 0.5),
            0.0,
            Target::None,
        ),
        Report::new(
            "capacity",
            name("first_token_ms_p50_vs_bare"),
            "ms",
            first50,
            raw_first50,
            Target::None,
        ),
        Report::new(
            "capacity",
            name("first_token_ms_p99_vs_bare"),
            "ms",
            first99,
            raw_first99,
            Target::None,
        ),
        Report::limit(
            "capacity",
            name("inter_token_overhead_ms_p99"),
            "ms",
            gap99 - raw_gap99,
            raw_gap99,
            50.0,
        ),
        Report::new("capacity", name("token_lag_ms_p50"), "ms", lag50, 0.0, Target::None),
        Report::new("capacity", name("token_lag_ms_p99"), "ms", lag99, 0.0, Target::None),
        Report::new(
            "capacity",
            name("worker_cpu_ms_per_turn"),
            "ms",
            cpu_ms / turns,
            0.0,
            Target::None,
        ),
        Report::limit(
            "capacity",
            name("worker_rss_kib_per_running_turn"),
            "KiB",
            grown as f64 / at.chats.max(1) as f64,
            0.0,
            256.0,
        ),
        Report::new(
            "capacity",
            name("db_connections_peak"),
            "connections",
            peak_connections as f64,
            0.0,
            Target::None,
        ),
        Report::new(
            "capacity",
            name("db_rows_written_per_turn_vs_minimal"),
            "rows",
            load.rows,
            minimal.rows,
            Target::AtMost(2.0),
        ),
        Report::new(
            "capacity",
            name("wal_bytes_per_turn_vs_minimal"),
            "bytes",
            load.wal,
            minimal.wal,
            Target::None,
        ),
        Report::new(
            "capacity",
            name("db_transactions_per_turn_reads_included_vs_minimal"),
            "xacts",
            load.xacts,
            minimal.xacts,
            Target::None,
        ),
    ];
    // Statements, where `pg_stat_statements` is loaded: the workers' (a turn's durable
    // cost, the goal) and everyone's (the subscribers' reads and the sends included).
    if let (Some(workers), Some(minimal_all)) = (load.worker_statements, minimal.statements)
        && workers > 0.0
    {
        reports.push(Report::new(
            "capacity",
            name("db_statements_per_turn_workers_vs_minimal"),
            "statements",
            workers,
            minimal_all,
            Target::AtMost(2.0),
        ));
    }
    if let (Some(all), Some(minimal_all)) = (load.statements, minimal.statements) {
        reports.push(Report::new(
            "capacity",
            name("db_statements_per_turn_all_vs_minimal"),
            "statements",
            all,
            minimal_all,
            Target::None,
        ));
    }
    Ok(reports)
}

/// `capacity`: the grid (quick: 10 chats on one worker), or the one point `only` names
/// (chats, workers).
pub(crate) async fn run(
    quick: bool,
    only: Option<(usize, usize)>,
    mix: Mix,
) -> BenchResult<Vec<Report>> {
    let pace = Pace {
        first_token: Duration::from_millis(300),
        per_token: Duration::from_millis(20),
        tokens: if quick { 20 } else { 50 },
    };
    let messages = if quick { 2 } else { 3 };
    let grid: Vec<Point> = if let Some((chats, workers)) = only {
        vec![Point { chats, workers, messages }]
    } else if quick {
        vec![Point { chats: 10, workers: 1, messages: 2 }]
    } else {
        [10, 100, 1_000]
            .into_iter()
            .flat_map(|chats| {
                [1, 2, 4].into_iter().map(move |workers| Point { chats, workers, messages: 3 })
            })
            .collect()
    };
    let mut reports = Vec::new();
    for at in grid {
        reports.extend(point(pace, mix, at).await?);
    }
    Ok(reports)
}
