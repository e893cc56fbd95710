//! The diff status refresher (BEHAVIOUR §10) with the GitHub source against a fake GitHub API:
//! found, not found, merged, an API error backs off, another host is unsupported, a reported
//! reference is retried until its PR appears, list watchers hear of it; and on PostgreSQL two
//! refreshers never claim the same row.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chatd_core::events::OwnerEventKind;
use chatd_core::runtime::diff::{DiffError, DiffLookup, DiffRefresher, DiffSource, GitTokens};
use chatd_core::store::ChatStore;
use chatd_core::{
    Actor, ChatId, Chatd, DiffReference, NewChat, NewModelConfig, NewProvider, ProviderKind,
    Secret, UserId,
};
use chatd_providers::github::GitHubDiffSource;
use chatd_providers::testing::{FakeResponse, FakeServer};
use chatd_store_memory::InMemoryChatStore;
use chatd_tests::pg::FreshDb;
use futures::StreamExt;

struct NoToken;

#[async_trait]
impl GitTokens for NoToken {
    async fn token(&self, _owner: UserId) -> Option<Secret> {
        None
    }
}

fn ok(body: &str) -> FakeResponse {
    FakeResponse::json(200, body.as_bytes().to_vec())
}

const DETAIL: &str = r#"{"html_url": "https://github.com/o/r/pull/12", "state": "open", "merged": false,
    "additions": 120, "deletions": 8, "changed_files": 5}"#;

async fn store() -> Arc<dyn ChatStore> {
    let store: Arc<dyn ChatStore> = Arc::new(InMemoryChatStore::new());
    store.create_provider(NewProvider::new(ProviderKind::Anthropic)).await.expect("provider");
    store
        .create_model_config(NewModelConfig::new(ProviderKind::Anthropic, "m", 1000).as_default())
        .await
        .expect("config");
    store
}

async fn refresher(
    store: &Arc<dyn ChatStore>,
    responses: Vec<FakeResponse>,
) -> (FakeServer, DiffRefresher) {
    let server = FakeServer::start(responses).await.expect("server");
    let github = GitHubDiffSource::new(Arc::new(NoToken)).with_api_base(server.url());
    let refresher = DiffRefresher::new(Arc::clone(store), Arc::new(github))
        .with_report_backoff(vec![Duration::from_millis(50); 5]);
    (server, refresher)
}

async fn chat(store: &Arc<dyn ChatStore>, owner: UserId) -> ChatId {
    store.create_chat(NewChat::new(owner).with_text("work")).await.expect("chat").id
}

fn stale_in(status: &chatd_core::DiffStatus) -> i64 {
    (status.stale_at - chrono::Utc::now()).num_seconds()
}

