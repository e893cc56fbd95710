//! Test support shared by every backend (feature `testing`).
//!
//! - [`store`]: the store conformance suite. Every `ChatStore` implementation runs it
//!   through [`store_conformance_tests!`](crate::store_conformance_tests), which expands one
//!   named test per scenario plus a completeness check.
//! - [`pinned`]: the internal defaults and texts, for tests that pin them to BEHAVIOUR.
//! - [`internals`]: internal steps of a turn, for benchmarks that time one on its own.
//! - [`provider`]: [`ScriptedProvider`], a model provider that replays scripted calls and
//!   records the requests it receives.

pub mod internals;
pub mod pinned;
pub mod provider;
pub mod store;

pub use provider::{ScriptedCall, ScriptedProvider};
