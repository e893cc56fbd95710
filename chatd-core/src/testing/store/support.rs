//! Fixtures and the completeness check of the conformance suite.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::store::{ChatStore, Lease, SendMessage, Step};
use crate::{
    Chat, ChatId, ChatStatus, Message, ModelConfig, NewChat, NewMessage, NewModelConfig,
    NewProvider, Part, ProviderKind, TurnOutcome, UserId, WorkerId,
};

/// The store under test.
pub type StoreRef = Arc<dyn ChatStore>;

/// The scenario sources, scanned by [`assert_complete`].
const SOURCES: &[(&str, &str)] = &[
    ("chats", include_str!("chats.rs")),
    ("messages", include_str!("messages.rs")),
    ("intents", include_str!("intents.rs")),
    ("worker", include_str!("worker.rs")),
    ("config", include_str!("config.rs")),
    ("diff", include_str!("diff.rs")),
    ("feed", include_str!("feed.rs")),
    ("secrets", include_str!("secrets.rs")),
    ("input", include_str!("input.rs")),
    ("lifecycle", include_str!("lifecycle.rs")),
    ("calls", include_str!("calls.rs")),
    ("client_ids", include_str!("client_ids.rs")),
    ("usage", include_str!("usage.rs")),
    ("fairness", include_str!("fairness.rs")),
    ("spend_holds", include_str!("spend_holds.rs")),
    ("history", include_str!("history.rs")),
    ("labels", include_str!("labels.rs")),
    ("retention", include_str!("retention.rs")),
    ("files", include_str!("files.rs")),
];

/// Every scenario defined in the suite's sources, as `module::name`.
#[must_use]
pub fn defined_scenarios() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (module, source) in SOURCES {
        for line in source.lines() {
            if let Some(rest) = line.strip_prefix("pub async fn ") {
                let name: String =
                    rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                names.insert(format!("{module}::{name}"));
            }
        }
    }
    names
}

/// Panics unless `expanded` (what a backend's macro call expanded) names every scenario of
/// the suite exactly once.
///
/// # Panics
/// With the missing, unknown or repeated names.
pub fn assert_complete(expanded: &[&str]) {
    let defined = defined_scenarios();
    let expanded_set: BTreeSet<String> = expanded.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(expanded_set.len(), expanded.len(), "a scenario is expanded twice");
    let missing: Vec<_> = defined.difference(&expanded_set).collect();
    let unknown: Vec<_> = expanded_set.difference(&defined).collect();
    assert!(missing.is_empty() && unknown.is_empty(), "missing: {missing:?}, unknown: {unknown:?}");
    assert!(
        defined.len() >= 60,
        "the suite must keep at least 60 scenarios, has {}",
        defined.len()
    );
}

/// A store with one provider (`openai`) and one default model config, and helpers to drive
/// chats through their life.
pub struct Fixture {
    /// The store.
    pub store: StoreRef,
    /// The owner of the chats the helpers create.
    pub owner: UserId,
    /// The default model config.
    pub config: ModelConfig,
    /// The worker the helpers acquire with.
    pub worker: WorkerId,
}

impl Fixture {
    /// Configures `openai` and a default `gpt-test` model config (context 1000).
    ///
    /// # Panics
    /// If the store refuses.
    pub async fn new(store: StoreRef) -> Fixture {
        store
            .create_provider(NewProvider::new(ProviderKind::OpenAi).with_api_key("sk-test"))
            .await
            .expect("provider");
        let config = store
            .create_model_config(NewModelConfig::new(ProviderKind::OpenAi, "gpt-test", 1000))
            .await
            .expect("model config");
        Fixture { store, owner: UserId::new(), config, worker: WorkerId::new() }
    }

    /// A pending chat whose first message is `text`.
    ///
    /// # Panics
    /// If the store refuses.
    pub async fn chat(&self, text: &str) -> Chat {
        self.store.create_chat(NewChat::new(self.owner).with_text(text)).await.expect("create chat")
    }

    /// A waiting chat with no messages.
    ///
    /// # Panics
    /// If the store refuses.
    pub async fn idle_chat(&self) -> Chat {
        self.store.create_chat(NewChat::new(self.owner)).await.expect("create idle chat")
    }

    /// Acquires the only pending chat, which must be `chat`.
    ///
    /// # Panics
    /// If another chat (or none) is acquired.
    pub async fn acquire(&self, chat: ChatId) -> Lease {
        let leases = self.store.acquire(self.worker, 1).await.expect("acquire");
        assert_eq!(leases.len(), 1, "expected to acquire {chat}");
        assert_eq!(leases[0].chat_id, chat, "acquired another chat");
        leases[0]
    }

    /// A new chat, acquired: `running`.
    ///
    /// # Panics
    /// If the store refuses.
    pub async fn running(&self, text: &str) -> (Chat, Lease) {
        let chat = self.chat(text).await;
        let lease = self.acquire(chat.id).await;
        (self.get(chat.id).await, lease)
    }

    /// Commits a one-text-part assistant step.
    ///
    /// # Panics
    /// If the store refuses.
    pub async fn answer(&self, lease: &Lease, text: &str) -> Vec<Message> {
        let step = Step::new(Some(NewMessage::assistant(vec![Part::text(text)])), vec![]);
        self.store.commit_step(lease, step).await.expect("commit step")
    }

    /// Releases as finished.
    ///
    /// # Panics
    /// If the store refuses.
    pub async fn finish(&self, lease: &Lease) -> Chat {
        self.store.release(lease, TurnOutcome::Finished).await.expect("release")
    }

    /// Runs a whole turn: acquire, answer, release. Returns the chat after release.
    ///
    /// # Panics
    /// If the store refuses.
    pub async fn run_turn(&self, chat: ChatId, answer: &str) -> Chat {
        let lease = self.acquire(chat).await;
        self.answer(&lease, answer).await;
        self.finish(&lease).await
    }

    /// Reads a chat.
    ///
    /// # Panics
    /// If it does not exist.
    pub async fn get(&self, chat: ChatId) -> Chat {
        self.store.get_chat(chat).await.expect("get chat")
    }

    /// The chat's status.
    ///
    /// # Panics
    /// If it does not exist.
    pub async fn status(&self, chat: ChatId) -> ChatStatus {
        self.get(chat).await.status
    }

    /// Sends a text message with default behaviour.
    ///
    /// # Panics
    /// If the store refuses.
    pub async fn send(&self, chat: ChatId, text: &str) -> crate::store::SendOutcome {
        self.store.send_message(chat, SendMessage::text(text)).await.expect("send")
    }

    /// Every message's text, in order.
    ///
    /// # Panics
    /// If the chat does not exist.
    pub async fn texts(&self, chat: ChatId) -> Vec<String> {
        self.store
            .list_messages(chat, crate::store::MessageQuery::all())
            .await
            .expect("list messages")
            .iter()
            .map(Message::text)
            .collect()
    }
}
