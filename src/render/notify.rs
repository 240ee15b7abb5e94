//! The notifications that have no older home in `previews`: a deploy that
//! started, smoke that recovered, a freeze overridden, a deployment the
//! protection rule rejected, and the Action's verdict. Plain text, one
//! line: Slack and the JSON webhook's `text` both carry it.

use crate::text::short;

/// A deployment status said `in_progress`.
pub fn notify_deploy_started(
    repo: &str,
    sha: &str,
    environment: &str,
    log_url: Option<&str>,
) -> String {
    format!(
        "🚀 {repo}: deploying `{}` to `{environment}`{}",
        short(sha),
        log_url.map(|u| format!(" — {u}")).unwrap_or_default()
    )
}

/// A smoke run passed after the environment's previous one failed.
pub fn notify_smoke_recovered(repo: &str, environment: &str, sha: &str, summary: &str) -> String {
    format!(
        "💚 {repo}: smoke checks pass again on `{environment}` ({}) — {summary}",
        short(sha)
    )
}

/// `/deploy … force` deployed through a freeze; `detail` is the override
/// note (who, and which freeze).
pub fn notify_freeze_override(repo: &str, environment: &str, sha: &str, detail: &str) -> String {
    format!(
        "⚠️ {repo}: deploying `{}` to `{environment}` through a freeze — {}",
        short(sha),
        detail.lines().next().unwrap_or_default()
    )
}

/// The deployment protection rule rejected a deployment; `failed` names the
/// gates that did not pass.
pub fn notify_protection_rejected(
    repo: &str,
    environment: &str,
    sha: &str,
    failed: &[String],
) -> String {
    format!(
        "⛔ {repo}: deployment of `{}` to `{environment}` rejected — {}",
        short(sha),
        if failed.is_empty() {
            "see the deployment's review".to_string()
        } else {
            failed.join("; ")
        }
    )
}

/// The Action's verdict (`pass`, `warn` or `fail`) for the gates it ran.
pub fn notify_check(
    repo: &str,
    label: &str,
    gates: &[&str],
    environment: Option<&str>,
    run_url: Option<&str>,
) -> String {
    let icon = match label {
        "pass" => "✅",
        "warn" => "⚠️",
        _ => "❌",
    };
    let verdict = match label {
        "pass" => "passed",
        "warn" => "passed with warnings",
        _ => "failed",
    };
    format!(
        "{icon} {repo}: shipgate check {verdict} ({}){}{}",
        gates.join(", "),
        environment
            .map(|e| format!(" on `{e}`"))
            .unwrap_or_default(),
        run_url.map(|u| format!(" — {u}")).unwrap_or_default()
    )
}

/// The Action's warning when its `notify` input is not a webhook URL
/// (`problem` never quotes it).
pub fn notify_input_invalid(problem: &str) -> String {
    format!("notify: {problem}; no notification was sent")
}

/// The Action's warning when the notification did not arrive (`failure`
/// says why and after how many attempts, never the URL).
pub fn notify_not_delivered(failure: &str) -> String {
    format!("notify: the notification was not delivered: {failure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications() {
        insta::assert_snapshot!([
            notify_deploy_started("o/r", "0123456789", "staging", Some("https://ci/1")),
            notify_deploy_started("o/r", "0123456789", "staging", None),
            notify_smoke_recovered("o/r", "production", "0123456789", "2 passed, 0 warned, 0 failed"),
            notify_freeze_override(
                "o/r",
                "production",
                "0123456789",
                "Freeze `Code freeze` overridden with `force` by @root",
            ),
            notify_protection_rejected(
                "o/r",
                "production",
                "0123456789",
                &["Checks: `ci` failed".to_string(), "Ref: `dev` may not deploy".to_string()],
            ),
            notify_protection_rejected("o/r", "production", "0123456789", &[]),
            notify_check(
                "acme/app",
                "fail",
                &["smoke", "secrets"],
                Some("production"),
                Some("https://github.com/acme/app/actions/runs/1"),
            ),
            notify_check("acme/app", "warn", &["freeze"], None, None),
            notify_check("acme/app", "pass", &["smoke"], Some("staging"), None),
            notify_input_invalid("expected an http(s) URL, optionally after `slack:` or `json:` (the value is not shown)"),
            notify_not_delivered("answered 503 (after 3 attempt(s))"),
        ]
        .join("\n"));
    }
}
