//! One model call of a step: streamed, published to the part log, retried by the policy.

use chrono::Utc;
use futures::StreamExt;

use super::{RetryNotice, Turn, TurnRunner};
use crate::part_log::LivePart;
use crate::provider::{Accumulator, Generation, ModelRequest, ProviderError, ProviderErrorKind};
use crate::store::StoreError;
use crate::telemetry;
use tracing::Instrument;

/// Why a model call produced no finished generation.
pub(super) enum StepStop {
    /// Asked to stop; the parts streamed so far.
    Stopped(Generation),
    /// The call failed for good.
    Failed(String),
    /// Publishing found the lease gone.
    LeaseLost,
}

/// How one attempt ended, when it did not finish.
enum AttemptError {
    Provider(ProviderError),
    LeaseLost,
}

impl From<ProviderError> for AttemptError {
    fn from(err: ProviderError) -> Self {
        AttemptError::Provider(err)
    }
}

impl TurnRunner {
    /// One model call with the loop's retries ([BEHAVIOUR §3](crate::behaviour#3-a-turn) "Retries"). Each attempt is an
    /// episode of the part log; a retry is published there before the wait.
    pub(super) async fn call_model(
        &self,
        turn: &Turn<'_>,
        request: ModelRequest,
    ) -> Result<Generation, StepStop> {
        let (chat, provider, signal, log) = (turn.chat.id, turn.provider, turn.signal, turn.log);
        let mut attempt: u32 = 0;
        loop {
            let mut accumulator = Accumulator::default();
            log.begin_episode().await;
            let kind = provider.kind();
            let span = telemetry::model_call_span(kind, &request.model, attempt);
            let started = std::time::Instant::now();
            // Adapter streams end with `Cancelled` as soon as the signal's token fires, so
            // the parts streamed so far stay in the accumulator.
            let outcome = self
                .stream_once(turn, attempt, request.clone(), &mut accumulator)
                .instrument(span.clone())
                .await;
            let took = started.elapsed();
            let err = match outcome {
                Ok(()) => {
                    let generation = accumulator.finish();
                    let (finish, usage) =
                        (generation.finish_reason.as_ref(), generation.usage.as_ref());
                    telemetry::model_call_ended(&span, kind, took, finish, usage, None);
                    return Ok(generation);
                }
                Err(AttemptError::LeaseLost) => {
                    telemetry::model_call_ended(&span, kind, took, None, None, Some("lease_lost"));
                    return Err(StepStop::LeaseLost);
                }
                Err(_) if signal.reason().is_some() => {
                    telemetry::model_call_ended(&span, kind, took, None, None, Some("cancelled"));
                    return Err(StepStop::Stopped(accumulator.finish_interrupted()));
                }
                Err(AttemptError::Provider(err)) => err,
            };
            telemetry::model_call_ended(&span, kind, took, None, None, Some(err.kind.as_str()));
            let Some(delay) = self.retry.delay(attempt, &err) else {
                let shown = err.to_string();
                super::cause::record(super::TurnError::Provider(err));
                return Err(StepStop::Failed(shown));
            };
            telemetry::retried(kind);
            attempt += 1;
            let notice = RetryNotice {
                attempt,
                delay,
                error: err.to_string(),
                retrying_at: Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default(),
            };
            self.observer.on_retry(chat, &notice);
            let retry = LivePart::Retry {
                attempt,
                delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                error: notice.error.clone(),
                retrying_at: notice.retrying_at,
            };
            if log.push(&retry).await.and(log.flush().await).is_err() {
                return Err(StepStop::LeaseLost);
            }
            tokio::select! {
                () = signal.stopped() => return Err(StepStop::Stopped(Generation::default())),
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// One attempt: streams into `accumulator` and the part log, within the step's bounds.
    async fn stream_once(
        &self,
        turn: &Turn<'_>,
        attempt: u32,
        request: ModelRequest,
        accumulator: &mut Accumulator,
    ) -> Result<(), AttemptError> {
        let (chat, provider, signal, log) = (turn.chat.id, turn.provider, turn.signal, turn.log);
        let lost = |_: StoreError| AttemptError::LeaseLost;
        let name = provider.kind().as_str();
        let limits = self.step_limits;
        // The wait for the stream itself counts against the first-event timeout.
        let opened =
            tokio::time::timeout(limits.first_event, provider.stream(request, signal.token()));
        let mut events = match opened.await {
            Ok(events) => events?,
            Err(_) => return Err(limits.silent(name, false).into()),
        };
        let (mut seen_any, mut streamed) = (false, 0_usize);
        // One timer for the whole call, moved only when it would fire before the idle
        // timeout has passed since the last event — then with an eighth of slack, so a
        // stream of deltas moves it rarely rather than on every event (the hot path).
        let mut silent_at = tokio::time::Instant::now() + limits.wait(false);
        let silent = tokio::time::sleep_until(silent_at);
        tokio::pin!(silent);
        loop {
            // Buffered parts are written when their interval is up, even if the model
            // goes quiet.
            let deadline = log.deadline().await;
            let next = tokio::select! {
                next = events.next() => next,
                () = sleep_until(deadline) => {
                    log.flush().await.map_err(lost)?;
                    continue;
                }
                () = &mut silent => {
                    return Err(limits.silent(name, seen_any).into());
                }
            };
            let Some(event) = next else { break };
            let event = event?;
            seen_any = true;
            let due = tokio::time::Instant::now() + limits.idle;
            if due > silent_at {
                silent_at = due + limits.idle / 8;
                silent.as_mut().reset(silent_at);
            }
            streamed = streamed.saturating_add(super::bounds::event_size(&event));
            if streamed > limits.max_step_bytes {
                return Err(limits.too_large(name).into());
            }
            self.observer.on_event(chat, attempt, &event);
            log.push(&LivePart::Stream { event: event.clone() }).await.map_err(lost)?;
            accumulator.push(event);
        }
        if signal.reason().is_some() {
            return Err(ProviderError::new(
                provider.kind().as_str(),
                ProviderErrorKind::Cancelled,
                "stopped",
            )
            .into());
        }
        Ok(())
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => futures::future::pending().await,
    }
}
