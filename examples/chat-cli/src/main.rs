//! `cargo run -p example-chat-cli`: a terminal chat over chatd. Tokens stream as they come,
//! reasoning is shown dimmed, tool calls with their arguments and results, and a spinner runs
//! while tools work. The prompt `› ` shows when the chat waits for you; while a turn streams,
//! what you type is not echoed into the answer but shown on its own line when you press
//! Enter. Ctrl-C interrupts the running turn (nothing more of it is printed); a second Ctrl-C
//! (or one while idle) exits. Lines starting with `/` are commands (`/help`); anything else is
//! sent — queued while the chat is busy, and its answer says which message it answers. When a tool call waits for approval, the prompt asks `[y]es/[n]o/[e]dit`
//! (a client tool's call asks for its result) and the next lines answer it. When stdin is not a terminal, each message waits for its turn to end
//! before the next line is read, so scripts can drive it.
//!
//! ```text
//! cargo run -p example-chat-cli                          # in memory, offline demo model
//! cargo run -p example-chat-cli -- --database-url postgres://postgres@127.0.0.1:5432/test
//! cargo run -p example-chat-cli -- --base-url http://127.0.0.1:11434/v1 --model qwen3
//! ```

mod clean;
mod commands;
mod decide;
mod printer;
mod tty;

use std::io::IsTerminal;
use std::sync::Arc;

use chatd_core::UserId;
use chatd_core::service::Actor;
use chatd_demo::{ModelFlags, open_store};
use clap::Parser;
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A terminal chat over chatd.
#[derive(Debug, Parser)]
struct Args {
    /// PostgreSQL (default: an in-memory store).
    #[arg(long)]
    database_url: Option<String>,
    #[command(flatten)]
    model: ModelFlags,
    /// Your user id (chats are per user; the default is one fixed local user).
    #[arg(long, default_value = "00000000-0000-7000-8000-00000000c11e")]
    user: uuid::Uuid,
}

/// What the input task hands the main loop.
#[derive(Debug)]
pub(crate) enum Input {
    /// A line typed.
    Line(String),
    /// End of input.
    Eof,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => chatd_demo::startup::report("chat-cli", &*err),
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args = Args::parse();
    let store = open_store(args.database_url.as_deref()).await?;
    let workspaces = tempfile::tempdir()?;
    let setup = args.model.setup(Arc::clone(&store), workspaces.path().to_owned());
    let config = setup.seed().await?;
    let shutdown = CancellationToken::new();
    let workers = setup.spawn_workers(1, &shutdown);
    let chatd = setup.chatd();
    let actor = Actor::user(UserId(args.user));
    let interactive = std::io::stdin().is_terminal();
    println!(
        "chatd chat — model {} ({}); /help lists commands; Ctrl-C interrupts a turn, twice exits",
        config.model,
        if args.database_url.is_some() { "PostgreSQL" } else { "in memory" }
    );

    let (lines, interrupts) = spawn_input();
    let mut session = commands::Session::new(chatd, actor, interactive);
    session.run(lines, interrupts).await;
    // Gives the terminal its echo back (the exit below runs no destructors).
    drop(session);
    shutdown.cancel();
    for worker in workers {
        let _ = worker.await;
    }
    // The stdin reader blocks a thread in a read that the runtime would wait for at exit.
    std::process::exit(0)
}

/// Reads lines, and Ctrl-C presses, each into its own channel.
fn spawn_input() -> (mpsc::Receiver<Input>, mpsc::Receiver<()>) {
    let (lines, lines_rx) = mpsc::channel(16);
    let (tx, interrupts_rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut reader = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        loop {
            let input = match reader.next_line().await {
                Ok(Some(line)) => Input::Line(line),
                _ => Input::Eof,
            };
            let eof = matches!(input, Input::Eof);
            if lines.send(input).await.is_err() || eof {
                return;
            }
        }
    });
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if tx.send(()).await.is_err() {
                return;
            }
        }
    });
    (lines_rx, interrupts_rx)
}
