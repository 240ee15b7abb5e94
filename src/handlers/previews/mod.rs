//! Preview URLs and smoke results on pull requests, the `shipgate/smoke`
//! check run, and automatic rollback when production smoke fails.
//!
//! A successful deployment status with a URL updates one comment per open
//! PR whose head is that commit (rows per environment, replaced on every
//! new commit) and stores a smoke job as an internal delivery. The job runs
//! with its own ordering key, so a slow warm-up never holds up `/deploy`
//! commands of the same repository; it only updates comments that exist.
//!
//! When the PR closes, its previews are retired (`retire`): their
//! deployments get an `inactive` status and the comment says so, and stays
//! closed until the PR is reopened.

mod retire;
mod rollback;
mod smoke_job;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Context, Handler, HandlerError};
use crate::github::events::Event;
use crate::github::Api;
use crate::notify::{Event as NotifyEvent, Message};
use crate::render::previews as render;
use crate::render::previews::{PreviewRow, SmokeCell, PREVIEW_MARKER};
use crate::store::{ClaimedDelivery, NewDelivery};
pub use rollback::RollbackJob;
pub use smoke_job::SmokeJob;

pub const SMOKE_EVENT: &str = "shipgate_smoke";
pub const CHECK_NAME: &str = "shipgate/smoke";

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

pub(super) async fn rows(
    cx: &Context,
    repo: &str,
    pr: i64,
) -> Result<Vec<PreviewRow>, HandlerError> {
    Ok(cx
        .store
        .preview_rows(repo, pr)
        .await?
        .into_iter()
        .filter_map(|(_, data, _)| serde_json::from_str(&data).ok())
        .collect())
}

/// Renders a PR's rows into its comment (the closed form once the PR's
/// previews are retired). `may_create`: whether this caller may post the
/// comment (only deliveries in the repository's order do: deployment
/// statuses and the PR closing or reopening, so two comments can never
/// appear; the smoke job does not).
pub(super) async fn sync_comment(
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
                c.body
                    .as_deref()
                    .is_some_and(|b| b.contains(PREVIEW_MARKER))
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
        let body = if cx.store.previews_closed(repo, pr).await? {
            crate::render::previews_closed::previews_closed_comment(&current)
        } else {
            render::preview_comment(&current)
        };
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

/// Puts `row` into the comment of each PR (the open ones: a closed PR's
/// comment stays closed until it is reopened); returns those PRs.
async fn record_rows(
    cx: &Context,
    api: &Api,
    repo: &str,
    prs: Vec<i64>,
    row: PreviewRow,
) -> Result<Vec<i64>, HandlerError> {
    let mut open = Vec::with_capacity(prs.len());
    for pr in prs {
        if cx.store.previews_closed(repo, pr).await? {
            continue;
        }
        open.push(pr);
        // Rows start with a URL; later states (in progress, failure) of an
        // environment already shown update its row.
        let previous = rows(cx, repo, pr)
            .await?
            .into_iter()
            .find(|r| r.environment == row.environment);
        if row.url.is_none() && previous.is_none() {
            continue;
        }
        let mut row = row.clone();
        if row.last_live.is_none() {
            row.last_live = previous.and_then(|p| p.last_live);
        }
        let data = serde_json::to_string(&row).expect("row serializes");
        cx.store
            .upsert_preview_row(repo, pr, &row.environment, &data, row.updated_at)
            .await?;
        sync_comment(cx, api, repo, pr, true).await?;
    }
    Ok(open)
}

/// The notification a deployment status makes, if any.
fn status_message(
    repo: &str,
    sha: &str,
    env: &str,
    state: &str,
    url: Option<&str>,
    log_url: Option<&str>,
) -> Option<Message> {
    let (event, text, link) = match state {
        "in_progress" => (
            NotifyEvent::DeployStarted,
            crate::render::notify::notify_deploy_started(repo, sha, env, log_url),
            log_url,
        ),
        "success" => (
            NotifyEvent::DeploySucceeded,
            render::notify_deployed(repo, sha, env, url),
            url,
        ),
        "failure" | "error" => (
            NotifyEvent::DeployFailed,
            render::notify_deploy_failed(repo, sha, env, state, log_url),
            log_url,
        ),
        _ => return None,
    };
    Some(
        Message::new(event, repo, text)
            .environment(env)
            .sha(sha)
            .url(link),
    )
}

pub struct Previews;

#[async_trait]
impl Handler for Previews {
    fn name(&self) -> &'static str {
        "previews"
    }

    fn wants(&self, event: &str, action: Option<&str>) -> bool {
        match event {
            "deployment_status" => true,
            "pull_request" => matches!(action, Some("closed" | "reopened")),
            _ => false,
        }
    }

    async fn handle(
        &self,
        cx: &Context,
        _: &ClaimedDelivery,
        event: &Event,
    ) -> Result<(), HandlerError> {
        let ev = match event {
            Event::DeploymentStatus(ev) => ev,
            Event::PullRequest(ev) => return retire::on_pull_request(cx, event, ev).await,
            _ => return Ok(()),
        };
        let repo = ev.repository.full_name.clone();
        let installation = event.installation_id();
        let state = ev.deployment_status.state.clone();
        let env = ev.deployment.environment.clone();
        let sha = ev.deployment.sha.clone();
        let url = ev.deployment_status.url();
        let log_url = ev.deployment_status.log();
        let payload = crate::deploy::payload::DeploymentPayload::read(&ev.deployment.payload);
        let kind = payload.kind.map(|k| k.as_str().to_string());
        let deployed_from = payload.pr;

        let api = cx.github.api(installation)?;
        let default_branch = event.default_branch().to_string();
        // Without a config, its notification routes cannot be read either.
        let Some(config) = cx.valid_config(&api, &repo, &default_branch).await? else {
            return Ok(());
        };
        if let Some(message) = status_message(
            &repo,
            &sha,
            &env,
            &state,
            url.as_deref(),
            log_url.as_deref(),
        ) {
            cx.notifier.send(config.notify.as_deref(), message);
        }
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
            updated_at: crate::now_ms(),
            last_live: (state == "success").then(|| sha.clone()),
            retired: None,
        };
        let prs = record_rows(cx, &api, &repo, prs, row).await?;
        let auto_rollback = config
            .environments
            .get(&env)
            .is_some_and(|e| e.auto_rollback);
        if auto_rollback && kind.as_deref() != Some("rollback") {
            rollback::on_reported_failure(cx, ev, &default_branch, installation).await?;
        }
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
