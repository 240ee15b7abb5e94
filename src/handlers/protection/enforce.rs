//! Enforcement: bring each branch (and ruleset) of the policy to it (or, in audit mode,
//! only report), and report on the tracking issue — drift, what was done,
//! and problems that need a human, each problem once.

use serde_json::Value;

use super::{Context, HandlerError, TRACKING_TITLE};
use crate::config::repo::{ConfigSource, ProtectionMode, RepoConfig};
use crate::deploy::policy::{self, FieldDiff};
use crate::github::repos::ProtectionRead;
use crate::github::{Api, GitHubError};
use crate::render::policy as render;
use crate::store::PolicyLogEntry;

/// The policy to act on: the default branch's config, or — while that file
/// does not load — the last one that did, with the error.
pub struct PolicyConfig {
    pub config: Option<std::sync::Arc<RepoConfig>>,
    /// The default branch's file does not load: its blob and the error.
    pub broken: Option<(String, crate::config::repo::ConfigError)>,
}

pub async fn policy_config(
    cx: &Context,
    api: &Api,
    repo: &str,
    default_branch: &str,
) -> Result<PolicyConfig, HandlerError> {
    let loaded = cx.config(api, repo, default_branch).await?;
    match (loaded.config, loaded.source) {
        (Ok(config), ConfigSource::File { sha }) => {
            let known = cx.store.valid_config(repo).await?;
            if known.as_ref().map(|(blob, _)| blob) != Some(&sha) {
                let json = serde_json::to_string(&*config).expect("a config serializes");
                cx.store
                    .save_valid_config(repo, &sha, &json, crate::now_ms())
                    .await?;
            }
            Ok(PolicyConfig {
                config: Some(config),
                broken: None,
            })
        }
        (Ok(config), ConfigSource::Missing) => Ok(PolicyConfig {
            config: Some(config),
            broken: None,
        }),
        (Err(e), source) => {
            let blob = match source {
                ConfigSource::File { sha } => sha,
                ConfigSource::Missing => String::new(),
            };
            let last = cx
                .store
                .valid_config(repo)
                .await?
                .and_then(|(_, json)| serde_json::from_str::<RepoConfig>(&json).ok())
                .map(std::sync::Arc::new);
            Ok(PolicyConfig {
                config: last,
                broken: Some((blob, e)),
            })
        }
    }
}

/// Says once per broken file, on the tracking issue, that the policy file
/// does not load and what shipgate enforces meanwhile.
pub async fn report_broken(
    cx: &Context,
    api: &Api,
    repo: &str,
    default_branch: &str,
    policy: &PolicyConfig,
) -> Result<(), HandlerError> {
    let Some((blob, e)) = &policy.broken else {
        return Ok(());
    };
    let key = format!("config-broken:{blob}");
    if cx.store.problem_reported(repo, &key).await? {
        return Ok(());
    }
    let text = render::config_broken(default_branch, &e.to_string(), policy.config.is_some());
    report(cx, api, repo, &text).await?;
    cx.store.record_problem(repo, &key, crate::now_ms()).await?;
    Ok(())
}

