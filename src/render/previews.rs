//! Previews on pull requests: the sticky comment with a row per
//! environment, the `shipgate/smoke` check run, the notes of an automatic
//! rollback, and the notifications of deployments and smoke failures.

use serde::{Deserialize, Serialize};

use super::gates::outcome_icon;
use super::smoke::smoke_markdown;
use super::{link, link_target};
use crate::smoke::{Outcome, SmokeReport};
use crate::text::{inline_text, short};

/// Marks the previews comment of a pull request.
pub const PREVIEW_MARKER: &str = "<!-- shipgate:preview -->";

/// One environment's row in a PR's preview comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewRow {
    pub environment: String,
    pub state: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub log_url: Option<String>,
    pub sha: String,
    pub smoke: SmokeCell,
    pub updated_at: i64,
    /// The last commit whose deployment to this environment succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_live: Option<String>,
    /// What closing the pull request did to this environment's deployments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired: Option<Retirement>,
}

/// What closing a pull request did to one environment's deployments of its
/// commits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Retirement {
    /// Marked `inactive`.
    Retired,
    /// Not a preview: the environment is configured under `environments:`.
    Configured,
    /// The commit is also the head of another open pull request.
    Shared { pr: i64 },
    /// The only deployments found were production deployments.
    Production,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SmokeCell {
    None,
    Running,
    NotProbed {
        reason: String,
    },
    Done {
        outcome: Outcome,
        summary: String,
        failed: Vec<String>,
    },
}

fn state_label(state: &str) -> (&'static str, &'static str) {
    match state {
        "success" => ("✅", "ready"),
        "failure" => ("❌", "failed"),
        "error" => ("❌", "error"),
        "in_progress" => ("⏳", "in progress"),
        "inactive" => ("💤", "inactive"),
        _ => ("🕓", "pending"),
    }
}

pub fn preview_comment(rows: &[PreviewRow]) -> String {
    let mut out = String::from("### 🔍 Previews\n\n| Environment | State | Preview | Commit | Smoke | Updated (UTC) |\n|---|---|---|---|---|---|\n");
    for r in rows {
        let (icon, label) = state_label(&r.state);
        let state = match (r.log_url.as_deref().and_then(link_target), r.state.as_str()) {
            (Some(log), "failure" | "error") => format!("{icon} [{label}]({log})"),
            _ => format!("{icon} {label}"),
        };
        let url = r.url.as_deref().map(link).unwrap_or_else(|| "—".into());
        let smoke = match &r.smoke {
            SmokeCell::None => "—".to_string(),
            SmokeCell::Running => "⏳ running".to_string(),
            SmokeCell::NotProbed { reason } => format!("⏭️ not probed: {reason}"),
            SmokeCell::Done {
                outcome,
                summary,
                failed,
            } => {
                let mut s = format!("{} {summary}", outcome_icon(*outcome));
                if !failed.is_empty() {
                    s.push_str(&format!(" — {}", failed.join("; ")));
                }
                s
            }
        };
        let updated = chrono::DateTime::from_timestamp_millis(r.updated_at)
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        out.push_str(&format!(
            "| `{}` | {state} | {url} | `{}` | {} | {updated} |\n",
            inline_text(&r.environment),
            short(&r.sha),
            // Check names and reasons come from the config and the preview.
            inline_text(&smoke)
        ));
    }
    out.push('\n');
    out.push_str(PREVIEW_MARKER);
    out
}

/// The `shipgate/smoke` check run of a deployment: conclusion, title and
/// summary. `report` is `Err(reason)` when the URL was not probed.
pub fn smoke_check_run(
    environment: &str,
    url: &str,
    report: Result<&SmokeReport, &str>,
) -> (&'static str, String, String) {
    let (conclusion, title, summary) = match report {
        Ok(r) => (
            match r.outcome() {
                Outcome::Fail => "failure",
                Outcome::Warn => "neutral",
                _ => "success",
            },
            format!("{environment}: {}", r.summary()),
            smoke_markdown(r),
        ),
        Err(reason) => (
            "neutral",
            format!("{environment}: not probed"),
            format!(
                "{} was not probed: {}",
                inline_text(url),
                inline_text(reason)
            ),
        ),
    };
    (conclusion, title, summary.chars().take(60_000).collect())
}

