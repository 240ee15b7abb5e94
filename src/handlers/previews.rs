//! Preview URLs and smoke results on pull requests, the `shipgate/smoke`
//! check run, and automatic rollback when production smoke fails.
//!
//! A successful deployment status with a URL updates one comment per open
//! PR whose head is that commit (rows per environment, replaced on every
//! new commit) and stores a smoke job as an internal delivery. The job runs
//! with its own ordering key, so a slow warm-up never holds up `/deploy`
//! commands of the same repository; it only updates comments that exist.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Context, Handler, HandlerError};
use crate::config::repo::RepoConfig;
use crate::github::events::DeploymentStatusEvent;
use crate::github::repos::{CheckRunOutput, NewCheckRun, NewDeployment};
use crate::github::Api;
use crate::render::{short, smoke_markdown};
use crate::smoke::{self, Outcome, SmokeReport};
use crate::store::{ClaimedDelivery, NewDelivery};

pub const MARKER: &str = "<!-- shipgate:preview -->";
pub const SMOKE_EVENT: &str = "shipgate_smoke";
pub const CHECK_NAME: &str = "shipgate/smoke";

/// One environment's row in a PR's preview comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewRow {
    pub environment: String,
    pub state: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub log_url: Option<String>,
    pub sha: String,
    pub smoke: SmokeCell,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SmokeCell {
    None,
    Running,
    NotProbed {
        reason: String,
    },
    Done {
        outcome: Outcome,
        summary: String,
        failed: Vec<String>,
    },
}

/// The smoke job stored for a successful deployment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SmokeJobPayload {
    pub repository: String,
    pub installation: Option<i64>,
    pub default_branch: String,
    pub deployment_id: i64,
    pub environment: String,
    pub sha: String,
    pub url: String,
    pub prs: Vec<i64>,
    /// `deploy`, `rollback` or absent (not a shipgate deployment).
    #[serde(default)]
    pub kind: Option<String>,
    /// The PR that deployed (from the deployment payload), for auto-rollback comments.
    #[serde(default)]
    pub deployed_from: Option<i64>,
}

fn state_label(state: &str) -> (&'static str, &'static str) {
    match state {
        "success" => ("✅", "ready"),
        "failure" => ("❌", "failed"),
        "error" => ("❌", "error"),
        "in_progress" => ("⏳", "in progress"),
        "inactive" => ("💤", "inactive"),
        _ => ("🕓", "pending"),
    }
}

pub fn render_preview_comment(rows: &[PreviewRow]) -> String {
    let mut out = String::from("### 🔍 Previews\n\n| Environment | State | Preview | Commit | Smoke | Updated (UTC) |\n|---|---|---|---|---|---|\n");
    for r in rows {
        let (icon, label) = state_label(&r.state);
        let state = match (&r.log_url, r.state.as_str()) {
            (Some(log), "failure" | "error") => format!("{icon} [{label}]({log})"),
            _ => format!("{icon} {label}"),
        };
        let url = r
            .url
            .as_deref()
            .map(|u| format!("[{u}]({u})"))
            .unwrap_or_else(|| "—".into());
        let smoke = match &r.smoke {
            SmokeCell::None => "—".to_string(),
            SmokeCell::Running => "⏳ running".to_string(),
            SmokeCell::NotProbed { reason } => format!("⏭️ not probed: {reason}"),
            SmokeCell::Done {
                outcome,
                summary,
                failed,
            } => {
                let mut s = format!("{} {summary}", outcome.icon());
                if !failed.is_empty() {
                    s.push_str(&format!(" — {}", failed.join("; ")));
                }
                s
            }
        };
        let updated = chrono::DateTime::from_timestamp_millis(r.updated_at)
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        out.push_str(&format!(
            "| `{}` | {state} | {url} | `{}` | {} | {updated} |\n",
            r.environment,
            short(&r.sha),
            // Check names and reasons come from the config and the preview.
            crate::text::inline_text(&smoke)
        ));
    }
    out.push('\n');
    out.push_str(MARKER);
    out
}

async fn rows(cx: &Context, repo: &str, pr: i64) -> Result<Vec<PreviewRow>, HandlerError> {
    Ok(cx
        .store
        .preview_rows(repo, pr)
        .await?
        .into_iter()
        .filter_map(|(_, data, _)| serde_json::from_str(&data).ok())
        .collect())
}

