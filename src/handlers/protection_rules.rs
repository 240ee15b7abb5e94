//! shipgate as a custom deployment protection rule: every deployment to a
//! protected environment — from any workflow, tag or `/deploy` — waits for
//! shipgate's answer, decided by the same gates `/deploy` evaluates.
//!
//! A gate that is only temporarily closed (a lock, checks still running, a
//! freeze that ends before the deadline) keeps the request pending in the
//! store with a progress comment; it is re-evaluated when the lock is
//! released, a check run completes, a freeze or a soak ends, or rejected at
//! the deadline (`pending_timeout`, default 1h); a freeze or a soak that
//! ends after the deadline rejects at once. Pending requests survive restarts.

use crate::render::gates::{protection_rule_comment, RuleVerdict};
use async_trait::async_trait;
use serde_json::json;

use super::{Context, Handler, HandlerError};
use crate::config::repo::RepoConfig;
use crate::deploy::gates::Gate;
use crate::deploy::payload::{DeploymentKind, DeploymentPayload};
use crate::deploy::{self, Decision, Facts, Purpose, Request, Sources};
use crate::github::events::{Event, RepositoryRef};
use crate::github::Api;
use crate::store::{ClaimedDelivery, NewDelivery, ProtectionRequest};

pub const RECHECK_EVENT: &str = "shipgate_protection_recheck";
const DEFAULT_TIMEOUT_MS: i64 = 3600 * 1000;
/// GitHub allows 10 comments per deployment; keep one for the answer.
const MAX_PROGRESS_POSTS: i64 = 9;

pub struct ProtectionRules;

#[async_trait]
impl Handler for ProtectionRules {
    fn name(&self) -> &'static str {
        "protection_rules"
    }

    fn wants(&self, event: &str, action: Option<&str>) -> bool {
        match event {
            "deployment_protection_rule" => action == Some("requested"),
            "check_run" => action == Some("completed"),
            RECHECK_EVENT => true,
            _ => false,
        }
    }

    fn decode_internal(&self, event: &str, payload: &str) -> Result<(), HandlerError> {
        if event == RECHECK_EVENT {
            serde_json::from_str::<RecheckJob>(payload)?;
        }
        Ok(())
    }

    async fn handle(
        &self,
        cx: &Context,
        d: &ClaimedDelivery,
        event: &Event,
    ) -> Result<(), HandlerError> {
        match decode(d, event, crate::now_ms())? {
            Input::Request {
                request,
                default_branch,
            } => {
                let stored = cx.store.save_protection_request(&request).await?;
                evaluate(
                    cx,
                    &stored,
                    &default_branch,
                    stored.progress_posts == 0 && stored.last_comment.is_none(),
                )
                .await
            }
            Input::Recheck {
                repo,
                sha,
                default_branch,
            } => {
                for r in cx.store.pending_protection_requests(&repo).await? {
                    if d.event == "check_run" && sha.as_deref() != Some(r.sha.as_str()) {
                        continue;
                    }
                    evaluate(cx, &r, &default_branch, false).await?;
                }
                Ok(())
            }
            Input::Nothing => Ok(()),
        }
    }
}

/// A delivery as the protection rule handler reads it.
enum Input {
    /// A deployment waits for an answer.
    Request {
        request: Box<ProtectionRequest>,
        default_branch: String,
    },
    /// Re-evaluate a repository's pending requests (for a check run: those
    /// at its commit).
    Recheck {
        repo: String,
        sha: Option<String>,
        default_branch: String,
    },
    Nothing,
}

/// The payload of [`RECHECK_EVENT`].
#[derive(serde::Deserialize)]
struct RecheckJob {
    repository: RepositoryRef,
}

fn decode(d: &ClaimedDelivery, event: &Event, now: i64) -> Result<Input, HandlerError> {
    Ok(match event {
        Event::DeploymentProtectionRule(ev) => {
            let (Some(env), Some(callback), Some(deployment)) = (
                ev.environment.as_deref(),
                ev.deployment_callback_url.as_deref(),
                ev.deployment.as_ref(),
            ) else {
                return Err(HandlerError::permanent(
                    "deployment_protection_rule without environment, deployment or callback URL",
                ));
            };
            let pr = ev.pull_requests.first();
            let request = ProtectionRequest {
                id: 0,
                repository: ev.repository.full_name.clone(),
                environment: env.to_string(),
                deployment_id: deployment.id,
                callback_url: callback.to_string(),
                sha: deployment.sha.clone(),
                // A full ref (`refs/tags/v1`) says what it is; the
                // deployment's own ref may be a short name.
                git_ref: ev
                    .git_ref
                    .as_deref()
                    .filter(|r| r.starts_with("refs/"))
                    .or(deployment.git_ref.as_deref())
                    .unwrap_or_default()
                    .to_string(),
                pr: pr.map(|pr| pr.number),
                reviewed_sha: pr.map(|pr| pr.head.sha.clone()),
                installation_id: event.installation_id(),
                state: "pending".into(),
                deadline: now, // set from the config on the first evaluation
                next_check_at: now,
                progress_posts: 0,
                last_comment: None,
                created_at: now,
            };
            Input::Request {
                request: Box::new(request),
                default_branch: event.default_branch().to_string(),
            }
        }
        Event::CheckRun(ev) => Input::Recheck {
            repo: ev.repository.full_name.clone(),
            sha: ev.check_run.head_sha.clone(),
            default_branch: event.default_branch().to_string(),
        },
        Event::Internal if d.event == RECHECK_EVENT => {
            let job: RecheckJob = serde_json::from_str(&d.payload)?;
            Input::Recheck {
                default_branch: job
                    .repository
                    .default_branch
                    .clone()
                    .unwrap_or_else(|| "main".into()),
                repo: job.repository.full_name,
                sha: None,
            }
        }
        _ => Input::Nothing,
    })
}

