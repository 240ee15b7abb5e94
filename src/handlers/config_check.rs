//! Validates `.github/shipgate.yml` wherever it changes and reports the
//! result as the commit status `shipgate/config`: on pull requests (at the
//! head commit) and on pushes to the default branch. A valid file whose
//! `notify:` names a destination the server does not have for the
//! repository is reported too.
//!
//! Idempotent: the status is only written when the commit does not already
//! carry the same state and description for our context.

use async_trait::async_trait;

use super::{Context, Handler, HandlerError};
use crate::config::repo::{ConfigSource, CONFIG_PATH};
use crate::github::content::{NewStatus, StatusState};
use crate::github::events::Event;
use crate::render::config::{config_status, ConfigState};
use crate::store::ClaimedDelivery;

pub const CONTEXT: &str = "shipgate/config";

pub struct ConfigCheck;

/// The commit whose config a delivery asks to check.
struct Target {
    repo: String,
    sha: String,
    installation: Option<i64>,
    /// Report even when there is no config file (it was just removed).
    always_report: bool,
}

/// The commit to check, if the delivery asks for one.
fn target(event: &Event) -> Option<Target> {
    match event {
        Event::PullRequest(ev) => Some(Target {
            repo: ev.repository.full_name.clone(),
            sha: ev.pull_request.head.sha.clone(),
            installation: event.installation_id(),
            always_report: false,
        }),
        Event::Push(ev) => {
            let default = ev.repository.default_branch.as_deref();
            if ev.deleted
                || ev.branch().is_none()
                || ev.branch() != default
                || !ev.touches(CONFIG_PATH)
            {
                return None;
            }
            Some(Target {
                repo: ev.repository.full_name.clone(),
                sha: ev.after.clone(),
                installation: event.installation_id(),
                always_report: true,
            })
        }
        _ => None,
    }
}

#[async_trait]
impl Handler for ConfigCheck {
    fn name(&self) -> &'static str {
        "config_check"
    }

    fn wants(&self, event: &str, action: Option<&str>) -> bool {
        match event {
            "pull_request" => matches!(action, Some("opened" | "synchronize" | "reopened")),
            "push" => true,
            _ => false,
        }
    }

    async fn handle(
        &self,
        cx: &Context,
        _: &ClaimedDelivery,
        event: &Event,
    ) -> Result<(), HandlerError> {
        let Some(Target {
            repo,
            sha,
            installation,
            always_report,
        }) = target(event)
        else {
            return Ok(());
        };
        let api = cx.github.api(installation)?;
        let loaded = cx.config(&api, &repo, &sha).await?;
        let error;
        let unknown: Vec<String> = match &loaded.config {
            Ok(c) => c
                .notify
                .iter()
                .flatten()
                .map(|r| r.to.clone())
                .filter(|name| !cx.notifier.serves(name, &repo))
                .fold(Vec::new(), |mut names, n| {
                    if !names.contains(&n) {
                        names.push(n);
                    }
                    names
                }),
            Err(_) => Vec::new(),
        };
        let (state, shown) = match (&loaded.source, &loaded.config) {
            // No file and nothing changed it: stay quiet on pull requests.
            (ConfigSource::Missing, _) if !always_report => return Ok(()),
            (ConfigSource::Missing, _) => (StatusState::Success, ConfigState::Missing),
            (ConfigSource::File { .. }, Ok(_)) if !unknown.is_empty() => (
                StatusState::Failure,
                ConfigState::UnknownDestinations { names: &unknown },
            ),
            (ConfigSource::File { .. }, Ok(_)) => (StatusState::Success, ConfigState::Valid),
            (ConfigSource::File { .. }, Err(e)) => {
                error = e.to_string();
                (StatusState::Failure, ConfigState::Invalid { error: &error })
            }
        };
        let description = config_status(&shown);
        let current = api.combined_status(&repo, &sha).await?;
        let already = current.iter().any(|s| {
            s.context == CONTEXT
                && s.state == state
                && s.description.as_deref() == Some(description.as_str())
        });
        if already {
            return Ok(());
        }
        api.create_status(
            &repo,
            &sha,
            &NewStatus {
                state,
                context: CONTEXT,
                description: &description,
                target_url: None,
            },
        )
        .await?;
        Ok(())
    }
}
