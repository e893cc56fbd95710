//! What the GitHub source reads from a remote URL, a branch name and a pull request's
//! reviews.

use serde::{Deserialize, Serialize};

/// A repository on a git host, parsed from a remote URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Repository {
    /// The host (`github.com`).
    pub(crate) host: String,
    /// The owner (user or organisation).
    pub(crate) owner: String,
    /// The repository name (without `.git`).
    pub(crate) name: String,
}

/// Parses `https://HOST/OWNER/REPO(.git)` and `git@HOST:OWNER/REPO(.git)` (`None` for
/// anything else).
#[must_use]
pub(crate) fn parse_remote(remote: &str) -> Option<Repository> {
    let remote = remote.trim();
    let (host, path) = if let Some(rest) = remote.strip_prefix("https://") {
        rest.split_once('/')?
    } else if let Some(rest) = remote.strip_prefix("git@") {
        rest.split_once(':')?
    } else {
        return None;
    };
    let path = path.trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    let (owner, name) = path.split_once('/')?;
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    (valid(host) && valid(owner) && valid(name) && !host.contains('@')).then(|| Repository {
        host: host.to_ascii_lowercase(),
        owner: owner.to_owned(),
        name: name.to_owned(),
    })
}

/// Escapes a branch name for a URL path segment (`feature/x` → `feature%2Fx`): everything
/// but unreserved characters is percent-encoded.
#[must_use]
pub(crate) fn escape_path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// One review of a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Review {
    /// The review's id (later reviews have larger ids).
    pub(crate) id: i64,
    /// Who reviewed.
    pub(crate) reviewer: String,
    /// `APPROVED`, `CHANGES_REQUESTED`, `DISMISSED`, `COMMENTED`, `PENDING`.
    pub(crate) state: String,
}

/// Whether some reviewer's latest decisive review (APPROVED, CHANGES_REQUESTED or
/// DISMISSED; latest by review id) requests changes.
#[must_use]
pub(crate) fn changes_requested(reviews: &[Review]) -> bool {
    let mut latest: std::collections::HashMap<&str, &Review> = std::collections::HashMap::new();
    for review in reviews {
        let decisive =
            matches!(review.state.trim(), "APPROVED" | "CHANGES_REQUESTED" | "DISMISSED");
        if decisive && latest.get(review.reviewer.as_str()).is_none_or(|r| r.id < review.id) {
            latest.insert(review.reviewer.as_str(), review);
        }
    }
    latest.values().any(|r| r.state.trim() == "CHANGES_REQUESTED")
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn github_remotes_parse_in_both_forms() {
        let expected =
            Repository { host: "github.com".into(), owner: "o".into(), name: "r".into() };
        for remote in [
            "https://github.com/o/r",
            "https://github.com/o/r.git",
            "git@github.com:o/r",
            "git@github.com:o/r.git",
            "  https://github.com/o/r/  ",
        ] {
            assert_eq!(parse_remote(remote).as_ref(), Some(&expected), "{remote}");
        }
        let gitlab = parse_remote("https://gitlab.com/o/r.git").expect("parses");
        assert_eq!(gitlab.host, "gitlab.com", "other hosts parse; sources decide what they serve");
        for bad in [
            "",
            "ssh://git@github.com/o/r",
            "https://github.com/o",
            "file:///tmp/r",
            "git@github.com:o",
            "https://github.com//r",
        ] {
            assert_eq!(parse_remote(bad), None, "{bad}");
        }
    }

    #[test]
    fn branches_are_path_escaped() {
        assert_eq!(escape_path_segment("feature/x"), "feature%2Fx");
        assert_eq!(escape_path_segment("fix bug#1"), "fix%20bug%231");
        assert_eq!(escape_path_segment("main"), "main");
        assert_eq!(escape_path_segment("ü"), "%C3%BC");
    }

    fn review(id: i64, reviewer: &str, state: &str) -> Review {
        Review { id, reviewer: reviewer.into(), state: state.into() }
    }

    #[test]
    fn changes_requested_follows_each_reviewers_latest_decisive_review() {
        assert!(!changes_requested(&[]));
        assert!(changes_requested(&[review(1, "a", "CHANGES_REQUESTED")]));
        // Approved later by the same reviewer.
        assert!(!changes_requested(&[
            review(1, "a", "CHANGES_REQUESTED"),
            review(2, "a", "APPROVED")
        ]));
        // Order in the list does not matter: ids do.
        assert!(!changes_requested(&[
            review(2, "a", "APPROVED"),
            review(1, "a", "CHANGES_REQUESTED")
        ]));
        // A comment is not decisive; a dismissal is.
        assert!(changes_requested(&[
            review(1, "a", "CHANGES_REQUESTED"),
            review(2, "a", "COMMENTED")
        ]));
        assert!(!changes_requested(&[
            review(1, "a", "CHANGES_REQUESTED"),
            review(2, "a", "DISMISSED")
        ]));
        // Another reviewer's approval does not cancel it.
        assert!(changes_requested(&[
            review(1, "a", "CHANGES_REQUESTED"),
            review(2, "b", "APPROVED")
        ]));
    }
}
