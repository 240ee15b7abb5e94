//! `/lock`, `/unlock`, `/status`, `/help`, and pull requests closing.

use super::{Run, Section, Session};
use crate::config::repo::{humanize, Deployers, Role};
use crate::deploy::commands::{Command, USAGE};
use crate::deploy::gates;
use crate::freeze::active_freeze;
use crate::github::events::PullRequestEvent;
use crate::handlers::{Context, HandlerError};
use crate::render::short;
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
        return s
            .refuse(run, &format!("cannot lock: {}", permission.reason))
            .await;
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
            let until = ttl
                .map(|t| format!(" for {}", humanize(t)))
                .unwrap_or_else(|| " until `/unlock` or this PR closes".into());
            s.say(
                run,
                "🔒",
                &format!(
                    "`{env_name}` is locked by @{} for #{}{until}.",
                    s.actor, s.issue
                ),
            )
            .await
        }
        LockOutcome::HeldBy(held) if held.pr == Some(s.issue) => {
            s.say(
                run,
                "🔒",
                &format!(
                    "`{env_name}` is already held by this pull request ({}).",
                    gates::describe_lock(&held)
                ),
            )
            .await
        }
        LockOutcome::HeldBy(held) => {
            s.refuse(
                run,
                &format!("`{env_name}` is {}.", gates::describe_lock(&held)),
            )
            .await
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
            .say(run, "🔓", &format!("`{env_name}` is not locked."))
            .await;
    };
    if !held.holder.eq_ignore_ascii_case(&s.actor) {
        let actor = crate::deploy::actor_facts(&s.api, &s.repo, &s.actor, &env_cfg).await?;
        if !actor.at_least(Role::Maintain) {
            let msg = format!(
                "only @{} (who holds it) or a user with `maintain` or `admin` can unlock `{env_name}`; @{} has `{}`",
                held.holder,
                s.actor,
                actor.role.map(Role::as_str).unwrap_or("no access")
            );
            return s.refuse(run, &msg).await;
        }
    }
    s.cx.store
        .release_lock(&s.repo, &env_name, &held.owner_token)
        .await?;
    s.say(
        run,
        "🔓",
        &format!(
            "`{env_name}` unlocked by @{} (was {}).",
            s.actor,
            gates::describe_lock(&held)
        ),
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
        return s
            .say(
                run,
                "ℹ️",
                "no environments are configured in `.github/shipgate.yml`.",
            )
            .await;
    }
    let now = crate::now_ms();
    let mut out = String::from("### Deployment status\n");
    for name in &names {
        let env_cfg = &s.config.environments[name];
        let current = match s
            .api
            .deployments(&s.repo, name, 1)
            .await?
            .into_iter()
            .next()
        {
            None => "none yet".to_string(),
            Some(d) => {
                let state = s
                    .api
                    .deployment_statuses(&s.repo, d.id)
                    .await?
                    .first()
                    .map(|st| st.state.clone())
                    .unwrap_or_else(|| "pending".into());
                let payload = crate::deploy::payload::DeploymentPayload::read(&d.payload);
                let pr = payload
                    .pr
                    .map(|n| format!(" from #{n}"))
                    .unwrap_or_default();
                // Another tool's payload is outside text.
                let who = payload
                    .actor
                    .or(d.creator.map(|c| c.login))
                    .map(|w| crate::text::inline_text(&format!("@{w}")))
                    .unwrap_or_default();
                format!(
                    "`{}`{pr} by {who} at {} — {}",
                    short(&d.sha),
                    crate::text::inline_text(&d.created_at),
                    crate::text::inline_text(&state)
                )
            }
        };
        let lock =
            s.cx.store
                .get_lock(&s.repo, name, now)
                .await?
                .map(|l| gates::describe_lock(&l))
                .unwrap_or_else(|| "not locked".into());
        let freeze = active_freeze(s.config.freeze_windows(env_cfg), chrono::Utc::now())
            .map(|f| {
                format!(
                    "{} until {}",
                    f.description,
                    f.ends_at.format("%Y-%m-%d %H:%M UTC")
                )
            })
            .unwrap_or_else(|| "none active".into());
        let queue = s.cx.store.queued_deploys(&s.repo, name).await?;
        let queue = if queue.is_empty() {
            "empty".to_string()
        } else {
            queue
                .iter()
                .map(|q| format!("#{} (@{})", q.pr, q.actor))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "\n#### `{name}`\n\n| | |\n|---|---|\n| Current deployment | {current} |\n| Lock | {lock} |\n| Freeze | {freeze} |\n| Queue | {queue} |\n"
        ));
    }
    s.reply(run, Section::Markdown { body: out })
        .await
        .map(|_| ())
}

pub(crate) async fn help(s: &Session<'_>, run: &Run<'_>) -> Result<(), HandlerError> {
    let mut out = String::from("### shipgate commands\n\n| Command | |\n|---|---|\n");
    for (_, usage, what) in USAGE {
        out.push_str(&format!("| `{usage}` | {what} |\n"));
    }
    if s.config.environments.is_empty() {
        out.push_str("\nNo environments are configured in `.github/shipgate.yml` yet.\n");
    } else {
        out.push_str("\n| Environment | Deployers | Approvals | Checks | Other gates |\n|---|---|---|---|---|\n");
        for (name, env) in &s.config.environments {
            let deployers = match env.deployers() {
                Deployers::Role(r) => format!("`{}`+", r.as_str()),
                Deployers::List(l) => l.join(", "),
            };
            let checks = if env.required_checks.is_empty() {
                "—".to_string()
            } else {
                env.required_checks
                    .iter()
                    .map(|c| c.label())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let mut other = Vec::new();
            if !env.base_branches.is_empty() {
                other.push(format!("from PRs into {}", env.base_branches.join(", ")));
            }
            let windows = s.config.freeze_windows(env).count();
            if windows > 0 {
                other.push(format!("{windows} freeze window(s)"));
            }
            if let Some(ttl) = env.lock_ttl {
                other.push(format!("lock TTL {}", humanize(ttl.0)));
            }
            let default = if s.config.default_environment() == Some(name.as_str()) {
                " (default)"
            } else {
                ""
            };
            out.push_str(&format!(
                "| `{name}`{default} | {deployers} | {} | {checks} | {} |\n",
                env.required_approvals,
                if other.is_empty() {
                    "—".into()
                } else {
                    other.join("; ")
                }
            ));
        }
    }
    s.reply(run, Section::Markdown { body: out })
        .await
        .map(|_| ())
}

/// A closed pull request gives up its locks and its queued deploys.
pub(crate) async fn on_pull_request_closed(
    cx: &Context,
    ev: PullRequestEvent,
) -> Result<(), HandlerError> {
    if ev.action != "closed" {
        return Ok(());
    }
    let repo = &ev.repository.full_name;
    let pr = ev.pull_request.number as i64;
    cx.store.drop_pr_queue(repo, pr).await?;
    let freed = cx.store.release_pr_locks(repo, pr).await?;
    let installation = ev.installation.as_ref().map(|i| i.id);
    for env in freed {
        crate::handlers::lock_released(cx, repo, &env, installation).await?;
    }
    Ok(())
}
