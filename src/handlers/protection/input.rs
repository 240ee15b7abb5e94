//! The fields of a delivery the policy handler reads, whichever the event.

use serde::Deserialize;

use super::HandlerError;
use crate::github::events::{CheckRef, Event, RepositoryRef};

/// The fields of a payload the policy handler reads, whichever the event:
/// only these are decoded (reading a whole 28 KB pull request payload into a
/// `Value` was a tenth of the worker's CPU time in a backlog drain).
#[derive(Deserialize, Default)]
pub struct Fields {
    #[serde(default)]
    pub installation: Option<NullableId>,
    #[serde(default)]
    pub sender: Option<NullableLogin>,
    #[serde(default)]
    pub repository: Option<RepositoryRef>,
    #[serde(default)]
    pub pull_request: Option<PullRequestFields>,
    #[serde(default)]
    pub changes: Option<ChangesFields>,
    #[serde(default)]
    pub check_run: Option<CheckFields>,
    #[serde(default)]
    pub check_suite: Option<CheckFields>,
    /// Internal jobs: the commit of a policy job, the trigger of an enforcement.
    #[serde(default)]
    pub sha: Option<String>,
    #[serde(default)]
    pub trigger: Option<String>,
    #[serde(default)]
    pub repositories: Option<Vec<RepositoryRef>>,
    #[serde(default)]
    pub repositories_added: Option<Vec<RepositoryRef>>,
}

/// `events::IdOnly`, but the jobs this handler stores for itself write
/// `"id": null` in token mode.
#[derive(Deserialize)]
pub struct NullableId {
    pub id: Option<i64>,
}

/// `events::User`, but an enforcement job writes `"login": null` when no
/// sender is known.
#[derive(Deserialize)]
pub struct NullableLogin {
    pub login: Option<String>,
}

#[derive(Deserialize)]
pub struct PullRequestFields {
    pub number: Option<i64>,
    pub head: Option<ShaField>,
}

#[derive(Deserialize)]
pub struct ShaField {
    pub sha: Option<String>,
}

#[derive(Deserialize)]
pub struct ChangesFields {
    /// Present (and not null) when the base branch changed.
    pub base: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
pub struct CheckFields {
    pub name: Option<String>,
    pub head_sha: Option<String>,
    pub app: Option<AppField>,
}

#[derive(Deserialize)]
pub struct AppField {
    pub slug: Option<String>,
}

/// A delivery as the policy handler reads it: the payload's fields
/// and its common ones (a push is read from the typed event itself).
pub struct Input {
    pub p: Fields,
    pub installation: Option<i64>,
    pub sender: Option<String>,
    pub repo: Option<String>,
    pub default_branch: Option<String>,
}

/// The policy handler's view of a delivery: a webhook's typed event (decoded
/// once for every handler) brought to [`Fields`], or one of its own jobs
/// read from its payload.
pub fn decode(payload: &str, event: &Event) -> Result<Input, HandlerError> {
    let mut p = match event {
        Event::Internal => serde_json::from_str::<Fields>(payload)?,
        _ => Fields::default(),
    };
    let check = |c: &CheckRef| CheckFields {
        name: c.name.clone(),
        head_sha: c.head_sha.clone(),
        app: c.app.as_ref().map(|a| AppField {
            slug: a.slug.clone(),
        }),
    };
    let pull = |number: i64, sha: &str| PullRequestFields {
        number: Some(number),
        head: Some(ShaField {
            sha: Some(sha.to_string()),
        }),
    };
    match event {
        Event::Installation(ev) => p.repositories = ev.repositories.clone(),
        Event::InstallationRepositories(ev) => p.repositories_added = ev.repositories_added.clone(),
        Event::PullRequest(ev) => {
            p.pull_request = Some(pull(
                ev.pull_request.number as i64,
                &ev.pull_request.head.sha,
            ));
            p.changes = ev.changes.as_ref().map(|c| ChangesFields {
                base: c.base.as_ref().map(|_| serde::de::IgnoredAny),
            });
        }
        Event::PullRequestReview(ev) => {
            p.pull_request = ev
                .pull_request
                .as_ref()
                .map(|pr| pull(pr.number, &pr.head.sha));
        }
        Event::CheckRun(ev) => p.check_run = Some(check(&ev.check_run)),
        Event::CheckSuite(ev) => p.check_suite = Some(check(&ev.check_run)),
        _ => {}
    }
    let (repo, default_branch) = match (event, p.repository.take()) {
        (Event::Internal, Some(r)) => (Some(r.full_name), r.default_branch),
        (Event::Internal, None) => (None, None),
        (e, _) => (
            e.repo().map(str::to_string),
            e.repository().and_then(|r| r.default_branch.clone()),
        ),
    };
    let (installation, sender) = match event {
        Event::Internal => (
            p.installation.as_ref().and_then(|i| i.id),
            p.sender.as_mut().and_then(|s| s.login.take()),
        ),
        e => (e.installation_id(), e.sender().map(str::to_string)),
    };
    Ok(Input {
        installation,
        sender,
        repo,
        default_branch,
        p,
    })
}
