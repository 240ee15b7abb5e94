//! Branch protection policy: enforce `protection:` of `.github/shipgate.yml`
//! (restore drift, or only report it in `audit` mode), plan the effect of a
//! PR that edits the policy, and publish `shipgate/policy` on every PR.
//!
//! Reports go to one tracking issue, "shipgate policy", one comment per
//! event. Problems that need a human (missing admin rights, plan limits) are
//! reported once.

mod check;
mod enforce;
mod input;
mod plan;
mod rulesets;

use async_trait::async_trait;
use serde_json::json;

use super::{Context, Handler, HandlerError};
use crate::config::repo::CONFIG_PATH;
use crate::github::events::Event;
use crate::store::ClaimedDelivery;
use check::{policy_check, request_policy_check};
use enforce::{enforce, policy_config, report_broken};
use input::{decode, Input};
use plan::plan;

pub const TRACKING_TITLE: &str = "shipgate policy";
pub const POLICY_CHECK: &str = "shipgate/policy";
pub const PLAN_CHECK: &str = "shipgate/policy-plan";
pub const PLAN_MARKER: &str = "<!-- shipgate:policy-plan -->";
/// Internal event: enforce the policy of one repository of an installation
/// (an installation's repositories are fanned out one delivery each, so a
/// large organisation is not one delivery against one time limit).
pub const ENFORCE_EVENT: &str = "shipgate_enforce";
/// Internal event: evaluate `shipgate/policy` for the open pull requests
/// whose head is a commit. Events about the commit (checks completing,
/// reviews, pushes) store one such job per epoch, so a burst of them costs
/// one evaluation, and the jobs run in their own order (`repo#policy`), never
/// ahead of or behind the repository's commands.
pub const POLICY_EVENT: &str = "shipgate_policy";

pub struct Protection;

#[async_trait]
impl Handler for Protection {
    fn name(&self) -> &'static str {
        "protection"
    }

    fn wants(&self, event: &str, action: Option<&str>) -> bool {
        match event {
            "installation" => action == Some("created"),
            "installation_repositories" => action == Some("added"),
            "push" => true,
            "branch_protection_rule" | "repository_ruleset" => {
                matches!(action, Some("created" | "edited" | "deleted"))
            }
            "repository" => action == Some("created"),
            "pull_request" => matches!(
                action,
                Some("opened" | "synchronize" | "reopened" | "ready_for_review" | "edited")
            ),
            "pull_request_review" => matches!(action, Some("submitted" | "dismissed")),
            "check_run" | "check_suite" => action == Some("completed"),
            ENFORCE_EVENT | POLICY_EVENT => true,
            _ => false,
        }
    }

    fn decode_internal(&self, _: &str, payload: &str) -> Result<(), HandlerError> {
        decode(payload, &Event::Internal).map(drop)
    }

    async fn handle(
        &self,
        cx: &Context,
        d: &ClaimedDelivery,
        event: &Event,
    ) -> Result<(), HandlerError> {
        let input = decode(&d.payload, event)?;
        let installation = input.installation;
        let sender = input.sender.as_deref();
        let repo = input.repo.clone().unwrap_or_default();
        match d.event.as_str() {
            "installation" | "installation_repositories" => fan_out(cx, d, &input).await,
            ENFORCE_EVENT => {
                let api = cx.github.api(installation)?;
                let trigger = input.p.trigger.as_deref().unwrap_or("installation");
                enforce(cx, &api, &repo, None, trigger, sender).await
            }
            "repository" => {
                let api = cx.github.api(installation)?;
                let branch = input.default_branch.clone();
                enforce(cx, &api, &repo, branch, "repository created", sender).await
            }
            "push" => on_push(cx, event, &input).await,
            "branch_protection_rule" => {
                // shipgate's own writes come back as events: never react to them.
                let me = cx.github.bot_login().await?;
                if event.sent_by(&me) {
                    return Ok(());
                }
                let api = cx.github.api(installation)?;
                let trigger = format!(
                    "branch protection rule {}",
                    d.action.as_deref().unwrap_or("changed")
                );
                let branch = input.default_branch.clone();
                enforce(cx, &api, &repo, branch, &trigger, sender).await
            }
            "repository_ruleset" => on_ruleset(cx, d, event, &input).await,
            "pull_request" | "pull_request_review" => on_pull_request(cx, d, &input).await,
            "check_run" | "check_suite" => on_check(cx, d, &input).await,
            POLICY_EVENT => run_policy_job(cx, &input).await,
            _ => Ok(()),
        }
    }
}

