//! Where in the file an error is. serde_yaml_ng places an error that a
//! field's own check raises inside a list item (`secrets.rules[0]: regex:
//! …`) at the item; this finds the field's key in the item, so the error
//! points at the line and column of `regex:`.

/// The place of the key the message names (`<path>]: <key>: …`) within the
/// list item at `item`, or `item` when the message names none or the key
/// is not found.
pub(super) fn at_key(text: &str, item: (usize, usize), message: &str) -> (usize, usize) {
    let Some((path, rest)) = message.split_once(": ") else {
        return item;
    };
    if !path.ends_with(']') {
        return item;
    }
    let Some((key, _)) = rest.split_once(": ") else {
        return item;
    };
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return item;
    }
    find_key(text, item, key).unwrap_or(item)
}

/// `key` as a key of the mapping whose first key is at `(line, column)`:
/// on that line after it (flow or block style), or on the lines below
/// indented at least as far, where the key is the first thing on its line
/// or follows `{` or `,`.
fn find_key(text: &str, (line, column): (usize, usize), key: &str) -> Option<(usize, usize)> {
    let indent = column.saturating_sub(1);
    for (i, l) in text.lines().enumerate().skip(line.saturating_sub(1)) {
        let from = if i + 1 == line {
            l.char_indices().nth(indent).map_or(l.len(), |(b, _)| b)
        } else {
            let trimmed = l.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if l.len() - trimmed.len() < indent {
                return None;
            }
            0
        };
        let mut search = from;
        while let Some(p) = l[search..].find(key) {
            let at = search + p;
            let before = l[..at].trim_end();
            let key_here = before.is_empty()
                || before == "-"
                || before.ends_with('{')
                || before.ends_with(',')
                || (i + 1 == line && at == from);
            if key_here && l[at + key.len()..].trim_start().starts_with(':') {
                return Some((i + 1, l[..at].chars().count() + 1));
            }
            search = at + key.len();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_key_a_message_names() {
        let text =
            "secrets:\n  rules:\n    - id: a\n      description: 'my regex: x'\n      regex: '('\n";
        assert_eq!(
            at_key(text, (3, 7), "secrets.rules[0]: regex: unclosed group"),
            (5, 7)
        );
        let flow = "secrets:\n  rules:\n    - { id: a, regex: '(', keywords: [abc] }\n";
        assert_eq!(
            at_key(flow, (3, 7), "secrets.rules[0]: regex: unclosed group"),
            (3, 16)
        );
        // Not found in the item, or no key named: the item stays the place.
        let next = "rules:\n  - id: a\n  - regex: b\n";
        assert_eq!(at_key(next, (2, 5), "rules[0]: regex: x"), (2, 5));
        assert_eq!(at_key(text, (3, 7), "unknown field `x`"), (3, 7));
    }
}
