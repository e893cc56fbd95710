//! # chatd-core
//!
//! The heart of chatd, a library for durable AI chat agents: a person talks to a
//! tool-using model, the conversation is stored, turns run on a pool of workers, and
//! clients follow a chat as a resumable stream.
//!
//! This crate holds everything that does not depend on a backend:
//!
//! - the domain types — [`Chat`], [`Message`] (with [`Part`], [`Role`], [`Visibility`],
//!   [`Usage`]), [`QueuedMessage`], [`ModelConfig`] (with strictly decoded
//!   [`CallOptions`]), [`ProviderConfig`] (with a redacting [`Secret`]) and [`DiffStatus`];
//! - the status state machine ([`status`]): a transition table that every store consults
//!   inside its atomic operations, so no backend can drift;
//! - the storage contract [`store::ChatStore`]: intent-level, atomic, fenced
//!   operations (see its `# Contract`);
//! - the provider contract [`provider::ModelProvider`] (adapters live in `chatd-providers`):
//!   a streamed model call as typed [`provider::StreamEvent`]s, with typed errors;
//! - the runtime ([`runtime`]): the agent turn ([`runtime::turn::TurnRunner`]: stream, run
//!   tools, persist each step, retry, compact), tools ([`runtime::tools`]: built-in workspace
//!   tools confined with Landlock, typed tools, MCP tools with feature `mcp`), workers
//!   ([`runtime::worker::Worker`]: acquire, heartbeat, recover, shut down);
//! - the service [`Chatd`]: every operation a user or administrator makes, checked against
//!   an [`Actor`], plus [`Chatd::send_and_wait`];
//! - the streams ([`events`]): a chat's events resumable by cursor (one shared reader per
//!   chat, [`events::Streams`]) and an owner's chat list ([`events::watch`]);
//! - telemetry ([`telemetry`]): OpenTelemetry GenAI spans and `metrics`;
//! - with the `testing` feature, the store conformance suite that every backend runs and a
//!   scripted provider.
//!
//! What each part does, and its defaults, is in the repository's `docs/BEHAVIOUR.md`
//! (cited as "BEHAVIOUR §N").
//!
//! A turn end to end (store, scripted model, typed tool, worker, `send_and_wait`) is the
//! runnable example of `chatd-store-memory`'s crate docs; `examples/embed` in the
//! repository is a whole application.
//!
//! ## Why intent-level storage
//!
//! A chat's status, its queue and the lease of the worker running it change together.
//! Splitting those changes into generic reads and writes would let two replicas interleave
//! them; instead each intent (send, edit, acquire, commit, release) is one transaction whose
//! decision comes from [`ChatStatus::decide`](status::ChatStatus::decide). Workers prove ownership with a
//! [`Lease`](store::Lease) whose epoch is checked on every write, so a worker that lost its
//! lease (paused, partitioned, recovered as stale) cannot write anything.
//!
//! ```
//! use chatd_core::status::{ChatStatus, Trigger};
//!
//! let decision = ChatStatus::Running.decide(Trigger::SendQueue)?;
//! assert_eq!(decision.next, ChatStatus::Running); // the message waits in the queue
//! # Ok::<(), chatd_core::status::InvalidTransition>(())
//! ```

#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod call_options;
mod chat;
pub mod cipher;
mod diff_status;
pub mod events;
pub mod feed;
mod ids;
pub mod limits;
mod message;
mod model_config;
mod model_spec;
mod part;
pub(crate) mod part_log;
pub mod provider;
mod provider_config;
pub mod runtime;
mod secret;
pub mod service;
pub mod status;
pub mod store;
pub mod telemetry;
mod title;
mod tool_args;
pub mod tool_call;
pub mod usage;

#[cfg(feature = "testing")]
pub mod testing;

#[cfg(test)]
mod layers;

/// The behaviour chatd guarantees, section by section (the "BEHAVIOUR §N" the docs cite):
/// `docs/BEHAVIOUR.md` in the repository, rendered here.
#[doc = include_str!("../BEHAVIOUR.md")]
pub mod behaviour {}

pub use call_options::CallOptions;
pub use chat::{
    Chat, ChatCursor, ChatFilter, ChatKind, ChatUpdate, ForkedFrom, NewChat, Page, StopRequest,
};
pub use cipher::{CipherError, SecretCipher};
pub use diff_status::{DiffReference, DiffRefresh, DiffStatus};
pub use feed::{ChangeFeed, ChangeHint, ChangeKind};
pub use ids::{
    ChatId, FileId, MessageId, ModelConfigId, ProviderId, QueuedMessageId, UserId, WorkerId,
    WorkspaceAgentId, WorkspaceId,
};
pub use message::{
    Deletion, Message, NewMessage, QueuedMessage, Role, UnknownVariant, Usage, Visibility,
};
pub use model_config::{ModelConfig, ModelConfigUpdate, NewModelConfig};
pub use part::{ContentError, Part, ProviderMetadata};
pub use provider_config::{
    NewProvider, ProviderConfig, ProviderKind, ProviderUpdate, UnknownProvider,
};
pub use secret::Secret;
pub use service::{Actor, Chatd, ChatdError, Scope};
pub use status::{ChatStatus, TurnOutcome};
pub use store::files::{self, FileMeta, FileStore, NewFile};
pub use store::{ChatStore, SendMessage, StoreError};

// The embed path: what a host needs to run chats in-process, in one `use chatd_core::{…}`.
pub use events::{ChatEvent, Cursor, SubscribeOptions};
pub use provider::ModelProvider;
#[cfg(feature = "local-workspace")]
pub use runtime::tools::LocalWorkspace;
pub use runtime::tools::{Tool, ToolContext, ToolError, ToolSet, Typed, TypedTool};
pub use runtime::turn::{ProviderSource, TurnEnd, TurnRunner, TurnSignal};
pub use runtime::worker::{Worker, WorkerConfig};
pub use tool_call::{ActionKind, CallState, Decision as ToolDecision, OpenCall, ToolCall};
pub use usage::{
    CallKind, NewUsage, Prices, Spend, UsageBucket, UsageGroup, UsageQuery, UsageRecord,
};