#[tokio::test]
async fn a_found_pull_request_fills_the_row_and_is_fresh_for_two_minutes() {
    let store = store().await;
    let (_server, refresher) =
        refresher(&store, vec![ok(r#"[{"number": 12}]"#), ok(DETAIL), ok("[]")]).await;
    let chat = chat(&store, UserId::new()).await;
    let row = refresher
        .report_git_reference(chat, "git@github.com:o/r.git", "feature/x")
        .await
        .expect("report");
    assert_eq!(row.url.as_deref(), Some("https://github.com/o/r/pull/12"));
    assert_eq!(row.pull_request_state.as_deref(), Some("open"));
    assert_eq!(
        (row.additions, row.deletions, row.changed_files, row.changes_requested),
        (120, 8, 5, false)
    );
    assert!(row.refreshed_at.is_some());
    assert!((118..=120).contains(&stale_in(&row)), "stale in {} s", stale_in(&row));
}

#[tokio::test]
async fn a_reported_branch_without_a_pull_request_is_retried_until_one_appears() {
    let store = store().await;
    // Not found twice, then found.
    let (server, refresher) = refresher(
        &store,
        vec![ok("[]"), ok("[]"), ok(r#"[{"number": 12}]"#), ok(DETAIL), ok("[]")],
    )
    .await;
    let owner = UserId::new();
    let chatd = Chatd::new(Arc::clone(&store)).with_diff_refresher(refresher);
    let actor = Actor::user(owner);
    let chat = chat(&store, owner).await;
    let mut list = chatd.watch(&actor, None).await.expect("watch");
    let row = chatd
        .report_git_reference(&actor, chat, "https://github.com/o/r", "feature/x")
        .await
        .expect("report");
    assert_eq!(
        row.url.as_deref(),
        Some("https://github.com/o/r/tree/feature%2Fx"),
        "the branch URL meanwhile"
    );
    assert_eq!(row.pull_request_state, None);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let current = chatd.diff_status(&actor, chat).await.expect("status").expect("row");
        if current.pull_request_state.as_deref() == Some("open") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{current:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.requests().len(), 5, "no request after the PR was found");
    // The chat list heard about it (after listing the chat itself).
    let created = tokio::time::timeout(Duration::from_secs(5), list.next())
        .await
        .expect("in time")
        .expect("event");
    assert!(matches!(created.kind, OwnerEventKind::Created { .. }), "{created:?}");
    let event = loop {
        let event = tokio::time::timeout(Duration::from_secs(5), list.next())
            .await
            .expect("in time")
            .expect("event");
        if matches!(event.kind, OwnerEventKind::DiffStatusChange { .. }) {
            break event;
        }
    };
    assert_eq!(event.chat_id, chat);
    // Other users cannot see or report it.
    let stranger = Actor::user(UserId::new());
    assert!(chatd.diff_status(&stranger, chat).await.is_err());
}

#[tokio::test]
async fn an_api_error_keeps_the_old_values_and_backs_off() {
    let store = store().await;
    let (_server, refresher) = refresher(
        &store,
        vec![
            ok(r#"[{"number": 12}]"#),
            ok(DETAIL),
            ok("[]"),
            FakeResponse::json(502, br#"{"message": "Server Error"}"#.to_vec()),
        ],
    )
    .await;
    let chat = chat(&store, UserId::new()).await;
    refresher.report_git_reference(chat, "https://github.com/o/r", "b").await.expect("report");
    let before = store.get_diff_status(chat).await.expect("get").expect("row");
    let (after, lookup) = refresher.refresh(&before).await.expect("refresh");
    assert_eq!(lookup, None, "the source failed");
    assert_eq!(after.pull_request_state.as_deref(), Some("open"), "old values kept");
    assert_eq!(after.additions, 120);
    assert!(after.refreshed_at >= before.refreshed_at);
    assert!((118..=120).contains(&stale_in(&after)), "backs off for the TTL");
}

#[tokio::test]
async fn a_gitlab_remote_is_unsupported_not_an_error() {
    let store = store().await;
    let (server, refresher) = refresher(&store, vec![]).await;
    let chat = chat(&store, UserId::new()).await;
    let row = refresher
        .report_git_reference(chat, "https://gitlab.com/o/r.git", "main")
        .await
        .expect("report");
    assert_eq!((row.url.as_deref(), row.pull_request_state.as_deref()), (None, None));
    assert!((118..=120).contains(&stale_in(&row)));
    assert!(server.requests().is_empty());
    // A stale sweep over it goes on without error.
    store.upsert_diff_reference(chat, DiffReference::new("", "")).await.expect("mark stale");
    assert_eq!(refresher.refresh_stale().await.expect("sweep"), 1);
}

/// Counts lookups per remote, slowly, so concurrent claims overlap.
#[derive(Default)]
struct Counting(Mutex<HashMap<String, usize>>);

#[async_trait]
impl DiffSource for Counting {
    async fn lookup(
        &self,
        _owner: UserId,
        remote: &str,
        _branch: &str,
    ) -> Result<DiffLookup, DiffError> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        *self.0.lock().expect("lock").entry(remote.to_owned()).or_default() += 1;
        Ok(DiffLookup::NoPullRequest { branch_url: format!("{remote}/tree/main") })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_refreshers_on_postgres_never_refresh_the_same_row() {
    let db = FreshDb::create().await;
    let store: Arc<dyn ChatStore> = Arc::new(db.store().await);
    store.create_provider(NewProvider::new(ProviderKind::Anthropic)).await.expect("provider");
    store
        .create_model_config(NewModelConfig::new(ProviderKind::Anthropic, "m", 1000).as_default())
        .await
        .expect("config");
    let rows = 60;
    for i in 0..rows {
        let chat = chat(&store, UserId::new()).await;
        store
            .upsert_diff_reference(
                chat,
                DiffReference::new(format!("https://github.com/o/r{i}"), "main"),
            )
            .await
            .expect("reference");
    }
    let counting = Arc::new(Counting::default());
    let a = DiffRefresher::new(
        Arc::new(db.store().await),
        Arc::clone(&counting) as Arc<dyn DiffSource>,
    );
    let b = DiffRefresher::new(
        Arc::new(db.store().await),
        Arc::clone(&counting) as Arc<dyn DiffSource>,
    );
    let sweep = |r: DiffRefresher| async move {
        let mut total = 0;
        loop {
            let claimed = r.refresh_stale().await.expect("refresh");
            if claimed == 0 {
                return total;
            }
            total += claimed;
        }
    };
    let (got_a, got_b) = tokio::join!(sweep(a), sweep(b));
    let counts = counting.0.lock().expect("lock").clone();
    assert_eq!(got_a + got_b, rows, "every row claimed once ({got_a} + {got_b})");
    assert!(got_a > 0 && got_b > 0, "both refreshers worked ({got_a}, {got_b})");
    assert_eq!(counts.len(), rows);
    assert!(counts.values().all(|n| *n == 1), "a row was refreshed twice: {counts:?}");
    db.drop().await;
}

#[tokio::test]
async fn repeated_reports_share_one_lookup_sequence_per_chat() {
    let store = store().await;
    // Never found: every lookup answers "no pull request". Retries 300 ms apart, so the 30
    // reports below surely land before the first retry, even on a loaded machine.
    let (server, refresher) = refresher(&store, vec![ok("[]"); 40]).await;
    let refresher = refresher.with_report_backoff(vec![Duration::from_millis(300); 5]);
    let chat = chat(&store, UserId::new()).await;
    for i in 0..30 {
        refresher
            .report_git_reference(chat, "https://github.com/o/r", &format!("branch-{i}"))
            .await
            .expect("report");
    }
    assert_eq!(server.requests().len(), 1, "one immediate lookup, not one per report");
    let row = store.get_diff_status(chat).await.expect("get").expect("row");
    assert_eq!(row.git_branch, "branch-29", "the latest reference is recorded");
    // The one sequence retries five times with the latest reference.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.requests().len() < 6 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await; // and no more than that
    let requests = server.requests();
    assert_eq!(requests.len(), 6, "1 + 5 retries in all");
    assert!(
        requests.last().expect("last").path.contains("branch-29"),
        "{}",
        requests.last().expect("last").path
    );
    // Once it ended, a new report starts a new sequence.
    refresher.report_git_reference(chat, "https://github.com/o/r", "again").await.expect("report");
    assert_eq!(server.requests().len(), 7);
}

#[tokio::test]
async fn an_unsupported_or_empty_reference_keeps_the_stored_values() {
    let store = store().await;
    let (_server, refresher) =
        refresher(&store, vec![ok(r#"[{"number": 12}]"#), ok(DETAIL), ok("[]")]).await;
    let chat = chat(&store, UserId::new()).await;
    let found =
        refresher.report_git_reference(chat, "https://github.com/o/r", "x").await.expect("report");
    assert_eq!(found.pull_request_state.as_deref(), Some("open"));
    // The workspace moves to a remote this source cannot read: nothing is wiped.
    let moved = refresher
        .report_git_reference(chat, "https://gitlab.com/o/r.git", "x")
        .await
        .expect("report");
    assert_eq!(
        (moved.url.as_deref(), moved.pull_request_state.as_deref()),
        (found.url.as_deref(), Some("open"))
    );
    assert_eq!((moved.additions, moved.deletions, moved.changed_files), (120, 8, 5));
    assert!(moved.refreshed_at >= found.refreshed_at, "only the timestamps change");
    // An empty reference on a stored row: the same.
    store.upsert_diff_reference(chat, DiffReference::new("", "")).await.expect("stale");
    let row = store.get_diff_status(chat).await.expect("get").expect("row");
    let mut emptied = row.clone();
    emptied.git_remote_origin.clear();
    let (kept, _) = refresher.refresh(&emptied).await.expect("refresh");
    assert_eq!(
        (kept.url, kept.pull_request_state, kept.additions),
        (row.url, row.pull_request_state, row.additions)
    );
}
