//! Text a peer chose (substream and session names, reject reasons, close
//! reasons), made safe to print: control characters (escape codes, CR and
//! LF that would forge log lines) and bidirectional overrides become `?`,
//! and the length is bounded.

use std::borrow::Cow;

/// Characters that change how a terminal or a log shows what follows.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every control character (and bidi override) replaced by `?`.
pub fn printable(s: &str) -> Cow<'_, str> {
    if s.chars().any(unsafe_char) {
        Cow::Owned(
            s.chars()
                .map(|c| if unsafe_char(c) { '?' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(s)
    }
}

/// [`printable`], and at most `max` characters (then `...`).
pub fn bounded(s: &str, max: usize) -> String {
    let mut out: String = printable(s).chars().take(max).collect();
    if s.chars().nth(max).is_some() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_line_breaks_cannot_forge_output() {
        assert_eq!(printable("take.wav"), "take.wav");
        assert!(matches!(printable("take.wav"), Cow::Borrowed(_)));
        assert_eq!(
            printable("a\u{1b}[2J\r\nrefused x: forged\u{7}"),
            "a?[2J??refused x: forged?"
        );
        assert_eq!(printable("evil\u{202e}vaw.exe"), "evil?vaw.exe");
        assert_eq!(bounded("abcdef", 3), "abc...");
        assert_eq!(bounded("abc", 3), "abc");
    }
}
