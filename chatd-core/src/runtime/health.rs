//! A worker's health, readable while it runs ([`Worker::health`](super::worker::Worker::health)).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};

/// What a worker has done so far.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerHealth {
    /// Turns running now.
    pub running: u64,
    /// Chats acquired since the worker started.
    pub acquired: u64,
    /// Turns that ended (released, or with the lease lost).
    pub ended: u64,
    /// Turns whose lease was lost.
    pub lease_losses: u64,
    /// Acquisition polls that failed (store errors).
    pub failed_polls: u64,
    /// When the worker last polled the store for work.
    pub last_poll: Option<DateTime<Utc>>,
}

/// A live view of one worker's [`WorkerHealth`]. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct HealthHandle {
    inner: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    acquired: AtomicU64,
    ended: AtomicU64,
    lease_losses: AtomicU64,
    failed_polls: AtomicU64,
    last_poll: Mutex<Option<DateTime<Utc>>>,
}

impl HealthHandle {
    /// The worker's health now.
    #[must_use]
    pub fn snapshot(&self) -> WorkerHealth {
        let c = &self.inner;
        let (acquired, ended) = (c.acquired.load(Ordering::SeqCst), c.ended.load(Ordering::SeqCst));
        WorkerHealth {
            running: acquired.saturating_sub(ended),
            acquired,
            ended,
            lease_losses: c.lease_losses.load(Ordering::SeqCst),
            failed_polls: c.failed_polls.load(Ordering::SeqCst),
            last_poll: *c.last_poll.lock().unwrap_or_else(PoisonError::into_inner),
        }
    }

    pub(crate) fn polled(&self, acquired: Option<usize>) {
        *self.inner.last_poll.lock().unwrap_or_else(PoisonError::into_inner) = Some(Utc::now());
        match acquired {
            Some(count) => {
                self.inner.acquired.fetch_add(count as u64, Ordering::SeqCst);
            }
            None => {
                self.inner.failed_polls.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    pub(crate) fn ended(&self, lost: bool) {
        if lost {
            self.inner.lease_losses.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.ended.fetch_add(1, Ordering::SeqCst);
    }
}
