//! [`GitHubDiffSource`]: pull requests from GitHub's REST API (BEHAVIOUR §10), for the diff
//! status refresher. GitHub Enterprise works by setting the API and web bases.
//!
//! A lookup is up to three requests: the repository's pull requests whose head is the
//! branch (`GET /repos/{o}/{r}/pulls?head={o}:{branch}&state=all`, newest first), the pull
//! request itself (state, `merged`, counts), and its reviews.

use std::sync::Arc;

use async_trait::async_trait;
use chatd_core::UserId;
use chatd_core::runtime::diff::{DiffError, DiffLookup, DiffSource, GitTokens, PullRequest};
use remote::{Review, changes_requested, escape_path_segment, parse_remote};

mod remote;
use serde::Deserialize;

/// The GitHub REST API version this client speaks.
pub const API_VERSION: &str = "2022-11-28";

/// Looks up pull requests on GitHub (or GitHub Enterprise).
#[derive(Clone)]
pub struct GitHubDiffSource {
    api: String,
    web: String,
    tokens: Arc<dyn GitTokens>,
    client: reqwest::Client,
}

impl std::fmt::Debug for GitHubDiffSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubDiffSource")
            .field("api", &self.api)
            .field("web", &self.web)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct ListedPull {
    number: u64,
}

#[derive(Deserialize)]
struct PullDetail {
    html_url: String,
    state: String,
    #[serde(default)]
    merged: bool,
    #[serde(default)]
    additions: i32,
    #[serde(default)]
    deletions: i32,
    #[serde(default)]
    changed_files: i32,
}

#[derive(Deserialize)]
struct ReviewUser {
    login: String,
}

#[derive(Deserialize)]
struct ListedReview {
    id: i64,
    user: Option<ReviewUser>,
    state: String,
}

impl GitHubDiffSource {
    /// A source for github.com, with tokens from `tokens`.
    #[must_use]
    pub fn new(tokens: Arc<dyn GitTokens>) -> Self {
        GitHubDiffSource {
            api: "https://api.github.com".to_owned(),
            web: "https://github.com".to_owned(),
            tokens,
            client: crate::registry::default_client(),
        }
    }

    /// Sets the API base (GitHub Enterprise: `https://HOST/api/v3`).
    #[must_use]
    pub fn with_api_base(mut self, api: impl Into<String>) -> Self {
        self.api = api.into().trim_end_matches('/').to_owned();
        self
    }

    /// Sets the web base whose remotes this source serves (`https://HOST`).
    #[must_use]
    pub fn with_web_base(mut self, web: impl Into<String>) -> Self {
        self.web = web.into().trim_end_matches('/').to_owned();
        self
    }

    /// Uses `client` (timeouts, proxies).
    #[must_use]
    pub fn with_client(mut self, client: reqwest::Client) -> Self {
        self.client = client;
        self
    }

    fn host(&self) -> &str {
        let without_scheme = self.web.split_once("://").map_or(self.web.as_str(), |(_, rest)| rest);
        without_scheme.split('/').next().unwrap_or(without_scheme)
    }

    async fn get<T: for<'de> Deserialize<'de>>(
        &self,
        owner: UserId,
        path: &str,
    ) -> Result<T, DiffError> {
        let mut request = self
            .client
            .get(format!("{}{path}", self.api))
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION)
            .header("User-Agent", "chatd");
        if let Some(token) = self.tokens.token(owner).await {
            request = request.bearer_auth(token.expose());
        }
        let response = request
            .send()
            .await
            .map_err(|err| DiffError(format!("GitHub is unreachable: {}", err.without_url())))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|err| {
            DiffError(format!("GitHub response cut short: {}", err.without_url()))
        })?;
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or_default();
            return Err(DiffError(format!("GitHub answered {}: {message}", status.as_u16())));
        }
        serde_json::from_slice(&body)
            .map_err(|err| DiffError(format!("unexpected GitHub response: {err}")))
    }
}

#[async_trait]
impl DiffSource for GitHubDiffSource {
    async fn lookup(
        &self,
        owner: UserId,
        remote: &str,
        branch: &str,
    ) -> Result<DiffLookup, DiffError> {
        let Some(repo) = parse_remote(remote).filter(|r| r.host.eq_ignore_ascii_case(self.host()))
        else {
            return Ok(DiffLookup::Unsupported);
        };
        let (o, r) = (&repo.owner, &repo.name);
        let head = format!("{o}:{branch}");
        let listed: Vec<ListedPull> = self
            .get(
                owner,
                &format!(
                    "/repos/{o}/{r}/pulls?head={}&state=all&per_page=1",
                    escape_path_segment(&head)
                ),
            )
            .await?;
        let Some(first) = listed.first() else {
            return Ok(DiffLookup::NoPullRequest {
                branch_url: format!("{}/{o}/{r}/tree/{}", self.web, escape_path_segment(branch)),
            });
        };
        let detail: PullDetail =
            self.get(owner, &format!("/repos/{o}/{r}/pulls/{}", first.number)).await?;
        let reviews: Vec<ListedReview> = self
            .get(owner, &format!("/repos/{o}/{r}/pulls/{}/reviews?per_page=100", first.number))
            .await?;
        let reviews: Vec<Review> = reviews
            .into_iter()
            .map(|r| Review {
                id: r.id,
                reviewer: r.user.map(|u| u.login).unwrap_or_default(),
                state: r.state,
            })
            .collect();
        let state =
            if detail.merged { "merged".to_owned() } else { detail.state.trim().to_owned() };
        Ok(DiffLookup::PullRequest(PullRequest {
            url: detail.html_url,
            state,
            additions: detail.additions,
            deletions: detail.deletions,
            changed_files: detail.changed_files,
            changes_requested: changes_requested(&reviews),
        }))
    }
}
