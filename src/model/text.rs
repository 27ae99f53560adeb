//! Characters that must never reach a terminal from the repository, and the one escaping helper
//! every place that prints repository-derived text goes through.

use std::borrow::Cow;
use std::fmt::Write;

/// Control characters (C0, DEL, C1) and the invisible bidirectional overrides, isolates and marks
/// that can make text read differently from what it is (CVE-2021-42574, "Trojan Source").
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// `text` with every unsafe character written as `\u{…}` (and `\` doubled only when it could be
/// mistaken for such an escape), so it prints as exactly one visible line.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe_char(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Says which unsafe character `text` holds first, for a diagnostic; `allowed` lists control
/// characters that are fine in this place (a newline in an env value, say).
pub fn unsafe_char_problem(text: &str, allowed: &[char]) -> Option<String> {
    let c = text
        .chars()
        .find(|c| is_unsafe_char(*c) && !allowed.contains(c))?;
    let what = if c == '\0' {
        "a NUL byte"
    } else if c.is_control() {
        "a control character"
    } else {
        "an invisible bidirectional-text control"
    };
    Some(format!("contains U+{:04X} ({what})", u32::from(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_bidi_overrides_and_leaves_the_rest() {
        assert_eq!(printable("acme Corp — café"), "acme Corp — café");
        assert_eq!(printable("a\x1b[31mred"), "a\\u{1b}[31mred");
        assert_eq!(printable("x\u{9b}2J"), "x\\u{9b}2J");
        assert_eq!(printable("ab\u{202E}cd"), "ab\\u{202e}cd");
        assert_eq!(printable("\u{2066}i\u{2069}"), "\\u{2066}i\\u{2069}");
        assert_eq!(printable("del\x7f"), "del\\u{7f}");
        assert_eq!(printable("two\nlines"), "two\\u{a}lines");
    }

    #[test]
    fn names_the_first_unsafe_character_unless_allowed() {
        assert_eq!(unsafe_char_problem("fine", &[]), None);
        assert_eq!(unsafe_char_problem("a\nb", &['\n']), None);
        let p = unsafe_char_problem("a\0b", &['\n']).unwrap();
        assert!(p.contains("U+0000") && p.contains("NUL"), "{p}");
        let p = unsafe_char_problem("x\u{202D}", &[]).unwrap();
        assert!(p.contains("U+202D") && p.contains("bidirectional"), "{p}");
        let p = unsafe_char_problem("\u{85}", &[]).unwrap();
        assert!(p.contains("control"), "{p}");
    }
}