/// Renders a PR's rows into its comment. `may_create`: whether this caller
/// may post the comment (only the serialized deployment-status path does, so
/// two comments can never appear).
async fn sync_comment(
    cx: &Context,
    api: &Api,
    repo: &str,
    pr: i64,
    may_create: bool,
) -> Result<(), HandlerError> {
    let mut id = cx.store.preview_comment(repo, pr).await?;
    if id.is_none() && may_create {
        // Adopt a comment posted before the store knew of it — but only one
        // shipgate itself wrote: a user pasting the marker cannot hijack it.
        let me = cx.github.bot_login().await?;
        let existing = api
            .list_comments(repo, pr, crate::github::repos::MARKER_SEARCH_PAGES)
            .await?;
        id = existing
            .iter()
            .find(|c| {
                c.body.as_deref().is_some_and(|b| b.contains(MARKER))
                    && c.user.as_ref().is_some_and(|u| u.login == me)
            })
            .map(|c| c.id);
        if let Some(found) = id {
            cx.store.set_preview_comment(repo, pr, found).await?;
        }
    }
    // Re-render until the rows did not change while we wrote (a smoke job
    // and a deployment status may update the same comment).
    for _ in 0..3 {
        let current = rows(cx, repo, pr).await?;
        let body = render_preview_comment(&current);
        match id {
            Some(comment) => api.update_comment(repo, comment, &body).await?,
            None if may_create => {
                let created = api.create_comment(repo, pr, &body).await?;
                id = Some(cx.store.set_preview_comment(repo, pr, created.id).await?);
            }
            None => return Ok(()),
        }
        if rows(cx, repo, pr).await? == current {
            return Ok(());
        }
    }
    Ok(())
}

pub struct Previews;

#[async_trait]
impl Handler for Previews {
    fn name(&self) -> &'static str {
        "previews"
    }

    fn wants(&self, event: &str, _: Option<&str>) -> bool {
        event == "deployment_status"
    }

    fn decode(&self, _: &str, payload: &str) -> Result<(), HandlerError> {
        serde_json::from_str::<DeploymentStatusEvent>(payload)?;
        Ok(())
    }

    async fn handle(&self, cx: &Context, d: &ClaimedDelivery) -> Result<(), HandlerError> {
        let ev: DeploymentStatusEvent = serde_json::from_str(&d.payload)?;
        let repo = ev.repository.full_name.clone();
        let installation = ev.installation.as_ref().map(|i| i.id);
        let state = ev.deployment_status.state.clone();
        let env = ev.deployment.environment.clone();
        let sha = ev.deployment.sha.clone();
        let url = ev.deployment_status.url();
        let log_url = ev.deployment_status.log();
        let payload = crate::deploy::payload::DeploymentPayload::read(&ev.deployment.payload);
        let kind = payload.kind.map(|k| match k {
            crate::deploy::payload::DeploymentKind::Deploy => "deploy".to_string(),
            crate::deploy::payload::DeploymentKind::Rollback => "rollback".to_string(),
        });
        let deployed_from = payload.pr;

        match state.as_str() {
            "success" => cx.notifier.send(format!(
                "✅ {repo}: deployed `{}` to `{env}`{}",
                short(&sha),
                url.as_deref()
                    .map(|u| format!(" — {u}"))
                    .unwrap_or_default()
            )),
            "failure" | "error" => cx.notifier.send(format!(
                "❌ {repo}: deployment of `{}` to `{env}` {state}{}",
                short(&sha),
                log_url
                    .as_deref()
                    .map(|u| format!(" — {u}"))
                    .unwrap_or_default()
            )),
            _ => {}
        }

        let api = cx.github.api(installation)?;
        let default_branch = ev
            .repository
            .default_branch
            .clone()
            .unwrap_or_else(|| "main".into());
        let config = match cx.config(&api, &repo, &default_branch).await?.config {
            Ok(c) => c,
            Err(_) => return Ok(()), // the shipgate/config status reports it
        };
        let will_smoke = state == "success" && url.is_some();
        let prs: Vec<i64> = if config.preview.enabled {
            api.pulls_for_commit(&repo, &sha)
                .await?
                .into_iter()
                .filter(|p| p.state == "open" && p.head.sha == sha)
                .map(|p| p.number)
                .collect()
        } else {
            Vec::new()
        };
        let now = crate::now_ms();
        for pr in &prs {
            // Rows start with a URL; later states (in progress, failure) of an
            // environment already shown update its row.
            let shown = cx
                .store
                .preview_rows(&repo, *pr)
                .await?
                .iter()
                .any(|(e, _, _)| *e == env);
            if url.is_none() && !shown {
                continue;
            }
            let row = PreviewRow {
                environment: env.clone(),
                state: state.clone(),
                url: url.clone(),
                log_url: log_url.clone(),
                sha: sha.clone(),
                smoke: if will_smoke {
                    SmokeCell::Running
                } else {
                    SmokeCell::None
                },
                updated_at: now,
            };
            let data = serde_json::to_string(&row).expect("row serializes");
            cx.store
                .upsert_preview_row(&repo, *pr, &env, &data, now)
                .await?;
            sync_comment(cx, &api, &repo, *pr, true).await?;
        }
        let auto_rollback = config
            .environments
            .get(&env)
            .is_some_and(|e| e.auto_rollback);
        if will_smoke
            && (!prs.is_empty() || auto_rollback || config.environments.contains_key(&env))
        {
            let job = SmokeJobPayload {
                repository: repo.clone(),
                installation,
                default_branch,
                deployment_id: ev.deployment.id,
                environment: env,
                sha,
                url: url.unwrap_or_default(),
                prs,
                kind,
                deployed_from,
            };
            let new = NewDelivery {
                delivery_id: format!("smoke:{repo}:{}", ev.deployment.id),
                event: SMOKE_EVENT.into(),
                action: None,
                installation_id: installation,
                // Its own ordering key: smoke runs wait for each other, not for commands.
                repository: Some(format!("{repo}#smoke")),
                payload: serde_json::to_string(&job).expect("job serializes").into(),
            };
            cx.store.insert_delivery(&new, crate::now_ms()).await?;
            cx.wake.notify_one();
        }
        Ok(())
    }
}

