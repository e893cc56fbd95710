//! Text from a model, a tool or a server is shown as text, never as terminal commands: every
//! control character except newline and tab is dropped (carriage returns too, so a line
//! cannot overwrite itself), escape sequences are dropped whole (CSI `ESC [ … final`, OSC
//! `ESC ] … BEL|ESC \`, and two-character ones), C1 controls and bidirectional overrides
//! too (they can make a shown command read as another).

use std::borrow::Cow;

/// `text` without anything a terminal would act on.
pub(crate) fn clean(text: &str) -> Cow<'_, str> {
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates, then one final byte.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC, DCS, SOS, PM, APC: up to BEL or ST (ESC \).
                Some(']' | 'P' | 'X' | '^' | '_') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' {
                            chars.next_if_eq(&'\\');
                            break;
                        }
                    }
                }
                // Any other: the escape and its one character.
                _ => {}
            },
            c if unsafe_char(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn text_stays_and_terminal_commands_go() {
        assert_eq!(clean("plain, ünïcode ✓\n\tindented"), "plain, ünïcode ✓\n\tindented");
        let cases = [
            ("\x1b[31mred\x1b[0m", "red"),
            ("\x1b[2J\x1b[Hwiped", "wiped"),
            ("title\x1b]0;pwned\x07 after", "title after"),
            ("link \x1b]8;;http://evil\x1b\\here\x1b]8;;\x1b\\", "link here"),
            ("over\rwrite", "overwrite"),
            ("bell\x07 back\x08space", "bell backspace"),
            ("c1 \u{9b}31m csi", "c1 31m csi"),
            ("rm -rf \u{202e}txt.exe", "rm -rf txt.exe"),
            ("trailing escape \x1b", "trailing escape "),
            ("unterminated \x1b[31", "unterminated "),
            ("\x1bcreset", "reset"),
        ];
        for (input, shown) in cases {
            assert_eq!(clean(input), shown, "{input:?}");
        }
    }
}
