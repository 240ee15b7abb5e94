//! `/deploy` and `/rollback`, the deploy queue, and `deployment_status`.

use serde_json::json;

use super::{Run, Session};
use crate::commands::{Command, RollbackTarget};
use crate::events::DeploymentStatusEvent;
use crate::gates::{self, Actor, Gate, PullFacts};
use crate::github::repos::{NewDeployment, Reaction};
use crate::handlers::{Context, HandlerError};
use crate::render::{
    render_deploy_reply, short, DeployKind, DeployOutcome, DeployReply, DeploymentProgress,
};
use crate::repo_config::{Deployers, EnvironmentConfig, Role};
use crate::store::{Lock, LockKind, LockOutcome, QueuedDeploy};

/// Deploy locks expire after this when the environment sets no `lock_ttl`,
/// so a deployment that never reports a final state cannot block forever.
const DEFAULT_DEPLOY_LOCK_TTL_MS: i64 = 3600 * 1000;

/// The actor's role (and list membership) for an environment.
pub(crate) async fn actor_facts(
    s: &Session<'_>,
    env: &EnvironmentConfig,
) -> Result<Actor, HandlerError> {
    let level = s.api.permission(&s.repo, &s.actor).await?;
    let role = gates::role_from_permission(level.role_name.as_deref(), &level.permission);
    let mut listed = false;
    if let Deployers::List(list) = env.deployers() {
        for entry in &list {
            if let Some(team) = entry.strip_prefix('@') {
                if let Some((org, slug)) = team.split_once('/') {
                    if s.api.is_team_member(org, slug, &s.actor).await? {
                        listed = true;
                        break;
                    }
                }
            } else if entry.eq_ignore_ascii_case(&s.actor) {
                listed = true;
                break;
            }
        }
    }
    Ok(Actor {
        login: s.actor.clone(),
        role,
        listed,
    })
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
            let msg =
                format!("`{arg}={git_ref}` is not a branch, tag or commit of this repository");
            s.refuse(run, &msg).await?;
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

fn lock_ttl_ms(env: &EnvironmentConfig) -> i64 {
    env.lock_ttl
        .map(|d| d.0.as_millis() as i64)
        .unwrap_or(DEFAULT_DEPLOY_LOCK_TTL_MS)
}

/// The lock a deploy or rollback takes for its PR (or issue).
fn deploy_lock(
    s: &Session<'_>,
    env_name: &str,
    env: &EnvironmentConfig,
    token: &str,
    reason: Option<&str>,
    now: i64,
) -> Lock {
    Lock {
        repository: s.repo.clone(),
        environment: env_name.to_string(),
        kind: LockKind::Deploy,
        holder: s.actor.clone(),
        pr: Some(s.issue),
        owner_token: token.to_string(),
        deployment_id: None,
        reason: reason.map(str::to_string),
        expires_at: Some(now + lock_ttl_ms(env)),
        created_at: now,
    }
}

fn owner_token(s: &Session<'_>, line: i64) -> String {
    format!("run:{}:{line}", s.comment_id)
}

/// Runs `/deploy` or `/rollback` for `run`.
pub(crate) async fn run(s: &Session<'_>, run: &Run<'_>) -> Result<(), HandlerError> {
    let (env_name, kind) = match run.command {
        Command::Deploy { env, .. } => (env.as_deref(), DeployKind::Deploy),
        Command::Rollback { env, .. } => (Some(env.as_str()), DeployKind::Rollback),
        _ => return Ok(()),
    };
    let Some((env_name, env)) = s.environment(run, env_name).await? else {
        return Ok(());
    };
    // Reprocessed after the deployment was created: only the reply is missing.
    if let Some(prior) = &run.prior {
        if prior.deployment_id.is_some() {
            if let Some(model) = prior
                .model
                .as_deref()
                .and_then(|m| serde_json::from_str::<DeployReply>(m).ok())
            {
                finish_reply(s, run, &model).await?;
                return Ok(());
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
    let body = render_deploy_reply(model, &s.marker(run.line));
    let json = serde_json::to_string(model).expect("reply model serializes");
    s.reply(run, &body, &json).await
}

async fn deploy(
    s: &Session<'_>,
    run: &Run<'_>,
    env_name: &str,
    env: &EnvironmentConfig,
) -> Result<(), HandlerError> {
    let Command::Deploy {
        git_ref,
        force,
        queue,
        ..
    } = run.command
    else {
        return Ok(());
    };
    let mut reply = DeployReply {
        kind: DeployKind::Deploy,
        environment: env_name.to_string(),
        requested: git_ref
            .as_ref()
            .map(|r| format!("`{r}`"))
            .unwrap_or_else(|| format!("#{} head", s.issue)),
        sha: None,
        from_sha: None,
        actor: s.actor.clone(),
        gates: Vec::new(),
        outcome: DeployOutcome::Refused,
        progress: None,
        notes: Vec::new(),
    };
    if !s.is_pr {
        return s
            .refuse(
                run,
                "`/deploy` works in pull request comments; use `/rollback` here",
            )
            .await;
    }
    // Permission first: a refused user learns the role needed, and nothing else happens.
    let actor = actor_facts(s, env).await?;
    let permission = gates::permission_gate(env_name, env, &actor);
    if !permission.passed() {
        reply.gates.push(permission);
        return refuse(s, run, &reply).await;
    }
    reply.gates.push(permission);

    let pr = s.api.pull_request(&s.repo, s.issue).await?;
    let sha = match git_ref {
        Some(r) => match resolve_or_refuse(s, run, "ref", r).await? {
            Some(sha) => sha,
            None => return Ok(()),
        },
        None => pr.head.sha.clone(),
    };
    reply.sha = Some(sha.clone());
    let facts = PullFacts {
        number: pr.number,
        open: pr.state == "open",
        draft: pr.draft,
        base_ref: pr.base.git_ref.clone(),
        author: pr.user.login.clone(),
    };
    reply.gates.push(gates::pull_request_gate(&facts));
    reply
        .gates
        .extend(gates::base_branch_gate(env_name, env, &facts));
    if env.required_approvals > 0 {
        let reviews = s.api.reviews(&s.repo, s.issue).await?;
        reply.gates.extend(gates::approvals_gate(
            env.required_approvals,
            &reviews,
            &facts.author,
        ));
    }
    if !env.required_checks.is_empty() {
        let (runs, statuses) = s.api.checks(&s.repo, &sha).await?;
        reply.gates.extend(gates::checks_gate(
            &env.required_checks,
            &runs,
            &statuses,
            short(&sha),
        ));
    }
    let freeze = gates::freeze_gate(&s.config, env, chrono::Utc::now(), *force, &actor);
    if freeze.passed() && freeze.detail.contains("overridden") {
        reply
            .notes
            .push(format!("⚠️ Freeze overridden: {}", freeze.detail));
    }
    let freeze_override =
        (freeze.passed() && freeze.detail.contains("overridden")).then(|| freeze.detail.clone());
    reply.gates.push(freeze);

    let now = crate::now_ms();
    let token = owner_token(s, run.line);
    let others_pass = reply.gates.iter().all(Gate::passed);
    let lock_gate = if others_pass {
        match s
            .cx
            .store
            .acquire_lock(&deploy_lock(s, env_name, env, &token, None, now), now)
            .await?
        {
            LockOutcome::Acquired => gates::lock_gate(None, Some(s.issue)),
            LockOutcome::HeldBy(held) => gates::lock_gate(Some(&held), Some(s.issue)),
        }
    } else {
        let held = s.cx.store.get_lock(&s.repo, env_name, now).await?;
        gates::lock_gate(held.as_ref(), Some(s.issue))
    };
    let lock_free = lock_gate.passed();
    reply.gates.push(lock_gate);

    if !reply.gates.iter().all(Gate::passed) {
        if *queue && others_pass && !lock_free {
            return enqueue(s, run, env_name, git_ref.clone(), reply).await;
        }
        return refuse(s, run, &reply).await;
    }

    // All gates pass and we hold the lock (or this PR does).
    let previous = match s.api.deployments(&s.repo, env_name, 1).await {
        Ok(list) => list,
        Err(e) => {
            // Do not keep the environment locked for a deploy that did not start.
            s.cx.store.release_lock(&s.repo, env_name, &token).await?;
            return Err(e.into());
        }
    }
    .into_iter()
    .next();
    reply.from_sha = previous.as_ref().map(|d| d.sha.clone());
    let payload = json!({
        "kind": "deploy",
        "pr": s.issue,
        "actor": s.actor,
        "comment_id": s.comment_id,
        "line": payload_line(run.line),
        "previous_sha": previous.as_ref().map(|d| d.sha.as_str()),
        "freeze_override": freeze_override,
    });
    create(s, run, env_name, env, &sha, payload, reply, &token).await
}

/// Creates the deployment, records it, replies and reacts 🚀. Releases the
/// lock if GitHub refuses the deployment.
#[allow(clippy::too_many_arguments)]
async fn create(
    s: &Session<'_>,
    run: &Run<'_>,
    env_name: &str,
    env: &EnvironmentConfig,
    sha: &str,
    payload: serde_json::Value,
    mut reply: DeployReply,
    token: &str,
) -> Result<(), HandlerError> {
    let description = match reply.kind {
        DeployKind::Deploy => format!(
            "shipgate: /deploy {env_name} by @{} from #{}",
            s.actor, s.issue
        ),
        DeployKind::Rollback => format!("shipgate: /rollback {env_name} by @{}", s.actor),
    };
    let request = NewDeployment {
        git_ref: sha,
        environment: env_name,
        auto_merge: false,
        required_contexts: Vec::new(),
        production_environment: env.production,
        transient_environment: false,
        description: &description,
        payload,
    };
    // Seen before without a recorded deployment: the deployment may have been
    // created just before a crash. Look for it (by its payload) first.
    let existing = match &run.prior {
        Some(_) => s
            .api
            .deployments(&s.repo, env_name, 20)
            .await?
            .into_iter()
            .find(|d| {
                d.payload.get("comment_id") == Some(&json!(s.comment_id))
                    && line_matches(d.payload.get("line"), run.line)
            }),
        None => None,
    };
    let created = match existing {
        Some(d) => Ok(d),
        None => s.api.create_deployment(&s.repo, &request).await,
    };
    let created = match created {
        Ok(d) => d,
        Err(e) if !e.is_transient() => {
            s.cx.store.release_lock(&s.repo, env_name, token).await?;
            return s
                .refuse(run, &format!("GitHub refused the deployment: {e}"))
                .await;
        }
        Err(e) => {
            s.cx.store.release_lock(&s.repo, env_name, token).await?;
            return Err(e.into());
        }
    };
    reply.outcome = DeployOutcome::Created {
        deployment_id: created.id,
    };
    let model = serde_json::to_string(&reply).expect("reply model serializes");
    s.cx.store
        .set_lock_deployment(&s.repo, env_name, token, created.id)
        .await?;
    s.cx.store
        .set_run_deployment(&s.repo, s.comment_id, run.line, created.id, &model)
        .await?;
    finish_reply(s, run, &reply).await?;
    s.react(Reaction::Rocket).await
}

async fn refuse(s: &Session<'_>, run: &Run<'_>, reply: &DeployReply) -> Result<(), HandlerError> {
    finish_reply(s, run, reply).await?;
    s.react(Reaction::Confused).await
}

async fn enqueue(
    s: &Session<'_>,
    run: &Run<'_>,
    env_name: &str,
    git_ref: Option<String>,
    mut reply: DeployReply,
) -> Result<(), HandlerError> {
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
    finish_reply(s, run, &reply).await.map(|_| ())
}

async fn rollback(
    s: &Session<'_>,
    run: &Run<'_>,
    env_name: &str,
    env: &EnvironmentConfig,
) -> Result<(), HandlerError> {
    let Command::Rollback { to, force, .. } = run.command else {
        return Ok(());
    };
    let mut reply = DeployReply {
        kind: DeployKind::Rollback,
        environment: env_name.to_string(),
        requested: match to {
            Some(RollbackTarget::Deployment(id)) => format!("deployment {id}"),
            Some(RollbackTarget::Ref(r)) => format!("`{r}`"),
            None => "last good deployment".into(),
        },
        sha: None,
        from_sha: None,
        actor: s.actor.clone(),
        gates: Vec::new(),
        outcome: DeployOutcome::Refused,
        progress: None,
        notes: Vec::new(),
    };
    let actor = actor_facts(s, env).await?;
    let permission = gates::permission_gate(env_name, env, &actor);
    let allowed = permission.passed();
    reply.gates.push(permission);
    if !allowed {
        return refuse(s, run, &reply).await;
    }

    let history = s.api.deployments(&s.repo, env_name, 30).await?;
    let current = history.first();
    reply.from_sha = current.map(|d| d.sha.clone());
    let target = match to {
        Some(RollbackTarget::Deployment(id)) => match s.api.deployment(&s.repo, *id as i64).await {
            Ok(d) if d.environment == env_name => Some(d.sha),
            Ok(d) => {
                return s
                    .refuse(
                        run,
                        &format!(
                            "deployment {id} is a deployment to `{}`, not `{env_name}`",
                            d.environment
                        ),
                    )
                    .await
            }
            Err(crate::github::GitHubError::NotFound(_)) => {
                return s
                    .refuse(
                        run,
                        &format!("there is no deployment {id} in this repository"),
                    )
                    .await
            }
            Err(e) => return Err(e.into()),
        },
        Some(RollbackTarget::Ref(r)) => match resolve_or_refuse(s, run, "to", r).await? {
            Some(sha) => Some(sha),
            None => return Ok(()),
        },
        None => last_good(&s.api, &s.repo, &history).await?,
    };
    let Some(target) = target else {
        let msg = match current {
            None => format!("`{env_name}` has no deployments yet, so there is nothing to roll back to"),
            Some(c) => format!("`{env_name}` has no successful deployment before the current one (`{}`) to roll back to", short(&c.sha)),
        };
        return s.refuse(run, &msg).await;
    };
    reply.sha = Some(target.clone());
    reply.gates.push(Gate {
        name: "Approvals and checks".into(),
        verdict: gates::Verdict::Pass,
        detail: "not required: the target was deployed before".into(),
        temporary: false,
    });

    let now = crate::now_ms();
    let token = owner_token(s, run.line);
    let lock = deploy_lock(s, env_name, env, &token, Some("rollback"), now);
    let lock_gate = match s.cx.store.acquire_lock(&lock, now).await? {
        LockOutcome::Acquired => gates::lock_gate(None, Some(s.issue)),
        LockOutcome::HeldBy(held) => {
            let g = gates::lock_gate(Some(&held), Some(s.issue));
            if !g.passed() && *force && actor.at_least(Role::Maintain) {
                reply.notes.push(format!(
                    "⚠️ Lock overridden with `force`: {}",
                    gates::describe_lock(&held)
                ));
                Gate {
                    verdict: gates::Verdict::Pass,
                    temporary: false,
                    detail: format!("{} — overridden with `force`", g.detail),
                    ..g
                }
            } else {
                g
            }
        }
    };
    let lock_ok = lock_gate.passed();
    reply.gates.push(lock_gate);
    if !lock_ok {
        return refuse(s, run, &reply).await;
    }
    let payload = json!({
        "kind": "rollback",
        "pr": s.issue,
        "actor": s.actor,
        "comment_id": s.comment_id,
        "line": payload_line(run.line),
        "previous_sha": reply.from_sha,
    });
    create(s, run, env_name, env, &target, payload, reply, &token).await
}

/// The newest deployment before the current one that succeeded at some
/// point: GitHub marks older deployments `inactive` when a newer one
/// succeeds, so a `success` anywhere in its status history counts.
pub(crate) async fn last_good(
    api: &crate::github::Api,
    repo: &str,
    history: &[crate::github::repos::Deployment],
) -> Result<Option<String>, HandlerError> {
    let Some(current) = history.first() else {
        return Ok(None);
    };
    for d in history
        .iter()
        .skip(1)
        .filter(|d| d.sha != current.sha)
        .take(10)
    {
        let statuses = api.deployment_statuses(repo, d.id).await?;
        if statuses.iter().any(|st| st.state == "success") {
            return Ok(Some(d.sha.clone()));
        }
    }
    Ok(None)
}

const FINAL_STATES: &[&str] = &["success", "failure", "error", "inactive"];

/// Moves the reply of a shipgate deployment along, and on a final state
/// releases its lock and starts the next queued deploy.
pub(crate) async fn on_deployment_status(
    cx: &Context,
    ev: DeploymentStatusEvent,
) -> Result<(), HandlerError> {
    let repo = ev.repository.full_name.clone();
    let installation = ev.installation.map(|i| i.id);
    let state = ev.deployment_status.state.clone();
    if let Some(run) = cx.store.run_for_deployment(&repo, ev.deployment.id).await? {
        if let (Some(reply_id), Some(mut model)) = (
            run.reply_comment_id,
            run.model
                .as_deref()
                .and_then(|m| serde_json::from_str::<DeployReply>(m).ok()),
        ) {
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
                let api = cx.github.api(installation)?;
                let body = render_deploy_reply(
                    &model,
                    &crate::render::run_marker(run.comment_id, run.line),
                );
                api.update_comment(&repo, reply_id, &body).await?;
                let json = serde_json::to_string(&model).expect("reply model serializes");
                cx.store
                    .update_run_model(&repo, run.comment_id, run.line, &json)
                    .await?;
            }
        }
    }
    if FINAL_STATES.contains(&state.as_str()) {
        if let Some(env) = cx
            .store
            .release_deployment_lock(&repo, ev.deployment.id)
            .await?
        {
            run_queue(cx, &repo, &env, installation).await?;
            crate::handlers::protection_rules::enqueue_recheck(cx, &repo, installation).await?;
        }
    }
    Ok(())
}

/// Starts queued deploys of `env` while its lock is free.
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
        let Some(q) = cx.store.pop_queued_deploy(repo, env).await? else {
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
        };
        let command = Command::Deploy {
            env: Some(env.to_string()),
            git_ref: q.git_ref.clone(),
            force: false,
            queue: true,
        };
        let prior = super::begin(&s, q.line, "deploy", Some(env)).await?;
        let r = Run {
            line: q.line,
            prior,
            command: &command,
        };
        run(&s, &r).await?;
    }
    Ok(())
}

/// A command line's id in a deployment payload: a string, since the id is a
/// 64-bit hash and JSON readers that hold numbers as doubles (JavaScript,
/// GitHub's own tooling) round integers past 2^53.
fn payload_line(line: i64) -> String {
    line.to_string()
}

/// Whether a payload's `line` is this command line's (a string, or the number
/// that earlier versions wrote).
fn line_matches(found: Option<&serde_json::Value>, line: i64) -> bool {
    match found {
        Some(serde_json::Value::String(s)) => *s == payload_line(line),
        Some(v) => *v == json!(line),
        None => false,
    }
}

#[cfg(test)]
mod payload_line_tests {
    use super::*;

    #[test]
    fn a_line_past_two_to_the_53_survives_as_a_string_and_old_numbers_still_match() {
        let line = 9_170_073_424_013_399_323_i64;
        assert_eq!(payload_line(line), "9170073424013399323");
        assert!(line_matches(Some(&json!("9170073424013399323")), line));
        assert!(line_matches(Some(&json!(line)), line));
        assert!(!line_matches(Some(&json!("9170073424013399000")), line));
        assert!(!line_matches(None, line));
    }
}
