//! A smoke report three ways: Markdown for comments, check runs and job
//! summaries; one line per check for terminals; JSON. And the one line a
//! deployment status carries.

use super::gates::outcome_icon;
use crate::smoke::SmokeReport;
use crate::text::inline_text;

/// The report as a Markdown table, for comments, check runs and job summaries.
pub fn smoke_markdown(r: &SmokeReport) -> String {
    let mut out = format!(
        "{} **Smoke checks against {}**: {} ({} ms)\n\n| Check | | Result |\n|---|---|---|\n",
        outcome_icon(r.outcome()),
        // From a config or a deployment payload, like the names below.
        inline_text(&r.url),
        r.summary(),
        r.duration_ms
    );
    for c in &r.results {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            // Names come from a config, reasons may quote a response:
            // neither may mention anyone, break the table or open HTML.
            inline_text(&c.name),
            outcome_icon(c.outcome),
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

/// The description of the deployment status the Action posts for the
/// report: plain text, at most 140 characters (GitHub's limit).
pub fn deployment_status_description(r: &SmokeReport) -> String {
    format!(
        "{}{}",
        crate::deploy::payload::SMOKE_STATUS_MARK,
        r.summary()
    )
    .chars()
    .take(140)
    .collect()
}

/// The annotation of a check that failed or warned: its title.
pub fn check_annotation_title(check: &str) -> String {
    format!("smoke: {check}")
}

/// The warning when the Action could not post the deployment status.
pub fn deployment_status_not_posted(error: &str) -> String {
    format!("could not post the deployment status: {error}")
}

/// The report as JSON.
pub fn smoke_json(r: &SmokeReport) -> String {
    serde_json::to_string_pretty(r).expect("a report serializes")
}

/// The Action's configuration error for a `${env.NAME}` its step's
/// environment does not set.
pub fn missing_env(used_at: &str, name: &str) -> String {
    format!(
        "{used_at} uses `${{env.{name}}}`, which is not set in the step's environment; map it from a secret in the step: `env: {{ {name}: ${{{{ secrets.{name} }}}} }}`"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smoke::{CheckResult, Outcome};

    fn report() -> SmokeReport {
        SmokeReport {
            url: "https://app.example/".into(),
            duration_ms: 42,
            requests: 2,
            secrets: Default::default(),
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
    fn a_missing_env_value_names_it_and_where_it_is_used() {
        insta::assert_snapshot!(super::missing_env(
            "smoke.checks[1].flow[0].body",
            "SMOKE_PASSWORD"
        ));
    }

    #[test]
    fn smoke_names_and_reasons_cannot_ping_break_tables_or_open_comments() {
        let mut r = report();
        r.results[0].name = "@acme/admins | <!-- shipgate:previews -->".into();
        r.results[1].reason = "body said @octocat\n| forged | row |".into();
        r.url = "https://app.example/ @hubot <!-- x -->".into();
        let md = smoke_markdown(&r);
        assert!(!md.contains("@acme") && !md.contains("@octocat"), "{md}");
        assert!(!md.contains("@hubot"), "{md}");
        assert!(!md.contains("<!--") && !md.contains("| forged"), "{md}");
        // The header, its rule and one row per check: no row was forged.
        assert_eq!(md.lines().filter(|l| l.starts_with('|')).count(), 4, "{md}");
    }

    #[test]
    fn markdown() {
        insta::assert_snapshot!(smoke_markdown(&report()));
    }

    #[test]
    fn text() {
        insta::assert_snapshot!(smoke_text(&report()));
    }

    #[test]
    fn deployment_status() {
        let r = report();
        assert_eq!(
            deployment_status_description(&r),
            "shipgate smoke: 1 passed, 1 warned, 0 failed"
        );
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

    #[test]
    fn action_annotations() {
        insta::assert_snapshot!(format!(
            "{}\n{}",
            check_annotation_title("health"),
            deployment_status_not_posted(
                "GitHub refused the request (403): Resource not accessible"
            )
        ));
    }
}
