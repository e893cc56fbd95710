//! Anthropic Messages API (`POST {base}/v1/messages`, `stream: true`): extended thinking with
//! signature round-trip and redacted thinking, `input_json_delta` tool arguments, server
//! tools, prompt caching placed as BEHAVIOUR §4 says, and cache usage.

mod client;
mod convert;
pub(crate) mod stream;
mod wire;

pub use client::{ANTHROPIC_VERSION, AnthropicProvider};
pub use convert::mark_cache_breakpoints;
