//! The rulesets of `protection.rulesets`: each brought to the policy (or,
//! in audit mode, only reported), and what merging a pull request would do
//! to them. Only rulesets the policy names are read or written; a ruleset
//! with another name (made by hand, or inherited from the organization) is
//! left alone, and shipgate never deletes one.

use std::collections::HashMap;

use serde_json::Value;

use super::{Context, HandlerError};
use crate::config::repo::RepoConfig;
use crate::deploy::policy::FieldDiff;
use crate::deploy::rulesets;
use crate::github::{Api, GitHubError};
use crate::render::policy as render;
use crate::store::PolicyLogEntry;

/// What enforcement found on one ruleset, until it is reported.
pub enum Found {
    Audited {
        name: String,
        absent: bool,
        diffs: Vec<FieldDiff>,
    },
    Restored {
        name: String,
        created: bool,
        diffs: Vec<FieldDiff>,
    },
}

impl Found {
    pub fn shown(&self) -> render::Enforced<'_> {
        match self {
            Found::Audited {
                name,
                absent,
                diffs,
            } => render::Enforced::RulesetAudited {
                name,
                absent: *absent,
                diffs,
            },
            Found::Restored {
                name,
                created,
                diffs,
            } => render::Enforced::RulesetRestored {
                name,
                created: *created,
                diffs,
            },
        }
    }
}

/// The repository's own rulesets by name, and the live ruleset of each
/// name the policy lists.
async fn live_rulesets(
    api: &Api,
    repo: &str,
    config: &RepoConfig,
) -> Result<HashMap<String, (i64, Value)>, GitHubError> {
    let mut out = HashMap::new();
    for summary in api.rulesets(repo).await? {
        if config.protection.rulesets.contains_key(&summary.name) {
            let live = api.ruleset(repo, summary.id).await?;
            out.insert(summary.name, (summary.id, live));
        }
    }
    Ok(out)
}

/// What enforcing the rulesets came to.
pub enum Outcome {
    /// Drift found (and, in enforce mode, restored).
    Done(Vec<Found>),
    /// GitHub refused (no admin rights, the plan): the caller reports it.
    Refused(GitHubError),
}

/// Brings every ruleset of the policy to it (or, in audit mode, only finds
/// the drift).
pub async fn enforce(
    cx: &Context,
    api: &Api,
    repo: &str,
    config: &RepoConfig,
    (trigger, actor): (&str, Option<&str>),
    audit: bool,
) -> Result<Outcome, HandlerError> {
    let mut live = match live_rulesets(api, repo, config).await {
        Ok(l) => l,
        Err(e) if !e.is_transient() => return Ok(Outcome::Refused(e)),
        Err(e) => return Err(e.into()),
    };
    let mut found = Vec::new();
    for (name, r) in &config.protection.rulesets {
        let desired = rulesets::body(name, r);
        let current = live.remove(name);
        let diffs = rulesets::diff(&desired, current.as_ref().map(|(_, v)| v));
        if diffs.is_empty() {
            continue;
        }
        let detail = serde_json::to_string(&diffs).expect("diffs serialize");
        let subject = format!("ruleset {name}");
        let entry = |action| PolicyLogEntry {
            repository: repo,
            branch: &subject,
            trigger,
            actor,
            action,
            detail: &detail,
        };
        let now = crate::now_ms();
        let absent = current.is_none();
        if audit {
            cx.store.log_policy(&entry("audited"), now).await?;
            found.push(Found::Audited {
                name: name.clone(),
                absent,
                diffs,
            });
            continue;
        }
        let written = match &current {
            Some((id, _)) => api.update_ruleset(repo, *id, &desired).await,
            None => api.create_ruleset(repo, &desired).await.map(drop),
        };
        match written {
            Ok(()) => {
                // A ruleset created again is logged as restored (the
                // policy log's actions are restored, audited and failed);
                // its detail shows every setting found `off`.
                cx.store.log_policy(&entry("restored"), now).await?;
                found.push(Found::Restored {
                    name: name.clone(),
                    created: absent,
                    diffs,
                });
            }
            Err(e) if !e.is_transient() => {
                cx.store.log_policy(&entry("failed"), now).await?;
                return Ok(Outcome::Refused(e));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Outcome::Done(found))
}

/// What merging would do to the rulesets: each of the proposed policy
/// against the live one of its name, and those the current policy names
/// that the proposed one drops.
pub struct Planned {
    /// (name, absent today, differences)
    pub rulesets: Vec<(String, bool, Vec<FieldDiff>)>,
    pub released: Vec<String>,
    pub unreadable: bool,
}

impl Planned {
    pub fn shown(&self) -> Vec<render::Planned<'_>> {
        let mut out: Vec<render::Planned> = self
            .rulesets
            .iter()
            .map(|(name, absent, diffs)| render::Planned::Ruleset {
                name,
                absent: *absent,
                diffs,
            })
            .collect();
        out.extend(
            self.released
                .iter()
                .map(|name| render::Planned::RulesetReleased { name }),
        );
        if self.unreadable {
            out.push(render::Planned::RulesetsUnreadable);
        }
        out
    }
}

pub async fn plan(
    api: &Api,
    repo: &str,
    proposed: &RepoConfig,
    current: Option<&RepoConfig>,
) -> Result<Planned, HandlerError> {
    let released = current
        .map(|c| &c.protection.rulesets)
        .into_iter()
        .flatten()
        .filter(|(name, _)| !proposed.protection.rulesets.contains_key(*name))
        .map(|(name, _)| name.clone())
        .collect();
    let mut planned = Planned {
        rulesets: Vec::new(),
        released,
        unreadable: false,
    };
    if proposed.protection.rulesets.is_empty() {
        return Ok(planned);
    }
    let live = match live_rulesets(api, repo, proposed).await {
        Ok(l) => l,
        Err(GitHubError::Forbidden(_)) => {
            planned.unreadable = true;
            return Ok(planned);
        }
        Err(e) => return Err(e.into()),
    };
    for (name, r) in &proposed.protection.rulesets {
        let current = live.get(name).map(|(_, v)| v);
        let diffs = rulesets::diff(&rulesets::body(name, r), current);
        planned
            .rulesets
            .push((name.clone(), current.is_none(), diffs));
    }
    Ok(planned)
}
