//! Automatic rollback when a deployment's smoke checks fail (the server's
//! own smoke job, or the Action's smoke gate reporting a marked `failure`
//! status): through the one deploy decision and under the environment's
//! lock, and only while the failed deployment is still the newest of its
//! environment.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::config::repo::{EnvironmentConfig, RepoConfig};
use crate::deploy::lock::{Acquired, DeployLock, LockGuard};
use crate::deploy::{Purpose, Request, Sources};
use crate::github::events::{DeploymentStatusEvent, Event};
use crate::github::repos::NewDeployment;
use crate::github::Api;
use crate::handlers::{Context, Handler, HandlerError};
use crate::render::previews::{self as render, RollbackNote};
use crate::store::{ClaimedDelivery, NewDelivery};

/// The internal event of a rollback asked for by a deployment status.
pub const ROLLBACK_EVENT: &str = "shipgate_rollback";

/// A deployment whose smoke checks failed: what a rollback needs of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailedDeploy {
    pub repository: String,
    pub installation: Option<i64>,
    pub default_branch: String,
    pub deployment_id: i64,
    pub environment: String,
    pub sha: String,
    /// The PR that deployed (from the deployment payload), for the note.
    #[serde(default)]
    pub deployed_from: Option<i64>,
    /// The failed checks, one line each.
    pub failed: Vec<String>,
}

impl FailedDeploy {
    /// The deployment of a smoke job whose run failed, with its failed checks.
    pub fn smoked(job: &super::SmokeJobPayload, report: &crate::smoke::SmokeReport) -> Self {
        FailedDeploy {
            repository: job.repository.clone(),
            installation: job.installation,
            default_branch: job.default_branch.clone(),
            deployment_id: job.deployment_id,
            environment: job.environment.clone(),
            sha: job.sha.clone(),
            deployed_from: job.deployed_from,
            failed: report
                .results
                .iter()
                .filter(|c| c.outcome == crate::smoke::Outcome::Fail)
                .map(|c| format!("{}: {}", c.name, c.reason))
                .collect(),
        }
    }

    /// The deployment of a status the Action's smoke gate marked failed.
    pub fn reported(
        ev: &DeploymentStatusEvent,
        default_branch: &str,
        installation: Option<i64>,
    ) -> Self {
        let payload = crate::deploy::payload::DeploymentPayload::read(&ev.deployment.payload);
        FailedDeploy {
            repository: ev.repository.full_name.clone(),
            installation,
            default_branch: default_branch.to_string(),
            deployment_id: ev.deployment.id,
            environment: ev.deployment.environment.clone(),
            sha: ev.deployment.sha.clone(),
            deployed_from: payload.pr,
            failed: vec![render::action_smoke_failure(
                ev.deployment_status
                    .description
                    .as_deref()
                    .unwrap_or_default(),
                ev.deployment_status.log().as_deref(),
            )],
        }
    }
}

/// A status of an environment with `auto_rollback` (not a rollback's own):
/// when the Action's smoke gate marked it failed after the deployment went
/// out, the rollback job is stored. (The deploy's lock was released by
/// chatops, which handles the status first.)
pub async fn on_reported_failure(
    cx: &Context,
    ev: &DeploymentStatusEvent,
    default_branch: &str,
    installation: Option<i64>,
) -> Result<(), HandlerError> {
    let status = &ev.deployment_status;
    if !crate::deploy::payload::is_smoke_failure(&status.state, status.description.as_deref()) {
        return Ok(());
    }
    enqueue(
        cx,
        &FailedDeploy::reported(ev, default_branch, installation),
    )
    .await
}

/// Stores the rollback of `failed` as an internal delivery, once per
/// deployment however often its status is delivered; it runs in the
/// repository's smoke lane, after the smoke jobs before it.
pub async fn enqueue(cx: &Context, failed: &FailedDeploy) -> Result<(), HandlerError> {
    let new = NewDelivery {
        delivery_id: format!("rollback:{}:{}", failed.repository, failed.deployment_id),
        event: ROLLBACK_EVENT.into(),
        action: None,
        installation_id: failed.installation,
        repository: Some(format!("{}#smoke", failed.repository)),
        payload: serde_json::to_string(failed)
            .expect("a rollback job serializes")
            .into(),
    };
    cx.store.insert_delivery(&new, crate::now_ms()).await?;
    cx.wake.notify_one();
    Ok(())
}

/// The rollback a deployment status asked for.
pub struct RollbackJob;

#[async_trait]
impl Handler for RollbackJob {
    fn name(&self) -> &'static str {
        "rollback"
    }

    fn wants(&self, event: &str, _: Option<&str>) -> bool {
        event == ROLLBACK_EVENT
    }

    fn decode_internal(&self, _: &str, payload: &str) -> Result<(), HandlerError> {
        serde_json::from_str::<FailedDeploy>(payload)?;
        Ok(())
    }

    async fn handle(
        &self,
        cx: &Context,
        d: &ClaimedDelivery,
        _: &Event,
    ) -> Result<(), HandlerError> {
        let failed: FailedDeploy = serde_json::from_str(&d.payload)?;
        let api = cx.github.api(failed.installation)?;
        let Some(config) = cx
            .valid_config(&api, &failed.repository, &failed.default_branch)
            .await?
        else {
            return Ok(());
        };
        if !config
            .environments
            .get(&failed.environment)
            .is_some_and(|e| e.auto_rollback)
        {
            return Ok(());
        }
        auto_rollback(cx, &api, &config, &failed, d.attempts > 1).await
    }
}

/// Rolls the environment back to its last good deployment after the smoke
/// checks of `job`'s deployment failed: only while that deployment is still
/// the newest of its environment (a newer deploy is not undone), and only
/// under the environment's lock (nobody else is deploying or holds it).
pub async fn auto_rollback(
    cx: &Context,
    api: &Api,
    config: &RepoConfig,
    job: &FailedDeploy,
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
    let failed = &job.failed;
    // History is newest first: a newer deployment replaced the failed one.
    if history.first().map(|d| d.id) != Some(job.deployment_id) {
        return tell(
            cx,
            config.notify.as_deref(),
            api,
            job,
            &RollbackNote::Replaced,
            failed,
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
            failed,
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
            return tell(cx, config.notify.as_deref(), api, job, &note, failed).await;
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
    tell(cx, config.notify.as_deref(), api, job, &note, failed).await
}

/// The deploy decision for rolling back to `target`, and the environment's
/// lock when it allows: the guard, or why there is no rollback.
async fn decide_and_lock<'a>(
    cx: &'a Context,
    api: &Api,
    config: &RepoConfig,
    job: &'a FailedDeploy,
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
    job: &FailedDeploy,
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
