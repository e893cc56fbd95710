//! Identifier newtypes.
//!
//! Every table key gets its own type so that a chat id can never be passed where a model
//! config id is expected. UUID ids are generated as UUIDv7 (time-ordered), which keeps
//! B-tree inserts local in PostgreSQL; the 64-bit ids are the database's monotonic sequences.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered (UUIDv7) id.
            #[must_use]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// The underlying UUID.
            #[must_use]
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(value: Uuid) -> Self {
                Self(value)
            }
        }

        impl From<$name> for Uuid {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

macro_rules! serial_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl $name {
            /// The raw database value.
            #[must_use]
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl From<i64> for $name {
            fn from(value: i64) -> Self {
                Self(value)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

uuid_id!(
    /// Identifies a chat (`chats.id`).
    ChatId
);
uuid_id!(
    /// Identifies a model configuration (`chat_model_configs.id`).
    ModelConfigId
);
uuid_id!(
    /// Identifies a provider configuration (`chat_providers.id`).
    ProviderId
);
uuid_id!(
    /// Identifies a user of the host application (`chats.owner_id`, `created_by`, ...).
    UserId
);
uuid_id!(
    /// Identifies a worker process or task pool (`chats.worker_id`).
    WorkerId
);
uuid_id!(
    /// Identifies a workspace of the host application (`chats.workspace_id`).
    WorkspaceId
);
uuid_id!(
    /// Identifies a stored file: an attachment (`chat_files.id`, [BEHAVIOUR §19](crate::behaviour#19-attachments)).
    FileId
);
uuid_id!(
    /// Identifies a workspace agent of the host application (`chats.workspace_agent_id`).
    WorkspaceAgentId
);
serial_id!(
    /// Identifies a persisted message (`chat_messages.id`). Monotonic across the store: it
    /// is the cursor for streams and edits.
    MessageId
);
serial_id!(
    /// Identifies a queued message (`chat_queued_messages.id`). The queue is FIFO by this id.
    QueuedMessageId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_ids_round_trip_through_strings_and_json() {
        let id = ChatId::new();
        let parsed: ChatId = id.to_string().parse().expect("parse");
        assert_eq!(id, parsed);
        let json = serde_json::to_string(&id).expect("json");
        assert_eq!(json, format!("\"{id}\""));
        assert!("not-a-uuid".parse::<ChatId>().is_err());
    }

    #[test]
    fn new_ids_are_time_ordered() {
        let a = ChatId::new();
        let b = ChatId::new();
        assert!(a < b, "UUIDv7 ids must sort by creation");
    }

    #[test]
    fn serial_ids_serialise_as_numbers() {
        assert_eq!(serde_json::to_string(&MessageId(42)).expect("json"), "42");
        assert_eq!(format!("{:?}", QueuedMessageId(7)), "QueuedMessageId(7)");
    }
}
