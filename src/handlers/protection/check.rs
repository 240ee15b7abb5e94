//! `shipgate/policy`: the job stored per commit and epoch (so a burst of
//! events costs one evaluation), and the check run it writes on each open
//! pull request whose head is the commit.

use serde_json::json;
use sha2::{Digest, Sha256};

use super::enforce::PolicyConfig;
use super::{Context, HandlerError, POLICY_CHECK, POLICY_EVENT};
use crate::deploy::gates::PullFacts;
use crate::deploy::policy;
use crate::github::repos::{CheckRunOutput, NewCheckRun};
use crate::github::Api;

/// Stores the policy job for `sha` of the current epoch: a job already stored
/// and not yet started takes this event's change too (its id is the same).
pub async fn request_policy_check(
    cx: &Context,
    repo: &str,
    sha: &str,
    installation: Option<i64>,
    default_branch: &str,
) -> Result<(), HandlerError> {
    let epoch = cx.store.policy_epoch(repo, sha).await?;
    let delivery_id = format!("policy:{repo}:{sha}:{epoch}");
    // Nearly always the job of this epoch is stored already (a CI run's
    // events share it): a read finds that, and the writer that ingress
    // commits through is left alone. The insert below is what decides.
    if cx.store.delivery_status(&delivery_id).await?.is_some() {
        return Ok(());
    }
    let job = json!({
        "repository": { "full_name": repo, "default_branch": default_branch },
        "installation": { "id": installation },
        "sha": sha,
    });
    let new = crate::store::NewDelivery {
        delivery_id,
        event: POLICY_EVENT.into(),
        action: None,
        installation_id: installation,
        repository: Some(format!("{repo}#policy")),
        payload: job.to_string().into(),
    };
    // Due after the delay, so the events of a CI run finishing job after job
    // share one evaluation (a stored job that has not started takes them).
    let delay = cx.policy_delay;
    let now = crate::now_ms();
    let due = now + delay.as_millis() as i64;
    if cx.store.insert_delivery_due(&new, now, due).await? == crate::store::InsertOutcome::Inserted
    {
        let wake = cx.wake.clone();
        if delay.is_zero() {
            wake.notify_one();
        } else {
            // Idle workers also poll; this wakes one when the job is due.
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                wake.notify_one();
            });
        }
    }
    Ok(())
}

/// `shipgate/policy` on the PR's head: the base branch's policy, evaluated.
pub async fn policy_check(
    cx: &Context,
    api: &Api,
    policy: &PolicyConfig,
    repo: &str,
    pr: &PullFacts,
    default_branch: &str,
) -> Result<(), HandlerError> {
    let (base, head) = (pr.base_ref.as_str(), pr.head_sha.as_str());
    let rules = policy
        .config
        .as_ref()
        .and_then(|c| c.protection.branches.get(base));
    let gates = match rules {
        Some(rules) => policy::evaluate_pull_request_live(api, repo, rules, pr).await?,
        None if policy.broken.is_none() => return Ok(()),
        None => Vec::new(),
    };
    let unmet = policy::unmet(&gates);
    let broken = policy
        .broken
        .as_ref()
        .map(|(_, e)| (e.to_string(), rules.is_some()));
    let (title, summary) = crate::render::policy::policy_check(
        base,
        default_branch,
        &gates,
        &unmet,
        broken.as_ref().map(|(e, known)| (e.as_str(), *known)),
    );
    let conclusion = if broken.is_none() && unmet.is_empty() {
        "success"
    } else {
        // Until the file loads again, no pull request meets the policy.
        "failure"
    };
    let run = NewCheckRun {
        name: POLICY_CHECK,
        head_sha: head,
        status: "completed",
        conclusion,
        details_url: None,
        output: CheckRunOutput {
            title: &title,
            summary: &summary,
        },
    };
    // One check run per commit, updated in place, and only when it changes.
    let digest = hex::encode(Sha256::digest(
        format!("{conclusion}\n{title}\n{summary}").as_bytes(),
    ));
    match cx.store.posted_check_run(repo, head, POLICY_CHECK).await? {
        Some((_, said)) if said == digest => {}
        Some((id, _)) => {
            api.update_check_run(repo, id, &run).await?;
            cx.store
                .set_posted_check_run(repo, head, POLICY_CHECK, id, &digest)
                .await?;
        }
        None => {
            let id = api.create_check_run(repo, &run).await?;
            cx.store
                .set_posted_check_run(repo, head, POLICY_CHECK, id, &digest)
                .await?;
        }
    }
    Ok(())
}
