//! The fields of a delivery the policy handler reads, whichever the event.

use serde::Deserialize;

use super::HandlerError;
use crate::github::events::{PushEvent, RepositoryRef};

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

/// A delivery as the policy handler reads it: the payload's fields, its
/// common ones, and for a push the typed event.
pub struct Input {
    pub p: Fields,
    pub installation: Option<i64>,
    pub sender: Option<String>,
    pub repo: Option<String>,
    pub default_branch: Option<String>,
    pub push: Option<PushEvent>,
}

pub fn decode(event: &str, payload: &str) -> Result<Input, HandlerError> {
    let mut p: Fields = serde_json::from_str(payload)?;
    let push = match event {
        "push" => Some(serde_json::from_str::<PushEvent>(payload)?),
        _ => None,
    };
    let (repo, default_branch) = match p.repository.take() {
        Some(r) => (Some(r.full_name), r.default_branch),
        None => (None, None),
    };
    Ok(Input {
        installation: p.installation.as_ref().and_then(|i| i.id),
        sender: p.sender.as_mut().and_then(|s| s.login.take()),
        repo,
        default_branch,
        push,
        p,
    })
}
