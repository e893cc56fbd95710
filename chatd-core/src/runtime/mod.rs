//! Building blocks of the agent turn (SPEC §3–§4). The turn runner itself is not built yet;
//! what is here is complete and tested on its own:
//!
//! - [`prompt`]: persisted history → a well-formed [`ModelRequest`](crate::provider::ModelRequest)
//!   for a given provider (SPEC §4);
//! - [`retry`]: the typed retry policy the chat loop owns (SPEC §3 "Retries").

pub mod prompt;
pub mod retry;
