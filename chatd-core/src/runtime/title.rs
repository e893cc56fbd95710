//! Background titles ([BEHAVIOUR §14](crate::behaviour#14-titles)): on a chat's first turn the model proposes a title, which
//! replaces the automatic one only if nobody changed it meanwhile.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::chat::{ChatUpdate, DEFAULT_TITLE};
use crate::ids::ChatId;
use crate::message::Role;
use crate::model_config::ModelConfig;
use crate::provider::{ModelProvider, ModelRequest, PromptMessage};
use crate::store::{ChatStore, MessageQuery};
use crate::title::{auto_title, is_auto_title, normalize_title};

/// How long the title call may take ([BEHAVIOUR §15](crate::behaviour#15-defaults)).
pub(crate) const TITLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The instruction of the title call.
pub(crate) const TITLE_INSTRUCTION: &str = "Write a short title for the conversation that starts with the user's \
message below: at most 8 words, plain text, no quotes, no trailing punctuation. Reply with the title only.";

/// What happened to the title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TitleOutcome {
    /// The generated title was saved.
    Saved(String),
    /// The title is no longer the automatic one, or the proposal equals it (nothing is
    /// written: [BEHAVIOUR §14](crate::behaviour#14-titles)).
    Skipped,
    /// The model failed, timed out or proposed nothing usable (the automatic title stays).
    Failed(String),
}

/// How background titles are made ([BEHAVIOUR §14](crate::behaviour#14-titles), §15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TitleOptions {
    /// How long the title call may take (default `TITLE_TIMEOUT`, 10 s).
    pub timeout: Duration,
    /// The most characters of a generated title (default 80; a store also cuts every title at
    /// its own [`Limits::max_title_chars`](crate::store::Limits::max_title_chars)).
    pub max_chars: usize,
}

impl Default for TitleOptions {
    fn default() -> Self {
        TitleOptions { timeout: TITLE_TIMEOUT, max_chars: crate::title::MAX_TITLE_CHARS }
    }
}

impl TitleOptions {
    /// Sets the timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the most characters of a generated title.
    #[must_use]
    pub fn with_max_chars(mut self, chars: usize) -> Self {
        self.max_chars = chars.max(1);
        self
    }
}

/// Generates and saves the title of `chat` while its title is still the automatic one
/// (the caller decides that this is the chat's first turn: the turn runner checks before
/// it starts the turn's first step). Bounded by `options.timeout`
/// (`TitleOptions::default()`: 10 s); never returns an error: a failure leaves the
/// automatic title.
pub async fn generate_title(
    store: &dyn ChatStore,
    provider: &dyn ModelProvider,
    config: &ModelConfig,
    chat: ChatId,
    options: &TitleOptions,
) -> TitleOutcome {
    let Ok(current) = store.get_chat(chat).await else { return TitleOutcome::Skipped };
    let Ok(messages) = store.list_messages(chat, MessageQuery::all()).await else {
        return TitleOutcome::Skipped;
    };
    let Some(first) = messages.iter().find(|m| m.role == Role::User) else {
        return TitleOutcome::Skipped;
    };
    // The store cut the automatic title at its own configured limit: recognise it at any.
    let automatic = current.title.clone();
    let still_automatic = if auto_title(&first.content).is_some() {
        is_auto_title(&automatic, &first.content)
    } else {
        automatic == DEFAULT_TITLE
    };
    if !still_automatic {
        return TitleOutcome::Skipped; // a person (or an earlier run) set it
    }
    let mut request = ModelRequest::new(
        config.model.clone(),
        vec![PromptMessage::new(Role::User, first.content.clone())],
    )
    .with_system(TITLE_INSTRUCTION);
    request.options.max_output_tokens = Some(64);
    let generation = match tokio::time::timeout(
        options.timeout,
        provider.generate(request, CancellationToken::new()),
    )
    .await
    {
        Ok(Ok(generation)) => generation,
        Ok(Err(err)) => return TitleOutcome::Failed(err.to_string()),
        Err(_) => return TitleOutcome::Failed("the title call timed out".to_owned()),
    };
    let used = generation.usage;
    super::spend::record(store, &current, config.id, crate::usage::CallKind::Title, used).await;
    let text = generation.text();
    let words: Vec<&str> = text.split_whitespace().take(8).collect();
    let Some(title) = normalize_title(&words.join(" ")) else {
        return TitleOutcome::Failed("the model proposed an empty title".to_owned());
    };
    let title: String = title.chars().take(options.max_chars).collect();
    if title == automatic {
        return TitleOutcome::Skipped; // unchanged: no write, no title_change event
    }
    match store.update_chat(chat, ChatUpdate::title_if(automatic.clone(), title.clone())).await {
        // The store may cut it further, to its configured limit.
        Ok(updated) if updated.title != automatic && title.starts_with(&updated.title) => {
            TitleOutcome::Saved(updated.title)
        }
        Ok(_) => TitleOutcome::Skipped,
        Err(err) => TitleOutcome::Failed(err.to_string()),
    }
}

/// Starts [`generate_title`] in the background (the turn never waits for it).
pub(crate) fn spawn_title(
    store: Arc<dyn ChatStore>,
    provider: Arc<dyn ModelProvider>,
    config: ModelConfig,
    chat: ChatId,
    options: TitleOptions,
) -> tokio::task::JoinHandle<TitleOutcome> {
    tokio::spawn(async move {
        generate_title(store.as_ref(), provider.as_ref(), &config, chat, &options).await
    })
}
