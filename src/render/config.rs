//! What shipgate says of a repository's `.github/shipgate.yml`: the
//! `shipgate/config` commit status, and the protection rule's answer when
//! the file does not load.

use crate::config::repo::CONFIG_PATH;

/// How the config file of a commit stands.
pub enum ConfigState<'a> {
    Missing,
    Valid,
    Invalid {
        error: &'a str,
    },
    /// Valid, but `notify:` names destinations this server does not have
    /// for the repository: their notifications are not sent.
    UnknownDestinations {
        names: &'a [String],
    },
}

/// The `shipgate/config` status description: at most 140 characters,
/// GitHub's limit.
pub fn config_status(state: &ConfigState) -> String {
    let text = match state {
        ConfigState::Missing => format!("no {CONFIG_PATH}; defaults apply"),
        ConfigState::Valid => format!("{CONFIG_PATH} is valid"),
        ConfigState::Invalid { error } => format!("{CONFIG_PATH}: {error}"),
        ConfigState::UnknownDestinations { names } => format!(
            "{CONFIG_PATH}: notify names {}, which this server does not offer this repository; nothing is sent there",
            names
                .iter()
                .map(|n| format!("`{}`", crate::text::inline_text(n)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    truncate(&text, 140)
}

/// The deployment protection rule's comment when the config does not load.
pub fn protection_rule_config_invalid(error: &str) -> String {
    format!("shipgate: rejected\n❌ {CONFIG_PATH} is invalid: {error}")
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max_chars - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_counts_characters() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcdé", 4), "abc…");
    }

    #[test]
    fn config_texts() {
        let long = format!("line 3: {}", "é".repeat(200));
        insta::assert_snapshot!([
            config_status(&ConfigState::Missing),
            config_status(&ConfigState::Valid),
            config_status(&ConfigState::Invalid {
                error: "line 3: unknown field `enviroments`"
            }),
            config_status(&ConfigState::Invalid { error: &long }),
            config_status(&ConfigState::UnknownDestinations {
                names: &["ops".to_string(), "pager".to_string()]
            }),
            protection_rule_config_invalid("line 3: unknown field `enviroments`"),
        ]
        .join("\n"));
    }
}
