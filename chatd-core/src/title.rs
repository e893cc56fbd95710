//! Automatic chat titles ([BEHAVIOUR §14](crate::behaviour#14-titles)).

use crate::part::Part;

/// The longest title, in characters.
pub(crate) const MAX_TITLE_CHARS: usize = 80;
/// How many words of the first message make the automatic title.
pub(crate) const AUTO_TITLE_WORDS: usize = 6;

/// The automatic title of a chat whose first message is `content`: its first six words,
/// followed by `…` when there were more, at most 80 characters. `None` when the message
/// has no text.
#[must_use]
pub(crate) fn auto_title(content: &[Part]) -> Option<String> {
    auto_title_within(content, MAX_TITLE_CHARS)
}

/// [`auto_title`] cut at `max_chars` characters (at least 1), the store's configured limit.
#[must_use]
pub(crate) fn auto_title_within(content: &[Part], max_chars: usize) -> Option<String> {
    let max_chars = max_chars.max(1);
    let text: String = content
        .iter()
        .filter_map(|part| match part {
            Part::Text { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ");
    let mut words = text.split_whitespace();
    let head: Vec<&str> = words.by_ref().take(AUTO_TITLE_WORDS).collect();
    if head.is_empty() {
        return None;
    }
    let mut title = head.join(" ");
    let truncated = words.next().is_some();
    // Room for the `…` is needed only when something is cut.
    let count = title.chars().count();
    if count > max_chars || (truncated && count > max_chars - 1) {
        title = title.chars().take(max_chars - 1).collect();
        title.push('…');
    } else if truncated {
        title.push('…');
    }
    Some(title)
}

/// Whether `title` is the automatic title of `content` under any title limit (a store may be
/// configured with its own): the limit that would produce it is its own length.
#[must_use]
pub(crate) fn is_auto_title(title: &str, content: &[Part]) -> bool {
    auto_title_within(content, title.chars().count()).as_deref() == Some(title)
}

/// Normalises a proposed title: trims, strips quotes and backticks, collapses white space
/// and cuts it to 80 characters. `None` when nothing is left.
#[must_use]
pub(crate) fn normalize_title(raw: &str) -> Option<String> {
    let stripped: String = raw.chars().filter(|c| !matches!(c, '"' | '`' | '“' | '”')).collect();
    let stripped = stripped.trim().trim_matches('\'');
    let collapsed = stripped.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        return None;
    }
    Some(collapsed.chars().take(MAX_TITLE_CHARS).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_title_takes_six_words_and_marks_the_cut() {
        let content = vec![Part::text("please fix the failing build on main today thanks")];
        assert_eq!(auto_title(&content).as_deref(), Some("please fix the failing build on…"));
        assert_eq!(auto_title(&[Part::text("  hello   world ")]).as_deref(), Some("hello world"));
        assert_eq!(auto_title(&[Part::text("   ")]), None);
    }

    #[test]
    fn auto_title_is_at_most_eighty_characters() {
        let long = "x".repeat(200);
        let title = auto_title(&[Part::text(long)]).expect("title");
        assert_eq!(title.chars().count(), 80);
        assert!(title.ends_with('…'));
    }

    #[test]
    fn auto_titles_follow_the_limit_and_are_recognised_under_any_limit() {
        let six = [Part::text("alpha beta gamma delta epsilon zeta")];
        let more = [Part::text("alpha beta gamma delta epsilon zeta eta")];
        assert_eq!(auto_title_within(&six, 12).as_deref(), Some("alpha beta …"));
        assert_eq!(
            auto_title_within(&six, 35).as_deref(),
            Some("alpha beta gamma delta epsilon zeta")
        );
        assert_eq!(
            auto_title_within(&more, 36).as_deref(),
            Some("alpha beta gamma delta epsilon zeta…")
        );
        assert_eq!(
            auto_title_within(&more, 35).as_deref(),
            Some("alpha beta gamma delta epsilon zet…")
        );
        for content in [&six[..], &more[..]] {
            for limit in 1..60 {
                let title = auto_title_within(content, limit).expect("title");
                assert!(title.chars().count() <= limit, "{title:?} over {limit}");
                assert!(is_auto_title(&title, content), "{title:?} at {limit}");
            }
        }
        assert!(!is_auto_title("alpha beta", &six), "a person's title is not automatic");
    }

    #[test]
    fn normalize_strips_quotes_and_collapses_space() {
        assert_eq!(normalize_title("  \"Fix   the `build`\" ").as_deref(), Some("Fix the build"));
        assert_eq!(normalize_title("\"\""), None);
        assert_eq!(normalize_title(&"a".repeat(100)).map(|t| t.len()), Some(80));
    }
}
