//! Shared by the turn and compaction tests: a scripted provider source, an echo tool, and
//! a chat acquired on the in-memory store.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chatd_core::provider::{ModelProvider, ProviderError};
use chatd_core::runtime::retry::RetryPolicy;
use chatd_core::runtime::tools::{Tool, ToolContext, ToolError, ToolSet};
use chatd_core::runtime::turn::{ProviderSource, TurnRunner};
use chatd_core::store::{ChatStore, Lease, MessageQuery};
use chatd_core::testing::{ScriptedCall, ScriptedProvider};
use chatd_core::{
    ChatId, Message, ModelConfig, NewChat, NewModelConfig, NewProvider, ProviderKind, Role, UserId,
    WorkerId,
};
use chatd_store_memory::InMemoryChatStore;
use serde_json::{Value, json};

/// Hands out one scripted provider for every config.
pub struct Scripted(pub Arc<ScriptedProvider>);

#[async_trait]
impl ProviderSource for Scripted {
    async fn provider(
        &self,
        _config: &ModelConfig,
    ) -> Result<Arc<dyn ModelProvider>, ProviderError> {
        Ok(Arc::clone(&self.0) as Arc<dyn ModelProvider>)
    }
}

/// A tool that echoes its arguments, or waits forever when told to.
pub struct Echo;

#[async_trait]
impl Tool for Echo {
    fn name(&self) -> &str {
        "echo"
    }
    fn description(&self) -> &str {
        "echo"
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object"})
    }
    async fn run(&self, _ctx: &ToolContext, args: Value) -> Result<Value, ToolError> {
        if args["hang"] == true {
            futures::future::pending::<()>().await;
        }
        Ok(args)
    }
}

pub struct Fixture {
    pub store: Arc<dyn ChatStore>,
    pub provider: Arc<ScriptedProvider>,
    pub chat: ChatId,
    pub lease: Lease,
}

/// A pending chat ("sys", "do it") acquired by a worker, with a 200 000-token Anthropic config.
pub async fn fixture(calls: Vec<ScriptedCall>) -> Fixture {
    fixture_with(NewModelConfig::new(ProviderKind::Anthropic, "claude-test", 200_000), calls).await
}

/// [`fixture`] with this (default) model config.
pub async fn fixture_with(config: NewModelConfig, calls: Vec<ScriptedCall>) -> Fixture {
    let store: Arc<dyn ChatStore> = Arc::new(InMemoryChatStore::new());
    store.create_provider(NewProvider::new(config.provider)).await.expect("provider");
    store.create_model_config(config.as_default()).await.expect("config");
    let chat = store
        .create_chat(NewChat::new(UserId::new()).with_system_prompt("sys").with_text("do it"))
        .await
        .expect("chat");
    let lease = store.acquire(WorkerId::new(), 1).await.expect("acquire")[0];
    Fixture {
        store,
        provider: Arc::new(ScriptedProvider::new(ProviderKind::Anthropic, calls)),
        chat: chat.id,
        lease,
    }
}

impl Fixture {
    pub fn runner(&self) -> TurnRunner {
        let mut retry = RetryPolicy::default();
        retry.base = Duration::from_millis(5);
        TurnRunner::new(
            Arc::clone(&self.store),
            Arc::new(Scripted(Arc::clone(&self.provider))),
            ToolSet::new().with(Arc::new(Echo)),
        )
        .with_retry(retry)
        .with_titles(false)
    }

    pub async fn messages(&self) -> Vec<Message> {
        self.store.list_messages(self.chat, MessageQuery::all()).await.expect("messages")
    }

    pub async fn roles(&self) -> Vec<Role> {
        self.messages().await.iter().map(|m| m.role).collect()
    }
}

/// Processes anywhere on the machine (zombies and this test process aside) whose command
/// line holds `marker`: inside a PID namespace `$$` means nothing out here, a marker does.
pub fn processes_with(marker: &str) -> Vec<String> {
    let own = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.to_owned();
            if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == own {
                return None;
            }
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let state = stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next());
            if matches!(state, Some("Z" | "X")) {
                return None;
            }
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            text.contains(marker).then(|| format!("{pid}: {text}"))
        })
        .collect()
}
