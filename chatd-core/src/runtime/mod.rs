//! The agent turn ([BEHAVIOUR §3](crate::behaviour#3-a-turn)–§4):
//!
//! - [`compaction`]: usage-driven and manual summaries with overflow-safe input ([BEHAVIOUR §5](crate::behaviour#5-compaction));
//! - [`diff`]: pull-request tracking: `DiffSource`, the refresher ([BEHAVIOUR §10](crate::behaviour#10-diff-status));
//! - [`live`]: the durable part log of the step in flight ([BEHAVIOUR §7](crate::behaviour#7-streams));
//! - `prompt` (internal): persisted history → a well-formed [`ModelRequest`](crate::provider::ModelRequest)
//!   for a given provider ([BEHAVIOUR §4](crate::behaviour#4-prompt-construction));
//! - [`retry`]: the typed retry policy the chat loop owns ([BEHAVIOUR §3](crate::behaviour#3-a-turn) "Retries");
//! - [`tools`]: the tool trait, concurrent execution of a step's calls, the workspace trait
//!   and the local-directory workspace with its four tools ([BEHAVIOUR §13](crate::behaviour#13-tools));
//! - [`title`]: background titles on a chat's first turn ([BEHAVIOUR §14](crate::behaviour#14-titles));
//! - [`worker`]: acquisition, heartbeats, stale sweeps, graceful shutdown ([BEHAVIOUR §8](crate::behaviour#8-workers-and-replicas));
//! - [`turn`]: the turn runner (model calls, tool steps, interrupts, retries, failures).

pub(crate) mod attachments;
pub mod compaction;
pub mod diff;
pub mod health;
pub mod live;
pub(crate) mod prompt;
pub mod retry;
pub(crate) mod spend;
pub mod title;
pub mod tools;
pub mod turn;
pub mod worker;

/// The text of a panic's payload (`&str` or `String`; anything else is "unknown panic").
pub(crate) fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}
