//! One real tool-using turn, end to end: an in-memory store, a temporary local workspace
//! with the built-in tools, the OpenAI-compatible adapter, and the turn runner.
//!
//! Needs nothing by default: it starts a local fake OpenAI-compatible server that plays a
//! scripted demo (and says so). To talk to a real server instead:
//!
//! ```text
//! cargo run -p example-quickstart
//! cargo run -p example-quickstart -- --base-url https://api.openai.com/v1 --model gpt-4.1-mini  # key from OPENAI_API_KEY
//! cargo run -p example-quickstart -- --base-url http://127.0.0.1:11434/v1 --model qwen3 --api-key none
//! cargo run -p example-quickstart -- --trace  # also print the turn's spans (OpenTelemetry GenAI names) to stderr, after the turn
//! ```

use std::error::Error;
use std::io::Write;
use std::sync::Arc;

use chatd_core::Message;
use chatd_core::provider::StreamEvent;
use chatd_core::runtime::tools::{LocalWorkspace, ToolSet};
use chatd_core::runtime::turn::{RetryNotice, TurnEnd, TurnObserver, TurnRunner, TurnSignal};
use chatd_core::store::ChatStore;
use chatd_core::{
    ChatId, NewChat, NewModelConfig, NewProvider, Part, ProviderKind, UserId, WorkerId,
};
use chatd_providers::testing::{FakeResponse, FakeServer};
use chatd_providers::{ProviderRegistry, StoreProviderSource};
use chatd_store_memory::InMemoryChatStore;
use clap::Parser;
use serde_json::json;

/// Run one tool-using chatd turn.
#[derive(Debug, Parser)]
struct Args {
    /// An OpenAI-compatible endpoint (default: a local fake server with a scripted demo).
    #[arg(long)]
    base_url: Option<String>,
    /// The model name.
    #[arg(long, default_value = "demo-model")]
    model: String,
    /// Print the turn's tracing spans (turn, model calls, tool calls) to stderr.
    #[arg(long)]
    trace: bool,
    /// The API key (default: OPENAI_API_KEY).
    #[arg(long)]
    api_key: Option<String>,
    /// What to ask.
    #[arg(long, default_value = "Create notes.md saying hello, then list the workspace.")]
    prompt: String,
}

/// The trace's lines, kept until the turn has been printed (spans close while text streams:
/// written at once, they would cut the answer's lines).
#[derive(Clone, Default)]
struct TraceBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for TraceBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut kept) = self.0.lock() {
            kept.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl TraceBuffer {
    /// Prints what was kept to stderr, under a heading.
    fn print(&self) {
        let kept = self.0.lock().map(|k| k.clone()).unwrap_or_default();
        if !kept.is_empty() {
            eprintln!("\n── trace: the turn's spans, as they closed ──");
            let _ = std::io::stderr().write_all(&kept);
        }
    }
}

/// Prints the turn as it happens.
struct Printer;

impl TurnObserver for Printer {
    fn on_event(&self, _chat: ChatId, _attempt: u32, event: &StreamEvent) {
        if let StreamEvent::TextDelta { delta, .. } = event {
            print!("{delta}");
            let _ = std::io::stdout().flush();
        }
    }

    fn on_retry(&self, _chat: ChatId, notice: &RetryNotice) {
        println!("\n[retry {} in {:?}: {}]", notice.attempt, notice.delay, notice.error);
    }

