//! Why a turn failed, for the host in-process.
//!
//! What people see of a failure — `last_error`, the `error` event — is redacted (BEHAVIOUR
//! §12): a store's SQL or a provider's body never reaches them. The host embedding chatd is
//! not a person reading a chat: [`TurnRunner::run_with_cause`](super::TurnRunner::run_with_cause)
//! and the worker's [`TurnReport`](crate::runtime::worker::TurnReport) hand it a
//! [`TurnError`] whose `source()` chain goes down to the backend's own error, so a host
//! without log collection can still tell why a step failed to persist.

use std::cell::RefCell;

use crate::provider::ProviderError;
use crate::store::StoreError;

/// The error behind a turn that failed, or that ends to re-run later (a store or provider
/// outage), with its whole cause chain. Never shown to people.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TurnError {
    /// The chat store failed.
    #[error("{context}the chat store failed")]
    Store {
        /// What the turn was doing (`failed to persist the step: `), or empty.
        context: String,
        /// The store's error; its own source is the backend's.
        #[source]
        source: StoreError,
    },
    /// The model call failed (after the retries the policy allows).
    #[error("the model call failed")]
    Provider(#[source] ProviderError),
    /// No provider could be made for the chat's model config.
    #[error("no provider for the chat's model config")]
    ProviderSource(#[source] ProviderError),
}

tokio::task_local! {
    /// The cause of the turn running in this task, if it failed.
    static CAUSE: RefCell<Option<TurnError>>;
}

/// Runs `turn` with a slot for its cause and returns both.
pub(super) async fn capture<F: std::future::Future>(turn: F) -> (F::Output, Option<TurnError>) {
    CAUSE
        .scope(RefCell::new(None), async move {
            let output = turn.await;
            (output, CAUSE.with(RefCell::take))
        })
        .await
}

/// Records why the turn in this task ends (the last one recorded wins); outside
/// [`capture`] it is dropped.
pub(super) fn record(cause: TurnError) {
    let _ = CAUSE.try_with(|slot| *slot.borrow_mut() = Some(cause));
}