/// Stores a re-check of a repository's pending requests, in the repository's order.
pub async fn enqueue_recheck(
    cx: &Context,
    repo: &str,
    installation: Option<i64>,
) -> Result<(), HandlerError> {
    if cx.store.pending_protection_requests(repo).await?.is_empty() {
        return Ok(());
    }
    let new = NewDelivery {
        delivery_id: format!("recheck:{repo}:{}", uuid::Uuid::new_v4().simple()),
        event: RECHECK_EVENT.into(),
        action: None,
        installation_id: installation,
        repository: Some(repo.to_string()),
        payload:
            json!({ "repository": { "full_name": repo }, "installation": { "id": installation } })
                .to_string()
                .into(),
    };
    cx.store.insert_delivery(&new, crate::now_ms()).await?;
    cx.wake.notify_one();
    Ok(())
}

/// Re-checks requests whose freeze ended or whose deadline passed.
pub async fn sweep(cx: &Context) -> Result<(), HandlerError> {
    let mut seen = Vec::new();
    for r in cx.store.due_protection_requests(crate::now_ms()).await? {
        if !seen.contains(&r.repository) {
            seen.push(r.repository.clone());
            enqueue_recheck(cx, &r.repository, r.installation_id).await?;
        }
    }
    Ok(())
}

fn callback_path(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        },
        Err(_) => url.to_string(),
    }
}

/// The deploy decision for a request. A deployment shipgate created for a
/// command (the store knows it) is decided as that command again, with its
/// actor, pull request and `force`; one created under a lock by an
/// automatic rollback, as that rollback; any other deployment on its ref,
/// pull request, checks, freeze and lock.
async fn gates_for(
    cx: &Context,
    api: &Api,
    r: &ProtectionRequest,
    config: &RepoConfig,
) -> Result<Decision, HandlerError> {
    let Some(env) = config.environments.get(&r.environment) else {
        return Ok(Decision {
            gates: vec![Gate::fail(
                "Environment",
                format!(
                    "`{}` is not configured in .github/shipgate.yml",
                    crate::text::inline_text(&r.environment)
                ),
            )],
            facts: Facts::default(),
        });
    };
    let src = Sources {
        api,
        store: &cx.store,
        repo: &r.repository,
    };
    let mut request = Request {
        purpose: Purpose::Foreign,
        environment: &r.environment,
        env,
        config,
        pr: r.pr,
        sha: Some(&r.sha),
        git_ref: Some(&r.git_ref),
        reviewed_sha: r.reviewed_sha.as_deref(),
        force: false,
        deployment_id: Some(r.deployment_id),
    };
    let mut actor = None;
    if let Some(run) = cx
        .store
        .run_for_deployment(&r.repository, r.deployment_id)
        .await?
    {
        let payload = DeploymentPayload::read(
            &api.deployment(&r.repository, r.deployment_id)
                .await?
                .payload,
        );
        request.purpose = match payload.kind {
            Some(DeploymentKind::Rollback) => Purpose::Rollback,
            _ => Purpose::Deploy,
        };
        request.pr = run.pr;
        request.force = payload.force;
        request.git_ref = None;
        request.reviewed_sha = None;
        actor = Some(deploy::actor_facts(api, &r.repository, &run.actor, env).await?);
    } else {
        let lock = cx
            .store
            .get_lock(&r.repository, &r.environment, crate::now_ms())
            .await?;
        if lock.is_some_and(|l| l.deployment_id == Some(r.deployment_id)) {
            request.purpose = Purpose::AutomaticRollback;
            request.pr = None;
            request.git_ref = None;
            request.reviewed_sha = None;
        }
    }
    Ok(deploy::decide(&src, &request, actor).await?)
}

