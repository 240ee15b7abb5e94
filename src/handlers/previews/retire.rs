//! A closed pull request's previews are retired: each deployment of its
//! commits (the rows shipgate stored for it: the commit shown and the one
//! last live) to a preview environment gets an `inactive` status, and the
//! comment says the previews are closed and which commit was last live.
//!
//! Only previews: an environment configured under `environments:` is never
//! touched, nor a deployment GitHub marks `production_environment`, nor a
//! commit that is also the head of another open pull request (whose preview
//! it is too). Redelivery posts nothing twice: a deployment whose latest
//! status is already `inactive` is left alone. Reopening the pull request
//! brings the usual comment back.

use super::{rows, sync_comment};
use crate::config::repo::RepoConfig;
use crate::github::events::{Event, PullRequestEvent};
use crate::github::repos::NewDeploymentStatus;
use crate::github::Api;
use crate::handlers::{Context, HandlerError};
use crate::render::previews::{PreviewRow, Retirement};
use crate::render::previews_closed::retired_status_description;

pub(super) async fn on_pull_request(
    cx: &Context,
    event: &Event,
    ev: &PullRequestEvent,
) -> Result<(), HandlerError> {
    let repo = &ev.repository.full_name;
    let pr = ev.pull_request.number as i64;
    match ev.action.as_str() {
        "closed" => close(cx, event, repo, pr).await,
        "reopened" => reopen(cx, event, repo, pr).await,
        _ => Ok(()),
    }
}

async fn close(cx: &Context, event: &Event, repo: &str, pr: i64) -> Result<(), HandlerError> {
    let current = rows(cx, repo, pr).await?;
    if current.is_empty() {
        // No previews: nothing to retire, and later statuses of its commits
        // do not start a comment.
        cx.store
            .set_previews_closed(repo, pr, Some(crate::now_ms()))
            .await?;
        return Ok(());
    }
    let api = cx.github.api(event.installation_id())?;
    // Without a config, which environments are previews is unknown:
    // nothing is retired.
    let Some(config) = cx.valid_config(&api, repo, event.default_branch()).await? else {
        return Ok(());
    };
    // Closed first, so a smoke run finishing meanwhile leaves the comment closed.
    cx.store
        .set_previews_closed(repo, pr, Some(crate::now_ms()))
        .await?;
    for mut row in current {
        let outcome = retire_row(&api, &config, repo, pr, &row).await?;
        if outcome == Retirement::Retired {
            row.state = "inactive".into();
        }
        row.retired = Some(outcome);
        store_row(cx, repo, pr, &row).await?;
    }
    sync_comment(cx, &api, repo, pr, true).await
}

async fn reopen(cx: &Context, event: &Event, repo: &str, pr: i64) -> Result<(), HandlerError> {
    if !cx.store.previews_closed(repo, pr).await? {
        return Ok(());
    }
    cx.store.set_previews_closed(repo, pr, None).await?;
    let current = rows(cx, repo, pr).await?;
    if current.is_empty() {
        return Ok(());
    }
    for mut row in current {
        row.retired = None;
        store_row(cx, repo, pr, &row).await?;
    }
    let api = cx.github.api(event.installation_id())?;
    sync_comment(cx, &api, repo, pr, true).await
}

async fn store_row(
    cx: &Context,
    repo: &str,
    pr: i64,
    row: &PreviewRow,
) -> Result<(), HandlerError> {
    let data = serde_json::to_string(row).expect("row serializes");
    cx.store
        .upsert_preview_row(repo, pr, &row.environment, &data, crate::now_ms())
        .await?;
    Ok(())
}

/// Retires one environment's deployments of the PR's commits in its row.
async fn retire_row(
    api: &Api,
    config: &RepoConfig,
    repo: &str,
    pr: i64,
    row: &PreviewRow,
) -> Result<Retirement, HandlerError> {
    let env = &row.environment;
    if config.environments.contains_key(env) {
        return Ok(Retirement::Configured);
    }
    let mut shas = vec![row.sha.as_str()];
    if let Some(live) = row.last_live.as_deref().filter(|l| *l != row.sha) {
        shas.push(live);
    }
    for sha in &shas {
        let other = api
            .pulls_for_commit(repo, sha)
            .await?
            .into_iter()
            .find(|p| p.state == "open" && p.number != pr && p.head.sha == *sha);
        if let Some(other) = other {
            return Ok(Retirement::Shared { pr: other.number });
        }
    }
    let description = retired_status_description(pr);
    let (mut previews, mut production) = (0, 0);
    for sha in shas {
        for d in api.deployments_of_sha(repo, env, sha).await? {
            // The list is filtered by GitHub; what is retired is checked here.
            if d.environment != *env || d.sha != sha {
                continue;
            }
            if d.production_environment {
                production += 1;
                continue;
            }
            previews += 1;
            let latest = api.deployment_statuses(repo, d.id).await?;
            if latest.first().is_some_and(|s| s.state == "inactive") {
                continue;
            }
            api.create_deployment_status(
                repo,
                d.id,
                &NewDeploymentStatus {
                    state: "inactive",
                    description: &description,
                },
            )
            .await?;
        }
    }
    Ok(if production > 0 && previews == 0 {
        Retirement::Production
    } else {
        Retirement::Retired
    })
}
