//! The Action's notification: the check's verdict sent to the webhook URL
//! of the `notify` input (a secret: masked before anything is printed,
//! never printed). Sent after the report, with a few retries; a URL that
//! does not parse or a delivery that fails is a warning, never a failed
//! gate.

use std::time::Duration;

use secrecy::ExposeSecret;

use crate::action::request::{CheckRequest, GateResult};
use crate::action::{Annotation, Level, Runner};
use crate::notify::{deliver, Destination, Message, RetryPolicy};

/// `::add-mask::` lines for the URL (as given, and without its `slack:` or
/// `json:` prefix), printed before anything else.
pub fn masks(req: &CheckRequest) -> Vec<String> {
    let Some(url) = req.notify.as_ref().map(|u| u.expose_secret().trim()) else {
        return Vec::new();
    };
    let mut out = vec![url.to_string()];
    for prefix in ["slack:", "json:"] {
        if let Some(rest) = url.strip_prefix(prefix) {
            out.push(rest.to_string());
        }
    }
    out
}

/// The retries: three attempts, the first wait `SHIPGATE_NOTIFY_RETRY_BASE_MS`
/// (default 1 s).
fn policy(runner: &Runner) -> RetryPolicy {
    let base = runner
        .var("SHIPGATE_NOTIFY_RETRY_BASE_MS")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|ms| (1..=60_000).contains(ms))
        .unwrap_or(1000);
    let mut p = RetryPolicy::with_base(Duration::from_millis(base));
    p.attempts = 3;
    p.backoff.cap = p
        .backoff
        .cap
        .min(Duration::from_secs(10))
        .max(p.backoff.base);
    p
}

/// Sends the verdict when `notify-on` wants it; the warning to print when
/// it could not.
pub async fn send(
    runner: &Runner,
    req: &CheckRequest,
    environment: Option<&str>,
    label: &str,
    results: &[GateResult],
) -> Option<Annotation> {
    let url = req.notify.as_ref()?.expose_secret();
    if !req.notify_on.wants(label) {
        return None;
    }
    let warning = |message: String| Annotation {
        level: Level::Warning,
        file: None,
        line: None,
        column: None,
        title: "shipgate".into(),
        message,
    };
    let (kind, url) = match crate::notify::destination::parse_url(url) {
        Ok(parsed) => parsed,
        Err(e) => return Some(warning(crate::render::notify::notify_input_invalid(&e))),
    };
    let destination = Destination {
        name: "notify".into(),
        kind,
        url,
        owners: Vec::new(),
    };
    let repo = runner.var("GITHUB_REPOSITORY").unwrap_or_default();
    let run_url = runner.run_url();
    let gates: Vec<&str> = results.iter().map(|r| r.gate.name.as_str()).collect();
    let text =
        crate::render::notify::notify_check(repo, label, &gates, environment, run_url.as_deref());
    let message = Message {
        event: match label {
            "pass" => "check_passed",
            "warn" => "check_warned",
            _ => "check_failed",
        },
        repository: repo.to_string(),
        environment: environment.map(str::to_string),
        sha: runner.var("GITHUB_SHA").map(str::to_string),
        url: run_url,
        text,
    };
    let policy = policy(runner);
    match deliver::deliver(&deliver::client(&policy), &destination, &message, &policy).await {
        Ok(_) => None,
        Err(f) => Some(warning(crate::render::notify::notify_not_delivered(
            &f.to_string(),
        ))),
    }
}
