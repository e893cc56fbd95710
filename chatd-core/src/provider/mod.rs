//! The model provider contract (DESIGN "Model provider contract").
//!
//! A [`ModelProvider`] turns a [`ModelRequest`] into a stream of [`StreamEvent`]s; the
//! [`Accumulator`] folds that stream into the parts, usage and finish reason of one persisted
//! assistant step, and [`ModelProvider::generate`] is exactly that fold (one code path for
//! streaming and non-streaming calls). Errors are typed ([`ProviderError`]): the chat loop
//! decides retries from [`ProviderError::is_retryable`] and
//! [`ProviderError::retry_after`]; adapters never retry on their own.

mod accumulate;
mod error;
mod event;
mod request;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio_util::sync::CancellationToken;

pub use crate::model_spec::UnresolvedModel;
pub(crate) use crate::tool_args::args_object;
pub(crate) use crate::tool_args::invalid_args;
pub use crate::tool_args::parse_tool_args;
pub use accumulate::{Accumulator, Generation};
pub use error::{ProviderError, ProviderErrorKind};
pub use event::{FinishReason, StreamEvent};
pub use request::{ModelRequest, PromptMessage, ToolDefinition};

use crate::provider_config::ProviderKind;

/// The events of one model call, in order; an `Err` ends the stream.
pub type EventStream = BoxStream<'static, Result<StreamEvent, ProviderError>>;

/// A model API. Object-safe: used as `Arc<dyn ModelProvider>`.
#[async_trait]
pub trait ModelProvider: Send + Sync + 'static {
    /// Which provider kind this adapter speaks for.
    fn kind(&self) -> ProviderKind;

    /// Starts a streaming call. Dropping the returned stream aborts the HTTP request;
    /// cancelling `cancel` ends the stream with a `Cancelled` error promptly.
    ///
    /// # Errors
    /// A [`ProviderError`] when the request cannot be sent or the provider refuses it
    /// before streaming.
    async fn stream(
        &self,
        request: ModelRequest,
        cancel: CancellationToken,
    ) -> Result<EventStream, ProviderError>;

    /// The same call, accumulated.
    ///
    /// # Errors
    /// The first error of the stream.
    async fn generate(
        &self,
        request: ModelRequest,
        cancel: CancellationToken,
    ) -> Result<Generation, ProviderError> {
        let mut events = self.stream(request, cancel).await?;
        let mut accumulator = Accumulator::default();
        while let Some(event) = events.next().await {
            accumulator.push(event?);
        }
        Ok(accumulator.finish())
    }
}

/// Ends `events` with a `Cancelled` error as soon as `cancel` fires (dropping the inner
/// stream, and with it the HTTP request).
#[must_use]
pub fn with_cancellation(
    events: EventStream,
    cancel: CancellationToken,
    provider: &str,
) -> EventStream {
    let provider = provider.to_owned();
    Box::pin(futures::stream::unfold(Some(events), move |state| {
        let cancel = cancel.clone();
        let provider = provider.clone();
        async move {
            let mut events = state?;
            tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    Some((Err(ProviderError::new(&provider, ProviderErrorKind::Cancelled, "the call was cancelled")), None))
                }
                next = events.next() => match next {
                    Some(Ok(event)) => Some((Ok(event), Some(events))),
                    Some(Err(err)) => Some((Err(err), None)),
                    None => None,
                },
            }
        }
    }))
}

#[cfg(test)]
mod tests;
