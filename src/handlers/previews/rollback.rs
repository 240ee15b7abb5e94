//! Automatic rollback when a deployment's smoke checks fail: through the
//! one deploy decision and under the environment's lock, and only while the
//! failed deployment is still the newest of its environment.

use super::SmokeJobPayload;
use crate::config::repo::{EnvironmentConfig, RepoConfig};
use crate::deploy::lock::{Acquired, DeployLock, LockGuard};
use crate::deploy::{Purpose, Request, Sources};
use crate::github::repos::NewDeployment;
use crate::github::Api;
use crate::handlers::{Context, HandlerError};
use crate::render::previews::{self as render, RollbackNote};
use crate::smoke::{Outcome, SmokeReport};

/// Rolls the environment back to its last good deployment after the smoke
/// checks of `job`'s deployment failed: only while that deployment is still
/// the newest of its environment (a newer deploy is not undone), and only
/// under the environment's lock (nobody else is deploying or holds it).
pub async fn auto_rollback(
    cx: &Context,
    api: &Api,
    config: &RepoConfig,
    job: &SmokeJobPayload,
    report: &SmokeReport,
    retried: bool,
) -> Result<(), HandlerError> {
    use crate::deploy::lock::{CreateError, Released};
    use crate::deploy::payload::{DeploymentKind, DeploymentPayload};

    let repo = &job.repository;
    let Some(env) = config.environments.get(&job.environment) else {
        return Ok(());
    };
    let history = api.deployments(repo, &job.environment, 30).await?;
    // A retried job may have created the rollback already.
    if retried {
        if let Some(existing) = history.iter().find(|d| {
            DeploymentPayload::read(&d.payload).rolled_back_deployment == Some(job.deployment_id)
        }) {
            tracing::info!(repo = %repo, deployment = existing.id, "automatic rollback already created");
            return Ok(());
        }
    }
    let failed: Vec<String> = report
        .results
        .iter()
        .filter(|c| c.outcome == Outcome::Fail)
        .map(|c| format!("{}: {}", c.name, c.reason))
        .collect();
    // History is newest first: a newer deployment replaced the failed one.
    if history.first().map(|d| d.id) != Some(job.deployment_id) {
        return tell(
            cx,
            config.notify.as_deref(),
            api,
            job,
            &RollbackNote::Replaced,
            &failed,
        )
        .await;
    }
    let Some(target) = crate::deploy::last_good(api, repo, &history).await? else {
        return tell(
            cx,
            config.notify.as_deref(),
            api,
            job,
            &RollbackNote::NothingEarlier,
            &failed,
        )
        .await;
    };
    let guard = match decide_and_lock(cx, api, config, job, env, &target).await? {
        Ok(guard) => guard,
        Err(why) => {
            let note = RollbackNote::Refused {
                target: &target,
                why: &why,
            };
            return tell(cx, config.notify.as_deref(), api, job, &note, &failed).await;
        }
    };
    let description = render::rollback_deployment_description(&job.sha);
    let payload = DeploymentPayload {
        kind: Some(DeploymentKind::Rollback),
        auto: true,
        pr: job.deployed_from,
        previous_sha: Some(job.sha.clone()),
        rolled_back_deployment: Some(job.deployment_id),
        ..Default::default()
    };
    let created = match guard
        .create_deployment(
            api,
            &NewDeployment {
                git_ref: &target,
                environment: &job.environment,
                auto_merge: false,
                required_contexts: Vec::new(),
                production_environment: env.production,
                transient_environment: false,
                description: &description,
                payload: payload.to_json(),
            },
        )
        .await
    {
        Ok(d) => d,
        Err(Released { error, released }) => {
            if released {
                crate::handlers::lock_released(cx, repo, &job.environment, job.installation)
                    .await?;
            }
            return Err(match error {
                CreateError::GitHub(e) => e.into(),
                CreateError::Store(e) => e.into(),
            });
        }
    };
    let note = RollbackNote::RollingBack {
        target: &target,
        deployment_id: created.id,
    };
    tell(cx, config.notify.as_deref(), api, job, &note, &failed).await
}

/// The deploy decision for rolling back to `target`, and the environment's
/// lock when it allows: the guard, or why there is no rollback.
async fn decide_and_lock<'a>(
    cx: &'a Context,
    api: &Api,
    config: &RepoConfig,
    job: &'a SmokeJobPayload,
    env: &'a EnvironmentConfig,
    target: &str,
) -> Result<Result<LockGuard, String>, HandlerError> {
    let repo = &job.repository;
    let src = Sources {
        api,
        store: &cx.store,
        repo,
    };
    let request = Request {
        purpose: Purpose::AutomaticRollback,
        environment: &job.environment,
        env,
        config,
        pr: None,
        sha: Some(target),
        git_ref: None,
        reviewed_sha: None,
        force: false,
        deployment_id: None,
    };
    let decision = crate::deploy::decide(&src, &request, None).await?;
    let why: Vec<String> = decision
        .gates
        .iter()
        .filter(|g| !g.passed())
        .map(|g| format!("{}: {}", g.name, g.reason))
        .collect();
    let taken = || "the environment's lock was taken meanwhile".to_string();
    if !decision.allowed() {
        return Ok(Err(if why.is_empty() {
            taken()
        } else {
            why.join("; ")
        }));
    }
    let lock = DeployLock {
        repository: repo,
        environment: &job.environment,
        env,
        holder: "shipgate",
        pr: None,
        owner_token: format!("auto-rollback:{}", job.deployment_id),
        reason: Some("automatic rollback"),
    };
    Ok(match LockGuard::acquire(&cx.store, &lock).await? {
        Acquired::Guard(g) => Ok(g),
        Acquired::HeldBy(_) => Err(taken()),
    })
}

/// Comments on the PR that deployed (if any) and notifies where the
/// repository's `routes` say.
async fn tell(
    cx: &Context,
    routes: Option<&[crate::notify::Route]>,
    api: &Api,
    job: &SmokeJobPayload,
    note: &RollbackNote<'_>,
    failed: &[String],
) -> Result<(), HandlerError> {
    let text = render::rollback_note(&job.sha, &job.environment, note, failed);
    if let Some(pr) = job.deployed_from {
        api.create_comment(&job.repository, pr, &text).await?;
    }
    let message = crate::notify::Message::new(
        crate::notify::Event::Rollback,
        &job.repository,
        render::notify_rollback(&job.repository, &text),
    )
    .environment(&job.environment)
    .sha(&job.sha);
    cx.notifier.send(routes, message);
    Ok(())
}
