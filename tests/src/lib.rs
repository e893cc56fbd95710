//! Cross-crate integration tests for chatd live in `tests/tests/`. This library compiles
//! and runs the README's Rust example as a doctest (so the README cannot drift from the
//! API) and holds what several tests share: [`pg`] (a fresh database per test),
//! [`resume`] (the resume property, run against each store), [`node`] (chatd in another
//! process), [`wire`] (recorded provider fixtures) and [`configure`].

#![doc = include_str!("../../README.md")]

pub mod marker;
pub mod mcp_server;
pub mod node;
pub mod pg;
pub mod resume;
pub mod wire;

use chatd_core::store::ChatStore;
use chatd_core::{NewModelConfig, NewProvider, ProviderKind};

/// Configures `store` with the Anthropic provider and a default `claude-test` model config
/// (context 200 000), as most tests need.
///
/// # Panics
/// If the store refuses.
pub async fn configure(store: &dyn ChatStore) {
    store.create_provider(NewProvider::new(ProviderKind::Anthropic)).await.expect("provider");
    store
        .create_model_config(
            NewModelConfig::new(ProviderKind::Anthropic, "claude-test", 200_000).as_default(),
        )
        .await
        .expect("config");
}
