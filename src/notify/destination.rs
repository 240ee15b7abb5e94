//! Where notifications go: a named destination (its kind, its URL, and the
//! repository owners it serves), read from the operator's `SHIPGATE_NOTIFY`
//! or from the Action's `notify` input.
//!
//! An entry is `NAME=URL` or `NAME@OWNER+OWNER=URL`; the URL may start with
//! `slack:` or `json:` to choose the kind, else a `hooks.slack.com` URL is
//! Slack and any other a JSON webhook. URLs are secrets: no error here
//! quotes one, nor anything after an entry's `=`.

use secrecy::{ExposeSecret, SecretString};

/// What a destination is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A Slack-compatible incoming webhook: `{"text": …}`.
    Slack,
    /// A generic JSON webhook (bridges to email, SMS, pagers): the
    /// documented body of [`super::Message::json_body`].
    Json,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Slack => "slack",
            Kind::Json => "json",
        }
    }
}

/// A named webhook. `Debug` never shows the URL.
#[derive(Debug, Clone)]
pub struct Destination {
    pub name: String,
    pub kind: Kind,
    pub url: SecretString,
    /// Repository owners (lower case) whose repositories may use it; empty:
    /// every repository the server serves.
    pub owners: Vec<String>,
}

impl Destination {
    /// Whether repositories of `repository`'s owner may send here.
    pub fn serves(&self, repository: &str) -> bool {
        let owner = repository.split('/').next().unwrap_or_default();
        self.owners.is_empty() || self.owners.iter().any(|o| o.eq_ignore_ascii_case(owner))
    }

    pub fn url(&self) -> &str {
        self.url.expose_secret()
    }
}

/// The name SHIPGATE_SLACK_WEBHOOK_URL's destination has, and the one a
/// repository without `notify:` is sent to.
pub const DEFAULT_DESTINATION: &str = "slack";

/// The longest destination name.
pub const MAX_NAME: usize = 40;

/// Letters, digits, `-` and `_`, at most [`MAX_NAME`].
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A webhook URL with its optional `slack:`/`json:` prefix: its kind and
/// the URL. The error never quotes the value.
pub fn parse_url(value: &str) -> Result<(Kind, SecretString), String> {
    let value = value.trim();
    let (explicit, rest) = if let Some(rest) = value.strip_prefix("slack:") {
        (Some(Kind::Slack), rest)
    } else if let Some(rest) = value.strip_prefix("json:") {
        (Some(Kind::Json), rest)
    } else {
        (None, value)
    };
    let parsed = url::Url::parse(rest)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
    let Some(parsed) = parsed else {
        return Err(
            "expected an http(s) URL, optionally after `slack:` or `json:` (the value is not shown)"
                .into(),
        );
    };
    let kind = explicit.unwrap_or_else(|| {
        if parsed.host_str() == Some("hooks.slack.com") {
            Kind::Slack
        } else {
            Kind::Json
        }
    });
    Ok((kind, SecretString::from(rest.to_string())))
}

/// `SHIPGATE_NOTIFY`: comma-separated `NAME[@OWNER+OWNER]=URL` entries.
/// The error names the entry (by position, and by name when the name is
/// well-formed), never its URL.
pub fn parse_list(value: &str) -> Result<Vec<Destination>, String> {
    let mut out: Vec<Destination> = Vec::new();
    for (i, entry) in value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .enumerate()
    {
        let n = i + 1;
        let Some((head, url)) = entry.split_once('=') else {
            return Err(format!("entry {n} is not NAME=URL"));
        };
        let (name, owners) = match head.trim().split_once('@') {
            Some((name, owners)) => (name, Some(owners)),
            None => (head.trim(), None),
        };
        if !valid_name(name) {
            return Err(format!(
                "entry {n}: the name before `=` must be 1 to {MAX_NAME} letters, digits, `-` or `_`"
            ));
        }
        let owners: Vec<String> = match owners {
            None => Vec::new(),
            Some(list) => {
                let owners: Vec<String> = list
                    .split('+')
                    .map(|o| o.trim().to_ascii_lowercase())
                    .collect();
                let login = |o: &String| {
                    !o.is_empty()
                        && o.len() <= 39
                        && o.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                };
                if !owners.iter().all(login) {
                    return Err(format!(
                        "entry {n} (`{name}`): after `@`, name GitHub owners separated by `+` (`ops@acme+acme-labs=…`)"
                    ));
                }
                owners
            }
        };
        let (kind, url) = parse_url(url).map_err(|e| format!("entry {n} (`{name}`): {e}"))?;
        if out.iter().any(|d| d.name == name) {
            return Err(format!("entry {n} (`{name}`): the name is used twice"));
        }
        out.push(Destination {
            name: name.to_string(),
            kind,
            url,
            owners,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_have_a_kind_by_host_or_prefix_and_optional_owners() {
        let list = parse_list(
            " ops=https://hooks.slack.com/services/T/B/x ,pager@Acme+acme-labs=https://bridge.example/h?k=1, chat=slack:https://chat.example/hooks/1,raw=json:https://hooks.slack.com/x",
        )
        .unwrap();
        let got: Vec<_> = list
            .iter()
            .map(|d| (d.name.as_str(), d.kind, d.url(), d.owners.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "ops",
                    Kind::Slack,
                    "https://hooks.slack.com/services/T/B/x",
                    vec![]
                ),
                (
                    "pager",
                    Kind::Json,
                    "https://bridge.example/h?k=1",
                    vec!["acme".to_string(), "acme-labs".to_string()]
                ),
                ("chat", Kind::Slack, "https://chat.example/hooks/1", vec![]),
                ("raw", Kind::Json, "https://hooks.slack.com/x", vec![]),
            ]
        );
        assert!(list[1].serves("ACME/app") && list[1].serves("acme-labs/x"));
        assert!(!list[1].serves("other/app") && !list[1].serves("acme-labsx/app"));
        assert!(list[0].serves("anyone/app"));
        assert!(parse_list("").unwrap().is_empty());
    }

    #[test]
    fn a_bad_entry_is_named_and_its_url_never_quoted() {
        let secret = "hooks.example/SECRETPATH";
        for (value, want) in [
            (
                format!("ops=https://{secret},https://{secret}"),
                "entry 2 is not NAME=URL",
            ),
            (
                format!("https://{secret}?a=b"),
                "entry 1: the name before `=` must be",
            ),
            (
                format!("ops=ftp://{secret}"),
                "entry 1 (`ops`): expected an http(s) URL",
            ),
            (
                format!("ops=notaurl{secret}"),
                "entry 1 (`ops`): expected an http(s) URL",
            ),
            (
                format!("ops=https://{secret},ops=https://{secret}"),
                "entry 2 (`ops`): the name is used twice",
            ),
            (
                format!("ops@ac/me=https://{secret}"),
                "entry 1 (`ops`): after `@`",
            ),
            (format!("a b=https://{secret}"), "entry 1: the name before"),
        ] {
            let err = parse_list(&value).unwrap_err();
            assert!(err.starts_with(want), "{value}: {err}");
            assert!(!err.contains("SECRETPATH"), "{err}");
        }
    }
}