/// What became of an automatic rollback after smoke checks failed.
pub enum RollbackNote<'a> {
    /// A newer deployment replaced the failed one: nothing to undo.
    Replaced,
    /// No earlier successful deployment to go back to.
    NothingEarlier,
    /// The deploy decision or the lock said no.
    Refused { target: &'a str, why: &'a str },
    /// The rollback deployment was created.
    RollingBack { target: &'a str, deployment_id: i64 },
}

/// The comment on the pull request that deployed (a line, then the failed
/// checks) after its deployment's smoke checks failed.
pub fn rollback_note(
    sha: &str,
    environment: &str,
    note: &RollbackNote,
    failed: &[String],
) -> String {
    let (sha, env) = (short(sha), inline_text(environment));
    let head = match note {
        RollbackNote::Replaced => format!("⚠️ Smoke checks failed after deploying `{sha}` to `{env}`, but a newer deployment has replaced it since: no automatic rollback."),
        RollbackNote::NothingEarlier => format!("⚠️ Smoke checks failed after deploying `{sha}` to `{env}`, and there is no earlier successful deployment to roll back to."),
        RollbackNote::Refused { target, why } => format!(
            "⚠️ Smoke checks failed after deploying `{sha}` to `{env}`; no automatic rollback to `{}`: {}.",
            short(target),
            inline_text(why)
        ),
        RollbackNote::RollingBack { target, deployment_id } => format!(
            "↩️ Smoke checks failed after deploying `{sha}` to `{env}`: rolling back to `{}` (deployment {deployment_id}).\n\nFailed checks:",
            short(target)
        ),
    };
    let failed: Vec<String> = failed.iter().map(|f| inline_text(f)).collect();
    format!("{head}\n\n- {}", failed.join("\n- "))
}

/// The failed-checks line of a rollback the Action's smoke gate asked for:
/// what its deployment status said, and the run that said it.
pub fn action_smoke_failure(description: &str, log_url: Option<&str>) -> String {
    let said = description
        .strip_prefix(crate::deploy::payload::SMOKE_STATUS_MARK)
        .unwrap_or(description);
    match log_url {
        Some(url) => format!("the smoke gate of the deploy workflow: {said} ({url})"),
        None => format!("the smoke gate of the deploy workflow: {said}"),
    }
}

/// The description of an automatic rollback's deployment.
pub fn rollback_deployment_description(sha: &str) -> String {
    format!(
        "shipgate: automatic rollback of {} after failed smoke checks",
        short(sha)
    )
}

/// A notification (Slack-compatible text) that a deployment succeeded.
pub fn notify_deployed(repo: &str, sha: &str, environment: &str, url: Option<&str>) -> String {
    format!(
        "✅ {repo}: deployed `{}` to `{environment}`{}",
        short(sha),
        url.map(|u| format!(" — {u}")).unwrap_or_default()
    )
}

/// A notification that a deployment failed (`state`: failure or error).
pub fn notify_deploy_failed(
    repo: &str,
    sha: &str,
    environment: &str,
    state: &str,
    log_url: Option<&str>,
) -> String {
    format!(
        "❌ {repo}: deployment of `{}` to `{environment}` {state}{}",
        short(sha),
        log_url.map(|u| format!(" — {u}")).unwrap_or_default()
    )
}

/// A notification that smoke checks failed on a deployment.
pub fn notify_smoke_failed(repo: &str, environment: &str, sha: &str, summary: &str) -> String {
    format!(
        "❌ {repo}: smoke checks failed on `{environment}` ({}) — {summary}",
        short(sha)
    )
}

