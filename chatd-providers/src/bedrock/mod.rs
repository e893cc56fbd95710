//! Amazon Bedrock Converse stream (`POST {base}/model/{model}/converse-stream`): the AWS
//! event-stream binary framing (decoded with `aws-smithy-eventstream`), authentication by
//! SigV4 from access keys (signed with `aws-sigv4`; with feature `bedrock-aws-config` from the
//! standard AWS credential chain, [`AwsCredentials`]) or by a Bedrock API key (bearer), tool
//! use, and reasoning with signatures. Options use the `anthropic` shape (BEHAVIOUR §9.3).

mod client;
mod convert;
#[cfg(feature = "bedrock-aws-config")]
mod credentials;
pub(crate) mod stream;
mod wire;

pub use client::{BedrockAuth, BedrockProvider};
#[cfg(feature = "bedrock-aws-config")]
pub use credentials::AwsCredentials;
