//! Replies to slash commands: a deploy or rollback with its gates and its
//! progress, and short messages. Each carries the hidden marker of the
//! command it answers.

use serde::{Deserialize, Serialize};

use super::gates::gate_table;
use super::link;
use crate::deploy::gates::Gate;
use crate::text::short;

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
            out.push_str(&format!("| Environment | {} |\n", link(url)));
        }
        if let Some(url) = &p.log_url {
            out.push_str(&format!("| Logs | {} |\n", link(url)));
        }
    }
    if !r.gates.is_empty() {
        out.push('\n');
        out.push_str(&gate_table("Gate", &r.gates));
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
            gates: vec![Gate::pass("Checks", "`ci` green")],
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
        assert!(text.contains(
            "| Environment | [https://staging.example.com](https://staging.example.com) |"
        ));
    }

    #[test]
    fn deploy_and_rollback_replies() {
        let base = DeployReply {
            kind: DeployKind::Deploy,
            environment: "production".into(),
            requested: "#12 head".into(),
            sha: Some("0123456789abcdef".into()),
            from_sha: None,
            actor: "alice".into(),
            gates: vec![
                Gate::pass("Permission", "@alice has `maintain`"),
                Gate::wait("Lock", "locked by #9 (@bob)"),
                Gate::fail("Approvals", "1 of 2 approvals (by @carol)"),
            ],
            outcome: DeployOutcome::Refused,
            progress: None,
            notes: vec!["⚠️ Freeze overridden: Friday freeze".into()],
        };
        let queued = DeployReply {
            outcome: DeployOutcome::Queued { position: 2 },
            notes: vec![],
            ..base.clone()
        };
        let rollback = DeployReply {
            kind: DeployKind::Rollback,
            requested: "last good deployment".into(),
            from_sha: Some("fedcba9876543210".into()),
            gates: vec![Gate::pass("Permission", "@alice has `maintain`")],
            outcome: DeployOutcome::Created { deployment_id: 77 },
            progress: Some(DeploymentProgress {
                state: "failure".into(),
                environment_url: None,
                log_url: Some("https://ci.example/run/1".into()),
            }),
            notes: vec![],
            ..base.clone()
        };
        insta::assert_snapshot!([
            render_deploy_reply(&base, &run_marker(7, 1)),
            render_deploy_reply(&queued, &run_marker(7, 2)),
            render_deploy_reply(&rollback, &run_marker(7, 3)),
            render_message("🔒", "`production` is not locked.", &run_marker(7, 4)),
        ]
        .join("\n\n---\n\n"));
    }
}
