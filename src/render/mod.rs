//! Markdown for what shipgate posts: command replies now; smoke results and
//! previews later. One renderer, shared by the server and the Action.

use serde::{Deserialize, Serialize};

use crate::deploy::gates::Gate;
pub use crate::text::{inline_text, short};

/// A hidden marker that ties a reply to the command it answers, so a
/// reprocessed command finds its reply instead of posting another.
pub fn run_marker(comment_id: i64, line: i64) -> String {
    format!("<!-- shipgate:run {comment_id}:{line} -->")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeployKind {
    Deploy,
    Rollback,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum DeployOutcome {
    Refused,
    Queued { position: usize },
    Created { deployment_id: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentProgress {
    pub state: String,
    #[serde(default)]
    pub environment_url: Option<String>,
    #[serde(default)]
    pub log_url: Option<String>,
}

/// Everything a deploy or rollback reply shows; stored so the reply can be
/// re-rendered as `deployment_status` events arrive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployReply {
    pub kind: DeployKind,
    pub environment: String,
    /// What the user asked for (`ref=…`, the PR head, a deployment id).
    pub requested: String,
    #[serde(default)]
    pub sha: Option<String>,
    /// What was deployed before (rollback: from → to).
    #[serde(default)]
    pub from_sha: Option<String>,
    pub actor: String,
    pub gates: Vec<Gate>,
    pub outcome: DeployOutcome,
    #[serde(default)]
    pub progress: Option<DeploymentProgress>,
    #[serde(default)]
    pub notes: Vec<String>,
}

fn state_icon(state: &str) -> &'static str {
    match state {
        "success" => "✅",
        "failure" | "error" => "❌",
        "inactive" => "💤",
        "in_progress" => "⏳",
        _ => "🕓",
    }
}

pub fn render_deploy_reply(r: &DeployReply, marker: &str) -> String {
    let verb = match r.kind {
        DeployKind::Deploy => "Deploy",
        DeployKind::Rollback => "Rollback",
    };
    let env = &r.environment;
    let headline = match (&r.outcome, &r.progress) {
        (DeployOutcome::Refused, _) => format!("### 😕 {verb} to `{env}` refused"),
        (DeployOutcome::Queued { position }, _) => {
            format!("### 🕓 {verb} to `{env}` queued (position {position}); it runs when the lock frees")
        }
        (DeployOutcome::Created { .. }, Some(p)) => {
            format!(
                "### {} {verb} to `{env}`: {}",
                state_icon(&p.state),
                p.state.replace('_', " ")
            )
        }
        (DeployOutcome::Created { .. }, None) => format!("### 🚀 {verb} to `{env}` created"),
    };
    let mut out = format!("{headline}\n\n| | |\n|---|---|\n");
    let sha = r
        .sha
        .as_deref()
        .map(|s| format!(" → `{}`", short(s)))
        .unwrap_or_default();
    match (r.kind, &r.from_sha) {
        (DeployKind::Rollback, Some(from)) => {
            out.push_str(&format!(
                "| From → to | `{}` → `{}` |\n",
                short(from),
                r.sha.as_deref().map(short).unwrap_or("?")
            ));
        }
        _ => out.push_str(&format!("| Ref | {}{sha} |\n", r.requested)),
    }
    out.push_str(&format!("| Requested by | @{} |\n", r.actor));
    if let DeployOutcome::Created { deployment_id } = r.outcome {
        out.push_str(&format!("| Deployment | {deployment_id} |\n"));
    }
    if let Some(p) = &r.progress {
        if let Some(url) = &p.environment_url {
            out.push_str(&format!("| Environment | {url} |\n"));
        }
        if let Some(url) = &p.log_url {
            out.push_str(&format!("| Logs | [{url}]({url}) |\n"));
        }
    }
    if !r.gates.is_empty() {
        out.push_str("\n| Gate | | |\n|---|---|---|\n");
        for g in &r.gates {
            let icon = if g.passed() {
                "✅"
            } else if g.temporary {
                "⏳"
            } else {
                "❌"
            };
            out.push_str(&format!(
                "| {} | {icon} | {} |\n",
                g.name,
                g.detail.replace('|', "\\|")
            ));
        }
    }
    for note in &r.notes {
        out.push_str(&format!("\n{note}\n"));
    }
    out.push('\n');
    out.push_str(marker);
    out
}

/// A short reply (errors, lock changes), with the marker.
pub fn render_message(icon: &str, text: &str, marker: &str) -> String {
    format!("{icon} {text}\n\n{marker}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::gates::Verdict;

    #[test]
    fn short_shas_cut_at_a_character() {
        assert_eq!(short("0123456789abcdef"), "0123456");
        assert_eq!(short("abc"), "abc");
        // A deployment_status payload's sha reaches this; a byte cut panicked.
        assert_eq!(short("abcdeféé"), "abcdefé");
    }

    #[test]
    fn a_created_deploy_reply_and_its_progress() {
        let mut r = DeployReply {
            kind: DeployKind::Deploy,
            environment: "staging".into(),
            requested: "PR head".into(),
            sha: Some("0123456789abcdef".into()),
            from_sha: None,
            actor: "alice".into(),
            gates: vec![Gate {
                name: "Checks".into(),
                verdict: Verdict::Pass,
                detail: "`ci` green".into(),
                temporary: false,
            }],
            outcome: DeployOutcome::Created { deployment_id: 42 },
            progress: None,
            notes: vec![],
        };
        let text = render_deploy_reply(&r, &run_marker(7, 0));
        assert!(
            text.starts_with("### 🚀 Deploy to `staging` created"),
            "{text}"
        );
        assert!(text.contains("| Ref | PR head → `0123456` |"));
        assert!(text.contains("| Checks | ✅ | `ci` green |"));
        assert!(text.ends_with("<!-- shipgate:run 7:0 -->"));
        r.progress = Some(DeploymentProgress {
            state: "success".into(),
            environment_url: Some("https://staging.example.com".into()),
            log_url: Some("https://ci.example.com/1".into()),
        });
        let text = render_deploy_reply(&r, "");
        assert!(
            text.starts_with("### ✅ Deploy to `staging`: success"),
            "{text}"
        );
        assert!(text.contains("| Environment | https://staging.example.com |"));
    }
}

// ------------------------------------------------------------------ smoke

use crate::smoke::SmokeReport;

/// The report as a Markdown table, for comments, check runs and job summaries.
pub fn smoke_markdown(r: &SmokeReport) -> String {
    let mut out = format!(
        "{} **Smoke checks against {}**: {} ({} ms)\n\n| Check | | Result |\n|---|---|---|\n",
        r.outcome().icon(),
        r.url,
        r.summary(),
        r.duration_ms
    );
    for c in &r.results {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            // Names come from a config, reasons may quote a response:
            // neither may mention anyone, break the table or open HTML.
            inline_text(&c.name),
            c.outcome.icon(),
            inline_text(&c.reason)
        ));
    }
    out
}

/// One line per check, for terminals.
pub fn smoke_text(r: &SmokeReport) -> String {
    let mut out = String::new();
    for c in &r.results {
        out.push_str(&format!(
            "{:<7} {} — {} ({} ms)\n",
            c.outcome.as_str().to_ascii_uppercase(),
            c.name,
            c.reason,
            c.duration_ms
        ));
    }
    out.push_str(&format!(
        "{}: {} against {}\n",
        r.outcome().as_str().to_ascii_uppercase(),
        r.summary(),
        r.url
    ));
    out
}

/// The report as JSON.
pub fn smoke_json(r: &SmokeReport) -> String {
    serde_json::to_string_pretty(r).expect("a report serializes")
}

#[cfg(test)]
mod smoke_tests {
    use super::*;
    use crate::smoke::{CheckResult, Outcome};

    fn report() -> SmokeReport {
        SmokeReport {
            url: "https://app.example/".into(),
            duration_ms: 42,
            requests: 2,
            results: vec![
                CheckResult {
                    name: "health".into(),
                    outcome: Outcome::Pass,
                    reason: "200 in 3 ms".into(),
                    attempts: 1,
                    duration_ms: 3,
                    latency: None,
                    details: vec![],
                },
                CheckResult {
                    name: "security headers".into(),
                    outcome: Outcome::Warn,
                    reason: "5 of 6 good | x".into(),
                    attempts: 1,
                    duration_ms: 4,
                    latency: None,
                    details: vec![],
                },
            ],
        }
    }

    #[test]
    fn smoke_names_and_reasons_cannot_ping_break_tables_or_open_comments() {
        let mut r = report();
        r.results[0].name = "@acme/admins | <!-- shipgate:previews -->".into();
        r.results[1].reason = "body said @octocat\n| forged | row |".into();
        let md = smoke_markdown(&r);
        assert!(!md.contains("@acme") && !md.contains("@octocat"), "{md}");
        assert!(!md.contains("<!--") && !md.contains("| forged"), "{md}");
        // The header, its rule and one row per check: no row was forged.
        assert_eq!(md.lines().filter(|l| l.starts_with('|')).count(), 4, "{md}");
    }

    #[test]
    fn three_renderings() {
        let r = report();
        let md = smoke_markdown(&r);
        assert!(md.starts_with("⚠️ **Smoke checks against https://app.example/**: 1 passed, 1 warned, 0 failed (42 ms)"), "{md}");
        assert!(
            md.contains("| security headers | ⚠️ | 5 of 6 good ¦ x |"),
            "{md}"
        );
        assert_eq!(
            smoke_text(&r).lines().next(),
            Some("PASS    health — 200 in 3 ms (3 ms)")
        );
        let back: SmokeReport = serde_json::from_str(&smoke_json(&r)).unwrap();
        assert_eq!(back, r);
    }
}
