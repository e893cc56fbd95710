//! `chatd-test-node`: a chatd process for the crash and replica tests — a worker, or a
//! subscriber printing a chat's events — against the PostgreSQL database it is given.
//!
//! ```text
//! chatd-test-node worker    --database-url URL [--heartbeat-ms N] [--stale-ms N] [--poll-ms N] [--no-listen]
//!                           [--marks DIR [--ask TOOL] [--approval-ms N] [--deadline-sweep-ms N]]
//!                           [--daily-spend-limit MICROS] [--max-turns N]
//! chatd-test-node subscribe --database-url URL --chat ID [--no-listen]
//! ```
//!
//! The worker prints `ready <worker id>` once running, `turn <chat> <end>` after each turn
//! (`lost` when its lease was lost), and `stopped` after a graceful shutdown (SIGTERM). The
//! subscriber prints `ready`, then one JSON line per event.
//!
//! With `--marks DIR` the worker's model may call two tools that record each run under DIR
//! (`chatd_tests::marker`): `mark`, which has side effects, and `peek`, which is idempotent;
//! `--ask TOOL` makes calls of TOOL wait for an approval, due after `--approval-ms`.
//! `--daily-spend-limit` checks every model call against an owner's daily limit.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use chatd_core::ChatId;
use chatd_core::events::{SubscribeOptions, subscribe};
use chatd_core::limits::{SpendLimiter, SpendLimits};
use chatd_core::runtime::tools::{ToolRules, ToolSet};
use chatd_core::runtime::turn::{ActionDeadlines, TurnRunner};
use chatd_core::runtime::worker::{TurnReport, Worker};
use chatd_core::store::ChatStore;
use chatd_providers::{ProviderRegistry, StoreProviderSource};
use chatd_store_postgres::{PgFeedOptions, PostgresChatStore};
use chatd_tests::marker::Marker;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|at| args.get(at + 1)).cloned()
}

fn millis(args: &[String], name: &str, default: u64) -> Duration {
    Duration::from_millis(flag(args, name).and_then(|v| v.parse().ok()).unwrap_or(default))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(url) = flag(&args, "--database-url") else {
        eprintln!("usage: chatd-test-node <worker|subscribe> --database-url URL ...");
        return std::process::ExitCode::FAILURE;
    };
    let listen = !args.iter().any(|a| a == "--no-listen");
    let store = match PostgresChatStore::connect(&url).await {
        Ok(store) => store.with_feed_options(
            PgFeedOptions::default()
                .with_listen(listen)
                .with_poll_interval(Duration::from_millis(100)),
        ),
        Err(err) => {
            eprintln!("chatd-test-node: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let store: Arc<dyn ChatStore> = Arc::new(store);
    match args.first().map(String::as_str) {
        Some("worker") => worker(store, &args).await,
        Some("subscribe") => {
            let Some(chat) = flag(&args, "--chat").and_then(|c| c.parse::<ChatId>().ok()) else {
                eprintln!("subscribe needs --chat ID");
                return std::process::ExitCode::FAILURE;
            };
            let options = SubscribeOptions::default().with_poll(Duration::from_millis(200));
            let Ok(mut events) = subscribe(store, chat, None, options).await else {
                eprintln!("cannot subscribe to {chat}");
                return std::process::ExitCode::FAILURE;
            };
            say("ready");
            while let Some(event) = events.next().await {
                say(&serde_json::to_string(&event).unwrap_or_default());
            }
        }
        _ => {
            eprintln!("the first argument is `worker` or `subscribe`");
            return std::process::ExitCode::FAILURE;
        }
    }
    std::process::ExitCode::SUCCESS
}

async fn worker(store: Arc<dyn ChatStore>, args: &[String]) {
    let source =
        StoreProviderSource::new(Arc::clone(&store), ProviderRegistry::new().with_env(|_| None));
    let mut tools = ToolSet::new();
    let mut rules = ToolRules::new();
    if let Some(dir) = flag(args, "--marks") {
        let dir = std::path::PathBuf::from(dir);
        for (name, idempotent) in [("mark", false), ("peek", true)] {
            tools = tools.with(Arc::new(Marker { name, idempotent, dir: dir.clone() }));
        }
        if let Some(tool) = flag(args, "--ask") {
            rules = rules.ask(tool);
        }
    }
    let deadlines = ActionDeadlines {
        approval: millis(args, "--approval-ms", 24 * 3600 * 1000),
        ..ActionDeadlines::default()
    };
    let mut runner = TurnRunner::new(Arc::clone(&store), Arc::new(source), tools)
        .with_titles(false)
        .with_policy(Arc::new(rules))
        .with_action_deadlines(deadlines);
    if let Some(limit) = flag(args, "--daily-spend-limit").and_then(|v| v.parse().ok()) {
        let limits = SpendLimits::none().owner_per_day(limit);
        runner = runner.with_spend_policy(Arc::new(SpendLimiter::new(limits)));
    }
    let worker = Worker::new(store, runner)
        .with_deadline_sweep(millis(args, "--deadline-sweep-ms", 30_000))
        .with_poll(millis(args, "--poll-ms", 1000))
        .with_heartbeat(millis(args, "--heartbeat-ms", 1000))
        .with_stale_after(millis(args, "--stale-ms", 3000))
        .with_max_turns(flag(args, "--max-turns").and_then(|v| v.parse().ok()).unwrap_or(8))
        .with_turn_listener(Arc::new(|report: &TurnReport| {
            let end = if report.lost { "lost".to_owned() } else { format!("{:?}", report.end) };
            say(&format!("turn {} {end}", report.chat_id));
        }));
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            term.recv().await;
            trigger.cancel();
        }
    });
    say(&format!("ready {}", worker.id()));
    worker.run(shutdown).await;
    say("stopped");
}
