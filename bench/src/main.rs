//! `chatd-bench`: chatd's benchmarks.
//!
//! Every scenario measures chatd **and a raw baseline doing the same work in the same run**,
//! and prints one JSON object per measurement:
//!
//! ```text
//! {"scenario","metric","unit","value","baseline","ratio","target","pass"}
//! ```
//!
//! The ratio is the figure that matters; absolute numbers depend on the machine.
//!
//! Run: `cargo run --release -p chatd-bench -- <scenario|all> [--quick]`
//! (see `BENCHMARKS.md` for the latest numbers).

mod attachments;
mod capacity;
mod execute;
mod memory_store;
mod pg;
mod report;
mod search;
mod soak;
mod sse;
mod streams;
mod tool_step;
mod turn;

use std::process::ExitCode;

use clap::{Parser, ValueEnum};

/// chatd benchmarks: each measurement next to a raw baseline from the same run.
#[derive(Debug, Parser)]
#[command(name = "chatd-bench", version)]
struct Args {
    /// The scenario to run.
    scenario: Scenario,
    /// Smaller sizes, for a smoke run (seconds instead of minutes).
    #[arg(long)]
    quick: bool,
    /// `capacity` at this many chats only (with `--workers`, default 1).
    #[arg(long)]
    chats: Option<usize>,
    /// `capacity` with this many worker processes only.
    #[arg(long)]
    workers: Option<usize>,
    /// `soak`: a shell command that restarts the database, run once halfway (for example
    /// `pg_ctlcluster 15 main restart`; never in `scripts/test`, whose server is shared).
    #[arg(long)]
    restart_db: Option<String>,
    /// How long `soak` runs, in minutes (default 5; `--quick` 0.5).
    #[arg(long)]
    minutes: Option<f64>,
    /// `capacity`, `soak`: the fake model asks for a tool call on every n-th request
    /// (default: never; `--quick`: 4).
    #[arg(long)]
    tool_every: Option<usize>,
    /// `capacity`, `soak`: every n-th request fails with a retryable 503 (default: never;
    /// `--quick`: 9).
    #[arg(long)]
    fail_every: Option<usize>,
    /// `capacity`, `soak`: every n-th request waits five times as long for its first token
    /// (default: never; `--quick`: 6).
    #[arg(long)]
    slow_every: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Every scenario.
    All,
    /// `InMemoryChatStore` turn cycles vs a plain `Mutex<HashMap>`.
    MemoryStore,
    /// PostgreSQL acquire + release cycles vs hand-written claim SQL (1/8/32 claimers, backlog).
    PgClaim,
    /// PostgreSQL `commit_step` of 1 KiB rows vs a raw INSERT.
    PgAppend,
    /// PostgreSQL `prompt_messages` with 100 000 vs 100 messages before the boundary.
    PgHistory,
    /// SSE decoding throughput and chunk-boundary behaviour.
    SseParse,
    /// A whole turn (acquire, stream 500 deltas, persist, release) vs reading the answer.
    TurnOverhead,
    /// PostgreSQL: catching up on 1 000 parts (first event, live) vs reading the rows.
    Resume,
    /// In memory: one turn to 1 / 100 / 1 000 subscribers vs a bare broadcast; idle memory.
    Fanout,
    /// PostgreSQL: pending → running through the feed vs a bare NOTIFY round trip.
    Pickup,
    /// PostgreSQL: a worker dies mid-turn; time until another finishes the chat.
    Recovery,
    /// `execute` of a trivial command, Landlock-confined vs unconfined (and vs a bare spawn).
    ExecuteOverhead,
    /// A turn with one allowed side-effecting call (recorded: two writes) vs the same turn
    /// with an idempotent call (one write, the path before durable tool calls).
    ToolStep,
    /// PostgreSQL: C streaming chats on W worker processes (paced fake model, a subscriber
    /// per chat): turns/s, token latency overhead, CPU, memory and database cost per turn.
    Capacity,
    /// PostgreSQL: the chat list's text search over 100 000 chats and 1 000 000 messages vs
    /// the same tsquery by hand, and the plan's use of the index.
    Search,
    /// PostgreSQL: loading the prompt of a chat with 20 images in its history (references)
    /// vs the same chat without them, and vs the images inline in the rows.
    Attachments,
    /// The capacity load under faults (workers killed, frozen, disconnected), then an
    /// audit; not part of `all`.
    Soak,
}

fn print(reports: &[report::Report]) {
    for report in reports {
        println!("{}", report.to_json());
    }
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("chatd-bench: cannot start the tokio runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    // Started by `capacity` as one of its worker processes.
    if let Ok(url) = std::env::var(capacity::WORKER_ENV) {
        return match runtime.block_on(capacity::worker_process(url)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("chatd-bench worker: {err}");
                ExitCode::FAILURE
            }
        };
    }
    let args = Args::parse();
    let quick = args.quick;
    let wants = |s: Scenario| args.scenario == Scenario::All || args.scenario == s;
    let outcome: Result<(), Box<dyn std::error::Error + Send + Sync>> = runtime.block_on(async {
        if wants(Scenario::MemoryStore) {
            print(&memory_store::run(quick).await);
        }
        if wants(Scenario::SseParse) {
            print(&sse::run(quick).await);
        }
        if wants(Scenario::ExecuteOverhead) {
            print(&execute::run(quick).await?);
        }
        if wants(Scenario::TurnOverhead) {
            print(&turn::run(quick).await?);
        }
        if wants(Scenario::ToolStep) {
            print(&tool_step::run(quick).await?);
        }
        if wants(Scenario::Fanout) {
            print(&streams::fanout(quick).await?);
        }
        if wants(Scenario::Resume) {
            print(&streams::resume(quick).await?);
        }
        if wants(Scenario::Pickup) {
            print(&streams::pickup(quick).await?);
        }
        if wants(Scenario::Recovery) {
            print(&streams::recovery(quick).await?);
        }
        if wants(Scenario::PgClaim) {
            print(&pg::claim(quick).await?);
        }
        if wants(Scenario::PgAppend) {
            print(&pg::append(quick).await?);
        }
        if wants(Scenario::PgHistory) {
            print(&pg::history(quick).await?);
        }
        if wants(Scenario::Search) {
            print(&search::run(quick).await?);
        }
        if wants(Scenario::Attachments) {
            print(&attachments::run(quick).await?);
        }
        let mix = capacity::Mix {
            tool_every: args.tool_every.unwrap_or(if quick { 4 } else { 0 }),
            fail_every: args.fail_every.unwrap_or(if quick { 9 } else { 0 }),
            slow_every: args.slow_every.unwrap_or(if quick { 6 } else { 0 }),
        };
        if wants(Scenario::Capacity) {
            let only = (args.chats.is_some() || args.workers.is_some())
                .then(|| (args.chats.unwrap_or(10), args.workers.unwrap_or(1)));
            print(&capacity::run(quick, only, mix).await?);
        }
        if args.scenario == Scenario::Soak {
            let minutes = args.minutes.unwrap_or(if quick { 0.5 } else { 5.0 });
            println!("{}", soak::run(minutes, quick, mix, args.restart_db.clone()).await?);
        }
        Ok(())
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("chatd-bench: {err}");
            ExitCode::FAILURE
        }
    }
}
