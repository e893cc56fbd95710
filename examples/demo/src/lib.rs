//! What the example programs (`server`, `chat-cli`, `multi-worker`) share:
//!
//! - [`DemoModel`], an offline model that needs no key and no network: it thinks aloud,
//!   answers word by word, writes files and runs commands through the real built-in tools
//!   when asked, tells a long story slowly (to try interrupting), and fails on request;
//! - [`DirPerChat`], one local workspace directory per chat;
//! - [`Setup`]: opening the store (in memory, or PostgreSQL with migrations), seeding a
//!   provider and model config, and starting in-process workers.

mod model;
mod setup;

pub use model::{DEMO_MODEL, DemoModel};
pub mod keys;
pub use setup::{DirPerChat, ModelChoice, ModelFlags, Setup, SetupError, open_store};
