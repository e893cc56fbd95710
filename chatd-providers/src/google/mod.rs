//! Google Gemini (`POST {base}/v1beta/models/{model}:streamGenerateContent?alt=sse`):
//! function calls, thought summaries and thought signatures (round-tripped on the parts that
//! carry them), thinking config and safety settings.

mod client;
mod convert;
pub(crate) mod stream;
mod wire;

pub use client::GoogleProvider;
