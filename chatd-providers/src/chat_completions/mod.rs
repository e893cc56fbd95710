//! OpenAI Chat Completions (`POST {base}/chat/completions`, `stream: true`) and the dialects
//! that speak it: `openai` in chat mode, `openai-compat` (Ollama, vLLM, llama.cpp,
//! LiteLLM), `openrouter`, `vercel` (AI Gateway) and `azure` (Azure OpenAI deployments). The dialects differ in their default
//! endpoint, the output-cap field and their provider options (BEHAVIOUR §9.3).

mod client;
mod convert;
pub(crate) mod stream;
mod wire;

pub use client::{AZURE_API_VERSION, ChatCompletionsProvider, Dialect};
