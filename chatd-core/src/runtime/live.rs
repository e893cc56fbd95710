//! Publishing the step in flight ([BEHAVIOUR §7](crate::behaviour#7-streams)): the turn writes what it streams to the store's
//! durable part log, batched (a part waits at most 50 ms, and there is at most
//! one write per interval), so a subscriber on any replica can follow — and resume — the step before it is
//! persisted. The log holds only the step in flight: committing the step clears it.
//!
//! Positions are `(episode, seq)`. An episode is one model-call attempt (or one
//! compaction); episodes of a chat only grow, across steps, turns and workers, because
//! they start from the lease epoch: [`Lease::episode_base`](crate::store::Lease::episode_base). A subscriber that sees a new episode
//! begin without a persisted message in between knows the previous attempt's parts are
//! void (a retry, or a worker that died) and resets its preview.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::part_log::{LivePart, episode_base};
use crate::store::{ChatStore, Lease, NewPart, PartPosition, StoreError};

/// The longest a streamed part waits before it is written to the log ([BEHAVIOUR §15](crate::behaviour#15-defaults)).
pub(crate) const FLUSH_INTERVAL: Duration = Duration::from_millis(50);

struct LogState {
    episode: i64,
    seq: i64,
    buffer: Vec<NewPart>,
    /// When the oldest buffered part was added.
    oldest: Option<Instant>,
    lost: bool,
}

/// The writer of one turn's part log.
pub(crate) struct PartLog {
    store: Arc<dyn ChatStore>,
    lease: Lease,
    interval: Option<Duration>,
    state: Mutex<LogState>,
}

impl PartLog {
    /// A log for the turn of `lease`; `interval: None` publishes nothing.
    pub(crate) fn new(store: Arc<dyn ChatStore>, lease: Lease, interval: Option<Duration>) -> Self {
        PartLog {
            store,
            lease,
            interval,
            state: Mutex::new(LogState {
                episode: episode_base(&lease),
                seq: 0,
                buffer: Vec::new(),
                oldest: None,
                lost: false,
            }),
        }
    }

    /// Starts a new episode (a model-call attempt or a compaction).
    pub(crate) async fn begin_episode(&self) {
        let mut state = self.state.lock().await;
        state.episode += 1;
        state.seq = 0;
    }

    /// Adds `part`; writes the batch once its oldest part has waited the interval. (Even
    /// after a quiet period the first part waits: a part written just before the step is
    /// committed would be in the log for an instant, seen by some subscribers and not
    /// others.)
    ///
    /// # Errors
    /// `LeaseLost` once a write found the lease gone.
    pub(crate) async fn push(&self, part: &LivePart) -> Result<(), StoreError> {
        let Some(interval) = self.interval else { return Ok(()) };
        let due = {
            let mut state = self.state.lock().await;
            // Serialising a part cannot fail (no map has non-string keys); if it ever
            // did, the preview would miss it and the persisted step would still hold it.
            let Ok(payload) = serde_json::to_value(part) else { return Ok(()) };
            state.seq += 1;
            let position = PartPosition { episode: state.episode, seq: state.seq };
            state.buffer.push(NewPart { position, payload });
            let oldest = *state.oldest.get_or_insert_with(Instant::now);
            oldest.elapsed() >= interval
        };
        if due { self.flush().await } else { Ok(()) }
    }

    /// When the buffered parts must be written (`None`: nothing buffered).
    pub(crate) async fn deadline(&self) -> Option<Instant> {
        let interval = self.interval?;
        let state = self.state.lock().await;
        state.oldest.map(|oldest| oldest + interval)
    }

    /// Writes the buffered parts. A write that fails for another reason than a lost lease
    /// keeps them for the next write (the persisted step carries the same content anyway).
    ///
    /// # Errors
    /// `LeaseLost`.
    pub(crate) async fn flush(&self) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        if state.lost {
            return Err(StoreError::LeaseLost { chat_id: self.lease.chat_id });
        }
        if state.buffer.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut state.buffer);
        state.oldest = None;
        match self.store.append_parts(&self.lease, batch.clone()).await {
            Ok(()) => Ok(()),
            Err(err @ StoreError::LeaseLost { .. }) => {
                state.lost = true;
                Err(err)
            }
            Err(err) => {
                tracing::warn!(chat = %self.lease.chat_id, error = %err, "could not publish parts; will retry");
                state.buffer = batch;
                // Try again after another interval.
                state.oldest = Some(Instant::now());
                Ok(())
            }
        }
    }

    /// Forgets what is buffered (the step is about to be committed, which clears the log,
    /// or the turn is over).
    pub(crate) async fn discard(&self) {
        let mut state = self.state.lock().await;
        state.buffer.clear();
        state.oldest = None;
    }
}