/// A ruleset created, edited or deleted by someone else than shipgate:
/// the policy's rulesets are enforced again (a ruleset of another name, or
/// the organization's, changes nothing). shipgate's own writes come back as
/// events and are not acted on, so restoring never loops.
async fn on_ruleset(
    cx: &Context,
    d: &ClaimedDelivery,
    event: &Event,
    input: &Input,
) -> Result<(), HandlerError> {
    let Event::RepositoryRuleset(ev) = event else {
        return Ok(());
    };
    let me = cx.github.bot_login().await?;
    if event.sent_by(&me) {
        return Ok(());
    }
    let (Some(repo), Some(ruleset)) = (input.repo.as_deref(), ev.repository_ruleset.as_ref())
    else {
        return Ok(());
    };
    if ruleset
        .source_type
        .as_deref()
        .is_some_and(|s| s != "Repository")
    {
        return Ok(());
    }
    let api = cx.github.api(input.installation)?;
    let trigger = format!(
        "ruleset `{}` {}",
        ruleset.name,
        d.action.as_deref().unwrap_or("changed")
    );
    let branch = input.default_branch.clone();
    enforce(cx, &api, repo, branch, &trigger, input.sender.as_deref()).await
}

/// An installation's repositories, one enforcement job each (so a large
/// organisation is not one delivery against one time limit).
async fn fan_out(cx: &Context, d: &ClaimedDelivery, input: &Input) -> Result<(), HandlerError> {
    let (p, installation, sender) = (&input.p, input.installation, input.sender.as_deref());
    let trigger = format!("{} {}", d.event, d.action.as_deref().unwrap_or(""));
    let now = crate::now_ms();
    let mut stored = false;
    let listed = if d.event == "installation" {
        &p.repositories
    } else {
        &p.repositories_added
    };
    for r in listed.iter().flatten() {
        let name = r.full_name.as_str();
        let job = json!({
            "repository": { "full_name": name },
            "installation": { "id": installation },
            "sender": { "login": sender },
            "trigger": trigger.trim(),
        });
        let new = crate::store::NewDelivery {
            // Stable per delivery and repository: a retry stores nothing twice.
            delivery_id: format!("enforce:{}:{name}", d.delivery_id),
            event: ENFORCE_EVENT.into(),
            action: None,
            installation_id: installation,
            repository: Some(name.to_string()),
            payload: job.to_string().into(),
        };
        stored |=
            cx.store.insert_delivery(&new, now).await? == crate::store::InsertOutcome::Inserted;
    }
    if stored {
        cx.wake.notify_one();
    }
    Ok(())
}

/// A push that changes the policy file on the default branch enforces it.
async fn on_push(cx: &Context, event: &Event, input: &Input) -> Result<(), HandlerError> {
    let (installation, sender) = (input.installation, input.sender.as_deref());
    let Event::Push(push) = event else {
        return Ok(());
    };
    if push.deleted
        || push.branch().is_none()
        || push.branch() != push.repository.default_branch.as_deref()
        || !push.touches(CONFIG_PATH)
    {
        return Ok(());
    }
    let api = cx.github.api(installation)?;
    enforce(
        cx,
        &api,
        &push.repository.full_name,
        push.repository.default_branch.clone(),
        "policy changed on the default branch",
        sender,
    )
    .await
}

