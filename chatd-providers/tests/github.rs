//! `GitHubDiffSource` against a fake GitHub API on 127.0.0.1: the requests it makes (paths,
//! headers, token) and how it reads the answers.

use std::sync::Arc;

use async_trait::async_trait;
use chatd_core::runtime::diff::{DiffLookup, DiffSource, GitTokens, PullRequest};
use chatd_core::{Secret, UserId};
use chatd_providers::github::GitHubDiffSource;
use chatd_providers::testing::{FakeResponse, FakeServer};

struct Token;

#[async_trait]
impl GitTokens for Token {
    async fn token(&self, _owner: UserId) -> Option<Secret> {
        Some(Secret::new("ghp_test_token"))
    }
}

fn ok(body: &str) -> FakeResponse {
    FakeResponse::json(200, body.as_bytes().to_vec())
}

async fn source(responses: Vec<FakeResponse>) -> (FakeServer, GitHubDiffSource) {
    let server = FakeServer::start(responses).await.expect("server");
    let source = GitHubDiffSource::new(Arc::new(Token)).with_api_base(server.url());
    (server, source)
}

const DETAIL_OPEN: &str = r#"{"number": 12, "html_url": "https://github.com/o/r/pull/12", "state": " open ",
    "merged": false, "additions": 120, "deletions": 8, "changed_files": 5}"#;

#[tokio::test]
async fn a_pull_request_is_found_with_its_counts() {
    let (server, source) = source(vec![ok(r#"[{"number": 12}]"#), ok(DETAIL_OPEN), ok("[]")]).await;
    let found =
        source.lookup(UserId::new(), "git@github.com:o/r.git", "feature/x").await.expect("lookup");
    assert_eq!(
        found,
        DiffLookup::PullRequest(PullRequest {
            url: "https://github.com/o/r/pull/12".into(),
            state: "open".into(),
            additions: 120,
            deletions: 8,
            changed_files: 5,
            changes_requested: false,
        })
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0].path, "/repos/o/r/pulls?head=o%3Afeature%2Fx&state=all&per_page=1");
    assert_eq!(requests[1].path, "/repos/o/r/pulls/12");
    assert_eq!(requests[2].path, "/repos/o/r/pulls/12/reviews?per_page=100");
    for request in &requests {
        assert_eq!(request.header("accept"), Some("application/vnd.github+json"));
        assert_eq!(request.header("x-github-api-version"), Some("2022-11-28"));
        assert_eq!(request.header("authorization"), Some("Bearer ghp_test_token"));
    }
}

#[tokio::test]
async fn without_a_pull_request_the_url_is_the_escaped_branch_url() {
    let (server, source) = source(vec![ok("[]")]).await;
    let found =
        source.lookup(UserId::new(), "https://github.com/o/r", "feature/x").await.expect("lookup");
    assert_eq!(
        found,
        DiffLookup::NoPullRequest { branch_url: "https://github.com/o/r/tree/feature%2Fx".into() }
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn merged_wins_over_closed() {
    let detail = r#"{"html_url": "https://github.com/o/r/pull/3", "state": "closed", "merged": true,
        "additions": 1, "deletions": 2, "changed_files": 1}"#;
    let (_server, source) = source(vec![ok(r#"[{"number": 3}]"#), ok(detail), ok("[]")]).await;
    let DiffLookup::PullRequest(pr) =
        source.lookup(UserId::new(), "https://github.com/o/r.git", "b").await.expect("lookup")
    else {
        panic!("no pull request")
    };
    assert_eq!(pr.state, "merged");
}

#[tokio::test]
async fn changes_requested_then_approved_by_the_same_reviewer_is_not_requested() {
    let requested = r#"[{"id": 1, "user": {"login": "a"}, "state": "CHANGES_REQUESTED"}]"#;
    let then_approved = r#"[{"id": 1, "user": {"login": "a"}, "state": "CHANGES_REQUESTED"},
                            {"id": 2, "user": {"login": "a"}, "state": "COMMENTED"},
                            {"id": 3, "user": {"login": "a"}, "state": "APPROVED"}]"#;
    let (_server, source) = source(vec![
        ok(r#"[{"number": 12}]"#),
        ok(DETAIL_OPEN),
        ok(requested),
        ok(r#"[{"number": 12}]"#),
        ok(DETAIL_OPEN),
        ok(then_approved),
    ])
    .await;
    let lookup = |source: GitHubDiffSource| async move {
        match source.lookup(UserId::new(), "https://github.com/o/r", "b").await.expect("lookup") {
            DiffLookup::PullRequest(pr) => pr.changes_requested,
            other => panic!("{other:?}"),
        }
    };
    assert!(lookup(source.clone()).await);
    assert!(!lookup(source).await);
}

#[tokio::test]
async fn an_api_error_is_an_error_naming_the_status() {
    let (_server, source) = source(vec![FakeResponse::json(
        403,
        br#"{"message": "API rate limit exceeded"}"#.to_vec(),
    )])
    .await;
    let err =
        source.lookup(UserId::new(), "https://github.com/o/r", "b").await.expect_err("refused");
    assert_eq!(err.0, "GitHub answered 403: API rate limit exceeded");
    assert!(!format!("{err:?}").contains("ghp_test_token"));
}

#[tokio::test]
async fn other_hosts_are_unsupported_without_a_request() {
    let (server, source) = source(vec![]).await;
    for remote in ["https://gitlab.com/o/r.git", "git@bitbucket.org:o/r.git", "not a remote"] {
        assert_eq!(
            source.lookup(UserId::new(), remote, "b").await,
            Ok(DiffLookup::Unsupported),
            "{remote}"
        );
    }
    assert!(server.requests().is_empty());
}
