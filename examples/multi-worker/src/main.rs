//! `cargo run -p example-multi-worker`: chatd across processes, in one command. It finds or starts
//! PostgreSQL (as `scripts/test` does), starts two worker processes and the example server,
//! creates chats, kills one worker with SIGKILL in the middle of its turns, and shows every
//! chat finishing anyway — the other worker's sweep recovers the dead worker's chats once
//! their heartbeats are stale, and re-runs the unfinished step; followers see the turn end
//! as `lost`, then the re-run. Everything it sees is printed as it happens.
//!
//! ```text
//! cargo run -p example-multi-worker             # then watch; exits 0 when every chat finished
//! cargo run -p example-multi-worker -- --serve  # and keep the server (and web UI) running
//! ```
//!
//! Each run uses its own schema (`chatd_demo_<pid>`), dropped at the end.

mod pg;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chatd_core::events::ChatEventKind;
use chatd_core::runtime::worker::{TurnReport, WorkerConfig};
use chatd_core::service::Actor;
use chatd_core::status::TurnEnding;
use chatd_core::store::ChatStore;
use chatd_core::{ChatId, Chatd, NewChat, Role, UserId, WorkerId};
use chatd_demo::{DemoModel, ModelChoice, Setup};
use chatd_server::{AppState, TokenEntry, Tokens};
use chatd_store_postgres::PostgresChatStore;
use clap::{Parser, Subcommand};
use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

/// How long a worker's silence means it is gone (short, for the demo).
const STALE_AFTER: Duration = Duration::from_secs(3);

/// chatd across processes.
#[derive(Debug, Parser)]
struct Args {
    #[command(subcommand)]
    mode: Option<Mode>,
    /// PostgreSQL (default: `$DATABASE_URL`, a server on 127.0.0.1:5432, or a throwaway one).
    #[arg(long)]
    database_url: Option<String>,
    /// How many chats to create.
    #[arg(long, default_value_t = 4)]
    chats: usize,
    /// Where the server listens.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// Keep the server running after the demo (Ctrl-C stops it).
    #[arg(long)]
    serve: bool,
    /// The demo model's pause before each word, in milliseconds.
    #[arg(long, default_value_t = 30)]
    word_delay_ms: u64,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Run one worker process (started by the demo itself).
    Worker {
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        schema: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        word_delay_ms: u64,
    },
}

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn store(url: &str, schema: &str) -> Result<Arc<dyn ChatStore>, Error> {
    chatd_demo::startup::reach_postgres(url).await?;
    let store = PostgresChatStore::connect_in_schema(url, schema).await?;
    store.migrate().await?;
    Ok(Arc::new(store))
}

fn setup(store: Arc<dyn ChatStore>, delay_ms: u64, workspaces: &std::path::Path) -> Setup {
    let mut setup = Setup::new(store, ModelChoice::Demo, workspaces.to_owned());
    setup.demo = DemoModel::with_delay(Duration::from_millis(delay_ms));
    setup
}

/// A worker process: says `ready <id>`, then runs turns until SIGTERM.
async fn worker(url: &str, schema: &str, name: &str, delay_ms: u64) -> Result<(), Error> {
    let workspaces = tempfile::tempdir()?;
    let setup = setup(store(url, schema).await?, delay_ms, workspaces.path());
    let config = WorkerConfig::default()
        .with_heartbeat(Duration::from_millis(500))
        .with_stale_after(STALE_AFTER)
        .with_sweep(Duration::from_millis(500))
        .with_poll(Duration::from_millis(200));
    let label = name.to_owned();
    let worker =
        setup.worker().with_config(config).with_turn_listener(Arc::new(move |r: &TurnReport| {
            println!(
                "[{label}] turn of chat {} over: {:?}{}",
                short(r.chat_id),
                r.end,
                if r.lost { " (lease lost)" } else { "" }
            );
        }));
    println!("ready {}", worker.id().0);
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        if let Some(term) = term.as_mut() {
            term.recv().await;
        }
        stop.cancel();
    });
    worker.run(shutdown).await;
    println!("[{name}] stopped");
    Ok(())
}

fn short(id: ChatId) -> String {
    id.0.simple().to_string()[24..].to_owned()
}

