//! The `smoke` gate: the smoke engine against the deployed URL, reported
//! as a deployment status when a `deployment` event triggered the step.

use serde_json::Value;

use crate::action::request::{client, environment_name, CheckError, CheckRequest, GateResult};
use crate::action::{Annotation, Level, Runner};
use crate::config::repo::RepoConfig;
use crate::deploy::gates::Verdict;
use crate::smoke::{self, Outcome};

/// The `${env.NAME}` values the suite uses, from the step's environment; a
/// name that is unset or empty (an undefined secret is empty) is a
/// configuration error naming it and where it is used.
fn step_env(
    runner: &Runner,
    req: &CheckRequest,
    config: &RepoConfig,
    env: Option<&str>,
    suite: &smoke::SmokeConfig,
) -> Result<smoke::template::Vars, CheckError> {
    let at = match env {
        Some(e)
            if config
                .environments
                .get(e)
                .is_some_and(|c| c.smoke.is_some()) =>
        {
            format!("environments.{e}.smoke")
        }
        _ => "smoke".to_string(),
    };
    let mut values = std::collections::BTreeMap::new();
    for (used_at, name) in suite.env_uses() {
        match runner.var(&name) {
            Some(v) => {
                values.insert(name, v.to_string());
            }
            None => {
                return Err(CheckError::Config {
                    path: req.config.display().to_string(),
                    message: crate::render::smoke::missing_env(&format!("{at}.{used_at}"), &name),
                })
            }
        }
    }
    Ok(smoke::template::Vars::with_env(values))
}

pub async fn run(
    runner: &Runner,
    req: &CheckRequest,
    config: &RepoConfig,
) -> Result<GateResult, CheckError> {
    let env = environment_name(req, config);
    let url = req.url.clone().or_else(|| env.as_ref().and_then(|e| config.environments.get(e)).and_then(|e| e.url.clone())).ok_or_else(|| {
        CheckError::Input("the `smoke` gate needs a URL: the `url` input, or `url:` of the environment in the config".into())
    })?;
    let target = url::Url::parse(&url)
        .map_err(|e| CheckError::Input(format!("url: `{url}` is not a URL: {e}")))?;
    let suite = config.smoke_suite(env.as_deref().unwrap_or(""));
    let opts = smoke::SmokeOptions {
        env: Some(step_env(runner, req, config, env.as_deref(), suite)?),
        ..smoke::SmokeOptions::default()
    };
    // The user's own runner: no server caps, no SSRF guard.
    let report = smoke::run(&target, suite, &opts, &smoke::Limits::none()).await;
    let outcome = report.outcome();
    let mut r = GateResult::new(
        "smoke",
        Verdict::from(outcome),
        report.summary(),
        crate::render::smoke_markdown(&report),
    );
    if let Some(vars) = &opts.env {
        r.masks
            .extend(vars.secrets().into_iter().map(str::to_string));
    }
    r.masks.extend(report.secrets.values().iter().cloned());
    r.errors = report.count(Outcome::Fail);
    r.warnings = report.count(Outcome::Warn);
    for c in report
        .results
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Fail | Outcome::Warn))
    {
        r.annotations.push(Annotation {
            level: if c.outcome == Outcome::Fail {
                Level::Error
            } else {
                Level::Warning
            },
            file: None,
            line: None,
            column: None,
            title: crate::render::smoke::check_annotation_title(&c.name),
            message: c.reason.clone(),
        });
    }
    // Triggered by a deployment: report it as that deployment's status.
    if runner.event_name() == Some("deployment") {
        if let Some(id) = runner
            .event()
            .and_then(|e| e.deployment.as_ref())
            .map(|d| d.id)
        {
            let (_, api, repo) = client(runner, req, "smoke")?;
            let log_url = runner.run_url();
            let state = if outcome == Outcome::Fail {
                "failure"
            } else {
                "success"
            };
            let mut body = serde_json::json!({ "state": state, "environment_url": url, "description": crate::render::smoke::deployment_status_description(&report) });
            if let Some(log_url) = log_url {
                body["log_url"] = Value::String(log_url);
            }
            if let Err(e) = api
                .post::<_, Value>(&format!("/repos/{repo}/deployments/{id}/statuses"), &body)
                .await
            {
                r.annotations.push(Annotation {
                    level: Level::Warning,
                    file: None,
                    line: None,
                    column: None,
                    title: "smoke".into(),
                    message: crate::render::smoke::deployment_status_not_posted(&e.to_string()),
                });
            }
        }
    }
    r.data = serde_json::to_value(&report).unwrap_or(Value::Null);
    Ok(r)
}