pub struct SmokeJob;

/// Runs the environment's suite against a deployment URL from the server's
/// network: within the operator's caps and the installation's hourly
/// budget, every hop admitted by the SSRF guard. `Err`: why it was not probed.
async fn probe(
    cx: &Context,
    config: &RepoConfig,
    job: &SmokeJobPayload,
    target: &url::Url,
) -> Result<SmokeReport, String> {
    let server = &cx.smoke.server;
    // Private addresses need both the repository and the operator.
    let (allow_private, hint) = match (config.preview.allow_private, server.settings.allow_private) {
        (true, true) => (true, ""),
        (true, false) => (false, "preview.allow_private is set, but the server's operator does not allow private probes (SHIPGATE_ALLOW_PRIVATE_PROBES)"),
        (false, true) => (false, "set preview.allow_private to probe it"),
        (false, false) => (false, "probing it needs preview.allow_private and the server operator's SHIPGATE_ALLOW_PRIVATE_PROBES"),
    };
    let guard =
        smoke::guard::Guard::new(&config.allowed_hosts(), allow_private)?.with_private_hint(hint);
    let (host, addrs) = smoke::guard::check(target, &guard).await?;
    let cap = server
        .reserve(job.installation)
        .ok_or_else(|| server.budget_spent())?;
    let granted = cap.requests;
    let limits = server.limits(guard, config.environment_hosts(), cap);
    let mut opts = cx.smoke.clone();
    // The addresses the guard checked are the ones connected to.
    opts.resolve.push((host, addrs));
    opts.concurrency = opts.concurrency.min(server.settings.concurrency);
    let r = smoke::run(target, config.smoke_suite(&job.environment), &opts, &limits).await;
    server.refund(job.installation, granted.saturating_sub(r.requests));
    Ok(r)
}

