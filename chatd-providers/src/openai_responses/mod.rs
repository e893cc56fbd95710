//! OpenAI Responses API (`POST {base}/responses`, `stream: true`, `store: false`): the default
//! `api_mode` of the `openai` kind. Reasoning summaries stream as reasoning; encrypted
//! reasoning (`include: ["reasoning.encrypted_content"]`) is kept in the part's provider
//! metadata and replayed on the next call, so stateless calls keep the model's reasoning.

mod client;
mod convert;
pub(crate) mod stream;
mod wire;

pub use client::ResponsesProvider;
