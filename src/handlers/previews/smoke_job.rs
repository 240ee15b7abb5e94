//! The smoke job of a deployment: probe its URL from the server's network
//! (within the operator's caps, the installation's budget and the SSRF
//! guard), update the previews comment and the `shipgate/smoke` check run,
//! and roll back when the environment asks for it.

use async_trait::async_trait;

use super::{SmokeCell, SmokeJobPayload, CHECK_NAME, SMOKE_EVENT};
use crate::config::repo::RepoConfig;
use crate::github::events::Event;
use crate::github::repos::{CheckRunOutput, NewCheckRun};
use crate::handlers::{Context, Handler, HandlerError};
use crate::notify::{Event as NotifyEvent, Message};
use crate::render::previews as render;
use crate::smoke::{self, Outcome, SmokeReport};
use crate::store::ClaimedDelivery;

pub struct SmokeJob;

/// Notifies a failed run, or a passing one after the environment's previous
/// run failed (the outcome is recorded either way).
async fn notify_outcome(
    cx: &Context,
    config: &RepoConfig,
    job: &SmokeJobPayload,
    r: &SmokeReport,
) -> Result<(), HandlerError> {
    let passed = r.outcome() != Outcome::Fail;
    let before = cx
        .store
        .record_smoke_outcome(
            &job.repository,
            &job.environment,
            job.deployment_id,
            passed,
            crate::now_ms(),
        )
        .await?;
    let (event, text) = match (passed, before) {
        (false, _) => (
            NotifyEvent::SmokeFailed,
            render::notify_smoke_failed(&job.repository, &job.environment, &job.sha, &r.summary()),
        ),
        (true, Some(false)) => (
            NotifyEvent::SmokeRecovered,
            crate::render::notify::notify_smoke_recovered(
                &job.repository,
                &job.environment,
                &job.sha,
                &r.summary(),
            ),
        ),
        (true, _) => return Ok(()),
    };
    let message = Message::new(event, &job.repository, text)
        .environment(&job.environment)
        .sha(&job.sha)
        .url(Some(&job.url));
    cx.notifier.send(config.notify.as_deref(), message);
    Ok(())
}

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

    fn decode_internal(&self, _: &str, payload: &str) -> Result<(), HandlerError> {
        serde_json::from_str::<SmokeJobPayload>(payload)?;
        Ok(())
    }

    async fn handle(
        &self,
        cx: &Context,
        d: &ClaimedDelivery,
        _: &Event,
    ) -> Result<(), HandlerError> {
        let job: SmokeJobPayload = serde_json::from_str(&d.payload)?;
        let api = cx.github.api(job.installation)?;
        let Some(config) = cx
            .valid_config(&api, &job.repository, &job.default_branch)
            .await?
        else {
            return Ok(());
        };
        let target = url::Url::parse(&job.url)
            .map_err(|e| HandlerError::permanent(format!("bad URL {}: {e}", job.url)))?;
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
            // A PR closed since the deployment: its comment stays closed.
            if cx.store.previews_closed(&job.repository, *pr).await? {
                continue;
            }
            let mut current = super::rows(cx, &job.repository, *pr).await?;
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
                super::sync_comment(cx, &api, &job.repository, *pr, false).await?;
            }
        }

        // The check run on the commit.
        let probed = match (&report, &cell) {
            (Some(r), _) => Ok(r),
            (None, SmokeCell::NotProbed { reason }) => Err(reason.as_str()),
            (None, _) => Err("not run"),
        };
        let (conclusion, title, summary) =
            render::smoke_check_run(&job.environment, &job.url, probed);
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
            notify_outcome(cx, &config, &job, r).await?;
            if r.outcome() == Outcome::Fail {
                let auto = config
                    .environments
                    .get(&job.environment)
                    .is_some_and(|e| e.auto_rollback);
                // A rollback's own smoke failure never triggers another rollback.
                if auto && job.kind.as_deref() != Some("rollback") {
                    let failed = super::rollback::FailedDeploy::smoked(&job, r);
                    super::rollback::auto_rollback(cx, &api, &config, &failed, d.attempts > 1)
                        .await?;
                }
            }
        }
        Ok(())
    }
}