#[async_trait]
impl Handler for SmokeJob {
    fn name(&self) -> &'static str {
        "smoke"
    }

    fn wants(&self, event: &str, _: Option<&str>) -> bool {
        event == SMOKE_EVENT
    }

    fn decode(&self, _: &str, payload: &str) -> Result<(), HandlerError> {
        serde_json::from_str::<SmokeJobPayload>(payload)?;
        Ok(())
    }

    async fn handle(&self, cx: &Context, d: &ClaimedDelivery) -> Result<(), HandlerError> {
        let job: SmokeJobPayload = serde_json::from_str(&d.payload)?;
        let api = cx.github.api(job.installation)?;
        let config = match cx
            .config(&api, &job.repository, &job.default_branch)
            .await?
            .config
        {
            Ok(c) => c,
            Err(_) => return Ok(()),
        };
        let target = url::Url::parse(&job.url)
            .map_err(|e| HandlerError::Permanent(format!("bad URL {}: {e}", job.url)))?;
        let cell;
        let mut report: Option<SmokeReport> = None;
        match probe(cx, &config, &job, &target).await {
            Err(reason) => cell = SmokeCell::NotProbed { reason },
            Ok(r) => {
                cell = SmokeCell::Done {
                    outcome: r.outcome(),
                    summary: r.summary(),
                    failed: r
                        .results
                        .iter()
                        .filter(|c| c.outcome == Outcome::Fail)
                        .map(|c| c.name.clone())
                        .collect(),
                };
                report = Some(r);
            }
        }

        // Rows and comments.
        let now = crate::now_ms();
        for pr in &job.prs {
            let mut current = rows(cx, &job.repository, *pr).await?;
            if let Some(row) = current
                .iter_mut()
                .find(|r| r.environment == job.environment && r.sha == job.sha)
            {
                row.smoke = cell.clone();
                row.updated_at = now;
                let data = serde_json::to_string(&row).expect("row serializes");
                cx.store
                    .upsert_preview_row(&job.repository, *pr, &job.environment, &data, now)
                    .await?;
                sync_comment(cx, &api, &job.repository, *pr, false).await?;
            }
        }

        // The check run on the commit.
        let (conclusion, title, summary) = match (&report, &cell) {
            (Some(r), _) => (
                match r.outcome() {
                    Outcome::Fail => "failure",
                    Outcome::Warn => "neutral",
                    _ => "success",
                },
                format!("{}: {}", job.environment, r.summary()),
                smoke_markdown(r),
            ),
            (None, SmokeCell::NotProbed { reason }) => (
                "neutral",
                format!("{}: not probed", job.environment),
                format!("{} was not probed: {reason}", job.url),
            ),
            _ => ("neutral", "not run".to_string(), String::new()),
        };
        let summary: String = summary.chars().take(60_000).collect();
        match api
            .create_check_run(
                &job.repository,
                &NewCheckRun {
                    name: CHECK_NAME,
                    head_sha: &job.sha,
                    status: "completed",
                    conclusion,
                    details_url: Some(&job.url),
                    output: CheckRunOutput {
                        title: &title,
                        summary: &summary,
                    },
                },
            )
            .await
        {
            Ok(_) => {}
            // Tokens that are not a GitHub App's cannot create check runs; the comment still has the result.
            Err(crate::github::GitHubError::Forbidden(m)) => {
                tracing::warn!(repo = %job.repository, "cannot create the shipgate/smoke check run: {m}")
            }
            Err(e) => return Err(e.into()),
        }

        if let Some(r) = &report {
            if r.outcome() == Outcome::Fail {
                cx.notifier.send(format!(
                    "❌ {}: smoke checks failed on `{}` ({}) — {}",
                    job.repository,
                    job.environment,
                    short(&job.sha),
                    r.summary()
                ));
                let auto = config
                    .environments
                    .get(&job.environment)
                    .is_some_and(|e| e.auto_rollback);
                // A rollback's own smoke failure never triggers another rollback.
                if auto && job.kind.as_deref() != Some("rollback") {
                    auto_rollback(cx, &api, &config, &job, r, d.attempts > 1).await?;
                }
            }
        }
        Ok(())
    }
}