/// A started worker process.
struct Process {
    name: String,
    child: Child,
    id: WorkerId,
}

async fn spawn_worker(
    url: &str,
    schema: &str,
    name: &str,
    delay_ms: u64,
) -> Result<Process, Error> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["worker", "--database-url", url, "--schema", schema, "--name", name])
        .args(["--word-delay-ms", &delay_ms.to_string()])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await??
        .ok_or("the worker exited")?;
    let id = ready.strip_prefix("ready ").ok_or_else(|| format!("unexpected: {ready}"))?;
    let id = WorkerId(id.parse()?);
    println!("[demo] worker {name} is process {} (worker id {})", child.id().unwrap_or(0), id.0);
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            println!("{line}");
        }
    });
    Ok(Process { name: name.to_owned(), child, id })
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => chatd_demo::startup::report("multi-worker", &*err),
    }
}

async fn run() -> Result<(), Error> {
    let args = Args::parse();
    if let Some(Mode::Worker { database_url, schema, name, word_delay_ms }) = &args.mode {
        return worker(database_url, schema, name, *word_delay_ms).await;
    }
    let postgres = pg::Postgres::find(args.database_url.clone())?;
    let schema = format!("chatd_demo_{}", std::process::id());
    println!(
        "[demo] schema {schema}{}",
        if postgres.throwaway() { " in the throwaway cluster" } else { "" }
    );
    chatd_demo::startup::reach_postgres(&postgres.url).await?;
    let pg_store = PostgresChatStore::connect_in_schema(&postgres.url, &schema).await?;
    pg_store.migrate().await?;
    let pool = pg_store.pool().clone();
    let store: Arc<dyn ChatStore> = Arc::new(pg_store);
    let workspaces = tempfile::tempdir()?;
    let setup = setup(Arc::clone(&store), args.word_delay_ms, workspaces.path());
    setup.seed().await?;
    let outcome = demo(&args, &postgres.url, &schema, &setup).await;
    sqlx_drop_schema(&pool, &schema).await;
    match outcome {
        Ok(()) => Ok(()),
        Err(err) => {
            eprintln!("[demo] failed: {err}");
            std::process::exit(1)
        }
    }
}

async fn sqlx_drop_schema(pool: &sqlx::PgPool, schema: &str) {
    // The name is ours (`chatd_demo_<pid>`), never input.
    let statement = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
    match sqlx::query(sqlx::AssertSqlSafe(statement)).execute(pool).await {
        Ok(_) => println!("[demo] dropped schema {schema}"),
        Err(err) => eprintln!("[demo] could not drop schema {schema}: {err}"),
    }
}

