//! Scenarios: diff statuses.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;

use super::{Fixture, StoreRef};
use crate::{ChatId, DiffReference, DiffRefresh};

/// Empty fields of a reference keep the stored values; every write marks the row stale.
pub async fn diff_reference_empty_fields_keep_old_values(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.idle_chat().await;
    assert_eq!(fx.store.get_diff_status(chat.id).await.expect("none"), None);
    let first = fx
        .store
        .upsert_diff_reference(
            chat.id,
            DiffReference::new("https://github.com/o/r.git", "feature/x"),
        )
        .await
        .expect("first");
    assert_eq!(
        (first.git_remote_origin.as_str(), first.git_branch.as_str()),
        ("https://github.com/o/r.git", "feature/x")
    );
    assert!(first.stale_at <= Utc::now());
    let kept =
        fx.store.upsert_diff_reference(chat.id, DiffReference::new("", "")).await.expect("empty");
    assert_eq!(kept.git_branch, "feature/x");
    assert_eq!(kept.git_remote_origin, "https://github.com/o/r.git");
    assert!(kept.stale_at >= first.stale_at);
    let moved = fx
        .store
        .upsert_diff_reference(chat.id, DiffReference::new("", "main"))
        .await
        .expect("branch");
    assert_eq!(moved.git_branch, "main");
    assert_eq!(moved.git_remote_origin, "https://github.com/o/r.git");
    assert_eq!(fx.store.get_diff_status(chat.id).await.expect("read"), Some(moved));
}

/// A refresh writes the counts, `refreshed_at` and the next `stale_at`.
pub async fn diff_refresh_sets_counts_and_times(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.idle_chat().await;
    fx.store
        .upsert_diff_reference(chat.id, DiffReference::new("git@github.com:o/r.git", "fix"))
        .await
        .expect("ref");
    let next = Utc::now() + chrono::Duration::seconds(120);
    let refresh = DiffRefresh {
        url: Some("https://github.com/o/r/pull/12".into()),
        pull_request_state: Some("open".into()),
        changes_requested: true,
        additions: 120,
        deletions: 8,
        changed_files: 3,
        stale_at: next,
    };
    let row = fx.store.upsert_diff_refresh(chat.id, refresh).await.expect("refresh");
    assert_eq!(row.url.as_deref(), Some("https://github.com/o/r/pull/12"));
    assert_eq!(row.pull_request_state.as_deref(), Some("open"));
    assert!(row.changes_requested);
    assert_eq!((row.additions, row.deletions, row.changed_files), (120, 8, 3));
    assert!(row.refreshed_at.is_some());
    assert_eq!(row.stale_at.timestamp_micros(), next.timestamp_micros());
    assert_eq!(row.git_branch, "fix", "a refresh keeps the reference");
}

/// Claiming stale rows is exclusive: a claimed row is not claimed again until its hold
/// expires, and fresh rows are never claimed.
pub async fn claim_stale_diff_statuses_is_exclusive(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let mut stale = HashSet::new();
    for i in 0..3 {
        let chat = fx.idle_chat().await;
        fx.store
            .upsert_diff_reference(
                chat.id,
                DiffReference::new("https://github.com/o/r", format!("b{i}")),
            )
            .await
            .expect("ref");
        stale.insert(chat.id);
    }
    let fresh = fx.idle_chat().await;
    let mut refresh = DiffRefresh::empty(Utc::now() + chrono::Duration::seconds(600));
    refresh.url = Some("https://github.com/o/r/tree/main".into());
    fx.store.upsert_diff_refresh(fresh.id, refresh).await.expect("fresh");
    let first =
        fx.store.claim_stale_diff_statuses(2, Duration::from_secs(60)).await.expect("claim");
    let second =
        fx.store.claim_stale_diff_statuses(10, Duration::from_secs(60)).await.expect("claim rest");
    assert_eq!(first.len(), 2);
    assert_eq!(second.len(), 1);
    let claimed: HashSet<ChatId> = first.iter().chain(&second).map(|d| d.chat_id).collect();
    assert_eq!(claimed, stale);
    assert!(first.iter().all(|d| d.stale_at > Utc::now()), "the hold pushes stale_at forward");
    assert!(
        fx.store
            .claim_stale_diff_statuses(10, Duration::from_secs(60))
            .await
            .expect("none")
            .is_empty()
    );
}

/// Diff operations on an unknown chat are `NotFound`.
pub async fn diff_status_of_unknown_chat_is_not_found(store: StoreRef) {
    let unknown = ChatId::new();
    assert!(store.get_diff_status(unknown).await.expect_err("get").is_not_found());
    assert!(
        store
            .upsert_diff_reference(unknown, DiffReference::new("r", "b"))
            .await
            .expect_err("ref")
            .is_not_found()
    );
    let refresh = DiffRefresh::empty(Utc::now());
    assert!(store.upsert_diff_refresh(unknown, refresh).await.expect_err("refresh").is_not_found());
}