/// Rolls the environment back to its last good deployment after the smoke
/// checks of `job`'s deployment failed: only while that deployment is still
/// the newest of its environment (a newer deploy is not undone), and only
/// under the environment's lock (nobody else is deploying or holds it).
async fn auto_rollback(
    cx: &Context,
    api: &Api,
    config: &RepoConfig,
    job: &SmokeJobPayload,
    report: &SmokeReport,
    retried: bool,
) -> Result<(), HandlerError> {
    use crate::deploy::lock::{Acquired, CreateError, DeployLock, LockGuard, Released};
    use crate::deploy::payload::{DeploymentKind, DeploymentPayload};
    use crate::deploy::{Purpose, Request, Sources};

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
        .map(|c| format!("{}: {}", c.name, crate::text::inline_text(&c.reason)))
        .collect();
    // History is newest first: a newer deployment replaced the failed one.
    if history.first().map(|d| d.id) != Some(job.deployment_id) {
        let text = format!(
            "⚠️ Smoke checks failed after deploying `{}` to `{}`, but a newer deployment has replaced it since: no automatic rollback.",
            short(&job.sha),
            job.environment
        );
        return tell(cx, api, job, &text, &failed).await;
    }
    let Some(target) = crate::deploy::last_good(api, repo, &history).await? else {
        let text = format!("⚠️ Smoke checks failed after deploying `{}` to `{}`, and there is no earlier successful deployment to roll back to.", short(&job.sha), job.environment);
        return tell(cx, api, job, &text, &failed).await;
    };
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
        sha: Some(&target),
        git_ref: None,
        reviewed_sha: None,
        force: false,
        deployment_id: None,
    };
    let decision = crate::deploy::decide(&src, &request, None).await?;
    let lock = DeployLock {
        repository: repo,
        environment: &job.environment,
        env,
        holder: "shipgate",
        pr: None,
        owner_token: format!("auto-rollback:{}", job.deployment_id),
        reason: Some("automatic rollback"),
    };
    let guard = if decision.allowed() {
        match LockGuard::acquire(&cx.store, &lock).await? {
            Acquired::Guard(g) => Some(g),
            Acquired::HeldBy(_) => None,
        }
    } else {
        None
    };
    let Some(guard) = guard else {
        let why: Vec<String> = decision
            .gates
            .iter()
            .filter(|g| !g.passed())
            .map(|g| format!("{}: {}", g.name, g.reason))
            .collect();
        let why = if why.is_empty() {
            "the environment's lock was taken meanwhile".to_string()
        } else {
            why.join("; ")
        };
        let text = format!(
            "⚠️ Smoke checks failed after deploying `{}` to `{}`; no automatic rollback to `{}`: {why}.",
            short(&job.sha),
            job.environment,
            short(&target)
        );
        return tell(cx, api, job, &text, &failed).await;
    };
    let description = format!(
        "shipgate: automatic rollback of {} after failed smoke checks",
        short(&job.sha)
    );
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
                super::lock_released(cx, repo, &job.environment, job.installation).await?;
            }
            return Err(match error {
                CreateError::GitHub(e) => e.into(),
                CreateError::Store(e) => e.into(),
            });
        }
    };
    let text = format!(
        "↩️ Smoke checks failed after deploying `{}` to `{}`: rolling back to `{}` (deployment {}).",
        short(&job.sha),
        job.environment,
        short(&target),
        created.id
    );
    tell(cx, api, job, &format!("{text}\n\nFailed checks:"), &failed).await
}

/// Comments on the PR that deployed (if any) and notifies.
async fn tell(
    cx: &Context,
    api: &Api,
    job: &SmokeJobPayload,
    text: &str,
    failed: &[String],
) -> Result<(), HandlerError> {
    if let Some(pr) = job.deployed_from {
        let body = format!("{text}\n\n- {}", failed.join("\n- "));
        api.create_comment(&job.repository, pr, &body).await?;
    }
    let headline = text.lines().next().unwrap_or_default();
    cx.notifier.send(format!("{}: {headline}", job.repository));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_comment_has_a_row_per_environment() {
        let rows = vec![
            PreviewRow {
                environment: "Preview – web".into(),
                state: "success".into(),
                url: Some("https://web-abc.vercel.app".into()),
                log_url: None,
                sha: "0123456789".into(),
                smoke: SmokeCell::Done {
                    outcome: Outcome::Fail,
                    summary: "1 passed, 0 warned, 1 failed".into(),
                    failed: vec!["health".into()],
                },
                updated_at: 1_795_000_000_000,
            },
            PreviewRow {
                environment: "staging".into(),
                state: "failure".into(),
                url: None,
                log_url: Some("https://ci/1".into()),
                sha: "abcdef0123".into(),
                smoke: SmokeCell::None,
                updated_at: 1_795_000_000_000,
            },
        ];
        let body = render_preview_comment(&rows);
        assert!(body.contains("| `Preview – web` | ✅ ready | [https://web-abc.vercel.app](https://web-abc.vercel.app) | `0123456` | ❌ 1 passed, 0 warned, 1 failed — health |"), "{body}");
        assert!(
            body.contains("| `staging` | ❌ [failed](https://ci/1) | — | `abcdef0` | — |"),
            "{body}"
        );
        assert!(body.ends_with(MARKER));
    }

    #[test]
    fn failed_check_names_cannot_ping_people_or_forge_rows() {
        let rows = vec![PreviewRow {
            environment: "preview".into(),
            state: "success".into(),
            url: None,
            log_url: None,
            sha: "0123456789".into(),
            smoke: SmokeCell::Done {
                outcome: Outcome::Fail,
                summary: "0 passed, 0 warned, 1 failed".into(),
                failed: vec!["@acme/admins | x |\n<!-- shipgate:previews -->".into()],
            },
            updated_at: 1_795_000_000_000,
        }];
        let body = render_preview_comment(&rows);
        assert!(!body.contains("@acme"), "{body}");
        // The one marker is shipgate's own, at the end.
        assert_eq!(body.matches("<!--").count(), 1, "{body}");
        assert_eq!(
            body.lines().filter(|l| l.starts_with('|')).count(),
            3,
            "{body}"
        );
    }
}
