//! Amazon Bedrock Converse stream (`POST {base}/model/{model}/converse-stream`): the AWS
//! event-stream binary framing (decoded with `aws-smithy-eventstream`), authentication by
//! SigV4 from access keys (signed with `aws-sigv4`) or by a Bedrock API key (bearer), tool
//! use, and reasoning with signatures. Options use the `anthropic` shape (BEHAVIOUR §9.3).

mod client;
mod convert;
pub(crate) mod stream;

pub use client::{BedrockAuth, BedrockProvider};
