//! Per-chat pull-request tracking (`chat_diff_statuses`, [BEHAVIOUR §10](crate::behaviour#10-diff-status)).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::ChatId;

/// The cached git/PR state of a chat's workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffStatus {
    /// The chat whose branch this tracks (one row per chat).
    pub chat_id: ChatId,
    /// The PR URL, or the branch URL when there is no PR.
    pub url: Option<String>,
    /// `open`, `closed`, `merged`, ...
    pub pull_request_state: Option<String>,
    /// Some reviewer's latest decisive review requests changes.
    pub changes_requested: bool,
    /// Lines added.
    pub additions: i32,
    /// Lines deleted.
    pub deletions: i32,
    /// Files changed.
    pub changed_files: i32,
    /// The last successful or failed refresh.
    pub refreshed_at: Option<DateTime<Utc>>,
    /// When the row needs refreshing.
    pub stale_at: DateTime<Utc>,
    /// When the row was created.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
    /// The branch the workspace works on.
    pub git_branch: String,
    /// The workspace's `origin` remote.
    pub git_remote_origin: String,
}

/// The git reference a chat's workspace reports. Empty strings keep the stored values;
/// writing a reference always marks the row stale so it is refreshed soon.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiffReference {
    /// The branch (empty: keep).
    pub git_branch: String,
    /// The remote (empty: keep).
    pub git_remote_origin: String,
    /// A known URL (`None` or empty: keep).
    pub url: Option<String>,
}

impl DiffReference {
    /// A reference to `branch` on `remote`.
    #[must_use]
    pub fn new(remote: impl Into<String>, branch: impl Into<String>) -> Self {
        DiffReference { git_branch: branch.into(), git_remote_origin: remote.into(), url: None }
    }
}

/// The result of refreshing a row from the git host.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiffRefresh {
    /// PR or branch URL.
    pub url: Option<String>,
    /// PR state (trimmed).
    pub pull_request_state: Option<String>,
    /// Whether a reviewer's latest decisive review requests changes.
    pub changes_requested: bool,
    /// Lines added.
    pub additions: i32,
    /// Lines deleted.
    pub deletions: i32,
    /// Files changed.
    pub changed_files: i32,
    /// When to refresh next.
    pub stale_at: DateTime<Utc>,
}

impl DiffRefresh {
    /// A refresh result with no PR information, refreshed again at `stale_at`.
    #[must_use]
    pub fn empty(stale_at: DateTime<Utc>) -> Self {
        DiffRefresh {
            url: None,
            pull_request_state: None,
            changes_requested: false,
            additions: 0,
            deletions: 0,
            changed_files: 0,
            stale_at,
        }
    }
}
