//! `/lock`, `/unlock`, `/status`, `/help`, and pull requests closing.

use super::{Run, Section, Session};
use crate::config::repo::Role;
use crate::deploy::commands::Command;
use crate::deploy::gates;
use crate::deploy::refusal::Refusal;
use crate::freeze::active_freeze;
use crate::github::events::{Event, PullRequestEvent};
use crate::handlers::{Context, HandlerError};
use crate::render::commands as render;
use crate::store::{Lock, LockKind, LockOutcome};

pub(crate) async fn lock(s: &Session<'_>, run: &Run<'_>) -> Result<(), HandlerError> {
    let Command::Lock { env, ttl, reason } = run.command else {
        return Ok(());
    };
    let Some((env_name, env_cfg)) = s.environment(run, Some(env)).await? else {
        return Ok(());
    };
    let actor = crate::deploy::actor_facts(&s.api, &s.repo, &s.actor, &env_cfg).await?;
    let permission = gates::permission_gate(&env_name, &env_cfg, &actor);
    if !permission.passed() {
        let reason = permission.reason;
        return s.refuse(run, Refusal::CannotLock { reason }).await;
    }
    let now = crate::now_ms();
    let ttl = ttl.or(env_cfg.lock_ttl.map(|d| d.0));
    let lock = Lock {
        repository: s.repo.clone(),
        environment: env_name.clone(),
        kind: LockKind::Sticky,
        holder: s.actor.clone(),
        pr: Some(s.issue),
        owner_token: format!("run:{}:{}", s.comment_id, run.line),
        deployment_id: None,
        reason: reason.clone(),
        expires_at: ttl.map(|t| now + t.as_millis() as i64),
        created_at: now,
    };
    match s.cx.store.acquire_lock(&lock, now).await? {
        LockOutcome::Acquired => {
            let text = render::locked(&env_name, &s.actor, s.issue, ttl);
            s.say(run, render::LOCKED, &text).await
        }
        LockOutcome::HeldBy(held) if held.pr == Some(s.issue) => {
            s.say(run, render::LOCKED, &render::already_held(&env_name, &held))
                .await
        }
        LockOutcome::HeldBy(held) => {
            let refusal = Refusal::LockHeld {
                environment: env_name,
                lock: held,
            };
            s.refuse(run, refusal).await
        }
    }
}

pub(crate) async fn unlock(s: &Session<'_>, run: &Run<'_>) -> Result<(), HandlerError> {
    let Command::Unlock { env } = run.command else {
        return Ok(());
    };
    let Some((env_name, env_cfg)) = s.environment(run, Some(env)).await? else {
        return Ok(());
    };
    let Some(held) =
        s.cx.store
            .get_lock(&s.repo, &env_name, crate::now_ms())
            .await?
    else {
        return s
            .say(run, render::UNLOCKED, &render::not_locked(&env_name))
            .await;
    };
    if !held.holder.eq_ignore_ascii_case(&s.actor) {
        let actor = crate::deploy::actor_facts(&s.api, &s.repo, &s.actor, &env_cfg).await?;
        if !actor.at_least(Role::Maintain) {
            let refusal = Refusal::NotTheHolder {
                holder: held.holder.clone(),
                environment: env_name,
                actor: s.actor.clone(),
                role: actor.role,
            };
            return s.refuse(run, refusal).await;
        }
    }
    s.cx.store
        .release_lock(&s.repo, &env_name, &held.owner_token)
        .await?;
    s.say(
        run,
        render::UNLOCKED,
        &render::unlocked(&env_name, &s.actor, &held),
    )
    .await?;
    crate::handlers::lock_released(s.cx, &s.repo, &env_name, s.installation).await
}

pub(crate) async fn status(s: &Session<'_>, run: &Run<'_>) -> Result<(), HandlerError> {
    let Command::Status { env } = run.command else {
        return Ok(());
    };
    let names: Vec<String> = match env {
        Some(_) => match s.environment(run, env.as_deref()).await? {
            Some((name, _)) => vec![name],
            None => return Ok(()),
        },
        None => s.config.environments.keys().cloned().collect(),
    };
    if names.is_empty() {
        return s.say(run, render::NOTE, render::NO_ENVIRONMENTS).await;
    }
    let mut environments = Vec::new();
    for name in names {
        environments.push(environment_status(s, name).await?);
    }
    let body = render::status(&environments);
    s.reply(run, Section::Markdown { body }).await.map(|_| ())
}

/// What `/status` shows of one environment.
async fn environment_status(
    s: &Session<'_>,
    name: String,
) -> Result<render::EnvironmentStatus, HandlerError> {
    let env_cfg = &s.config.environments[&name];
    let current = match s
        .api
        .deployments(&s.repo, &name, 1)
        .await?
        .into_iter()
        .next()
    {
        None => None,
        Some(d) => {
            let state = s
                .api
                .deployment_statuses(&s.repo, d.id)
                .await?
                .first()
                .map(|st| st.state.clone())
                .unwrap_or_else(|| "pending".into());
            let payload = crate::deploy::payload::DeploymentPayload::read(&d.payload);
            Some(render::CurrentDeployment {
                sha: d.sha,
                pr: payload.pr,
                by: payload.actor.or(d.creator.map(|c| c.login)),
                created_at: d.created_at,
                state,
            })
        }
    };
    let lock = s.cx.store.get_lock(&s.repo, &name, crate::now_ms()).await?;
    let freeze = active_freeze(s.config.freeze_windows(env_cfg), chrono::Utc::now());
    let queue = s.cx.store.queued_deploys(&s.repo, &name).await?;
    Ok(render::EnvironmentStatus {
        name,
        current,
        lock,
        freeze,
        queue: queue.into_iter().map(|q| (q.pr, q.actor)).collect(),
    })
}

pub(crate) async fn help(s: &Session<'_>, run: &Run<'_>) -> Result<(), HandlerError> {
    let body = render::help(&s.config);
    s.reply(run, Section::Markdown { body }).await.map(|_| ())
}

/// A closed pull request gives up its locks and its queued deploys.
pub(crate) async fn on_pull_request_closed(
    cx: &Context,
    event: &Event,
    ev: &PullRequestEvent,
) -> Result<(), HandlerError> {
    if ev.action != "closed" {
        return Ok(());
    }
    let repo = &ev.repository.full_name;
    let pr = ev.pull_request.number as i64;
    cx.store.drop_pr_queue(repo, pr).await?;
    let freed = cx.store.release_pr_locks(repo, pr).await?;
    let installation = event.installation_id();
    for env in freed {
        crate::handlers::lock_released(cx, repo, &env, installation).await?;
    }
    Ok(())
}
