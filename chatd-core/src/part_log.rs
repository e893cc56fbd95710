//! The format of the durable part log ([BEHAVIOUR §7](crate::behaviour#7-streams)): what the turn writes while it streams
//! ([`runtime::live`](crate::runtime::live) batches the writes) and what subscribers read back
//! ([`events`](crate::events)). Neither side needs the other; both need this.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::provider::StreamEvent;
use crate::store::Lease;

/// One entry of the durable part log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
#[cfg_attr(not(feature = "testing"), allow(unreachable_pub))] // testing::internals
pub enum LivePart {
    /// A stream event of the model call (or of a compaction: its `chat_summarized` call
    /// and result).
    Stream {
        /// The event.
        event: StreamEvent,
    },
    /// The attempt failed and will be retried: this episode's parts are void.
    Retry {
        /// The retry's number (1 for the first retry).
        attempt: u32,
        /// How long the turn waits.
        delay_ms: u64,
        /// The error being retried.
        error: String,
        /// When the next attempt starts.
        retrying_at: DateTime<Utc>,
    },
}

/// [`Lease::episode_base`].
pub(crate) fn episode_base(lease: &Lease) -> i64 {
    lease.episode_base()
}
