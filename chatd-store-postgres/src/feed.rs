//! [`PgChangeFeed`]: change hints over `LISTEN`/`NOTIFY`, with a poll fallback.
//!
//! Stores hand the hints of each committed intent to a per-process notifier, which sends
//! them as batched `NOTIFY`s (see the `notifier` module for why not inside the intent's
//! transaction): hints arrive only for committed work, in order per process, and never one
//! per token (parts are flushed in batches). One listener connection per process fans
//! hints out to every subscriber through a broadcast channel.
//!
//! Notifications sent while the listener is disconnected are lost. Two mechanisms make
//! that a delay instead of a loss:
//! - when the listener notices the disconnect it publishes a [`ChangeKind::Resync`] (re-read
//!   everything) and reconnects with back-off;
//! - every `poll_interval`, a poller looks for changes since its last tick — messages above
//!   the last seen id, chats whose `updated_at` moved, part-log rows — and publishes hints
//!   for them. With `listen = false` the poller alone drives the feed.

use std::sync::Arc;
use std::time::Duration;

use chatd_core::feed::{BroadcastFeed, ChangeFeed};
use chatd_core::store::Result;
use chatd_core::{ChangeHint, ChangeKind, ChatId};
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::error::db;
use crate::tx::CHANNEL;

/// How a [`PgChangeFeed`] runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PgFeedOptions {
    /// Listen for notifications (default `true`). With `false`, only the poller runs.
    pub listen: bool,
    /// How often the poll fallback looks for changes (default 1 s).
    pub poll_interval: Duration,
    /// How many hints a subscriber may fall behind before it gets a resync (default 4096).
    pub capacity: usize,
}

impl Default for PgFeedOptions {
    fn default() -> Self {
        PgFeedOptions { listen: true, poll_interval: Duration::from_secs(1), capacity: 4096 }
    }
}

impl PgFeedOptions {
    /// Sets `listen`.
    #[must_use]
    pub fn with_listen(mut self, listen: bool) -> Self {
        self.listen = listen;
        self
    }

    /// Sets the poll interval.
    #[must_use]
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }
}

/// A [`ChangeFeed`] over PostgreSQL. Its background tasks stop when it is dropped.
#[derive(Debug)]
pub struct PgChangeFeed {
    hints: BroadcastFeed,
    tasks: Vec<JoinHandle<()>>,
}

impl PgChangeFeed {
    /// Starts listening (when `options.listen`) and polling. Returns once `LISTEN` is in
    /// effect, so every hint committed after this returns is delivered.
    ///
    /// # Errors
    /// `Backend` when the listener cannot connect or the poller cannot read its starting
    /// watermarks.
    pub async fn start(pool: PgPool, options: PgFeedOptions) -> Result<Self> {
        let hints = BroadcastFeed::new(options.capacity);
        let mut tasks = Vec::new();
        if options.listen {
            let mut listener = PgListener::connect_with(&pool).await.map_err(db)?;
            listener.listen(CHANNEL).await.map_err(db)?;
            tasks.push(tokio::spawn(listen(listener, hints.clone())));
        }
        let watermark = Watermark::now(&pool).await?;
        tasks.push(tokio::spawn(poll(pool, hints.clone(), options.poll_interval, watermark)));
        Ok(PgChangeFeed { hints, tasks })
    }
}

impl Drop for PgChangeFeed {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl ChangeFeed for PgChangeFeed {
    fn subscribe(&self) -> BoxStream<'static, ChangeHint> {
        self.hints.subscribe()
    }
}

/// A shared handle, so a feed can be owned by the store and handed out as `dyn ChangeFeed`.
pub(crate) type SharedFeed = Arc<PgChangeFeed>;

async fn listen(mut listener: PgListener, hints: BroadcastFeed) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                backoff = Duration::from_millis(100);
                match ChangeHint::decode(notification.payload()) {
                    Ok(hint) => hints.publish(hint),
                    Err(err) => tracing::warn!(%err, "ignoring a malformed change hint"),
                }
            }
            Ok(None) => {
                // The connection dropped: whatever was notified meanwhile is lost. The next
                // `try_recv` reconnects and listens again.
                tracing::warn!("change feed listener disconnected; reconnecting");
                hints.publish(ChangeHint::resync());
            }
            Err(err) => {
                tracing::warn!(%err, ?backoff, "change feed listener failed; retrying");
                hints.publish(ChangeHint::resync());
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// What the poller has already seen.
#[derive(Debug, Clone, Copy)]
struct Watermark {
    message_id: i64,
    at: DateTime<Utc>,
}

impl Watermark {
    async fn now(pool: &PgPool) -> Result<Self> {
        let (message_id, at): (i64, DateTime<Utc>) =
            sqlx::query_as("SELECT COALESCE(MAX(id), 0), now() FROM chat_messages")
                .fetch_one(pool)
                .await
                .map_err(db)?;
        Ok(Watermark { message_id, at })
    }
}

async fn poll(pool: PgPool, hints: BroadcastFeed, interval: Duration, mut seen: Watermark) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        match poll_once(&pool, seen, interval).await {
            Ok((found, next)) => {
                seen = next;
                for hint in found {
                    hints.publish(hint);
                }
            }
            Err(err) => tracing::warn!(%err, "change feed poll failed"),
        }
    }
}

/// One poll: hints for every change since `seen` (chats are re-checked over one extra
/// interval, because a transaction's `now()` is its start time and it may commit later).
async fn poll_once(
    pool: &PgPool,
    seen: Watermark,
    interval: Duration,
) -> Result<(Vec<ChangeHint>, Watermark)> {
    let overlap =
        chrono::Duration::from_std(interval).unwrap_or_else(|_| chrono::Duration::seconds(1));
    let now: DateTime<Utc> =
        sqlx::query_scalar("SELECT now()").fetch_one(pool).await.map_err(db)?;
    let messages: Vec<(Uuid, i64)> =
        sqlx::query_as("SELECT chat_id, MAX(id) FROM chat_messages WHERE id > $1 GROUP BY chat_id")
            .bind(seen.message_id)
            .fetch_all(pool)
            .await
            .map_err(db)?;
    let chats: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT id, status::text FROM chats WHERE updated_at > $1")
            .bind(seen.at - overlap)
            .fetch_all(pool)
            .await
            .map_err(db)?;
    let parts: Vec<(Uuid, i64, i64)> = sqlx::query_as(
        "SELECT DISTINCT ON (chat_id) chat_id, episode, seq FROM chat_stream_parts \
         WHERE created_at > $1 ORDER BY chat_id, episode DESC, seq DESC",
    )
    .bind(seen.at - overlap)
    .fetch_all(pool)
    .await
    .map_err(db)?;
    let mut found = Vec::new();
    let mut next = Watermark { message_id: seen.message_id, at: now };
    for (chat, last) in messages {
        next.message_id = next.message_id.max(last);
        found.push(ChangeHint::new(ChatId(chat), ChangeKind::Messages).at(last));
    }
    for (chat, status) in chats {
        found.push(ChangeHint::new(ChatId(chat), ChangeKind::Chat));
        if status == "pending" {
            found.push(ChangeHint::new(ChatId(chat), ChangeKind::Pending));
        }
    }
    for (chat, episode, seq) in parts {
        found.push(
            ChangeHint::new(ChatId(chat), ChangeKind::Parts).at(format_args!("{episode}.{seq}")),
        );
    }
    Ok((found, next))
}
