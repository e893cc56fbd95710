use super::*;

#[test]
fn github_remotes_parse_in_both_forms() {
    let expected = Repository { host: "github.com".into(), owner: "o".into(), name: "r".into() };
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
    assert!(!changes_requested(&[review(1, "a", "CHANGES_REQUESTED"), review(2, "a", "APPROVED")]));
    // Order in the list does not matter: ids do.
    assert!(!changes_requested(&[review(2, "a", "APPROVED"), review(1, "a", "CHANGES_REQUESTED")]));
    // A comment is not decisive; a dismissal is.
    assert!(changes_requested(&[review(1, "a", "CHANGES_REQUESTED"), review(2, "a", "COMMENTED")]));
    assert!(!changes_requested(&[
        review(1, "a", "CHANGES_REQUESTED"),
        review(2, "a", "DISMISSED")
    ]));
    // Another reviewer's approval does not cancel it.
    assert!(changes_requested(&[review(1, "a", "CHANGES_REQUESTED"), review(2, "b", "APPROVED")]));
}
