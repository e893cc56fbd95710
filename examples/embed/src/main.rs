//! chatd inside an application: the README's "Embed it" program, built by CI as it stands.
//! The store is in memory, or PostgreSQL (in a schema of its own) when `DATABASE_URL` is
//! set; a worker runs turns in-process with the built-in workspace tools plus one typed
//! tool; a message is sent and its turn followed to the end.

use std::sync::Arc;
use std::time::Duration;

use chatd_core::{
    Actor, ChatStore, Chatd, LocalWorkspace, NewChat, NewModelConfig, NewProvider, ProviderKind,
    SendMessage, ToolContext, ToolError, ToolSet, TurnRunner, Typed, TypedTool, UserId, Worker,
};
use chatd_providers::{ProviderRegistry, StoreProviderSource};
use chatd_store_memory::InMemoryChatStore;
use chatd_store_postgres::PostgresChatStore;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Arguments of `word_count`.
#[derive(Deserialize, JsonSchema)]
struct WordCountArgs {
    /// The text to count the words of.
    text: String,
}

/// A tool of the host application, with typed arguments.
struct WordCount;

#[async_trait::async_trait]
impl TypedTool for WordCount {
    type Args = WordCountArgs;
    fn name(&self) -> &str {
        "word_count"
    }
    fn description(&self) -> &str {
        "Count the words of a text."
    }
    async fn call(&self, _ctx: &ToolContext, args: WordCountArgs) -> Result<Value, ToolError> {
        Ok(json!({"words": args.text.split_whitespace().count()}))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store: Arc<dyn ChatStore> = match std::env::var("DATABASE_URL") {
        Ok(url) => {
            let store = PostgresChatStore::connect_in_schema(&url, "chatd").await?;
            store.migrate().await?; // its own history table: the host's migrations are untouched
            Arc::new(store)
        }
        Err(_) => Arc::new(InMemoryChatStore::new()),
    };
    let key = std::env::var("OPENAI_API_KEY").unwrap_or_default();
    store.create_provider(NewProvider::new(ProviderKind::OpenAi).with_api_key(key)).await?;
    store
        .create_model_config(NewModelConfig::new(ProviderKind::OpenAi, "gpt-4.1-mini", 128_000))
        .await?;

    // Workers: here one, in-process; any number of processes can share a PostgreSQL store.
    let workspace = tempfile::tempdir()?;
    let tools = ToolSet::workspace(Arc::new(LocalWorkspace::open(workspace.path())?))
        .with(Arc::new(Typed(WordCount)));
    let providers = Arc::new(StoreProviderSource::new(Arc::clone(&store), ProviderRegistry::new()));
    let runner = TurnRunner::new(Arc::clone(&store), providers, tools);
    let worker = Worker::new(Arc::clone(&store), runner);
    let health = worker.health();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.run(shutdown.clone()));

    // The service: every call checks the actor.
    let chatd = Chatd::new(Arc::clone(&store));
    let me = UserId::new();
    let actor = Actor::user(me);
    let chat = chatd.create_chat(&actor, NewChat::new(me)).await?;
    let message = SendMessage::text("How many words are in 'the quick brown fox'?");
    match chatd.send_and_wait(&actor, chat.id, message, Duration::from_secs(120)).await {
        Ok(turn) => {
            println!("turn {} ended: {:?}", turn.turn, turn.ending);
            for message in turn.messages {
                println!("{}: {}", message.role, message.text());
            }
        }
        Err(err) => println!("no answer: {err}"),
    }
    println!("worker: {:?}", health.snapshot());
    shutdown.cancel();
    running.await?;
    Ok(())
}
