//! Diff status ([BEHAVIOUR §10](crate::behaviour#10-diff-status)): the pull request each chat's workspace works on. A pluggable
//! [`DiffSource`] looks it up (a GitHub implementation is in `chatd-providers`, feature
//! `github`); the [`DiffRefresher`] keeps `chat_diff_statuses` fresh: it claims stale rows
//! (`SKIP LOCKED` on PostgreSQL, so refreshers on many replicas never refresh a row twice),
//! refreshes them, and writes the result with `stale_at = now + 120 s` — also after a
//! failure, as back-off. Each write announces a `diff` hint, which [`watch`] turns into a
//! `diff_status_change` event.
//!
//! [`watch`]: crate::events::watch

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::diff_status::{DiffReference, DiffRefresh, DiffStatus};
use crate::ids::{ChatId, UserId};
use crate::secret::Secret;
use crate::store::{ChatStore, StoreError};

/// How long a refreshed row stays fresh ([BEHAVIOUR §15](crate::behaviour#15-defaults)).
pub(crate) const DIFF_TTL: Duration = Duration::from_secs(120);
/// The retries after `report_git_reference` while no pull request is found.
pub(crate) const REPORT_BACKOFF: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(3),
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(20),
];

/// A pull request's state as a list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    /// Its web URL.
    pub url: String,
    /// `open`, `closed` or `merged` (merged wins over closed), trimmed.
    pub state: String,
    /// Lines added.
    pub additions: i32,
    /// Lines deleted.
    pub deletions: i32,
    /// Files changed.
    pub changed_files: i32,
    /// Whether some reviewer's latest decisive review (approved, changes requested or
    /// dismissed) requests changes.
    pub changes_requested: bool,
}

/// What a [`DiffSource`] found for a remote and branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffLookup {
    /// The branch's pull request.
    PullRequest(PullRequest),
    /// No pull request for the branch yet; the branch's web URL.
    NoPullRequest {
        /// The branch's web URL (`…/tree/<escaped branch>`).
        branch_url: String,
    },
    /// The remote is not on a host this source serves ("unsupported provider"): not an
    /// error, nothing to track.
    Unsupported,
}

/// Why a lookup failed (the row is retried after the TTL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DiffError(pub String);

/// Looks up pull requests on a git host.
#[async_trait]
pub trait DiffSource: Send + Sync + 'static {
    /// The pull request of `branch` on `remote`, acting for `owner` (whose token is used).
    ///
    /// # Errors
    /// The host's failure (the caller backs off).
    async fn lookup(
        &self,
        owner: UserId,
        remote: &str,
        branch: &str,
    ) -> Result<DiffLookup, DiffError>;
}

/// The git host token of a chat owner, supplied by the host application.
#[async_trait]
pub trait GitTokens: Send + Sync + 'static {
    /// `owner`'s token (`None`: anonymous requests).
    async fn token(&self, owner: UserId) -> Option<Secret>;
}

/// Keeps diff statuses fresh. Cheap to clone.
#[derive(Clone)]
pub struct DiffRefresher {
    store: Arc<dyn ChatStore>,
    source: Arc<dyn DiffSource>,
    ttl: Duration,
    batch: usize,
    interval: Duration,
    backoff: Vec<Duration>,
    /// Chats with a lookup sequence running (one at most per chat and process).
    inflight: Arc<std::sync::Mutex<std::collections::HashSet<ChatId>>>,
}

/// Removes a chat from the in-flight set when its lookup sequence ends (however it ends).
struct Inflight(Arc<std::sync::Mutex<std::collections::HashSet<ChatId>>>, ChatId);

impl Drop for Inflight {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&self.1);
    }
}

impl std::fmt::Debug for DiffRefresher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiffRefresher")
            .field("ttl", &self.ttl)
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

fn after(duration: Duration) -> chrono::DateTime<Utc> {
    Utc::now()
        + chrono::Duration::from_std(duration).unwrap_or_else(|_| chrono::Duration::seconds(120))
}

impl DiffRefresher {
    /// A refresher over `store` asking `source`: TTL 120 s, 20 rows per claim, a claim
    /// every 5 s.
    #[must_use]
    pub fn new(store: Arc<dyn ChatStore>, source: Arc<dyn DiffSource>) -> Self {
        DiffRefresher {
            store,
            source,
            ttl: DIFF_TTL,
            batch: 20,
            interval: Duration::from_secs(5),
            backoff: REPORT_BACKOFF.to_vec(),
            inflight: Arc::default(),
        }
    }

    /// Sets how long a refreshed row stays fresh (default 120 s; [BEHAVIOUR §15](crate::behaviour#15-defaults)).
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets how often stale rows are claimed.
    #[must_use]
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Sets the retries after a reported reference while no pull request is found.
    #[must_use]
    pub fn with_report_backoff(mut self, backoff: Vec<Duration>) -> Self {
        self.backoff = backoff;
        self
    }