/// Brings every branch of the policy to it (or, in audit mode, reports).
pub async fn enforce(
    cx: &Context,
    api: &Api,
    repo: &str,
    default_branch: Option<String>,
    trigger: &str,
    actor: Option<&str>,
) -> Result<(), HandlerError> {
    let default_branch = match default_branch {
        Some(b) => b,
        None => api.get::<Value>(&format!("/repos/{repo}")).await?["default_branch"]
            .as_str()
            .unwrap_or("main")
            .to_string(),
    };
    let policy = policy_config(cx, api, repo, &default_branch).await?;
    report_broken(cx, api, repo, &default_branch, &policy).await?;
    let Some(config) = policy.config else {
        return Ok(());
    };
    if config.protection.is_empty() {
        return Ok(());
    }
    let audit = config.protection.mode == ProtectionMode::Audit;
    let mut found = Vec::new();
    // Problems reported by this report: recorded once it is posted.
    let mut reported = Vec::new();
    for (branch, desired) in &config.protection.branches {
        let live = match api.protection(repo, branch).await {
            Ok(ProtectionRead::Protected(l)) => Some(*l),
            Ok(ProtectionRead::Unprotected) => None,
            Ok(ProtectionRead::BranchMissing) => {
                let key = format!("missing-branch:{branch}");
                if !cx.store.problem_reported(repo, &key).await? {
                    found.push(Found::Missing { branch });
                    reported.push(key);
                }
                continue;
            }
            Err(e) => return report_problem(cx, api, repo, e).await,
        };
        let diffs = policy::diff(desired, live.as_ref());
        if diffs.is_empty() {
            continue;
        }
        let detail = serde_json::to_string(&diffs).expect("diffs serialize");
        let entry = |action| PolicyLogEntry {
            repository: repo,
            branch,
            trigger,
            actor,
            action,
            detail: &detail,
        };
        let now = crate::now_ms();
        if audit {
            cx.store.log_policy(&entry("audited"), now).await?;
            found.push(Found::Audited { branch, diffs });
            continue;
        }
        match api
            .put_protection(repo, branch, &policy::put_body(desired, live.as_ref()))
            .await
        {
            Ok(()) => {
                cx.store.log_policy(&entry("restored"), now).await?;
                found.push(Found::Restored { branch, diffs });
            }
            Err(e) if !e.is_transient() => {
                cx.store.log_policy(&entry("failed"), now).await?;
                return report_problem(cx, api, repo, e).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    // The rulesets' drift goes in the same report; a refusal is reported
    // after what the branches came to.
    let (rulesets, refused) = if config.protection.rulesets.is_empty() {
        (Vec::new(), None)
    } else {
        use super::rulesets::{enforce, Outcome};
        match enforce(cx, api, repo, &config, (trigger, actor), audit).await? {
            Outcome::Done(r) => (r, None),
            Outcome::Refused(e) => (Vec::new(), Some(e)),
        }
    };
    if !found.is_empty() || !rulesets.is_empty() {
        let mut shown: Vec<render::Enforced> = found.iter().map(Found::shown).collect();
        shown.extend(rulesets.iter().map(super::rulesets::Found::shown));
        let body = render::enforcement_report(trigger, actor, &shown);
        report(cx, api, repo, &body).await?;
        let now = crate::now_ms();
        for key in reported {
            cx.store.record_problem(repo, &key, now).await?;
        }
    }
    match refused {
        Some(e) => report_problem(cx, api, repo, e).await,
        None => Ok(()),
    }
}

/// What enforcement found on one branch, until it is reported.
enum Found<'a> {
    Missing {
        branch: &'a str,
    },
    Audited {
        branch: &'a str,
        diffs: Vec<FieldDiff>,
    },
    Restored {
        branch: &'a str,
        diffs: Vec<FieldDiff>,
    },
}

impl Found<'_> {
    fn shown(&self) -> render::Enforced<'_> {
        match self {
            Found::Missing { branch } => render::Enforced::Missing { branch },
            Found::Audited { branch, diffs } => render::Enforced::Audited { branch, diffs },
            Found::Restored { branch, diffs } => render::Enforced::Restored { branch, diffs },
        }
    }
}

/// Reports a GitHub refusal with its fix, once per kind of problem.
async fn report_problem(
    cx: &Context,
    api: &Api,
    repo: &str,
    e: GitHubError,
) -> Result<(), HandlerError> {
    let (key, problem) = match &e {
        GitHubError::Forbidden(m) => ("forbidden", render::Problem::Forbidden { github_says: m }),
        GitHubError::NotFound(m) | GitHubError::Unprocessable(m)
            if m.contains("Upgrade") || m.contains("plan") =>
        {
            ("plan", render::Problem::Plan { github_says: m })
        }
        _ => return Err(e.into()),
    };
    let text = render::problem(&problem);
    if !cx.store.problem_reported(repo, key).await? {
        report(cx, api, repo, &text).await?;
        cx.store.record_problem(repo, key, crate::now_ms()).await?;
    }
    Ok(())
}

/// Comments on the tracking issue, creating it the first time (and again
/// when it was deleted).
async fn report(cx: &Context, api: &Api, repo: &str, body: &str) -> Result<(), HandlerError> {
    let issue = match cx.store.sticky(repo, 0, "policy-issue").await? {
        Some(n) => n,
        None => tracking_issue(cx, api, repo, false).await?,
    };
    match api.create_comment(repo, issue, body).await {
        Ok(_) => Ok(()),
        // Deleted (404) or gone (410): open a new one.
        Err(GitHubError::NotFound(_) | GitHubError::Status { status: 410, .. }) => {
            let issue = tracking_issue(cx, api, repo, true).await?;
            api.create_comment(repo, issue, body).await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// The open tracking issue shipgate wrote, or a new one. `fresh`: the one on
/// record is gone; do not adopt it again.
async fn tracking_issue(
    cx: &Context,
    api: &Api,
    repo: &str,
    fresh: bool,
) -> Result<i64, HandlerError> {
    let me = cx.github.bot_login().await?;
    let gone = if fresh {
        cx.store.sticky(repo, 0, "policy-issue").await?
    } else {
        None
    };
    let existing = api.open_issues(repo).await?.into_iter().find(|i| {
        i.title == TRACKING_TITLE
            && i.user.as_ref().is_some_and(|u| u.login == me)
            && Some(i.number) != gone
    });
    let number = match existing {
        Some(i) => i.number,
        None => {
            api.create_issue(repo, TRACKING_TITLE, render::TRACKING_ISSUE_BODY)
                .await?
                .number
        }
    };
    cx.store.set_sticky(repo, 0, "policy-issue", number).await?;
    Ok(number)
}
