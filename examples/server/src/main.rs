//! `cargo run -p example-server`: the chatd example service with its web UI.
//!
//! ```text
//! cargo run -p example-server                           # in memory, offline demo model, 2 workers
//! cargo run -p example-server -- --database-url postgres://postgres@127.0.0.1:5432/test
//! cargo run -p example-server -- --base-url https://api.openai.com/v1 --model gpt-4.1-mini  # key: OPENAI_API_KEY
//! CHATD_TOKENS="secret=0190c1a2-0000-7000-8000-000000000001:admin" cargo run -p example-server
//! ```
//!
//! Without `--tokens` or `CHATD_TOKENS` it makes two users — an administrator and a guest —
//! and prints a link per user that signs the browser in.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use chatd_core::UserId;
use chatd_demo::{ModelChoice, ModelFlags, open_store};
use chatd_server::{AppState, ServeOptions, TokenEntry, Tokens, app, serve};
use clap::Parser;
use tokio_util::sync::CancellationToken;

/// The chatd example service.
#[derive(Debug, Parser)]
struct Args {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// PostgreSQL (default: an in-memory store).
    #[arg(long)]
    database_url: Option<String>,
    /// Workers to run in this process (0: turns run elsewhere, e.g. `multi-worker`).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    #[command(flatten)]
    model: ModelFlags,
    /// A token file: `{"tokens": [{"token", "user_id", "scopes", "admin", "name"}]}`.
    #[arg(long)]
    tokens: Option<PathBuf>,
    /// Where chats' workspaces live (default: a temporary directory).
    #[arg(long)]
    workspaces: Option<PathBuf>,
}

/// Where the demo users of a server on PostgreSQL are kept between runs (`CHATD_USERS_FILE`,
/// default `./chatd-users.json`, beside `./chatd-secret.key`).
fn users_file() -> PathBuf {
    std::env::var_os("CHATD_USERS_FILE")
        .map_or_else(|| PathBuf::from("chatd-users.json"), PathBuf::from)
}

fn tokens(args: &Args) -> Result<(Tokens, Vec<(String, String)>), String> {
    if let Some(path) = &args.tokens {
        return Ok((Tokens::from_file(path)?, Vec::new()));
    }
    if let Ok(value) = std::env::var("CHATD_TOKENS") {
        return Ok((Tokens::from_env_value(&value)?, Vec::new()));
    }
    let links = |entries: &[TokenEntry]| -> Vec<(String, String)> {
        entries.iter().map(|e| (e.name.clone(), e.token.clone())).collect()
    };
    // On PostgreSQL the chats outlive the process: so must their owners, or a restart
    // would show an empty list and old links would stop working.
    let keep = args.database_url.is_some().then(users_file);
    if let Some(path) = keep.as_ref().filter(|p| p.exists()) {
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("cannot read the demo users in {}: {err}", path.display()))?;
        let file: serde_json::Value = serde_json::from_str(&text)
            .map_err(|err| format!("{} is not a token file: {err}", path.display()))?;
        let entries: Vec<TokenEntry> = serde_json::from_value(file["tokens"].clone())
            .map_err(|err| format!("{} is not a token file: {err}", path.display()))?;
        eprintln!("demo users from {} (delete it for new ones)", path.display());
        return Ok((Tokens::from_entries(entries.clone())?, links(&entries)));
    }
    let entry = |name: &str, admin: bool| TokenEntry {
        token: uuid::Uuid::new_v4().simple().to_string(),
        user_id: UserId::new(),
        scopes: vec!["chat:*".into()],
        admin,
        name: name.into(),
    };
    let entries = vec![entry("admin", true), entry("guest", false)];
    if let Some(path) = &keep {
        let text = serde_json::json!({ "tokens": entries }).to_string();
        write_private(path, &text)
            .map_err(|err| format!("cannot keep the demo users in {}: {err}", path.display()))?;
        eprintln!(
            "demo users kept in {} for the next start (their tokens sign in)",
            path.display()
        );
    }
    Ok((Tokens::from_entries(entries.clone())?, links(&entries)))
}

/// Writes `text` to a new file only its owner can read (it holds sign-in tokens).
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(text.as_bytes())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => chatd_demo::startup::report("server", &*err),
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // Warnings and errors only: notices of idempotent migrations are noise here.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .init();
    let args = Args::parse();
    let store = open_store(args.database_url.as_deref()).await?;
    // After the store: a start that fails leaves no users file behind.
    let (tokens, links) = tokens(&args)?;
    let choice = args.model.choice();
    let scratch = tempfile::tempdir()?;
    let workspaces = args.workspaces.clone().unwrap_or_else(|| scratch.path().to_owned());
    let setup = args.model.setup(Arc::clone(&store), workspaces.clone());
    let config = setup.seed().await?;

    let shutdown = CancellationToken::new();
    let workers = setup.spawn_workers(args.workers, &shutdown);
    let chatd = setup.chatd();
    let state = AppState::new(chatd, tokens).with_ask_switch(setup.ask.clone());
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|err| chatd_demo::startup::cannot_listen(args.listen, &err))?;
    let addr = listener.local_addr()?;
    println!("chatd server on http://{addr}");
    println!(
        "  store: {}; model: {} ({}); {} in-process worker(s); workspaces in {}",
        if args.database_url.is_some() { "PostgreSQL" } else { "in memory" },
        config.model,
        if choice == ModelChoice::Demo { "offline demo" } else { "OpenAI-compatible" },
        args.workers,
        workspaces.display()
    );
    for (name, token) in &links {
        println!("  open as {name}: http://{addr}/#token={token}");
    }
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    // Header-read timeout and connection cap: what `axum::serve` cannot set.
    serve(listener, app(state), ServeOptions::default(), shutdown.clone()).await?;
    shutdown.cancel();
    for worker in workers {
        let _ = worker.await;
    }
    Ok(())
}