async fn evaluate(
    cx: &Context,
    r: &ProtectionRequest,
    default_branch: &str,
    first: bool,
) -> Result<(), HandlerError> {
    let api = cx.github.api(r.installation_id)?;
    let config = match cx.config(&api, &r.repository, default_branch).await?.config {
        Ok(c) => c,
        Err(e) => {
            return answer(
                cx,
                &api,
                r,
                "rejected",
                &crate::render::config::protection_rule_config_invalid(&e.to_string()),
            )
            .await;
        }
    };
    let now = crate::now_ms();
    let timeout = config
        .environments
        .get(&r.environment)
        .and_then(|e| e.pending_timeout)
        .map(|d| d.0.as_millis() as i64)
        .unwrap_or(DEFAULT_TIMEOUT_MS);
    let deadline = if first { now + timeout } else { r.deadline };
    let decision = gates_for(cx, &api, r, &config).await?;
    let soak_ends_at = decision.soak_ends_at();
    let gates = decision.gates;
    if gates.iter().all(Gate::passed) {
        return answer(
            cx,
            &api,
            r,
            "approved",
            &protection_rule_comment(RuleVerdict::Approved, &gates),
        )
        .await;
    }
    if gates.iter().any(|g| !g.passed() && !g.waiting()) {
        let text = protection_rule_comment(RuleVerdict::Rejected, &gates);
        return reject(cx, &api, r, &config, &gates, &text).await;
    }
    // Only temporary gates are closed: wait, unless a freeze outlasts the deadline.
    let env = config.environments.get(&r.environment);
    let freeze = env
        .and_then(|e| crate::freeze::active_freeze(config.freeze_windows(e), chrono::Utc::now()));
    if now >= deadline {
        let text = protection_rule_comment(RuleVerdict::DeadlinePassed, &gates);
        return reject(cx, &api, r, &config, &gates, &text).await;
    }
    if let Some(f) = &freeze {
        if f.ends_at.timestamp_millis() > deadline {
            let text = protection_rule_comment(RuleVerdict::FreezeOutlastsWait, &gates);
            return reject(cx, &api, r, &config, &gates, &text).await;
        }
    }
    // A soak still running: wait for its end when it comes before the deadline.
    let soak_end = soak_ends_at.map(|t| t.timestamp_millis());
    if soak_end.is_some_and(|end| end > deadline) {
        let text = protection_rule_comment(RuleVerdict::SoakOutlastsWait, &gates);
        return reject(cx, &api, r, &config, &gates, &text).await;
    }
    let next = freeze
        .map(|f| f.ends_at.timestamp_millis().min(deadline))
        .unwrap_or(deadline)
        .min(soak_end.unwrap_or(deadline));
    let text = protection_rule_comment(RuleVerdict::Waiting, &gates);
    let mut posts = r.progress_posts;
    if r.last_comment.as_deref() != Some(text.as_str()) && posts < MAX_PROGRESS_POSTS {
        post(&api, r, None, &text).await?;
        posts += 1;
    }
    // The deadline is fixed at the first evaluation.
    cx.store
        .protection_progress(r.id, posts, &text, next, deadline)
        .await?;
    Ok(())
}

async fn post(
    api: &Api,
    r: &ProtectionRequest,
    state: Option<&str>,
    text: &str,
) -> Result<(), HandlerError> {
    let mut body = json!({ "environment_name": r.environment, "comment": text });
    if let Some(s) = state {
        body["state"] = json!(s);
    }
    let path = callback_path(&r.callback_url);
    match api
        .send(
            http::Method::POST,
            &path,
            Some(&body),
            http::HeaderMap::new(),
        )
        .await
    {
        Ok(_) => Ok(()),
        // Already decided (a second answer after a crash): nothing left to do.
        Err(crate::github::GitHubError::Unprocessable(_)) if state.is_some() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn answer(
    cx: &Context,
    api: &Api,
    r: &ProtectionRequest,
    state: &str,
    text: &str,
) -> Result<(), HandlerError> {
    post(api, r, Some(state), text).await?;
    cx.store.answer_protection_request(r.id, state).await?;
    Ok(())
}

/// Rejects the deployment and notifies where the repository's `notify:` says.
async fn reject(
    cx: &Context,
    api: &Api,
    r: &ProtectionRequest,
    config: &RepoConfig,
    gates: &[Gate],
    text: &str,
) -> Result<(), HandlerError> {
    answer(cx, api, r, "rejected", text).await?;
    let failed: Vec<String> = gates
        .iter()
        .filter(|g| !g.passed())
        .map(|g| format!("{}: {}", g.name, g.reason))
        .collect();
    let message = crate::notify::Message::new(
        crate::notify::Event::ProtectionRejected,
        &r.repository,
        crate::render::notify::notify_protection_rejected(
            &r.repository,
            &r.environment,
            &r.sha,
            &failed,
        ),
    )
    .environment(&r.environment)
    .sha(&r.sha);
    cx.notifier.send(config.notify.as_deref(), message);
    Ok(())
}
