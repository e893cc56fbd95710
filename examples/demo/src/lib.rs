//! What the example programs (`server`, `chat-cli`, `multi-worker`) share:
//!
//! - [`DemoModel`], an offline model that needs no key and no network: it thinks aloud,
//!   answers word by word, writes files and runs commands through the real built-in tools
//!   when asked, tells a long story slowly (to try interrupting), and fails on request;
//! - [`DirPerChat`], one local workspace directory per chat;
//! - [`AskSwitch`], the per-chat "ask before running tools" policy, and
//!   [`location_tool`], a client tool (the front end answers it);
//! - [`Setup`]: opening the store (in memory, or PostgreSQL with migrations), seeding a
//!   provider and model config, and starting in-process workers.

mod ask;
mod model;
mod setup;

pub use ask::{ASKED_TOOLS, AskSwitch};
pub use model::{DEMO_MODEL, DemoModel, LOCATION_TOOL, location_tool};
pub mod keys;
pub mod startup;
pub use setup::{DirPerChat, ModelChoice, ModelFlags, Setup, SetupError, open_store};
