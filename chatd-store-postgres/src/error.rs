//! `sqlx::Error` → `StoreError`, by SQLSTATE class and constraint name, never by message text.

use chatd_core::store::{Entity, StoreError};
use sqlx::error::ErrorKind;

/// Maps a database error.
pub(crate) fn db(err: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(database) = &err {
        let constraint = database.constraint().unwrap_or_default().to_owned();
        match database.kind() {
            ErrorKind::UniqueViolation => {
                return StoreError::Conflict(format!(
                    "conflicts with an existing record ({constraint})"
                ));
            }
            ErrorKind::CheckViolation => {
                return StoreError::validation(
                    constraint.clone(),
                    format!("violates {constraint}"),
                );
            }
            ErrorKind::ForeignKeyViolation => {
                return match constraint.as_str() {
                    "chat_messages_model_config_id_fkey" | "chats_last_model_config_id_fkey" => {
                        StoreError::not_found(Entity::ModelConfig, "referenced model config")
                    }
                    "chat_model_configs_provider_fkey" => {
                        StoreError::validation("provider", "The provider is not configured.")
                    }
                    "chats_parent_chat_id_fkey" | "chats_root_chat_id_fkey" => {
                        StoreError::not_found(Entity::Chat, "referenced chat")
                    }
                    _ => StoreError::Conflict(format!(
                        "the record is still referenced ({constraint})"
                    )),
                };
            }
            _ => {}
        }
        // Class 08 (connection exception) and 57P01-57P03 (the server is shutting down or
        // terminated the backend): the statement may be retried on a new connection.
        if let Some(code) = database.code()
            && (code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03"))
        {
            return StoreError::unavailable(err);
        }
    }
    if matches!(
        err,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
    ) {
        return StoreError::unavailable(err);
    }
    StoreError::backend(err)
}

/// A row that the library cannot decode (a corrupt or foreign value).
pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::backend(format!("cannot decode {what}: {detail}"))
}
