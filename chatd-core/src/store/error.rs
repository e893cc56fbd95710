//! Errors of the storage contract.

use std::fmt;

use crate::ids::ChatId;
use crate::status::{ChatStatus, InvalidTransition, Trigger};

/// The kind of record a [`StoreError::NotFound`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Entity {
    /// A chat.
    Chat,
    /// A persisted message.
    Message,
    /// A queued message.
    QueuedMessage,
    /// A model configuration.
    ModelConfig,
    /// A provider configuration.
    Provider,
    /// A diff status row.
    DiffStatus,
    /// A stored file (an attachment).
    File,
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Entity::Chat => "Chat",
            Entity::Message => "Chat message",
            Entity::QueuedMessage => "Queued message",
            Entity::File => "File",
            Entity::ModelConfig => "Model config",
            Entity::Provider => "Chat provider",
            Entity::DiffStatus => "Diff status",
        })
    }
}

/// The most messages a chat's queue holds ([BEHAVIOUR §1](crate::behaviour#1-data-model)).
pub(crate) const MAX_QUEUED_MESSAGES: usize = 20;

/// An error from a [`ChatStore`](super::ChatStore) operation. When an operation fails it
/// has changed nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The record does not exist (or, through the service, is not the actor's).
    #[error("{entity} not found.")]
    NotFound {
        /// What was looked up.
        entity: Entity,
        /// The id that was looked up.
        id: String,
    },
    /// The operation conflicts with the stored state (a unique key, a record in use).
    #[error("{0}")]
    Conflict(String),
    /// The state machine refuses the intent in the chat's current status.
    #[error("cannot {trigger} a chat that is {from}")]
    InvalidTransition {
        /// The chat's status.
        from: ChatStatus,
        /// The refused intent.
        trigger: Trigger,
    },
    /// The worker's lease is no longer current: it must stop the turn and write nothing.
    #[error("the lease on chat {chat_id} is no longer held")]
    LeaseLost {
        /// The chat whose lease was lost.
        chat_id: ChatId,
    },
    /// The chat's queue is full.
    #[error("Message queue is full. Maximum {max} messages can be queued.")]
    QueueFull {
        /// The cap.
        max: usize,
    },
    /// The input is invalid.
    #[error("{reason}")]
    Validation {
        /// The offending field.
        field: String,
        /// A sentence for a person.
        reason: String,
    },
    /// The backend could not be reached (a lost connection, a server shutting down): the
    /// intent may or may not have been applied, and trying again later may succeed.
    #[error("storage backend unavailable: {source}")]
    Unavailable {
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The backend failed (I/O, corrupt row, an unexpected database error).
    #[error("storage backend error: {source}")]
    Backend {
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    /// The `Validation` error (`file`) of a chat that would hold more than `max` files.
    #[must_use]
    pub fn chat_full(max: usize) -> Self {
        crate::store::files::chat_full(max)
    }

    /// The `Conflict` a store returns when `create_chat` would give a parent more than
    /// `limit` open children (`open` are open now).
    #[must_use]
    pub fn too_many_children(open: usize, limit: usize) -> Self {
        crate::store::validate::too_many_children(open, limit)
    }

    /// An `Unavailable` wrapping `source`.
    pub fn unavailable(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StoreError::Unavailable { source: source.into() }
    }

    /// Whether the backend was unreachable (see [`StoreError::Unavailable`]).
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }

    /// A `NotFound` for `entity` with `id`.
    pub fn not_found(entity: Entity, id: impl fmt::Display) -> Self {
        StoreError::NotFound { entity, id: id.to_string() }
    }

    /// A `Validation` error.
    pub fn validation(field: impl Into<String>, reason: impl Into<String>) -> Self {
        StoreError::Validation { field: field.into(), reason: reason.into() }
    }

    /// A `Backend` error wrapping `source`.
    pub fn backend(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StoreError::Backend { source: source.into() }
    }

    /// Whether this is `NotFound`.
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }

    /// Whether this is `LeaseLost`.
    #[must_use]
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, StoreError::LeaseLost { .. })
    }
}

impl From<InvalidTransition> for StoreError {
    fn from(err: InvalidTransition) -> Self {
        StoreError::InvalidTransition { from: err.from, trigger: err.trigger }
    }
}

/// `Result` with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_the_spec_texts() {
        assert_eq!(
            StoreError::QueueFull { max: 20 }.to_string(),
            "Message queue is full. Maximum 20 messages can be queued."
        );
        assert_eq!(
            StoreError::not_found(Entity::Message, 3).to_string(),
            "Chat message not found."
        );
        assert_eq!(
            StoreError::validation("content", "Content is required.").to_string(),
            "Content is required."
        );
        let err: StoreError =
            InvalidTransition { from: ChatStatus::Running, trigger: Trigger::Complete }.into();
        assert_eq!(err.to_string(), "cannot complete a chat that is running");
    }
}
