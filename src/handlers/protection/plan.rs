//! The plan of a pull request that edits the policy: a `shipgate/policy-plan`
//! check run and one sticky comment saying what merging would change.

use serde_json::json;

use super::{Context, HandlerError, PLAN_CHECK, PLAN_MARKER};
use crate::config::repo::{ConfigSource, ProtectionMode, RepoConfig, CONFIG_PATH};
use crate::deploy::policy::{self, FieldDiff};
use crate::github::repos::ProtectionRead;
use crate::github::{Api, GitHubError};
use crate::render::policy as render;

/// For a PR that edits the config: validate it and plan the protection changes.
pub async fn plan(
    cx: &Context,
    api: &Api,
    repo: &str,
    number: i64,
    head: &str,
    default_branch: &str,
) -> Result<(), HandlerError> {
    let proposed = cx.config(api, repo, head).await?;
    let current = cx.config(api, repo, default_branch).await?;
    if proposed.source == current.source || proposed.source == ConfigSource::Missing {
        return Ok(()); // the PR does not change the config
    }
    // Only repositories that use (or start using) a protection policy get a plan.
    let has_policy = |c: &Result<std::sync::Arc<RepoConfig>, _>| {
        c.as_ref().is_ok_and(|c| !c.protection.is_empty())
    };
    if !has_policy(&proposed.config) && !has_policy(&current.config) {
        return Ok(());
    }
    let (conclusion, title, text, annotations) = match &proposed.config {
        Err(e) => {
            let (line, column) = e.location.unwrap_or((1, 1));
            let annotations = vec![json!({
                "path": CONFIG_PATH, "start_line": line, "end_line": line, "start_column": column, "end_column": column,
                "annotation_level": "failure", "message": e.message,
            })];
            (
                "failure",
                format!("{CONFIG_PATH} is invalid"),
                render::plan_invalid_config(&e.to_string()),
                annotations,
            )
        }
        Ok(config) => {
            let planned = planned(api, repo, config).await?;
            let current = current.config.as_deref().ok();
            let rulesets = super::rulesets::plan(api, repo, config, current).await?;
            let mut branches: Vec<render::Planned> = planned.iter().map(Plan::shown).collect();
            branches.extend(rulesets.shown());
            let audit = config.protection.mode == ProtectionMode::Audit;
            (
                "success",
                "policy plan".to_string(),
                render::plan(audit, &branches),
                Vec::new(),
            )
        }
    };
    api.create_check_run_json(
        repo,
        &json!({
            "name": PLAN_CHECK, "head_sha": head, "status": "completed", "conclusion": conclusion,
            "output": { "title": title, "summary": text, "annotations": annotations },
        }),
    )
    .await?;
    // One sticky comment per PR, updated on every push.
    let body = format!("{text}\n\n{PLAN_MARKER}");
    match cx.store.sticky(repo, number, "policy-plan").await? {
        Some(id) => api.update_comment(repo, id, &body).await?,
        None => {
            let c = api.create_comment(repo, number, &body).await?;
            cx.store
                .set_sticky(repo, number, "policy-plan", c.id)
                .await?;
        }
    }
    Ok(())
}

/// What merging would do to one branch of the policy.
enum Plan<'a> {
    Missing(&'a str),
    Unreadable(&'a str),
    Changes(&'a str, Vec<FieldDiff>),
}

impl Plan<'_> {
    fn shown(&self) -> render::Planned<'_> {
        match self {
            Plan::Missing(branch) => render::Planned::Missing { branch },
            Plan::Unreadable(branch) => render::Planned::Unreadable { branch },
            Plan::Changes(branch, diffs) if diffs.is_empty() => {
                render::Planned::NoChange { branch }
            }
            Plan::Changes(branch, diffs) => render::Planned::Changes { branch, diffs },
        }
    }
}

/// Each branch of the proposed policy against its live protection.
async fn planned<'a>(
    api: &Api,
    repo: &str,
    config: &'a RepoConfig,
) -> Result<Vec<Plan<'a>>, HandlerError> {
    let mut out = Vec::new();
    for (branch, desired) in &config.protection.branches {
        let live = match api.protection(repo, branch).await {
            Ok(ProtectionRead::Protected(l)) => Some(*l),
            Ok(ProtectionRead::Unprotected) => None,
            Ok(ProtectionRead::BranchMissing) => {
                out.push(Plan::Missing(branch));
                continue;
            }
            Err(GitHubError::Forbidden(_)) => {
                out.push(Plan::Unreadable(branch));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        out.push(Plan::Changes(branch, policy::diff(desired, live.as_ref())));
    }
    Ok(out)
}