/// A notification of an automatic rollback's note: its first line.
pub fn notify_rollback(repo: &str, note: &str) -> String {
    format!("{repo}: {}", note.lines().next().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smoke::Outcome;

    fn rows() -> Vec<PreviewRow> {
        vec![
            PreviewRow {
                environment: "Preview – web".into(),
                state: "success".into(),
                url: Some("https://web-abc.vercel.app".into()),
                log_url: None,
                sha: "0123456789".into(),
                smoke: SmokeCell::Done {
                    outcome: Outcome::Fail,
                    summary: "1 passed, 0 warned, 1 failed".into(),
                    failed: vec!["health".into()],
                },
                updated_at: 1_795_000_000_000,
                last_live: None,
                retired: None,
            },
            PreviewRow {
                environment: "staging".into(),
                state: "failure".into(),
                url: None,
                log_url: Some("https://ci/1".into()),
                sha: "abcdef0123".into(),
                smoke: SmokeCell::None,
                updated_at: 1_795_000_000_000,
                last_live: None,
                retired: None,
            },
        ]
    }

    #[test]
    fn the_comment_has_a_row_per_environment() {
        let body = preview_comment(&rows());
        assert!(body.contains("| `Preview – web` | ✅ ready | [https://web-abc.vercel.app](https://web-abc.vercel.app) | `0123456` | ❌ 1 passed, 0 warned, 1 failed — health |"), "{body}");
        assert!(
            body.contains("| `staging` | ❌ [failed](https://ci/1) | — | `abcdef0` | — |"),
            "{body}"
        );
        assert!(body.ends_with(PREVIEW_MARKER));
    }

    #[test]
    fn the_comment() {
        insta::assert_snapshot!(preview_comment(&rows()));
    }

    #[test]
    fn urls_and_environment_names_cannot_break_the_table_or_link_elsewhere() {
        let mut r = rows();
        r[0].environment = "web | @acme/admins".into();
        r[0].url = Some("https://x.example/a)|[b](https://evil.example".into());
        r[1].log_url = Some("javascript:alert(1)".into());
        let body = preview_comment(&r);
        assert!(!body.contains("@acme"), "{body}");
        assert!(!body.contains("javascript:"), "{body}");
        assert!(!body.contains("](https://evil"), "{body}");
        assert_eq!(
            body.lines().filter(|l| l.starts_with('|')).count(),
            4,
            "{body}"
        );
    }

    #[test]
    fn failed_check_names_cannot_ping_people_or_forge_rows() {
        let rows = vec![PreviewRow {
            environment: "preview".into(),
            state: "success".into(),
            url: None,
            log_url: None,
            sha: "0123456789".into(),
            smoke: SmokeCell::Done {
                outcome: Outcome::Fail,
                summary: "0 passed, 0 warned, 1 failed".into(),
                failed: vec!["@acme/admins | x |\n<!-- shipgate:previews -->".into()],
            },
            updated_at: 1_795_000_000_000,
            last_live: None,
            retired: None,
        }];
        let body = preview_comment(&rows);
        assert!(!body.contains("@acme"), "{body}");
        // The one marker is shipgate's own, at the end.
        assert_eq!(body.matches("<!--").count(), 1, "{body}");
        assert_eq!(
            body.lines().filter(|l| l.starts_with('|')).count(),
            3,
            "{body}"
        );
    }

    #[test]
    fn rollback_notes_and_notifications() {
        let failed = vec!["health: 503 | @ops".to_string()];
        let notes = [
            RollbackNote::Replaced,
            RollbackNote::NothingEarlier,
            RollbackNote::Refused {
                target: "fedcba9876",
                why: "Lock: locked by #3 (@bob)",
            },
            RollbackNote::RollingBack {
                target: "fedcba9876",
                deployment_id: 42,
            },
        ];
        let mut out: Vec<String> = notes
            .iter()
            .map(|n| rollback_note("0123456789", "production", n, &failed))
            .collect();
        // The Action's marked failure, as the note's failed line: what the
        // status said (a writer's text: escaped by the note) and its run.
        let from_action = [
            action_smoke_failure(
                "shipgate smoke: 0 passed, 0 warned, 1 failed",
                Some("https://github.com/o/r/actions/runs/9"),
            ),
            action_smoke_failure("shipgate smoke: 2 failed | @ops", None),
        ];
        out.push(rollback_note(
            "0123456789",
            "production",
            &RollbackNote::RollingBack {
                target: "fedcba9876",
                deployment_id: 43,
            },
            &from_action,
        ));
        out.push(notify_deployed(
            "o/r",
            "0123456789",
            "staging",
            Some("https://s.example"),
        ));
        out.push(notify_deploy_failed(
            "o/r",
            "0123456789",
            "staging",
            "error",
            None,
        ));
        out.push(notify_smoke_failed(
            "o/r",
            "production",
            "0123456789",
            "0 passed, 0 warned, 1 failed",
        ));
        out.push(rollback_deployment_description("0123456789"));
        let rolling_back = out[3].clone();
        out.push(notify_rollback("o/r", &rolling_back));
        insta::assert_snapshot!(out.join("\n\n---\n\n"));
    }
}