    /// Refreshes one row: looks it up and writes the result, or on failure keeps the old
    /// values and only pushes `stale_at` out (back-off). Returns the row written and what
    /// the source said (`None` when it failed).
    ///
    /// # Errors
    /// The store's.
    pub async fn refresh(
        &self,
        row: &DiffStatus,
    ) -> Result<(DiffStatus, Option<DiffLookup>), StoreError> {
        let stale_at = after(self.ttl);
        // What is stored now, with new timestamps: kept whenever the lookup says nothing
        // new (an empty or unsupported reference, a failed lookup).
        let kept = || {
            let mut keep = DiffRefresh::empty(stale_at);
            keep.url = row.url.clone();
            keep.pull_request_state = row.pull_request_state.clone();
            keep.changes_requested = row.changes_requested;
            keep.additions = row.additions;
            keep.deletions = row.deletions;
            keep.changed_files = row.changed_files;
            keep
        };
        if row.git_remote_origin.trim().is_empty() || row.git_branch.trim().is_empty() {
            let written = self.store.upsert_diff_refresh(row.chat_id, kept()).await?;
            return Ok((written, Some(DiffLookup::Unsupported)));
        }
        let owner = self.store.get_chat(row.chat_id).await?.owner_id;
        let lookup = self.source.lookup(owner, &row.git_remote_origin, &row.git_branch).await;
        let mut refresh = DiffRefresh::empty(stale_at);
        match &lookup {
            Ok(DiffLookup::PullRequest(pr)) => {
                refresh.url = Some(pr.url.clone());
                refresh.pull_request_state = Some(pr.state.trim().to_owned());
                refresh.changes_requested = pr.changes_requested;
                refresh.additions = pr.additions;
                refresh.deletions = pr.deletions;
                refresh.changed_files = pr.changed_files;
            }
            Ok(DiffLookup::NoPullRequest { branch_url }) => refresh.url = Some(branch_url.clone()),
            Ok(DiffLookup::Unsupported) => refresh = kept(),
            Err(err) => {
                tracing::warn!(chat = %row.chat_id, error = %err, "diff status refresh failed; backing off");
                refresh = kept();
            }
        }
        let written = self.store.upsert_diff_refresh(row.chat_id, refresh).await?;
        Ok((written, lookup.ok()))
    }

    /// Claims stale rows (at most a batch) and refreshes them; returns how many.
    ///
    /// # Errors
    /// The store's, for the claim.
    pub async fn refresh_stale(&self) -> Result<usize, StoreError> {
        // Hold claimed rows for the TTL: a crash mid-refresh only delays them.
        let rows = self.store.claim_stale_diff_statuses(self.batch, self.ttl).await?;
        for row in &rows {
            if let Err(err) = self.refresh(row).await {
                tracing::warn!(chat = %row.chat_id, error = %err, "diff status write failed");
            }
        }
        Ok(rows.len())
    }

    /// Records the git reference a chat's workspace reports (empty strings keep the stored
    /// values) and refreshes it at once; while no pull request is found, retries after
    /// 1, 3, 5, 10 and 20 s in the background. At most one such lookup sequence runs per
    /// chat (in this process): a report while one runs only records the reference, which
    /// the running sequence uses at its next try — so a caller cannot multiply lookups.
    ///
    /// # Errors
    /// `NotFound` for an unknown chat; the store's.
    pub async fn report_git_reference(
        &self,
        chat: ChatId,
        remote: &str,
        branch: &str,
    ) -> Result<DiffStatus, StoreError> {
        let row =
            self.store.upsert_diff_reference(chat, DiffReference::new(remote, branch)).await?;
        // At most one lookup sequence per chat: a repeat report while one runs only updates
        // the reference (above), which the running sequence reads at its next try.
        let fresh =
            self.inflight.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(chat);
        if !fresh {
            return Ok(row);
        }
        let guard = Inflight(Arc::clone(&self.inflight), chat);
        let (written, lookup) = match self.refresh(&row).await {
            Ok(done) => done,
            Err(err) => return Err(err),
        };
        if !matches!(lookup, Some(DiffLookup::PullRequest(_) | DiffLookup::Unsupported)) {
            let this = self.clone();
            tokio::spawn(async move {
                let _guard = guard;
                for delay in this.backoff.clone() {
                    tokio::time::sleep(delay).await;
                    let Ok(Some(row)) = this.store.get_diff_status(chat).await else { return };
                    match this.refresh(&row).await {
                        Ok((_, Some(DiffLookup::PullRequest(_) | DiffLookup::Unsupported)))
                        | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            });
        }
        Ok(written)
    }

    /// Claims and refreshes stale rows every interval until `shutdown` fires.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {
                    // A full batch means more may be waiting: go again at once.
                    while let Ok(claimed) = self.refresh_stale().await {
                        if claimed < self.batch || shutdown.is_cancelled() {
                            break;
                        }
                    }
                }
            }
        }
    }
}
