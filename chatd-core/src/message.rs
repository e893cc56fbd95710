//! Persisted messages (`chat_messages`) and queued messages (`chat_queued_messages`).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ChatId, MessageId, ModelConfigId, QueuedMessageId};
use crate::part::Part;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Instructions for the model (system prompt, compaction boundary).
    System,
    /// A person.
    User,
    /// The model.
    Assistant,
    /// A tool result (one row per result).
    Tool,
}

impl Role {
    /// The database spelling.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown role or visibility spelling read from storage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}`")]
pub struct UnknownVariant {
    /// What was being parsed.
    pub what: &'static str,
    /// The unrecognised value.
    pub value: String,
}

impl FromStr for Role {
    type Err = UnknownVariant;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "system" => Ok(Role::System),
            "user" => Ok(Role::User),
            "assistant" => Ok(Role::Assistant),
            "tool" => Ok(Role::Tool),
            other => Err(UnknownVariant { what: "role", value: other.to_owned() }),
        }
    }
}

/// Who sees a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Shown to people, never sent to the model.
    User,
    /// Sent to the model, hidden from people.
    Model,
    /// Both.
    Both,
}

impl Visibility {
    /// The database spelling.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Visibility::User => "user",
            Visibility::Model => "model",
            Visibility::Both => "both",
        }
    }

    /// Whether the model sees it.
    #[must_use]
    pub const fn is_model_visible(self) -> bool {
        matches!(self, Visibility::Model | Visibility::Both)
    }

    /// Whether people see it.
    #[must_use]
    pub const fn is_user_visible(self) -> bool {
        matches!(self, Visibility::User | Visibility::Both)
    }
}

impl FromStr for Visibility {
    type Err = UnknownVariant;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Visibility::User),
            "model" => Ok(Visibility::Model),
            "both" => Ok(Visibility::Both),
            other => Err(UnknownVariant { what: "visibility", value: other.to_owned() }),
        }
    }
}

/// Token usage of one model step, normalised across providers ([BEHAVIOUR §9.2](crate::behaviour#9-providers)):
/// `input + cache_read + cache_creation` is the full prompt size, `reasoning` is counted
/// inside `output`, and `total = input + cache_read + cache_creation + output`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Uncached prompt tokens.
    pub input_tokens: i64,
    /// Generated tokens (reasoning included).
    pub output_tokens: i64,
    /// The total as the provider reports it (input, output and cache together).
    pub total_tokens: i64,
    /// Reasoning tokens (a subset of `output_tokens`).
    pub reasoning_tokens: i64,
    /// Prompt tokens written to the provider's cache.
    pub cache_creation_tokens: i64,
    /// Prompt tokens read from the provider's cache.
    pub cache_read_tokens: i64,
}

impl Usage {
    /// The prompt size used for the compaction decision ([BEHAVIOUR §5](crate::behaviour#5-compaction)):
    /// `input + cache_read + cache_creation`, or `total` when those are all zero.
    #[must_use]
    pub fn context_tokens(&self) -> i64 {
        let prompt = self
            .input_tokens
            .saturating_add(self.cache_read_tokens)
            .saturating_add(self.cache_creation_tokens);
        if prompt == 0 { self.total_tokens } else { prompt }
    }

    /// This usage and `other` together (each count saturates).
    #[must_use]
    pub fn plus(self, other: Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens.saturating_add(other.input_tokens),
            output_tokens: self.output_tokens.saturating_add(other.output_tokens),
            total_tokens: self.total_tokens.saturating_add(other.total_tokens),
            reasoning_tokens: self.reasoning_tokens.saturating_add(other.reasoning_tokens),
            cache_creation_tokens: self
                .cache_creation_tokens
                .saturating_add(other.cache_creation_tokens),
            cache_read_tokens: self.cache_read_tokens.saturating_add(other.cache_read_tokens),
        }
    }

    /// The tokens a call is charged for, as [`Spend::tokens`](crate::usage::Spend::tokens)
    /// counts them: input, cache reads and writes, and output (reasoning is part of output).
    #[must_use]
    pub fn billed_tokens(&self) -> i64 {
        self.input_tokens
            .saturating_add(self.output_tokens)
            .saturating_add(self.cache_read_tokens)
            .saturating_add(self.cache_creation_tokens)
    }
}

/// A persisted message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Monotonic id: the cursor for streams and edits.
    pub id: MessageId,
    /// The chat it belongs to.
    pub chat_id: ChatId,
    /// The model configuration that produced or will answer it.
    pub model_config_id: Option<ModelConfigId>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// Who wrote it: the system prompt, the person, the model, or a tool result.
    pub role: Role,
    /// Its parts, in order (text, files, reasoning, tool calls and results).
    pub content: Vec<Part>,
    /// Who sees it: people, the model, or both.
    pub visibility: Visibility,
    /// Token usage (assistant rows only; `None` when the provider reported none).
    pub usage: Option<Usage>,
    /// The context window used for the step.
    pub context_limit: Option<i64>,
    /// Part of a compaction (the boundary and its user-visible record).
    pub compressed: bool,
    /// The id the sending client knows this user message by ([BEHAVIOUR §1](crate::behaviour#1-data-model) "Client message
    /// ids"), e.g. an AI SDK `UIMessage` id; `None` for messages sent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Set on a message an edit took out of the history ([BEHAVIOUR §18](crate::behaviour#18-history-you-keep)), read only with
    /// [`MessageQuery::with_deleted`](crate::store::MessageQuery::with_deleted); `None` for
    /// the history as it stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Deletion>,
}

