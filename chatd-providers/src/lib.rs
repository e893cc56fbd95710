//! # chatd-providers
//!
//! Streaming model provider adapters for chatd, one module per provider kind behind a cargo
//! feature.
//!
//! **Status: not implemented yet.** This crate is a placeholder so the workspace has its
//! final shape; the `ModelProvider` contract and the eight adapters (`anthropic`, `azure`,
//! `bedrock`, `google`, `openai`, `openai-compat`, `openrouter`, `vercel`) arrive with the
//! provider issue. It exports nothing today.

#![deny(missing_docs)]
