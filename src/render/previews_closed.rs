//! A closed pull request's previews: the sticky comment once its previews
//! are retired (per environment, the commit last live and what became of
//! its deployments), and the description of the `inactive` status.

use super::previews::{PreviewRow, Retirement, PREVIEW_MARKER};
use crate::text::{inline_text, short};

/// The previews comment of a closed pull request.
pub fn previews_closed_comment(rows: &[PreviewRow]) -> String {
    let mut out = String::from(
        "### 💤 Previews closed\n\nThis pull request is closed, so its previews are retired: GitHub now lists their deployments as inactive. Reopening the pull request brings the previews table back.\n\n| Environment | Last live commit | Deployments |\n|---|---|---|\n",
    );
    for r in rows {
        let last_live = match &r.last_live {
            Some(sha) => format!("`{}`", inline_text(short(sha))),
            None => "— never live".to_string(),
        };
        let what = match &r.retired {
            Some(Retirement::Retired) => "💤 inactive".to_string(),
            Some(Retirement::Configured) => {
                "➖ left as they are: configured under `environments:`, not a preview".to_string()
            }
            Some(Retirement::Shared { pr }) => {
                format!("➖ left as they are: the commit is also the head of open #{pr}")
            }
            Some(Retirement::Production) => {
                "➖ left as they are: production deployments".to_string()
            }
            None => "—".to_string(),
        };
        out.push_str(&format!(
            "| `{}` | {last_live} | {what} |\n",
            inline_text(&r.environment)
        ));
    }
    out.push('\n');
    out.push_str(PREVIEW_MARKER);
    out
}

/// The description of the `inactive` status of a retired preview deployment
/// (GitHub keeps 140 characters).
pub fn retired_status_description(pr: i64) -> String {
    format!("shipgate: pull request #{pr} was closed, so this preview is retired")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::previews::SmokeCell;

    fn row(environment: &str, last_live: Option<&str>, retired: Retirement) -> PreviewRow {
        PreviewRow {
            environment: environment.into(),
            state: "inactive".into(),
            url: Some("https://web-abc.vercel.app".into()),
            log_url: None,
            sha: "0123456789".into(),
            smoke: SmokeCell::None,
            updated_at: 1_795_000_000_000,
            last_live: last_live.map(str::to_string),
            retired: Some(retired),
        }
    }

    #[test]
    fn the_closed_comment() {
        let rows = vec![
            row("Preview – web", Some("0123456789"), Retirement::Retired),
            row("deploy-preview", None, Retirement::Retired),
            row("staging", Some("fedcba9876"), Retirement::Configured),
            row(
                "web / pr-12",
                Some("0123456789"),
                Retirement::Shared { pr: 7 },
            ),
            row("web-pr-12", Some("0123456789"), Retirement::Production),
        ];
        let body = previews_closed_comment(&rows);
        assert!(body.ends_with(PREVIEW_MARKER));
        assert!(
            retired_status_description(i64::MAX).chars().count() <= 140,
            "GitHub keeps 140 characters"
        );
        insta::assert_snapshot!(format!(
            "{body}\n\n---\n\n{}",
            retired_status_description(12)
        ));
    }

    #[test]
    fn environment_names_cannot_break_the_table() {
        let body = previews_closed_comment(&[row(
            "web | @acme/admins\n<!-- x -->",
            Some("0123456789"),
            Retirement::Retired,
        )]);
        assert!(!body.contains("@acme"), "{body}");
        assert_eq!(body.matches("<!--").count(), 1, "{body}");
        assert_eq!(
            body.lines().filter(|l| l.starts_with('|')).count(),
            3,
            "{body}"
        );
    }
}
