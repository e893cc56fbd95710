//! Bounds every model call of a turn holds to, whichever [`ModelProvider`] streams it
//! ([BEHAVIOUR §3](crate::behaviour#3-a-turn) "Timeouts and bounds"): the HTTP adapters enforce their own, but a custom
//! provider that streams for ever, or goes silent, is cut here too.
//!
//! [`ModelProvider`]: crate::provider::ModelProvider

use std::time::Duration;

use crate::provider::{ProviderError, ProviderErrorKind, StreamEvent};

/// The most one step may stream (text, reasoning, tool input and calls): 64 MiB.
pub(crate) const MAX_STEP_BYTES: usize = 64 * 1024 * 1024;
/// The longest wait for a call's first event: 5 minutes (reasoning models think first).
pub(crate) const FIRST_EVENT_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// The longest silence between two events of a call: 2 minutes.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(2 * 60);

/// The bounds of one model call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StepLimits {
    /// The most bytes one call may stream (`MAX_STEP_BYTES`); beyond, the call fails with
    /// `too_large` (not retried).
    pub max_step_bytes: usize,
    /// The longest wait for the first event (`FIRST_EVENT_TIMEOUT`); then a `timeout`
    /// (retried).
    pub first_event: Duration,
    /// The longest silence between events (`IDLE_TIMEOUT`); then a `timeout` (retried).
    pub idle: Duration,
}

impl Default for StepLimits {
    fn default() -> Self {
        StepLimits {
            max_step_bytes: MAX_STEP_BYTES,
            first_event: FIRST_EVENT_TIMEOUT,
            idle: IDLE_TIMEOUT,
        }
    }
}

impl StepLimits {
    /// Sets the most bytes one call may stream (at least 1 KiB).
    #[must_use]
    pub fn with_max_step_bytes(mut self, bytes: usize) -> Self {
        self.max_step_bytes = bytes.max(1024);
        self
    }

    /// Sets the first-event and idle timeouts.
    #[must_use]
    pub fn with_timeouts(mut self, first_event: Duration, idle: Duration) -> Self {
        self.first_event = first_event;
        self.idle = idle;
        self
    }

    /// How long to wait for the next event: the first-event timeout before any, the idle
    /// timeout after.
    pub(super) fn wait(&self, seen_any: bool) -> Duration {
        if seen_any { self.idle } else { self.first_event }
    }

    /// The error for a call that went silent.
    pub(super) fn silent(&self, provider: &str, seen_any: bool) -> ProviderError {
        let (what, limit) = if seen_any {
            ("between two events", self.idle)
        } else {
            ("before the first event", self.first_event)
        };
        ProviderError::new(
            provider,
            ProviderErrorKind::Timeout,
            format!("the model sent nothing for {limit:?} {what}"),
        )
    }

    /// The error for a call that streamed too much.
    pub(super) fn too_large(&self, provider: &str) -> ProviderError {
        ProviderError::new(
            provider,
            ProviderErrorKind::TooLarge,
            format!(
                "the model's answer passed {} MiB in one step",
                self.max_step_bytes / (1024 * 1024)
            ),
        )
    }
}

/// About how many bytes `event` adds to the step (its texts, plus a little per event, so an
/// endless stream of empty events is bounded too).
pub(super) fn event_size(event: &StreamEvent) -> usize {
    const EACH: usize = 32;
    let json = |value: &serde_json::Value| serde_json::to_string(value).map_or(0, |s| s.len());
    EACH + match event {
        StreamEvent::TextDelta { id, delta }
        | StreamEvent::ReasoningDelta { id, delta }
        | StreamEvent::ToolInputDelta { id, delta } => id.len() + delta.len(),
        StreamEvent::ToolCall { id, tool_name, args, .. } => {
            id.len() + tool_name.len() + json(args)
        }
        StreamEvent::ToolResult { id, tool_name, result, .. } => {
            id.len() + tool_name.len() + json(result)
        }
        StreamEvent::Source { id, url, title } => {
            id.len() + url.len() + title.as_ref().map_or(0, String::len)
        }
        _ => 0,
    }
}
