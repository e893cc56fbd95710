//! Watching a turn: the [`TurnObserver`] hook, and the sink that routes a compaction's parts
//! to the part log and the observer.

use chrono::{DateTime, Utc};
use std::time::Duration;

use crate::ids::ChatId;
use crate::message::Message;
use crate::part_log::LivePart;
use crate::provider::StreamEvent;
use crate::runtime::compaction::CompactionSink;
use crate::runtime::live::PartLog;

/// A retry the turn is about to make (published as a `retry` event, [BEHAVIOUR §3](crate::behaviour#3-a-turn)).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryNotice {
    /// The retry's number (1 for the first retry).
    pub attempt: u32,
    /// How long the turn waits.
    pub delay: Duration,
    /// The error being retried.
    pub error: String,
    /// When the next attempt starts.
    pub retrying_at: DateTime<Utc>,
}

/// Watches a turn as it runs, in the worker's process (subscribers on any replica follow
/// the durable part log instead). Every method has a no-op default.
pub trait TurnObserver: Send + Sync + 'static {
    /// A stream event of model-call attempt `attempt` (0-based) of the step in flight.
    fn on_event(&self, _chat: ChatId, _attempt: u32, _event: &StreamEvent) {}
    /// The step in flight failed and will be retried: its parts so far are discarded.
    fn on_retry(&self, _chat: ChatId, _notice: &RetryNotice) {}
    /// Rows of a step were persisted: a whole step at once; a recorded step ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes))
    /// in two calls — its assistant row, then, once every call is answered, its tool rows;
    /// also the three rows of a compaction.
    fn on_step(&self, _chat: ChatId, _messages: &[Message]) {}
    /// A part of a compaction: the `chat_summarized` call before the summary is written,
    /// its result (an error result if the compaction failed) after the rows are persisted.
    fn on_compaction(&self, _chat: ChatId, _event: &StreamEvent) {}
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NoObserver;

impl TurnObserver for NoObserver {}

/// Routes a compaction's parts to the part log (each written at once: the call must be
/// visible while the summary is generated) and to the observer.
pub(super) struct ObserverSink<'a> {
    pub(super) observer: &'a dyn TurnObserver,
    pub(super) log: &'a PartLog,
}

#[async_trait::async_trait]
impl CompactionSink for ObserverSink<'_> {
    async fn part(&self, chat: ChatId, event: &StreamEvent) {
        self.observer.on_compaction(chat, event);
        if matches!(event, StreamEvent::ToolCall { .. }) {
            self.log.begin_episode().await;
        }
        // A lost lease shows up on the compaction's own write.
        let _ = self.log.push(&LivePart::Stream { event: event.clone() }).await;
        let _ = self.log.flush().await;
    }
    async fn persisted(&self, chat: ChatId, messages: &[Message]) {
        self.observer.on_step(chat, messages);
    }
}