async fn demo(args: &Args, url: &str, schema: &str, setup: &Setup) -> Result<(), Error> {
    let mut workers = vec![
        spawn_worker(url, schema, "w1", args.word_delay_ms).await?,
        spawn_worker(url, schema, "w2", args.word_delay_ms).await?,
    ];
    let names: HashMap<WorkerId, String> = workers.iter().map(|w| (w.id, w.name.clone())).collect();

    // The server, with no workers of its own.
    let chatd = Chatd::new(Arc::clone(&setup.store)).with_providers(setup.providers());
    let user = UserId::new();
    let token = uuid::Uuid::new_v4().simple().to_string();
    let tokens = Tokens::from_entries(vec![TokenEntry {
        token: token.clone(),
        user_id: user,
        scopes: vec!["chat:*".into()],
        admin: true,
        name: "demo".into(),
    }])?;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    let stop_server = CancellationToken::new();
    let until = stop_server.clone();
    let router = chatd_server::app(AppState::new(chatd.clone(), tokens));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).with_graceful_shutdown(until.cancelled_owned()).await;
    });
    if args.serve {
        println!("[demo] web UI: http://{addr}/#token={token} (kept after the demo; Ctrl-C stops)");
    } else {
        // A link that dies with the demo would be a trap: only `--serve` prints one.
        println!(
            "[demo] server on http://{addr} while the demo runs (run with --serve to keep it \
             and get a link to the web UI)"
        );
    }

    // Chats, each followed from here.
    let actor = Actor::user(user);
    let ended: Arc<Mutex<HashMap<ChatId, bool>>> = Arc::default();
    let mut chats = Vec::new();
    for n in 0..args.chats {
        let chat = chatd
            .create_chat(
                &actor,
                NewChat::new(user).with_text(format!("tell me a slow story ({})", n + 1)),
            )
            .await?;
        ended.lock().map_err(|_| "poisoned")?.insert(chat.id, false);
        chats.push(chat.id);
        let mut events = chatd.subscribe(&actor, chat.id, None).await?;
        let (chatd, actor, ended, names) =
            (chatd.clone(), actor.clone(), Arc::clone(&ended), names.clone());
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                match &event.kind {
                    ChatEventKind::TurnStarted { turn } => {
                        let on =
                            chatd.get_chat(&actor, chat.id).await.ok().and_then(|c| c.worker_id);
                        let on =
                            on.and_then(|w| names.get(&w).cloned()).unwrap_or_else(|| "?".into());
                        println!("[chat {}] turn {turn} started on {on}", short(chat.id));
                    }
                    ChatEventKind::TurnEnded { turn, ending } => {
                        println!("[chat {}] turn {turn} ended: {ending:?}", short(chat.id));
                        if *ending == TurnEnding::Finished
                            && let Ok(mut ended) = ended.lock()
                        {
                            ended.insert(chat.id, true);
                        }
                    }
                    ChatEventKind::PreviewReset => {
                        println!(
                            "[chat {}] the unfinished step is discarded; it runs again",
                            short(chat.id)
                        );
                    }
                    _ => {}
                }
            }
        });
    }

    // Kill a worker in the middle of its turns.
    let started = Instant::now();
    let victim = loop {
        let mut held: HashMap<WorkerId, Vec<ChatId>> = HashMap::new();
        for chat in &chats {
            if let Some(worker) = chatd.get_chat(&actor, *chat).await?.worker_id {
                held.entry(worker).or_default().push(*chat);
            }
        }
        let busiest = workers.iter().position(|w| held.contains_key(&w.id));
        if let Some(index) = busiest
            && started.elapsed() > Duration::from_millis(1500)
        {
            let victim = workers.remove(index);
            let holds: Vec<String> = held[&victim.id].iter().map(|c| short(*c)).collect();
            println!("[demo] killing {} (SIGKILL) mid-turn; it holds chats {holds:?}", victim.name);
            break (victim, holds.len());
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err("no worker took a chat within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (mut victim, held) = victim;
    victim.child.start_kill()?;
    let _ = victim.child.wait().await;
    println!(
        "[demo] {} is dead; {held} chat(s) wait for the sweep ({STALE_AFTER:?} without a heartbeat)",
        victim.name
    );

    // Every chat finishes.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let done = ended.lock().map_err(|_| "poisoned")?.values().filter(|d| **d).count();
        if done == chats.len() {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("only {done} of {} chats finished within 90 s", chats.len()).into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut all_whole = true;
    for chat in &chats {
        let messages = chatd.list_messages(&actor, *chat, None).await?;
        let answers: Vec<String> =
            messages.iter().filter(|m| m.role == Role::Assistant).map(|m| m.text()).collect();
        let whole = answers.len() == 1
            && answers[0].starts_with("Once upon a time")
            && answers[0].ends_with("The end.");
        all_whole &= whole;
        println!(
            "[chat {}] {} answer(s), {} characters{}",
            short(*chat),
            answers.len(),
            answers.iter().map(String::len).sum::<usize>(),
            if whole { ", whole" } else { ", NOT WHOLE" }
        );
    }
    if !all_whole {
        return Err("an answer is missing or duplicated".into());
    }
    println!("[demo] every chat finished although {} died mid-turn", victim.name);
    if args.serve {
        println!("[demo] still serving http://{addr}/#token={token} — Ctrl-C stops");
        let _ = tokio::signal::ctrl_c().await;
    }
    for mut worker in workers {
        if let Some(pid) = worker.child.id() {
            let pid = nix::unistd::Pid::from_raw(i32::try_from(pid)?);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), worker.child.wait()).await;
    }
    stop_server.cancel();
    let _ = server.await;
    Ok(())
}