    fn on_step(&self, _chat: ChatId, messages: &[Message]) {
        for message in messages {
            for part in &message.content {
                match part {
                    Part::ToolCall { tool_name, args, .. } => println!("\n→ {tool_name} {args}"),
                    Part::ToolResult { result, is_error, .. } => {
                        let shown = result.to_string();
                        let shown = shown.get(..shown.floor_char_boundary(300)).unwrap_or(&shown);
                        println!("← {}{shown}", if *is_error { "error: " } else { "" });
                    }
                    _ => {}
                }
            }
            if let Some(usage) = message.usage {
                println!(
                    "\n[usage: {} in (+{} cached), {} out, {} total]",
                    usage.input_tokens,
                    usage.cache_read_tokens,
                    usage.output_tokens,
                    usage.total_tokens
                );
            }
        }
    }
}

fn sse(chunks: &[serde_json::Value]) -> Vec<u8> {
    let mut body = String::new();
    for chunk in chunks {
        body.push_str(&format!("data: {chunk}\n\n"));
    }
    body.push_str("data: [DONE]\n\n");
    body.into_bytes()
}

/// The scripted demo: write a file, list the directory, then answer.
fn demo_script() -> Vec<FakeResponse> {
    let call = |index: u32, id: &str, name: &str, args: serde_json::Value| {
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": index, "id": id, "type": "function",
            "function": {"name": name, "arguments": args.to_string()}}]}, "finish_reason": null}]})
    };
    let finish = |reason: &str, prompt: u32, completion: u32| {
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}],
               "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}})
    };
    let text = |t: &str| json!({"choices": [{"index": 0, "delta": {"content": t}, "finish_reason": null}]});
    vec![
        FakeResponse::sse(sse(&[
            text("I'll write the note, then list the workspace."),
            call(
                0,
                "call_write",
                "write_file",
                json!({"path": "notes.md", "content": "hello from chatd\n"}),
            ),
            finish("tool_calls", 420, 38),
        ])),
        FakeResponse::sse(sse(&[
            call(0, "call_list", "execute", json!({"command": "ls -l && cat notes.md"})),
            finish("tool_calls", 510, 21),
        ])),
        FakeResponse::sse(sse(&[
            text("Done: `notes.md` now says \"hello from chatd\", "),
            text("and it is the only file in the workspace."),
            finish("stop", 640, 25),
        ])),
    ]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    let trace = TraceBuffer::default();
    if args.trace {
        // Each span is recorded when it closes, with its attributes: the turn
        // (`invoke_agent`), each model call (`chat`) and each tool call (`execute_tool`).
        let writer = trace.clone();
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_max_level(tracing::Level::INFO)
            .init();
    }
    let mut _demo_server = None;
    let live = args.base_url.is_some();
    let (base_url, api_key) = match args.base_url {
        Some(url) => {
            println!("chatd quickstart: talking to {url} (model {})", args.model);
            let key =
                args.api_key.or_else(|| std::env::var("OPENAI_API_KEY").ok()).unwrap_or_default();
            (url, key)
        }
        None => {
            let server = FakeServer::start(demo_script()).await?;
            println!(
                "chatd quickstart: offline demo — a local fake OpenAI-compatible server plays a scripted model"
            );
            let url = server.url().to_owned();
            _demo_server = Some(server);
            (url, String::new())
        }
    };

    let workspace_dir = tempfile::tempdir()?;
    println!("workspace: {}\n", workspace_dir.path().display());
    let store: Arc<dyn ChatStore> = Arc::new(InMemoryChatStore::new());
    store
        .create_provider(
            NewProvider::new(ProviderKind::OpenAiCompat)
                .with_base_url(base_url)
                .with_api_key(api_key),
        )
        .await?;
    store
        .create_model_config(NewModelConfig::new(ProviderKind::OpenAiCompat, &args.model, 128_000))
        .await?;
    store
        .create_chat(
            NewChat::new(UserId::new())
                .with_system_prompt(
                    "You are a coding agent working in a small workspace. Use the tools.",
                )
                .with_text(&args.prompt),
        )
        .await?;
    println!("you: {}\n", args.prompt);

    let lease = store
        .acquire(WorkerId::new(), 1)
        .await?
        .into_iter()
        .next()
        .ok_or("the chat was not acquired")?;
    let tools = ToolSet::workspace(Arc::new(LocalWorkspace::open(workspace_dir.path())?));
    let source = StoreProviderSource::new(Arc::clone(&store), ProviderRegistry::new());
    // The demo's fake server answers in order, so the background title call (a second,
    // concurrent model call) only runs against a real server.
    let runner = TurnRunner::new(Arc::clone(&store), Arc::new(source), tools)
        .with_observer(Arc::new(Printer))
        .with_titles(live);
    print!("assistant: ");
    let end = runner.run(lease, TurnSignal::new()).await;
    println!();
    match end {
        TurnEnd::Release(outcome) => {
            tokio::time::sleep(std::time::Duration::from_millis(if live { 2000 } else { 0 })).await;
            let chat = store.release(&lease, outcome).await?;
            println!("title: {}", chat.title);
            println!(
                "turn ended; chat is {}{}",
                chat.status,
                chat.last_error.map(|e| format!(": {e}")).unwrap_or_default()
            );
        }
        TurnEnd::LeaseLost => println!("the lease was lost"),
        other => println!("the turn ended: {other:?}"),
    }
    let _ = std::io::stdout().flush();
    trace.print();
    Ok(())
}
