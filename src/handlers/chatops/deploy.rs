//! `/deploy` and `/rollback`, the deploy queue, and `deployment_status`.
//!
//! Every decision is `crate::deploy::decide`; every deployment is created
//! through a `LockGuard` with the typed payload.

use super::{render_reply, Run, Section, Session};
use crate::config::repo::{EnvironmentConfig, Role};
use crate::deploy::commands::{Command, RollbackTarget};
use crate::deploy::gates::{self, Gate};
use crate::deploy::lock::{Acquired, CreateError, DeployLock, LockGuard, Released};
use crate::deploy::payload::{DeploymentKind, DeploymentPayload};
use crate::deploy::refusal::Refusal;
use crate::deploy::{self, Decision, Purpose, Request, Sources};
use crate::github::events::{DeploymentStatusEvent, Event};
use crate::github::repos::{NewDeployment, Reaction};
use crate::handlers::{Context, HandlerError};
use crate::render::{DeployKind, DeployOutcome, DeployReply, DeploymentProgress};
use crate::store::QueuedDeploy;

/// What became of a deploy or rollback command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Created,
    Refused,
    /// Waiting in the environment's queue.
    Queued,
}

/// The full sha of `git_ref`, or `None` after telling the user it does not exist.
async fn resolve_or_refuse(
    s: &Session<'_>,
    run: &Run<'_>,
    arg: &str,
    git_ref: &str,
) -> Result<Option<String>, HandlerError> {
    match s.api.resolve_ref(&s.repo, git_ref).await {
        Ok(sha) => Ok(Some(sha)),
        Err(
            crate::github::GitHubError::NotFound(_) | crate::github::GitHubError::Unprocessable(_),
        ) => {
            let refusal = Refusal::NotARef {
                arg: arg.to_string(),
                value: git_ref.to_string(),
            };
            s.refuse(run, refusal).await?;
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The lock a deploy or rollback takes for its PR (or issue).
fn deploy_lock<'a>(
    s: &'a Session<'a>,
    env_name: &'a str,
    env: &'a EnvironmentConfig,
    line: i64,
    reason: Option<&'a str>,
) -> DeployLock<'a> {
    DeployLock {
        repository: &s.repo,
        environment: env_name,
        env,
        holder: &s.actor,
        pr: Some(s.issue),
        owner_token: format!("run:{}:{line}", s.comment_id),
        reason,
    }
}

fn sources<'a>(s: &'a Session<'a>) -> Sources<'a> {
    Sources {
        api: &s.api,
        store: &s.cx.store,
        repo: &s.repo,
    }
}

/// Runs `/deploy` or `/rollback` for `run`.
pub(crate) async fn run(s: &Session<'_>, run: &Run<'_>) -> Result<Outcome, HandlerError> {
    let (env_name, kind) = match run.command {
        Command::Deploy { env, .. } => (env.as_deref(), DeployKind::Deploy),
        Command::Rollback { env, .. } => (Some(env.as_str()), DeployKind::Rollback),
        _ => return Ok(Outcome::Refused),
    };
    let Some((env_name, env)) = s.environment(run, env_name).await? else {
        return Ok(Outcome::Refused);
    };
    // Reprocessed after the deployment was created: only the reply is missing.
    if let Some(prior) = &run.prior {
        if prior.deployment_id.is_some() {
            if let Some(Section::Deploy(model)) = Section::read(prior.model.as_deref()) {
                finish_reply(s, run, &model).await?;
                return Ok(Outcome::Created);
            }
        }
    }
    match kind {
        DeployKind::Deploy => deploy(s, run, &env_name, &env).await,
        DeployKind::Rollback => rollback(s, run, &env_name, &env).await,
    }
}

async fn finish_reply(
    s: &Session<'_>,
    run: &Run<'_>,
    model: &DeployReply,
) -> Result<i64, HandlerError> {
    s.reply(run, Section::Deploy(Box::new(model.clone()))).await
}

fn reply_model(
    s: &Session<'_>,
    kind: DeployKind,
    environment: &str,
    requested: String,
) -> DeployReply {
    DeployReply {
        kind,
        environment: environment.to_string(),
        requested,
        sha: None,
        from_sha: None,
        actor: s.actor.clone(),
        gates: Vec::new(),
        outcome: DeployOutcome::Refused,
        progress: None,
        notes: Vec::new(),
    }
}

async fn deploy(
    s: &Session<'_>,
    run: &Run<'_>,
    env_name: &str,
    env: &EnvironmentConfig,
) -> Result<Outcome, HandlerError> {
    let Command::Deploy {
        git_ref,
        force,
        queue,
        ..
    } = run.command
    else {
        return Ok(Outcome::Refused);
    };
    let requested = git_ref
        .as_ref()
        .map(|r| format!("`{}`", crate::text::inline_text(r)))
        .unwrap_or_else(|| format!("#{} head", s.issue));
    let mut reply = reply_model(s, DeployKind::Deploy, env_name, requested);
    if !s.is_pr {
        s.refuse(run, Refusal::DeployOutsidePullRequest).await?;
        return Ok(Outcome::Refused);
    }
    // Permission first: a refused user learns the role needed, and nothing else happens.
    let actor = deploy::actor_facts(&s.api, &s.repo, &s.actor, env).await?;
    let permission = gates::permission_gate(env_name, env, &actor);
    if !permission.passed() {
        reply.gates.push(permission);
        return refuse(s, run, &reply).await;
    }
    let sha = match git_ref {
        Some(r) => match resolve_or_refuse(s, run, "ref", r).await? {
            Some(sha) => Some(sha),
            None => return Ok(Outcome::Refused),
        },
        None => None,
    };
    let request = Request {
        purpose: Purpose::Deploy,
        environment: env_name,
        env,
        config: &s.config,
        pr: Some(s.issue),
        sha: sha.as_deref(),
        git_ref: None,
        reviewed_sha: None,
        force: *force,
        deployment_id: None,
    };
    let decision = deploy::decide(&sources(s), &request, Some(actor)).await?;
    reply.sha = decision.facts.sha.clone();
    reply.gates = decision.gates.clone();
    if let Some(detail) = decision.freeze_override() {
        reply
            .notes
            .push(crate::render::commands::freeze_overridden(&detail));
    }
    let Some(sha) = decision.facts.sha.clone() else {
        return refuse(s, run, &reply).await;
    };
    if !decision.allowed() {
        if *queue && decision.only_the_lock_is_closed() {
            return enqueue(s, run, env_name, git_ref.clone(), reply).await;
        }
        return refuse(s, run, &reply).await;
    }
    let lock = deploy_lock(s, env_name, env, run.line, None);
    let guard = match LockGuard::acquire(&s.cx.store, &lock).await? {
        Acquired::Guard(g) => g,
        // Taken since the decision read it.
        Acquired::HeldBy(held) => {
            set_gate(
                &mut reply.gates,
                gates::lock_gate(Some(&held), lock.claim()),
            );
            if *queue {
                return enqueue(s, run, env_name, git_ref.clone(), reply).await;
            }
            return refuse(s, run, &reply).await;
        }
    };
    let previous = match s.api.deployments(&s.repo, env_name, 1).await {
        Ok(list) => list.into_iter().next(),
        Err(e) => {
            // Do not keep the environment locked for a deploy that did not
            // start; the retry takes it again (a queue left waiting meanwhile
            // is started by the lock sweeper).
            guard.release().await?;
            return Err(e.into());
        }
    };
    reply.from_sha = previous.as_ref().map(|d| d.sha.clone());
    let payload = DeploymentPayload {
        kind: Some(DeploymentKind::Deploy),
        pr: Some(s.issue),
        actor: Some(s.actor.clone()),
        comment_id: Some(s.comment_id),
        line: Some(run.line.to_string()),
        previous_sha: previous.map(|d| d.sha),
        freeze_override: decision.freeze_override(),
        force: *force,
        ..Default::default()
    };
    create(s, run, env_name, env, &sha, payload, reply, guard).await
}

/// Replaces the gate of the same name.
fn set_gate(gates: &mut Vec<Gate>, gate: Gate) {
    match gates.iter_mut().find(|g| g.name == gate.name) {
        Some(g) => *g = gate,
        None => gates.push(gate),
    }
}

/// Creates the deployment under `guard`, records it (which also takes it
/// off the queue), replies and reacts 🚀. A refused deployment gives the
/// lock back and says why.
#[allow(clippy::too_many_arguments)]
async fn create(
    s: &Session<'_>,
    run: &Run<'_>,
    env_name: &str,
    env: &EnvironmentConfig,
    sha: &str,
    payload: DeploymentPayload,
    mut reply: DeployReply,
    guard: LockGuard,
) -> Result<Outcome, HandlerError> {
    let description = crate::render::commands::deployment_description(
        reply.kind == DeployKind::Rollback,
        env_name,
        &s.actor,
        s.issue,
    );
    let request = NewDeployment {
        git_ref: sha,
        environment: env_name,
        auto_merge: false,
        required_contexts: Vec::new(),
        production_environment: env.production,
        transient_environment: false,
        description: &description,
        payload: payload.to_json(),
    };
    // Seen before without a recorded deployment: the deployment may have been
    // created just before a crash. Look for it (by its payload) first.
    let existing = match &run.prior {
        Some(_) => s
            .api
            .deployments(&s.repo, env_name, 20)
            .await?
            .into_iter()
            .find(|d| DeploymentPayload::read(&d.payload).is_run(s.comment_id, run.line)),
        None => None,
    };
    let created = match existing {
        Some(d) => {
            guard.adopt(d.id).await?;
            d
        }
        None => match guard.create_deployment(&s.api, &request).await {
            Ok(d) => d,
            // The guard gave its lock back. A transient failure is retried
            // with the delivery (which takes the lock again); a refusal lets
            // the queue go on — by itself when this deploy came from it.
            Err(Released { error, released }) => {
                return match error {
                    CreateError::GitHub(e) if !e.is_transient() => {
                        let error = e.to_string();
                        s.refuse(run, Refusal::GitHubRefused { error }).await?;
                        if released && !run.from_queue {
                            crate::handlers::lock_released(s.cx, &s.repo, env_name, s.installation)
                                .await?;
                        }
                        Ok(Outcome::Refused)
                    }
                    CreateError::GitHub(e) => Err(e.into()),
                    CreateError::Store(e) => Err(e.into()),
                };
            }
        },
    };
    reply.outcome = DeployOutcome::Created {
        deployment_id: created.id,
    };
    let model = serde_json::to_string(&Section::Deploy(Box::new(reply.clone())))
        .expect("sections serialize");
    // One step records the deployment and takes the command off the queue.
    s.cx.store
        .set_run_deployment(&s.repo, s.comment_id, run.line, created.id, &model)
        .await?;
    finish_reply(s, run, &reply).await?;
    s.react(Reaction::Rocket).await?;
    if let Some(detail) = &payload.freeze_override {
        let message = crate::notify::Message::new(
            crate::notify::Event::FreezeOverride,
            &s.repo,
            crate::render::notify::notify_freeze_override(&s.repo, env_name, sha, detail),
        )
        .environment(env_name)
        .sha(sha);
        s.cx.notifier.send(s.config.notify.as_deref(), message);
    }
    Ok(Outcome::Created)
}

async fn refuse(
    s: &Session<'_>,
    run: &Run<'_>,
    reply: &DeployReply,
) -> Result<Outcome, HandlerError> {
    finish_reply(s, run, reply).await?;
    s.react(Reaction::Confused).await?;
    Ok(Outcome::Refused)
}

async fn enqueue(
    s: &Session<'_>,
    run: &Run<'_>,
    env_name: &str,
    git_ref: Option<String>,
    mut reply: DeployReply,
) -> Result<Outcome, HandlerError> {
    s.cx.store
        .enqueue_deploy(&QueuedDeploy {
            seq: 0,
            repository: s.repo.clone(),
            environment: env_name.to_string(),
            pr: s.issue,
            comment_id: s.comment_id,
            line: run.line,
            actor: s.actor.clone(),
            git_ref,
            installation_id: s.installation,
            created_at: crate::now_ms(),
        })
        .await?;
    let queue = s.cx.store.queued_deploys(&s.repo, env_name).await?;
    let position = queue
        .iter()
        .position(|q| q.comment_id == s.comment_id && q.line == run.line)
        .map_or(queue.len(), |p| p + 1);
    reply.outcome = DeployOutcome::Queued { position };
    finish_reply(s, run, &reply).await?;
    Ok(Outcome::Queued)
}

async fn rollback(
    s: &Session<'_>,
    run: &Run<'_>,
    env_name: &str,
    env: &EnvironmentConfig,
) -> Result<Outcome, HandlerError> {
    let Command::Rollback { to, force, .. } = run.command else {
        return Ok(Outcome::Refused);
    };
    let requested = match to {
        Some(RollbackTarget::Deployment(id)) => format!("deployment {id}"),
        Some(RollbackTarget::Ref(r)) => format!("`{}`", crate::text::inline_text(r)),
        None => "last good deployment".into(),
    };
    let mut reply = reply_model(s, DeployKind::Rollback, env_name, requested);
    let actor = deploy::actor_facts(&s.api, &s.repo, &s.actor, env).await?;
    let permission = gates::permission_gate(env_name, env, &actor);
    if !permission.passed() {
        reply.gates.push(permission);
        return refuse(s, run, &reply).await;
    }
    let history = s.api.deployments(&s.repo, env_name, 30).await?;
    let current = history.first();
    reply.from_sha = current.map(|d| d.sha.clone());
    let target = match to {
        Some(RollbackTarget::Deployment(id)) => match s.api.deployment(&s.repo, *id as i64).await {
            Ok(d) if d.environment == env_name => Some(d.sha),
            Ok(d) => {
                let refusal = Refusal::DeploymentElsewhere {
                    id: *id,
                    environment: d.environment.clone(),
                    wanted: env_name.to_string(),
                };
                s.refuse(run, refusal).await?;
                return Ok(Outcome::Refused);
            }
            Err(crate::github::GitHubError::NotFound(_)) => {
                s.refuse(run, Refusal::NoSuchDeployment { id: *id }).await?;
                return Ok(Outcome::Refused);
            }
            Err(e) => return Err(e.into()),
        },
        Some(RollbackTarget::Ref(r)) => match resolve_or_refuse(s, run, "to", r).await? {
            Some(sha) => Some(sha),
            None => return Ok(Outcome::Refused),
        },
        None => deploy::last_good(&s.api, &s.repo, &history).await?,
    };
    let Some(target) = target else {
        let refusal = Refusal::NothingToRollBack {
            environment: env_name.to_string(),
            current: current.map(|c| c.sha.clone()),
        };
        s.refuse(run, refusal).await?;
        return Ok(Outcome::Refused);
    };
    let may_force = *force && actor.at_least(Role::Maintain);
    let request = Request {
        purpose: Purpose::Rollback,
        environment: env_name,
        env,
        config: &s.config,
        pr: Some(s.issue),
        sha: Some(&target),
        git_ref: None,
        reviewed_sha: None,
        force: *force,
        deployment_id: None,
    };
    let decision: Decision = deploy::decide(&sources(s), &request, Some(actor)).await?;
    reply.sha = Some(target.clone());
    reply.gates = decision.gates.clone();
    if !decision.allowed() {
        return refuse(s, run, &reply).await;
    }
    let lock = deploy_lock(s, env_name, env, run.line, Some("rollback"));
    let guard = match LockGuard::acquire(&s.cx.store, &lock).await? {
        Acquired::Guard(g) => g,
        Acquired::HeldBy(held) if may_force => {
            reply
                .notes
                .push(crate::render::commands::lock_overridden(&held));
            LockGuard::overriding(&s.cx.store, &s.repo, env_name)
        }
        Acquired::HeldBy(held) => {
            set_gate(
                &mut reply.gates,
                gates::lock_gate(Some(&held), lock.claim()),
            );
            return refuse(s, run, &reply).await;
        }
    };
    let payload = DeploymentPayload {
        kind: Some(DeploymentKind::Rollback),
        pr: Some(s.issue),
        actor: Some(s.actor.clone()),
        comment_id: Some(s.comment_id),
        line: Some(run.line.to_string()),
        previous_sha: reply.from_sha.clone(),
        force: *force,
        ..Default::default()
    };
    create(s, run, env_name, env, &target, payload, reply, guard).await
}

const FINAL_STATES: &[&str] = &["success", "failure", "error", "inactive"];

/// Moves the reply of a shipgate deployment along, and on a final state
/// releases its lock (the lock-released step runs the queue).
pub(crate) async fn on_deployment_status(
    cx: &Context,
    event: &Event,
    ev: &DeploymentStatusEvent,
) -> Result<(), HandlerError> {
    let repo = ev.repository.full_name.clone();
    let installation = event.installation_id();
    let state = ev.deployment_status.state.clone();
    if let Some(run) = cx.store.run_for_deployment(&repo, ev.deployment.id).await? {
        if let (Some(reply_id), Some(Section::Deploy(mut model))) =
            (run.reply_comment_id, Section::read(run.model.as_deref()))
        {
            let progress = DeploymentProgress {
                state: state.clone(),
                environment_url: ev.deployment_status.url(),
                log_url: ev.deployment_status.log(),
            };
            // A late `in_progress` must not overwrite a final state.
            let stale = model
                .progress
                .as_ref()
                .is_some_and(|p| FINAL_STATES.contains(&p.state.as_str()))
                && !FINAL_STATES.contains(&state.as_str());
            if model.progress.as_ref() != Some(&progress) && !stale {
                model.progress = Some(progress);
                let json =
                    serde_json::to_string(&Section::Deploy(model)).expect("sections serialize");
                cx.store
                    .update_run_model(&repo, run.comment_id, run.line, &json)
                    .await?;
                let runs = cx.store.runs_of_comment(&repo, run.comment_id).await?;
                let api = cx.github.api(installation)?;
                api.update_comment(&repo, reply_id, &render_reply(run.comment_id, &runs))
                    .await?;
            }
        }
    }
    if FINAL_STATES.contains(&state.as_str()) {
        let env = cx
            .store
            .release_deployment_lock(&repo, ev.deployment.id)
            .await?
            .unwrap_or_else(|| ev.deployment.environment.clone());
        // Also when this delivery is a retry whose first attempt released the
        // lock already: the queue it started may have failed on the way.
        crate::handlers::lock_released(cx, &repo, &env, installation).await?;
    }
    Ok(())
}

/// Starts queued deploys of `env` while its lock is free. A queued deploy
/// leaves the queue in the step that records its deployment, or when it is
/// refused; an error on the way leaves it queued for the retry.
pub(crate) async fn run_queue(
    cx: &Context,
    repo: &str,
    env: &str,
    installation: Option<i64>,
) -> Result<(), HandlerError> {
    while cx
        .store
        .get_lock(repo, env, crate::now_ms())
        .await?
        .is_none()
    {
        let Some(q) = cx.store.next_queued_deploy(repo, env).await? else {
            return Ok(());
        };
        let installation = q.installation_id.or(installation);
        let api = cx.github.api(installation)?;
        let default_branch = api
            .get::<serde_json::Value>(&format!("/repos/{repo}"))
            .await?
            .get("default_branch")
            .and_then(|b| b.as_str())
            .unwrap_or("main")
            .to_string();
        let loaded = cx.config(&api, repo, &default_branch).await?;
        let Ok(config) = loaded.config else {
            return Ok(());
        };
        let s = Session {
            cx,
            api,
            repo: repo.to_string(),
            installation,
            config,
            issue: q.pr,
            is_pr: true,
            comment_id: q.comment_id,
            actor: q.actor.clone(),
            seen_before: true.into(),
        };
        let command = Command::Deploy {
            env: Some(env.to_string()),
            git_ref: q.git_ref.clone(),
            force: false,
            queue: true,
        };
        let prior = cx
            .store
            .runs_of_comment(repo, q.comment_id)
            .await?
            .into_iter()
            .find(|r| r.line == q.line);
        let r = Run {
            line: q.line,
            prior,
            command: &command,
            from_queue: true,
        };
        match run(&s, &r).await? {
            Outcome::Created => {}
            Outcome::Refused => {
                cx.store.dequeue_deploy(repo, q.comment_id, q.line).await?;
            }
            Outcome::Queued => return Ok(()),
        }
    }
    Ok(())
}
