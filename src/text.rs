//! Text from outside shipgate (a repository's config, a comment, a ref
//! name) made safe for what shipgate writes for people. It sits below every
//! module that builds such text, so the deploy domain and the renderer share
//! one escaping.

/// Text from outside shipgate (a config's freeze `reason`, a lock reason, a
/// ref name) made safe to put inline in Markdown that shipgate posts: one
/// line, no table break, no `@mention` that pings anyone, no HTML (so no
/// comment marker can be opened or closed), at most 300 characters.
pub fn inline_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().take(300).peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' | '\n' | '\t' => out.push(' '),
            // A broken bar: no table cell ends here, whatever escapes later.
            '|' => out.push('¦'),
            // A word joiner after `@` keeps the text but stops the mention
            // (once: text escaped twice reads the same).
            '@' if chars.peek() == Some(&'\u{2060}') => out.push('@'),
            '@' => out.push_str("@\u{2060}"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    if text.chars().count() > 300 {
        out.push('…');
    }
    out
}

/// A branch name as GitHub reports it, safe to put after `refs/heads/`
/// and before `:path` in a git revision.
pub fn plain_branch_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && !name.starts_with("refs/")
        && !name.contains("..")
        && !name.chars().any(|c| {
            c.is_control()
                || c.is_whitespace()
                || matches!(c, ':' | '^' | '~' | '?' | '*' | '[' | '\\')
        })
}

/// The first 7 characters of a commit SHA. Payloads are not trusted to
/// carry hex, so this cuts at a character boundary.
pub fn short(sha: &str) -> &str {
    sha.char_indices().nth(7).map_or(sha, |(i, _)| &sha[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_text_cannot_ping_break_tables_or_open_comments() {
        let reason = "Holidays\n@acme/everyone | see <!-- shipgate:preview -->";
        let safe = inline_text(reason);
        assert!(!safe.contains('\n'), "{safe}");
        assert!(!safe.contains("@acme"), "{safe}");
        assert!(safe.contains("@\u{2060}acme/everyone"), "{safe}");
        assert!(!safe.contains('|') && safe.contains('¦'), "{safe}");
        assert!(!safe.contains("<!--"), "{safe}");
        assert_eq!(inline_text(&"x".repeat(400)).chars().count(), 301);
        assert_eq!(inline_text(&safe), safe, "escaping twice changes nothing");
    }
}