/// A pull request opened or pushed to gets a plan when it edits the policy;
/// any change to it or its reviews asks for `shipgate/policy` again.
async fn on_pull_request(
    cx: &Context,
    d: &ClaimedDelivery,
    input: &Input,
) -> Result<(), HandlerError> {
    let (p, installation) = (&input.p, input.installation);
    let default_branch = input.default_branch.clone();
    let pr = p.pull_request.as_ref();
    if d.event == "pull_request"
        && d.action.as_deref() == Some("edited")
        && p.changes.as_ref().is_none_or(|c| c.base.is_none())
    {
        return Ok(()); // only a base change matters
    }
    let (Some(number), Some(head), Some(repo)) = (
        pr.and_then(|pr| pr.number),
        pr.and_then(|pr| pr.head.as_ref()?.sha.as_deref()),
        input.repo.as_deref(),
    ) else {
        return Ok(());
    };
    let default_branch = default_branch.unwrap_or_else(|| "main".into());
    if d.event == "pull_request"
        && matches!(
            d.action.as_deref(),
            Some("opened" | "synchronize" | "reopened")
        )
    {
        let api = cx.github.api(installation)?;
        plan(cx, &api, repo, number, head, &default_branch).await?;
    }
    request_policy_check(cx, repo, head, installation, &default_branch).await
}

/// A check completing on a commit asks for `shipgate/policy` again, unless
/// it is shipgate's own.
async fn on_check(cx: &Context, d: &ClaimedDelivery, input: &Input) -> Result<(), HandlerError> {
    let (p, installation) = (&input.p, input.installation);
    let default_branch = input.default_branch.clone();
    let check = if d.event == "check_run" {
        p.check_run.as_ref()
    } else {
        p.check_suite.as_ref()
    };
    // Our own check runs completing must not re-trigger us.
    if check
        .and_then(|c| c.name.as_deref())
        .is_some_and(|n| n.starts_with("shipgate/"))
    {
        return Ok(());
    }
    let me = cx.github.bot_login().await?;
    if check
        .and_then(|c| c.app.as_ref()?.slug.as_deref())
        .is_some_and(|s| format!("{s}[bot]") == me)
    {
        return Ok(());
    }
    let (Some(sha), Some(repo)) = (
        check.and_then(|c| c.head_sha.as_deref()),
        input.repo.as_deref(),
    ) else {
        return Ok(());
    };
    let default_branch = default_branch.unwrap_or_else(|| "main".into());
    request_policy_check(cx, repo, sha, installation, &default_branch).await
}

/// The policy job of a commit: `shipgate/policy` on each open pull request
/// whose head it is.
async fn run_policy_job(cx: &Context, input: &Input) -> Result<(), HandlerError> {
    let (p, installation) = (&input.p, input.installation);
    let default_branch = input.default_branch.clone();
    let (Some(sha), Some(repo)) = (p.sha.as_deref(), input.repo.as_deref()) else {
        return Ok(());
    };
    // Events from now on store the next job: this one reads
    // GitHub after them, so it covers what came before.
    cx.store.bump_policy_epoch(repo, sha).await?;
    let api = cx.github.api(installation)?;
    let default_branch = default_branch.unwrap_or_else(|| "main".into());
    let policy = policy_config(cx, &api, repo, &default_branch).await?;
    report_broken(cx, &api, repo, &default_branch, &policy).await?;
    // Without a branch policy there is no check to write: the
    // pull requests are not even looked up.
    let no_policy = policy
        .config
        .as_ref()
        .is_none_or(|c| c.protection.branches.is_empty());
    if no_policy && policy.broken.is_none() {
        return Ok(());
    }
    for pr in api.pulls_for_commit(repo, sha).await? {
        if pr.state != "open" || pr.head.sha != sha {
            continue;
        }
        let facts = crate::deploy::pull_facts_of(&pr, repo, &default_branch);
        policy_check(cx, &api, &policy, repo, &facts, &default_branch).await?;
    }
    Ok(())
}