/// How a message left the history: an edit of an earlier user message cut it (or, for the
/// edited message itself, replaced this content).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deletion {
    /// When the edit happened.
    pub at: DateTime<Utc>,
    /// The revision it belongs to: the chat's history version while it was part of the
    /// history (`Chat::history_version` before the edit).
    pub revision: i64,
}

impl Message {
    /// The concatenated text parts.
    #[must_use]
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|part| match part {
                Part::Text { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// A message to insert.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NewMessage {
    /// Who wrote it.
    pub role: Role,
    /// Its parts, in order.
    pub content: Vec<Part>,
    /// Who sees it (`Both` unless a people-only or model-only row).
    pub visibility: Visibility,
    /// The model configuration involved; inserting it also sets the chat's
    /// `last_model_config_id`.
    pub model_config_id: Option<ModelConfigId>,
    /// Token usage (assistant rows).
    pub usage: Option<Usage>,
    /// The context window used for the step.
    pub context_limit: Option<i64>,
    /// The sending client's id for a user message ([BEHAVIOUR §1](crate::behaviour#1-data-model) "Client message ids").
    pub client_id: Option<String>,
}

impl NewMessage {
    /// A message with `role`, visible to both people and the model.
    #[must_use]
    pub fn new(role: Role, content: Vec<Part>) -> Self {
        NewMessage {
            role,
            content,
            visibility: Visibility::Both,
            model_config_id: None,
            usage: None,
            context_limit: None,
            client_id: None,
        }
    }

    /// A user message.
    #[must_use]
    pub fn user(content: Vec<Part>) -> Self {
        Self::new(Role::User, content)
    }

    /// An assistant message.
    #[must_use]
    pub fn assistant(content: Vec<Part>) -> Self {
        Self::new(Role::Assistant, content)
    }

    /// A tool row holding one result part.
    #[must_use]
    pub fn tool(result: Part) -> Self {
        Self::new(Role::Tool, vec![result])
    }

    /// A system message with one text part, visible to the model only.
    #[must_use]
    pub fn system(text: impl Into<String>) -> Self {
        Self::new(Role::System, vec![Part::text(text)]).with_visibility(Visibility::Model)
    }

    /// Sets the visibility.
    #[must_use]
    pub fn with_visibility(mut self, visibility: Visibility) -> Self {
        self.visibility = visibility;
        self
    }

    /// Sets the model configuration.
    #[must_use]
    pub fn with_model_config(mut self, id: ModelConfigId) -> Self {
        self.model_config_id = Some(id);
        self
    }

    /// Sets usage and the context window of the step.
    #[must_use]
    pub fn with_usage(mut self, usage: Option<Usage>, context_limit: Option<i64>) -> Self {
        self.usage = usage;
        self.context_limit = context_limit;
        self
    }

    /// Sets the client's id for the message.
    #[must_use]
    pub fn with_client_id(mut self, client_id: Option<String>) -> Self {
        self.client_id = client_id;
        self
    }
}

/// A message waiting in a chat's queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedMessage {
    /// Its place in the queue: ids increase, so the lowest is answered next.
    pub id: QueuedMessageId,
    /// The chat it is queued on.
    pub chat_id: ChatId,
    /// What the person sent (text and file parts).
    pub content: Vec<Part>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// The sending client's id for it, kept when it is promoted ([BEHAVIOUR §1](crate::behaviour#1-data-model) "Client
    /// message ids").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_tokens_falls_back_to_total() {
        let usage = Usage {
            input_tokens: 10,
            cache_read_tokens: 70,
            cache_creation_tokens: 5,
            ..Usage::default()
        };
        assert_eq!(usage.context_tokens(), 85);
        let only_total = Usage { total_tokens: 42, ..Usage::default() };
        assert_eq!(only_total.context_tokens(), 42);
    }

    #[test]
    fn usage_adds_up_and_bills_prompt_cache_and_output_tokens() {
        let a = Usage {
            input_tokens: 1,
            output_tokens: 2,
            total_tokens: 3,
            reasoning_tokens: 4,
            cache_creation_tokens: 5,
            cache_read_tokens: 6,
        };
        let sum = a.plus(Usage { input_tokens: i64::MAX, ..a });
        assert_eq!(
            (sum.input_tokens, sum.output_tokens, sum.total_tokens, sum.reasoning_tokens),
            (i64::MAX, 4, 6, 8),
            "each count adds, saturating"
        );
        assert_eq!((sum.cache_creation_tokens, sum.cache_read_tokens), (10, 12));
        // Reasoning is part of output, total is the provider's own sum: neither is billed twice.
        assert_eq!(a.billed_tokens(), 1 + 2 + 5 + 6);
        assert_eq!(sum.billed_tokens(), i64::MAX);
    }

    #[test]
    fn roles_and_visibilities_parse_their_spellings() {
        for role in [Role::System, Role::User, Role::Assistant, Role::Tool] {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        for visibility in [Visibility::User, Visibility::Model, Visibility::Both] {
            assert_eq!(visibility.as_str().parse::<Visibility>(), Ok(visibility));
        }
        assert!("robot".parse::<Role>().is_err());
        assert!(Visibility::Both.is_model_visible() && Visibility::Both.is_user_visible());
        assert!(!Visibility::User.is_model_visible());
        assert!(!Visibility::Model.is_user_visible());
    }
}
