//! GitHub's runner contract for the Action: inputs (`INPUT_<NAME>`), step
//! outputs (`$GITHUB_OUTPUT`), the job summary (`$GITHUB_STEP_SUMMARY`),
//! workflow commands (annotations, masks, stop-commands) and their escaping.

pub mod check;
pub mod config;
pub mod gates;
pub mod notify;
pub mod request;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use crate::github::events::{WorkflowEvent, WorkflowPullRequest};

/// GitHub rejects job summaries over 1 MiB; keep well under it.
pub const SUMMARY_LIMIT: usize = 1024 * 1024 - 4096;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// The environment of a step (or of a terminal, where it is mostly empty).
#[derive(Debug, Clone, Default)]
pub struct Runner {
    vars: HashMap<String, String>,
    event: std::sync::OnceLock<Option<WorkflowEvent>>,
}

impl Runner {
    pub fn from_env() -> Self {
        Runner {
            vars: std::env::vars().collect(),
            event: Default::default(),
        }
    }

    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        Runner {
            vars: vars.into_iter().collect(),
            event: Default::default(),
        }
    }

    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// This workflow run's page (`GITHUB_SERVER_URL`, default GitHub's,
    /// the repository and `GITHUB_RUN_ID`); `None` outside a run.
    pub fn run_url(&self) -> Option<String> {
        let repo = self.var("GITHUB_REPOSITORY")?;
        let run = self.var("GITHUB_RUN_ID")?;
        let server = self
            .var("GITHUB_SERVER_URL")
            .unwrap_or("https://github.com");
        Some(format!(
            "{}/{repo}/actions/runs/{run}",
            server.trim_end_matches('/')
        ))
    }

    /// Running inside GitHub Actions.
    pub fn in_actions(&self) -> bool {
        self.var("GITHUB_ACTIONS") == Some("true")
    }

    /// `INPUT_<NAME>`: upper-cased, spaces to `_`, hyphens kept; trimmed; empty is unset.
    pub fn input(&self, name: &str) -> Option<String> {
        let key = format!("INPUT_{}", name.replace(' ', "_").to_ascii_uppercase());
        self.vars
            .get(&key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// A boolean input: only `true|True|TRUE|false|False|FALSE`, as the toolkit accepts.
    pub fn bool_input(&self, name: &str) -> Result<Option<bool>, InputError> {
        match self.input(name).as_deref() {
            None => Ok(None),
            Some("true" | "True" | "TRUE") => Ok(Some(true)),
            Some("false" | "False" | "FALSE") => Ok(Some(false)),
            Some(other) => Err(InputError(format!(
                "input `{name}`: expected true or false, got `{other}`"
            ))),
        }
    }

    pub fn workspace(&self) -> PathBuf {
        self.var("GITHUB_WORKSPACE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// The triggering event, decoded once per run; `None` without an
    /// event file.
    pub fn event(&self) -> Option<&WorkflowEvent> {
        self.event
            .get_or_init(|| {
                let path = self.var("GITHUB_EVENT_PATH")?;
                Some(WorkflowEvent::parse(&std::fs::read(path).ok()?))
            })
            .as_ref()
    }

    /// The pull request the step runs for, if it does.
    pub fn pull_request(&self) -> Option<&WorkflowPullRequest> {
        self.event()?.pull_request.as_ref()
    }

    pub fn event_name(&self) -> Option<&str> {
        self.var("GITHUB_EVENT_NAME")
    }

    /// Appends `name=value` to `$GITHUB_OUTPUT` (multi-line values with a
    /// random delimiter that does not occur in the value).
    pub fn set_output(&self, name: &str, value: &str) -> std::io::Result<()> {
        let Some(path) = self.var("GITHUB_OUTPUT") else {
            return Ok(());
        };
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        if value.contains('\n') || value.contains('\r') {
            let delimiter = loop {
                let d = format!("ghadelimiter_{}", uuid::Uuid::new_v4().simple());
                if !value.contains(&d) {
                    break d;
                }
            };
            writeln!(f, "{name}<<{delimiter}\n{value}\n{delimiter}")
        } else {
            writeln!(f, "{name}={value}")
        }
    }

    /// Appends Markdown to the job summary, never past the size limit.
    pub fn append_summary(&self, markdown: &str) -> std::io::Result<()> {
        let Some(path) = self.var("GITHUB_STEP_SUMMARY") else {
            return Ok(());
        };
        let used = std::fs::metadata(path)
            .map(|m| m.len() as usize)
            .unwrap_or(0);
        let room = SUMMARY_LIMIT.saturating_sub(used);
        let text = if markdown.len() <= room {
            markdown.to_string()
        } else {
            let note = "\n\n_… the summary was cut to stay under GitHub's 1 MiB limit; the full report is in the `report` output._\n";
            let mut cut = room.saturating_sub(note.len());
            while cut > 0 && !markdown.is_char_boundary(cut) {
                cut -= 1;
            }
            format!("{}{note}", &markdown[..cut])
        };
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        f.write_all(text.as_bytes())
    }
}

/// Escapes a workflow command's message.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Text for a plain log line (stdout or stderr, which the runner both reads
/// for commands) that the runner can only show: on one line (CR and LF
/// written as in command data; nothing decodes a plain line, so `%` stays),
/// with the legacy `##[` command marker, which the runner looks for anywhere
/// in a line, broken up. The caller starts the line with its own words, so
/// it cannot begin with `::`.
pub fn escape_log(s: &str) -> String {
    s.replace('\r', "%0D")
        .replace('\n', "%0A")
        .replace("##[", "#%23[")
}

/// Escapes a workflow command's property value.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
    Notice,
}

/// One annotation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Annotation {
    pub level: Level,
    /// Workspace-relative path.
    pub file: Option<String>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub title: String,
    pub message: String,
}

impl Annotation {
    pub fn command(&self) -> String {
        let level = match self.level {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
        };
        let mut props = Vec::new();
        if let Some(f) = &self.file {
            props.push(format!("file={}", escape_property(f)));
        }
        if let Some(l) = self.line.filter(|l| *l > 0) {
            props.push(format!("line={l}"));
        }
        if let Some(c) = self.column.filter(|c| *c > 0) {
            props.push(format!("col={c}"));
        }
        props.push(format!("title={}", escape_property(&self.title)));
        format!(
            "::{level} {}::{}",
            props.join(","),
            escape_data(&self.message)
        )
    }
}

/// `::add-mask::` so the runner hides the value in every later log line.
pub fn mask(value: &str) -> String {
    format!("::add-mask::{}", escape_data(value))
}

/// Wraps untrusted text so nothing in it is run as a workflow command.
pub fn untrusted(text: &str) -> String {
    let token = uuid::Uuid::new_v4().simple().to_string();
    format!("::stop-commands::{token}\n{text}\n::{token}::")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runner(pairs: &[(&str, &str)]) -> Runner {
        Runner::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn inputs_keep_hyphens_and_booleans_are_strict() {
        let r = runner(&[
            ("INPUT_FAIL-ON", " warning "),
            ("INPUT_COMMENT", "True"),
            ("INPUT_SARIF", "yes"),
            ("INPUT_MY_INPUT", "x"),
        ]);
        assert_eq!(r.input("fail-on").as_deref(), Some("warning"));
        assert_eq!(r.input("my input").as_deref(), Some("x"));
        assert_eq!(r.bool_input("comment").unwrap(), Some(true));
        assert_eq!(
            r.bool_input("sarif").unwrap_err().0,
            "input `sarif`: expected true or false, got `yes`"
        );
        assert_eq!(r.bool_input("absent").unwrap(), None);
    }

    #[test]
    fn escaping_follows_the_toolkit() {
        assert_eq!(escape_data("100% done\r\nnext"), "100%25 done%0D%0Anext");
        assert_eq!(escape_property("a:b,c%"), "a%3Ab%2Cc%25");
        let a = Annotation {
            level: Level::Error,
            file: Some("src/a,b.rs".into()),
            line: Some(3),
            column: Some(7),
            title: "secret: github-token".into(),
            message: "line1\nline2".into(),
        };
        assert_eq!(
            a.command(),
            "::error file=src/a%2Cb.rs,line=3,col=7,title=secret%3A github-token::line1%0Aline2"
        );
        assert_eq!(
            escape_log("100% x\r\n::error::y ##[warning]z"),
            "100% x%0D%0A::error::y #%23[warning]z"
        );
        let wrapped = untrusted("::error::injected");
        let token = wrapped
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("::stop-commands::")
            .to_string();
        assert!(wrapped.ends_with(&format!("::{token}::")));
    }

    #[test]
    fn outputs_and_summary_files() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let sum = dir.path().join("sum");
        let r = runner(&[
            ("GITHUB_OUTPUT", out.to_str().unwrap()),
            ("GITHUB_STEP_SUMMARY", sum.to_str().unwrap()),
        ]);
        r.set_output("result", "fail").unwrap();
        r.set_output("multi", "a\nb").unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(
            text.starts_with("result=fail\nmulti<<ghadelimiter_"),
            "{text}"
        );
        let delim = text.lines().nth(1).unwrap().trim_start_matches("multi<<");
        assert!(text.ends_with(&format!("a\nb\n{delim}\n")));
        r.append_summary(&"x".repeat(SUMMARY_LIMIT + 10)).unwrap();
        let summary = std::fs::read_to_string(&sum).unwrap();
        assert!(summary.len() <= SUMMARY_LIMIT);
        assert!(summary.ends_with("full report is in the `report` output._\n"));
    }
}
